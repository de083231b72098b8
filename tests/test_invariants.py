"""Property tests of the simulation (DESIGN §5): cash never negative, equity = cash + marked
positions, no fill on a bar without data, bit-identical reruns — with HK costs and board lots."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.costs import CostModel
from tests.helpers import random_ohlc
from tests.simkit import run


def _frames(res):
    return (res.cash, res.shares, res.equity, res.trades, res.orders)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_t=st.integers(2, 120), n_s=st.integers(1, 5),
       nan_frac=st.sampled_from([0.0, 0.1, 0.3]), k=st.sampled_from([0, 1, 2, 4]),
       fill=st.sampled_from(["next_open", "next_close", "same_close"]),
       stops=st.sampled_from([(0, 0, 0, 0), (0.08, 0.15, 0, 5), (0, 0, 0.05, 0), (0.05, 0.05, 0.05, 2)]),
       cash=st.sampled_from([5e3, 1e5, 1e7]), slip=st.sampled_from([0.0, 0.002]))
def test_invariants(seed, n_t, n_s, nan_frac, k, fill, stops, cash, slip):
    rng = np.random.default_rng(seed)
    o, h, lo, c = random_ohlc(rng, n_t, n_s, nan_frac, vol=0.03, start=50.0)
    en = rng.random(c.shape) < 0.25
    ex = rng.random(c.shape) < 0.1
    lot = rng.choice([1.0, 100.0, 500.0], size=c.shape)
    sl, tp, tsl, hold = stops
    kw = dict(lot=lot, rank=rng.normal(size=c.shape), fill=fill, cash=cash, slippage=slip, stop_loss=sl,
              take_profit=tp, trailing_stop=tsl, max_hold=hold, costs=CostModel(kind="hk", commission_bps=3,
                                                                                  commission_min=50),
              max_positions=k)
    res = run(o, h, lo, c, en, ex, **kw)
    cash_t, shares, equity = (x.to_numpy() for x in (res.cash, res.shares, res.equity))
    orders = res.orders

    assert (cash_t >= -1e-6).all()
    marks = np.where(np.isnan(c), np.nan, c)
    for j in range(n_s):  # last valid close, carried over gaps
        for t in range(1, n_t):
            if np.isnan(marks[t, j]):
                marks[t, j] = marks[t - 1, j]
    held_value = np.where(shares > 0, shares * np.nan_to_num(marks), 0.0)
    if k:
        np.testing.assert_allclose(equity[:, 0], cash_t[:, 0] + held_value.sum(1), rtol=1e-12)
        assert ((shares > 0).sum(1) <= k).all()
    else:
        np.testing.assert_allclose(equity, cash_t + held_value, rtol=1e-12)
    changed = np.diff(np.vstack([np.zeros((1, n_s)), shares]), axis=0) != 0
    assert not (changed & np.isnan(c)).any(), "a fill on a bar without data"
    filled = orders[orders["status"] == "filled"]
    bars = res.equity.index.get_indexer(filled["date"])
    cols = res.shares.columns.get_indexer(filled["symbol"])
    assert not np.isnan(c[bars, cols]).any()
    buys = (filled["side"] == "buy").to_numpy()
    n_lots = filled["shares"].to_numpy()[buys] / lot[bars[buys], cols[buys]]
    np.testing.assert_array_equal(n_lots, np.floor(n_lots))
    assert (n_lots >= 1).all()
    fee_cols = [k for k in orders.columns if k.startswith("fee_")]
    np.testing.assert_allclose(filled[fee_cols].sum(axis=1), filled["fees"], rtol=1e-12, atol=1e-9)
    again = run(o, h, lo, c, en, ex, **kw)
    for a, b in zip(_frames(res), _frames(again)):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_t=st.integers(2, 150), nan_frac=st.sampled_from([0.0, 0.2]),
       fill=st.sampled_from(["next_open", "next_close", "same_close"]),
       stops=st.sampled_from([(0, 0, 0, 0), (0.08, 0.15, 0, 5), (0.05, 0.05, 0.05, 2)]))
def test_one_symbol_portfolio_equals_its_independent_account(seed, n_t, nan_frac, fill, stops):
    """The portfolio loop and the per-symbol loop implement one set of semantics."""
    rng = np.random.default_rng(seed)
    o, h, lo, c = random_ohlc(rng, n_t, 1, nan_frac, vol=0.03, start=50.0)
    sl, tp, tsl, hold = stops
    kw = dict(lot=100.0, fill=fill, cash=1e5, slippage=0.001, stop_loss=sl, take_profit=tp, trailing_stop=tsl,
              max_hold=hold, costs=CostModel(kind="hk", commission_bps=3, commission_min=50))
    en, ex = rng.random(c.shape) < 0.3, rng.random(c.shape) < 0.15
    alone = run(o, h, lo, c, en, ex, max_positions=0, **kw)
    shared = run(o, h, lo, c, en, ex, max_positions=1, **kw)
    for a, b in zip(_frames(alone)[:3], _frames(shared)[:3]):
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    for a, b in zip(_frames(alone)[3:], _frames(shared)[3:]):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
