"""The engine against tests/oracle_sim.py, a plain-Python simulator written from docs/simulation.md
and docs/costs.md: equity, cash, shares, every order and every trade, on random panels, in both
modes, every fill, stops, time stops, slippage, board lots, HK costs and portfolio ranking."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.costs import CostModel
from tests import oracle_sim as ref
from tests.helpers import random_ohlc
from tests.simkit import dates, run

RTOL = 1e-9


def oracle_run(o, h, lo, c, en, ex, *, lot=None, rank=None, rank_order="high_first", fill="next_open", cash=1e6,
               slippage=0.0, stop_loss=0.0, take_profit=0.0, trailing_stop=0.0, max_hold=0, costs=None,
               max_positions=0, start="2024-01-02"):
    costs = costs or CostModel(kind="flat")
    n_t = c.shape[0]
    tl = lambda a: None if a is None else np.broadcast_to(a, c.shape).tolist()  # noqa: E731
    s = ref.Setup(open=tl(o), high=tl(h), low=tl(lo), close=tl(c), entries=tl(en), exits=tl(ex),
                  days=[str(d) for d in dates(n_t, start)], lot=tl(lot), rank=tl(rank),
                  rank_high_first=rank_order == "high_first", fill=fill, init_cash=cash,
                  slippage=slippage * 1e4 / 1e4, stop_loss=stop_loss, take_profit=take_profit,
                  trailing_stop=trailing_stop, max_hold=max_hold,
                  costs=ref.Costs(costs.kind, costs.flat_pct, costs.commission_bps, costs.commission_min),
                  max_positions=max_positions)
    return ref.simulate(s)


def assert_same(res, out, n_t):
    """Engine Result == oracle Out: per-bar arrays, orders and trades with every column."""
    days = res.equity.index
    symbols = list(res.shares.columns)

    want = pd.DataFrame(out.orders)
    got = res.orders
    assert len(got) == len(want), (got, want)
    if len(want):
        want = want.sort_values(["bar", "col"], kind="stable").reset_index(drop=True)
        assert list(got["date"]) == list(days[want["bar"]])
        assert list(got["symbol"]) == [symbols[j] for j in want["col"]]
        for col in ("side", "reason", "status"):
            assert list(got[col]) == list(want[col]), col
        for col in ("shares", "price", "fees", *(f"fee_{k}" for k in ref.FEE_KINDS)):
            np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=RTOL, atol=1e-9,
                                       err_msg=f"orders.{col}")
        filled = want["status"] == "filled"
        np.testing.assert_allclose(got.loc[filled, "value"], (want["shares"] * want["price"])[filled], rtol=RTOL)

    want = pd.DataFrame(out.trades)
    got = res.trades
    assert len(got) == len(want)
    if len(want):
        assert_same_trades(got, want, days, symbols, n_t)
    np.testing.assert_allclose(res.equity.to_numpy(), np.array(out.equity), rtol=RTOL, atol=1e-6, err_msg="equity")
    np.testing.assert_allclose(res.cash.to_numpy(), np.array(out.cash), rtol=RTOL, atol=1e-6, err_msg="cash")
    np.testing.assert_allclose(res.shares.to_numpy(), np.array(out.shares), rtol=RTOL, atol=1e-9, err_msg="shares")


def assert_same_trades(got, want, days, symbols, n_t):
    want = want.sort_values(["entry_bar", "col"], kind="stable").reset_index(drop=True)
    assert list(got["symbol"]) == [symbols[j] for j in want["col"]]
    assert list(got["entry_date"]) == list(days[want["entry_bar"]])
    closed = want["exit_bar"] >= 0
    assert list(got["exit_date"].isna()) == list(~closed)
    assert list(got.loc[closed, "exit_date"]) == list(days[want.loc[closed, "exit_bar"]])
    assert list(got["reason"]) == list(want["reason"])
    cost = want["shares"] * want["entry_price"] + want["entry_fees"]
    proceeds = want["shares"] * want["exit_price"] - want["exit_fees"]
    want["pnl"] = proceeds - cost
    want["return"] = proceeds / cost - 1.0
    want["bars"] = np.where(closed, want["exit_bar"] - want["entry_bar"], n_t - 1 - want["entry_bar"])
    for col in ("shares", "entry_price", "exit_price", "entry_fees", "exit_fees", "pnl", "return", "bars",
                *(f"fee_{k}" for k in ref.FEE_KINDS)):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=RTOL, atol=1e-6,
                                   err_msg=f"trades.{col}")


STOPS = [(0, 0, 0, 0), (0.08, 0, 0, 0), (0, 0.12, 0, 0), (0, 0, 0.06, 0), (0.1, 0.2, 0.05, 0), (0, 0, 0, 3),
         (0.06, 0.1, 0, 5), (0.05, 0.08, 0.04, 1)]
COSTS = [CostModel(kind="flat"), CostModel(kind="flat", flat_pct=0.2),
         CostModel(kind="hk", commission_bps=3, commission_min=50), CostModel(kind="hk", commission_bps=0)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_t=st.integers(2, 60), n_s=st.integers(1, 5),
       nan_frac=st.sampled_from([0.0, 0.05, 0.25]), fill=st.sampled_from(["next_open", "next_close", "same_close"]),
       stops=st.sampled_from(STOPS), costs=st.sampled_from(COSTS), lots=st.booleans(),
       k=st.sampled_from([0, 0, 1, 2, 3]), rank=st.sampled_from([None, "high_first", "low_first"]),
       slip=st.sampled_from([0.0, 0.001, 0.01]), cash=st.sampled_from([2e4, 1e5, 3e6]),
       p_entry=st.sampled_from([0.1, 0.3, 0.7]), start=st.sampled_from(["2021-07-26", "2024-01-02", "2025-06-23"]))
def test_engine_equals_the_plain_python_oracle(seed, n_t, n_s, nan_frac, fill, stops, costs, lots, k, rank, slip,
                                               cash, p_entry, start):
    rng = np.random.default_rng(seed)
    o, h, lo, c = random_ohlc(rng, n_t, n_s, nan_frac, vol=0.03, start=float(rng.choice([0.8, 12.0, 150.0])))
    en = rng.random(c.shape) < p_entry
    ex = rng.random(c.shape) < 0.15
    lot = rng.choice([100.0, 200.0, 500.0, 1000.0], size=c.shape) if (lots or costs.kind == "hk") else None
    r = None
    if rank is not None:
        r = rng.integers(-3, 4, size=c.shape).astype(float)  # ties, to check the symbol-order tie break
        r[rng.random(c.shape) < 0.1] = np.nan
    sl, tp, tsl, hold = stops
    kw = dict(lot=lot, rank=r, rank_order=rank or "high_first", fill=fill, cash=cash, slippage=slip, stop_loss=sl,
              take_profit=tp, trailing_stop=tsl, max_hold=hold, costs=costs, max_positions=k, start=start)
    res = run(o, h, lo, c, en, ex, **kw)
    out = oracle_run(o, h, lo, c, en, ex, **kw)
    assert_same(res, out, n_t)


def test_oracle_is_not_vacuous():
    """The random cases above produce fills, skips of every kind and every exit reason."""
    seen_status, seen_reason = set(), set()
    rng = np.random.default_rng(5)
    for i in range(60):
        o, h, lo, c = random_ohlc(rng, 40, 4, 0.1, vol=0.04)
        kw = dict(lot=rng.choice([100.0, 500.0], size=c.shape), fill=["next_open", "next_close", "same_close"][i % 3],
                  cash=float(rng.choice([3e3, 1e5])), stop_loss=0.06, take_profit=0.1, trailing_stop=[0, 0.05][i % 2],
                  max_hold=[0, 4][i // 2 % 2], costs=COSTS[2], max_positions=[0, 2][i // 4 % 2])
        out = oracle_run(o, h, lo, c, rng.random(c.shape) < 0.4, rng.random(c.shape) < 0.1, **kw)
        seen_status |= {x["status"] for x in out.orders}
        seen_reason |= {x["reason"] for x in out.trades}
    assert seen_status == {"filled", "skipped_no_cash", "skipped_no_price", "skipped_no_slot"}
    assert seen_reason == {"stop_loss", "trailing_stop", "take_profit", "time_stop", "exit_signal", "open"}


def test_oracle_fees_equal_the_worked_examples_of_docs_costs():
    """tests/oracle_sim.py's own fee arithmetic against the table in docs/costs.md."""
    c = ref.Costs("hk", commission_bps=3.0, commission_min=3.0)
    for day, total in (("2021-09-01", 66.34), ("2024-03-01", 55.65), ("2025-07-02", 55.25)):
        assert math.isclose(sum(c.fees(38_020.0, day).values()), total, abs_tol=1e-9), day
    assert c.fees(10_000_000.0, "2025-06-27")["settlement"] == 100.0
    assert c.fees(10_000_000.0, "2025-06-30")["settlement"] == 420.0
    f = c.fees(10_000.0, "2024-03-01")
    assert (f["trading"], f["afrc"]) == (0.57, 0.02)


def test_an_entry_buys_the_most_board_lots_that_fit():
    """docs/simulation.md: "the most whole lots whose value plus all fees fit the budget" (issue 15.4's
    counterexample: 5,736,900 shares fit, 1,778,439.00 + 2,499.27 fees = 1,780,938.27)."""
    px = np.full(3, 0.31)
    kw = dict(lot=100.0, cash=1_780_940.85, start="2024-02-29", costs=CostModel(kind="hk", commission_bps=3,
                                                                               commission_min=50))
    out = oracle_run(px[:, None], px[:, None], px[:, None], px[:, None], np.array([[1], [0], [0]], bool),
                     np.zeros((3, 1), bool), **kw)
    assert out.orders[0]["shares"] == 5_736_900
    res = run(px, px, px, px, [1, 0, 0], **kw)
    assert res.orders.loc[0, "shares"] == 5_736_900
