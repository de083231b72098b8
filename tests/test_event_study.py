"""backtest.event_study: signals evaluated as the kernel does, forward returns per fill, statistics
against plain numpy, a deterministic bootstrap, and agreement with the simulation's entries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest import event_study as es
from backtest.kernels.rules import STACK, rule_holds
from backtest.rules import all_of, compile_rule, feature, k_of

NAN = np.nan


def _prices(seed: int = 0, n_t: int = 300, n_s: int = 4):
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_t, n_s)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.005, (n_t, n_s)))
    close[40:45, 1] = NAN  # suspension
    open_[40:45, 1] = NAN
    close[:20, 2] = open_[:20, 2] = NAN  # listed later
    return open_, close


def test_forward_returns_by_hand_for_each_fill():
    o = np.array([[10.0], [11.0], [12.0], [13.0], [14.0], [15.0]])
    c = np.array([[10.5], [11.5], [12.5], [13.5], [14.5], [15.5]])
    f = es.forward_returns(o, c, "next_open", (1, 2))
    # Signal on row 0 fills at the open of row 1 (11.0); h=1 ends at the close of row 1.
    np.testing.assert_allclose(f[:, 0, 0], [11.5 / 11 - 1, 12.5 / 11 - 1])
    np.testing.assert_allclose(f[0, 4, 0], 15.5 / 15 - 1)
    assert np.isnan(f[0, 5, 0]) and np.isnan(f[1, 4, 0])
    f = es.forward_returns(o, c, "same_close", (1, 2))
    np.testing.assert_allclose(f[:, 0, 0], [11.5 / 10.5 - 1, 12.5 / 10.5 - 1])
    assert np.isnan(f[0, 5, 0])
    f = es.forward_returns(o, c, "next_close", (1, 2))
    # Fills at the close of row 1 (11.5); h sessions later: rows 2 and 3.
    np.testing.assert_allclose(f[:, 0, 0], [12.5 / 11.5 - 1, 13.5 / 11.5 - 1])
    assert np.isnan(f[0, 4, 0])
    with pytest.raises(ValueError):
        es.forward_returns(o, c, "tomorrow", (1,))


def test_forward_return_is_undefined_across_a_missing_price():
    o, c = _prices()
    f = es.forward_returns(o, c, "next_open", (1, 5))
    assert np.isnan(f[0, 39, 1])  # fills at row 40: suspended
    assert np.isnan(f[1, 36, 1])  # ends at row 41: suspended
    assert np.isfinite(f[1, 30, 1])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_signal_masks_equal_the_kernel_rule(k):
    rng = np.random.default_rng(k)
    feats = rng.normal(size=(3, 120, 5))
    feats[rng.random(feats.shape) < 0.2] = NAN
    feats[1, :, 2] = NAN
    rule = k_of(k, feature("a", window=1) <= -0.2, feature("b", window=1) >= 0.1, feature("c", window=1) > 0.0,
                feature("a", window=1) < 0.5)
    compiled = compile_rule(rule, {})
    masks = es.signal_masks(feats, rule, compiled)
    assert masks.shape == (5, 120, 5)
    kfeats = np.ascontiguousarray(feats.transpose(0, 2, 1))  # the kernel's (F, N, T) layout
    stack = np.empty(STACK, np.int64)
    for t in range(120):
        for j in range(5):
            assert masks[-1, t, j] == rule_holds(kfeats, compiled, t, j, stack)
            for c in range(4):
                one = compile_rule(k_of(1, rule.conds[c]), {f.feature: i for i, f in enumerate(rule.conds[:3])})
                assert masks[c, t, j] == rule_holds(kfeats, one, t, j, stack)
    # A NaN feature never holds.
    assert not masks[0][np.isnan(feats[0])].any() and not masks[1][np.isnan(feats[1])].any()


def _study(fill="next_open", data_seed=0, **kw):
    o, c = _prices(data_seed)
    rng = np.random.default_rng(data_seed + 7)
    feats = rng.normal(size=(2, *c.shape))
    feats[0, rng.random(c.shape) < 0.1] = NAN
    rule = all_of(feature("x", window=1) <= -0.3, feature("y", window=1) >= 0.2)
    compiled = compile_rule(rule, {})
    df = es.event_study(feats, rule, compiled, o, c, ("A", "B", "C", "D"), fill, **kw)
    return df, feats, rule, compiled, o, c


def test_statistics_equal_plain_numpy():
    df, feats, rule, compiled, o, c = _study()
    assert list(df.columns) == es.COLUMNS
    masks = es.signal_masks(feats, rule, compiled)
    fwd = es.forward_returns(o, c, "next_open", es.HORIZONS)
    labels = list(dict.fromkeys(df["signal"]))
    assert labels == ["x(window=1) <= -0.3", "y(window=1) >= 0.2", "all(x(window=1) <= -0.3, y(window=1) >= 0.2)"]
    for s, label in enumerate(labels):
        for i, h in enumerate(es.HORIZONS):
            for j, sym in enumerate([es.POOLED, "A", "B", "C", "D"]):
                cols = slice(None) if j == 0 else slice(j - 1, j)
                m, f = masks[s][:, cols], fwd[i][:, cols]
                x = f[m & ~np.isnan(f)]
                u = f[~np.isnan(f)]
                row = df[(df.signal == label) & (df.symbol == sym) & (df.horizon == h)].iloc[0]
                assert row.n == x.size and row.uncond_n == u.size
                np.testing.assert_allclose([row["mean"], row["median"], row.hit_rate],
                                           [x.mean(), np.median(x), np.mean(x > 0)], rtol=1e-12)
                np.testing.assert_allclose([row.uncond_mean, row.uncond_median, row.uncond_hit_rate],
                                           [u.mean(), np.median(u), np.mean(u > 0)], rtol=1e-12)
                np.testing.assert_allclose(row.excess_mean, x.mean() - u.mean(), rtol=1e-12, atol=1e-15)
                assert row.ci_low <= row["mean"] <= row.ci_high


def test_bootstrap_is_deterministic_and_seeded():
    a = _study()[0]
    b = _study()[0]
    assert a.equals(b)
    c = _study(seed=1)[0]
    assert not np.allclose(a["ci_low"], c["ci_low"])
    np.testing.assert_array_equal(a["mean"], c["mean"])


def test_bootstrap_interval_matches_normal_theory_on_independent_data():
    rng = np.random.default_rng(11)
    n, k = 4000, 3
    x = rng.normal(0.001, 0.02, (n, k))
    sums, counts = x, np.ones_like(x)
    boot = es.bootstrap_means(sums, counts, 1, 2000, np.random.default_rng(0))
    lo, hi = es.column_quantiles(boot, (0.025, 0.975))
    half = 1.96 * x.std(axis=0, ddof=1) / np.sqrt(n)
    np.testing.assert_allclose((hi - lo) / 2, half, rtol=0.1)
    np.testing.assert_allclose((hi + lo) / 2, x.mean(axis=0), atol=0.25 * half.min())
    # Blocks keep dependence: the mean of an AR(1) with phi = 0.8 varies (1 + phi) / (1 - phi) = 9
    # times more than an iid reading says, so its interval is about 3 times as wide.
    e_ = rng.normal(0, 1, n)
    y = np.empty((n, 1))
    y[0] = e_[0]
    for t in range(1, n):
        y[t] = 0.8 * y[t - 1] + e_[t]
    def width(block):
        boot = es.bootstrap_means(y, np.ones_like(y), block, 1000, np.random.default_rng(0))
        lo, hi = es.column_quantiles(boot, (0.025, 0.975))
        return hi[0] - lo[0]

    iid, blk = width(1), width(50)
    assert 2.2 * iid < blk < 3.5 * iid


def test_column_quantiles_equal_numpy_nanquantile():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(57, 6))
    x[rng.random(x.shape) < 0.3] = NAN
    x[:, 5] = NAN
    x[:-1, 4] = NAN
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanquantile(x, [0.025, 0.5, 0.975], axis=0)
    np.testing.assert_allclose(es.column_quantiles(x, (0.025, 0.5, 0.975)), want, rtol=1e-12)


def test_a_symbol_without_signals_has_nan_statistics():
    o, c = _prices()
    feats = np.full((1, *c.shape), -1.0)
    feats[0, :, 3] = NAN  # never holds
    rule = all_of(feature("x", window=1) <= 0.0)
    df = es.event_study(feats, rule, compile_rule(rule, {}), o, c, ("A", "B", "C", "D"), "next_open")
    d = df[df.symbol == "D"]
    assert (d.n == 0).all() and d[["mean", "median", "hit_rate", "ci_low", "ci_high"]].isna().all().all()
    assert (d.uncond_n > 0).all()


@pytest.mark.parametrize("fill", ["next_open", "next_close"])
def test_entries_of_the_simulation_are_signals_of_the_rule(fill):
    import dataclasses

    from backtest.config import load_config
    from backtest.data.synth import generate
    from backtest.pipeline import run

    cfg = load_config("configs/dip.toml")
    cfg = dataclasses.replace(cfg, execution=dataclasses.replace(cfg.execution, fill=fill))
    out = run(cfg, generate(seed=3, symbols=6, years=3))
    plan, panel = out.prepared.plan, out.prepared.panel
    masks = es.signal_masks(out.features, plan.entry_rule, plan.entry)
    dates = pd.DatetimeIndex(panel.dates)
    trades = out.result.trades
    assert len(trades) > 0
    for sym, entry in zip(trades["symbol"], trades["entry_date"]):
        t = dates.get_loc(entry)
        assert masks[-1, t - 1, panel.symbols.index(sym)], (sym, entry)
    ev = out.event_study
    pooled = ev[(ev.symbol == es.POOLED) & (ev.signal == str(plan.entry_rule))]
    assert (pooled.n > 0).all() and len(pooled) == len(es.HORIZONS)
    # The study measured from the same fill the simulation used (before slippage).
    fwd = es.forward_returns(panel.fields["open"], panel.fields["close"], fill, es.HORIZONS)
    x = fwd[0][masks[-1] & ~np.isnan(fwd[0])]
    assert pooled["n"].iloc[0] == x.size and pooled["mean"].iloc[0] == pytest.approx(x.mean(), rel=1e-12)
    px = panel.fields["open" if fill == "next_open" else "close"]
    first = trades.iloc[0]
    t, j = dates.get_loc(first["entry_date"]), panel.symbols.index(first["symbol"])
    slip = cfg.execution.slippage_bps / 1e4
    assert first["entry_price"] == pytest.approx(px[t, j] * (1 + slip), rel=1e-12)
