"""DESIGN §5 cross-check: independent mode with flat fees and no lots equals vectorbt's from_signals,
for next-open and next-close fills, with and without a time stop: equity, cash, every fill and
every trade (entry/exit bar, prices, size, fees, P&L, return).

Explicit mapping of our semantics onto vectorbt's (`backtest.bench.vectorbt_from_signals`):
- our signal on row t fills at the open (close) of t+1: vectorbt gets the signals shifted one bar
  and `price=open` (`price=close`);
- stops are measured from the fill price and a stop exit pays slippage:
  `stop_entry_price="fillprice"`, `stop_exit_price="stopmarket"`;
- a signal exit at the open fills before anything else can happen in that bar; vectorbt checks
  stops first, so on bars where a shifted exit signal fills at the open, vectorbt sees
  high = low = open (a stop through the open still fills at the open in both). At the close both
  check stops first;
- vectorbt 1.2's from_signals has no time stop: it gets an exit signal `max_hold` bars after each
  of its own entry fills (found by re-running it until no trade outlives `max_hold`), and the
  entry signal of that bar is dropped (we ignore entry signals while holding; vectorbt would treat
  the pair as a conflict);
- vectorbt cannot hold a stop loss and a trailing stop at once, so each case uses one of them;
- a bar with both an entry and an exit signal is resolved by our position (exit if holding,
  entry if flat), which no vectorbt conflict mode does: the generator avoids such bars; and an
  exit whose fill bar has no price waits for the next priced bar with us but is dropped by
  vectorbt: the generator avoids those too (tests/test_simulation.py covers both).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.bench import vectorbt_from_signals
from backtest.costs import CostModel
from tests.helpers import random_ohlc, require
from tests.simkit import run

require("vectorbt")  # a hard dependency: fails in CI if missing


def vectorbt_with_time_stop(o, h, lo, c, en, ex, max_hold, *args, fill):
    """vectorbt from_signals plus a time stop expressed as exit signals (see the module docstring)."""
    en, ex = en.copy(), ex.copy()
    while True:
        pf = vectorbt_from_signals(o, h, lo, c, en, ex, *args, fill=fill)
        if not max_hold:
            return pf
        added = False
        tr = pf.trades.values
        for col in np.unique(tr["col"]):
            for rec in tr[tr["col"] == col]:  # in time order: the first trade that overstays
                due = rec["entry_idx"] + max_hold
                # at `due` our time exit fills first (at the open, or before a close exit); so must vectorbt's
                if due < len(c) and (rec["status"] == 0 or rec["exit_idx"] >= due) and not ex[due - 1, col]:
                    ex[due - 1, col], en[due - 1, col] = True, False
                    added = True
                    break
        if not added:
            return pf


STOPS = [(0.0, 0.0, 0.0), (0.08, 0.0, 0.0), (0.0, 0.15, 0.0), (0.1, 0.2, 0.0), (0.0, 0.0, 0.07), (0.0, 0.25, 0.1)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_t=st.integers(2, 120), n_s=st.integers(1, 4),
       nan_frac=st.sampled_from([0.0, 0.03, 0.15]), stops=st.sampled_from(STOPS),
       fee_pct=st.sampled_from([0.0, 0.1, 0.35]), slip=st.sampled_from([0.0, 0.001, 0.01]),
       p_entry=st.sampled_from([0.05, 0.2, 0.6]), fill=st.sampled_from(["next_open", "next_close"]),
       max_hold=st.sampled_from([0, 0, 1, 3, 7]))
def test_equity_fills_and_trades_equal_vectorbt(seed, n_t, n_s, nan_frac, stops, fee_pct, slip, p_entry, fill,
                                                max_hold):
    rng = np.random.default_rng(seed)
    o, h, lo, c = random_ohlc(rng, n_t, n_s, 0.0 if max_hold else nan_frac)  # a time exit must not wait
    en = rng.random((n_t, n_s)) < p_entry
    ex = (rng.random((n_t, n_s)) < 0.15) & ~en
    ex[:-1] &= ~np.isnan(c[1:])
    sl, tp, tsl = stops
    res = run(o, h, lo, c, en, ex, cash=1e5, slippage=slip, stop_loss=sl, take_profit=tp, trailing_stop=tsl,
              max_hold=max_hold, fill=fill, costs=CostModel(kind="flat", flat_pct=fee_pct))
    pf = vectorbt_with_time_stop(o, h, lo, c, en, ex, max_hold, sl, tp, tsl, fee_pct, slip, 1e5, fill=fill)

    np.testing.assert_allclose(res.equity.to_numpy(), pf.value().to_numpy(), rtol=1e-9, atol=0)
    np.testing.assert_allclose(res.cash.to_numpy(), pf.cash().to_numpy(), rtol=1e-9, atol=1e-6)
    idx, cols = res.equity.index, res.shares.columns

    filled = res.orders[res.orders["status"] == "filled"]
    theirs = pf.orders.values
    theirs = theirs[np.lexsort((theirs["idx"], theirs["col"]))]
    ours = filled.assign(bar=idx.get_indexer(filled["date"]), col=cols.get_indexer(filled["symbol"]))
    ours = ours.sort_values(["col", "bar"], kind="stable")
    assert len(ours) == len(theirs)
    np.testing.assert_array_equal(ours["bar"], theirs["idx"])
    np.testing.assert_array_equal(ours["col"], theirs["col"])
    np.testing.assert_array_equal(np.where(ours["side"] == "buy", 0, 1), theirs["side"])
    np.testing.assert_allclose(ours["shares"], theirs["size"], rtol=1e-9)
    np.testing.assert_allclose(ours["price"], theirs["price"], rtol=1e-12)
    np.testing.assert_allclose(ours["fees"], theirs["fees"], rtol=1e-9, atol=1e-9)

    tr = res.trades.assign(col=cols.get_indexer(res.trades["symbol"]), entry_bar=idx.get_indexer(res.trades["entry_date"]),
                           exit_bar=idx.get_indexer(res.trades["exit_date"]))
    tr = tr.sort_values(["col", "entry_bar"], kind="stable")
    vt = pf.trades.values
    vt = vt[np.lexsort((vt["entry_idx"], vt["col"]))]
    assert len(tr) == len(vt)
    closed = vt["status"] == 1
    np.testing.assert_array_equal(tr["col"], vt["col"])
    np.testing.assert_array_equal(tr["entry_bar"], vt["entry_idx"])
    np.testing.assert_array_equal(tr["exit_bar"].to_numpy()[closed], vt["exit_idx"][closed])
    np.testing.assert_array_equal(tr["reason"].to_numpy() == "open", ~closed)
    # An open trade is marked at the last close: vectorbt's is NaN on a last bar without a price, ours
    # the last known close (docs/simulation.md), so those are compared with that close instead.
    last = np.array([c[~np.isnan(c[:, j]), j][-1] if (~np.isnan(c[:, j])).any() else np.nan for j in range(n_s)])
    marked = closed | ~np.isnan(c[-1, vt["col"]])
    np.testing.assert_allclose(tr["exit_price"].to_numpy()[~marked], last[vt["col"][~marked]], rtol=0)
    for ours_col, their_col in (("shares", "size"), ("entry_price", "entry_price"), ("exit_price", "exit_price"),
                                ("entry_fees", "entry_fees"), ("exit_fees", "exit_fees"), ("pnl", "pnl")):
        np.testing.assert_allclose(tr[ours_col].to_numpy()[marked], vt[their_col][marked], rtol=1e-9, atol=1e-9,
                                   err_msg=ours_col)
    # vectorbt's return is P&L over the entry value; ours over the entry value plus entry fees.
    cost = vt["size"] * vt["entry_price"]
    np.testing.assert_allclose(tr["return"].to_numpy()[marked], (vt["return"] * cost / (cost + vt["entry_fees"]))[marked],
                               rtol=1e-9, atol=1e-12)
    bars = np.where(closed, vt["exit_idx"] - vt["entry_idx"], n_t - 1 - vt["entry_idx"])
    np.testing.assert_array_equal(tr["bars"], bars)
    if max_hold:
        assert (tr["bars"] <= max_hold).all()
