"""The seed-story features (market dips, cumulative southbound, cross-sectional rank, ADR overnight
move): kernels against plain pandas, hand-worked cases, registry values recomputed from the raw
market with pandas, and causality (bit-for-bit, perturbing the future)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backtest.data.align import align
from backtest.data.market import MarketData
from backtest.data.synth import generate
from backtest.features import FEATURES, check_ref, compute_features
from backtest.kernels import features as K
from backtest.rules import feature
from tests.helpers import engine_layout

D = pd.Timestamp
NEW = ["index_dd", "index_ret", "sb_cum", "sb_cum_z", "sb_rank", "sb_rank_pct", "adr_overnight", "adr_gap"]


def _random(seed: int, t: int = 120, n: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.standard_t(3, (t, n)) * 1e9)
    x[x.abs() < 1e8] = np.nan  # ~15 % missing, scattered
    x.iloc[30:45, 1] = np.nan  # a suspension
    x.iloc[:, 2] = np.nan  # never traded
    x.iloc[50, :] = 4e9  # a row of ties
    x.iloc[60, 3] = x.iloc[60, 4]
    return x


def _c(df: pd.DataFrame) -> np.ndarray:
    return engine_layout(df.to_numpy(dtype=float))


def _eq(got: np.ndarray, want, rtol: float = 1e-12) -> None:
    want = np.asarray(want, dtype=float)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6)


# ---------------------------------------------------------------- kernels vs pandas


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("count,mp", [(1, 1), (3, 3), (5, 2), (20, 20), (500, 10)])
def test_sum_last_valid_is_a_rolling_sum_over_the_valid_values_only(seed, count, mp):
    x = _random(seed)
    want = x.apply(lambda col: col.dropna().rolling(count, min_periods=mp).sum().reindex(col.index))
    _eq(K.sum_last_valid(_c(x), count, mp), want, rtol=1e-9)


@pytest.mark.parametrize("seed", [1, 2])
def test_cross_rank_and_percentile_are_pandas_ranks(seed):
    x = _random(seed)
    _eq(K.cross_rank(_c(x)), x.rank(axis=1, ascending=False, method="min"), rtol=0)
    _eq(K.cross_percentile(_c(x)), x.rank(axis=1, pct=True, method="max"), rtol=1e-15)


@pytest.mark.parametrize("seed", [1, 2])
def test_overnight_return_and_gap(seed):
    close = _random(seed).abs() / 1e7 + 1.0
    price = close.shift(1) * np.exp(np.random.default_rng(seed).normal(0, 0.03, close.shape))
    price.iloc[::9, 0] = np.nan
    close.iloc[20, 5] = 0.0
    prev = close.shift(1).where(close.shift(1) != 0)
    ret = price / prev - 1
    _eq(K.overnight_return(_c(price), _c(close)), ret)
    _eq(K.overnight_gap(_c(price), _c(close)), ret - (close / prev - 1))


# ---------------------------------------------------------------- hand-worked


def test_sum_last_valid_by_hand():
    x = np.array([1.0, 2.0, np.nan, 4.0, 8.0, np.nan])[:, None]
    # last 2 Connect days: -, 1+2, closed, 2+4 (the closed day is skipped, not zero), 4+8, closed
    np.testing.assert_array_equal(K.sum_last_valid(x, 2, 2)[:, 0], [np.nan, 3.0, np.nan, 6.0, 12.0, np.nan])
    np.testing.assert_array_equal(K.sum_last_valid(x, 2, 1)[:, 0], [1.0, 3.0, np.nan, 6.0, 12.0, np.nan])


def test_cross_rank_by_hand():
    x = np.array([[5.0, 7.0, 5.0, np.nan, 1.0]])
    np.testing.assert_array_equal(K.cross_rank(x)[0], [2.0, 1.0, 2.0, np.nan, 4.0])  # ties share rank 2, then 4
    np.testing.assert_array_equal(K.cross_percentile(x)[0], [0.75, 1.0, 0.75, np.nan, 0.25])


def _hand_market():
    """One dual-listed name (9988, 8 HK shares per ADR) across an HK holiday (Thu 18 Jan) on which
    the US traded, and a US holiday (Mon 15 Jan) on which HK traded."""
    hk = pd.DatetimeIndex([D("2024-01-12"), D("2024-01-15"), D("2024-01-16"), D("2024-01-17"), D("2024-01-19")])
    close = pd.DataFrame({"9988": [80.0, 82.0, 78.0, 79.0, 70.0]}, index=hk)
    fields = {f: close.copy() for f in ("open", "high", "low", "close")}
    fields["volume"] = close * 0 + 1000.0
    fields["turnover"] = close * 1000.0
    us = pd.DatetimeIndex([D("2024-01-11"), D("2024-01-12"), D("2024-01-16"), D("2024-01-17"), D("2024-01-18"),
                           D("2024-01-19")])
    adr = pd.DataFrame({"BABA": [81.0, 79.0, 76.0, 80.0, 64.0, 70.0]}, index=us)
    fx = pd.Series([7.8, 7.8, 7.8, 7.8, 8.0, 7.8, 7.8],
                   index=pd.DatetimeIndex([D(d) for d in ["2024-01-11", "2024-01-12", "2024-01-15", "2024-01-16",
                                                          "2024-01-17", "2024-01-18", "2024-01-19"]]))
    sb = pd.DataFrame({"sh": [1e9] * 5, "sz": [0.0] * 5}, index=hk)
    symbols = pd.DataFrame({"name": ["Alibaba"], "board_lot": [100], "adr_ticker": ["BABA"], "adr_ratio": [8.0]},
                           index=pd.Index(["9988"], name="symbol"))
    return MarketData(hk=fields, southbound=sb, index_close=close["9988"].rename("HSTECH"), adr_close=adr,
                      usdhkd=fx, symbols=symbols)


def test_adr_overnight_and_gap_by_hand():
    p = align(_hand_market())
    over = compute_features(p, [feature("adr_overnight")])[0, 0]
    gap = compute_features(p, [feature("adr_gap")])[0, 0]
    want = [
        np.nan,  # 12 Jan: no previous HK close
        79.0 * 7.8 / 8 / 80.0 - 1,  # Mon 15 Jan: the US close of Fri 12 Jan (after the HK close of 12 Jan)
        np.nan,  # Tue 16 Jan: no US session between the HK close of 15 Jan and this open (US holiday)
        76.0 * 7.8 / 8 / 78.0 - 1,  # Wed 17: US 16 Jan close, FX of 16 Jan, vs HK close of 16 Jan
        64.0 * 7.8 / 8 / 79.0 - 1,  # Fri 19: US 18 Jan (HK holiday), the latest before the HK open; FX of 18 Jan
    ]
    np.testing.assert_allclose(over, want, rtol=1e-15)
    hk_ret = [np.nan, 82 / 80 - 1, np.nan, 79 / 78 - 1, 70 / 79 - 1]
    np.testing.assert_allclose(gap, np.array(want) - hk_ret, rtol=1e-12)
    # the ADR fell 21 % overnight into 19 Jan (64 x 7.8 / 8 = 62.4 vs 79) while the HK line fell 11.4 %
    assert gap[4] == pytest.approx(62.4 / 79 - 70 / 79)


# ---------------------------------------------------------------- registry vs pandas on the sample market


@pytest.fixture(scope="module")
def sample():
    md = generate(seed=5, symbols=8, years=3)
    return md, align(md)


def _pandas_feature(md: MarketData, p, name: str, params: dict) -> pd.DataFrame:
    """Plain pandas from the raw market (not the panel's derived fields)."""
    dates = pd.DatetimeIndex(p.dates)
    syms = list(p.symbols)
    wide = lambda s: pd.DataFrame(np.repeat(s.to_numpy()[:, None], len(syms), 1), index=dates, columns=syms)  # noqa
    close = md.hk["close"].reindex(index=dates, columns=syms)
    idx = md.index_close.reindex(dates)
    sb = md.southbound.reindex(dates)
    agg = sb["sh"] + sb["sz"]
    w = params.get("window")
    if name == "index_dd":
        return wide(idx / idx.rolling(w, min_periods=w).max() - 1)
    if name == "index_ret":
        return wide(idx / idx.shift(w) - 1)
    cum = agg.dropna().rolling(w, min_periods=w).sum().reindex(dates) if w else None
    if name == "sb_cum":
        return wide(cum)
    if name == "sb_cum_z":
        zw = params["z_window"]
        prior = cum.shift(1).rolling(zw, min_periods=max(2, zw // 2))
        return wide((cum - prior.mean()) / prior.std())
    stock = md.hk["sb_net_buy"].reindex(index=dates, columns=syms)
    if name == "sb_rank":
        return stock.rank(axis=1, ascending=False, method="min")
    if name == "sb_rank_pct":
        return stock.rank(axis=1, pct=True, method="max")
    # ADR: for HK bar t, the last US close dated in [d(t-1), d(t)), FX as of before d(t)
    out = pd.DataFrame(np.nan, index=dates, columns=syms)
    meta = md.symbols
    for s in syms:
        tic = meta.loc[s, "adr_ticker"]
        if not tic:
            continue
        adr = md.adr_close[tic].dropna()
        for i in range(1, len(dates)):
            win = adr[(adr.index >= dates[i - 1]) & (adr.index < dates[i])]
            fx = md.usdhkd[md.usdhkd.index < dates[i]].dropna()
            if len(win) and len(fx):
                out.iloc[i, syms.index(s)] = win.iloc[-1] * fx.iloc[-1] / meta.loc[s, "adr_ratio"]
    over = out / close.shift(1) - 1
    return over if name == "adr_overnight" else over - (close / close.shift(1) - 1)


CASES = [("index_dd", {"window": 20}), ("index_ret", {"window": 5}), ("sb_cum", {"window": 10}),
         ("sb_cum_z", {"window": 5, "z_window": 60}), ("sb_rank", {}), ("sb_rank_pct", {}),
         ("adr_overnight", {}), ("adr_gap", {})]


@pytest.mark.parametrize("name,params", CASES, ids=[c[0] for c in CASES])
def test_registry_feature_equals_pandas_from_the_raw_market(sample, name, params):
    md, p = sample
    got = compute_features(p, [feature(name, **params)])[0].T
    want = _pandas_feature(md, p, name, params)
    assert np.isfinite(got).sum() > 0.3 * got.size or name.startswith("adr")
    assert np.isfinite(got).any()
    _eq(got, want, rtol=1e-9)


def test_every_new_feature_is_registered_with_ranges_and_timing():
    assert set(NEW) <= set(FEATURES)
    for name in NEW:
        fd = FEATURES[name]
        assert fd.builtin and fd.help and fd.known in ("close", "next_open")
        for prm in fd.params:
            assert prm.type is int and prm.lo >= 1 and prm.hi >= 1000
    assert FEATURES["adr_overnight"].known == "close" and FEATURES["adr_gap"].known == "close"
    assert FEATURES["sb_rank"].known == "next_open" and FEATURES["sb_cum"].known == "next_open"


# ---------------------------------------------------------------- look-ahead


@pytest.mark.parametrize("name,params", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("info", ["open", "close"])
def test_no_lookahead(sample, name, params, info):
    """Perturb the raw market after bar t (`open`: every source after t; `close`: also the flows,
    ADR and FX published between the close of t and the next open): rows up to t (or t-1 for a
    `next_open` feature under `close`) are bit-identical, and rows after t did change."""
    from backtest.lookahead import _perturb

    md, p = sample
    ref = feature(name, **params)
    base = compute_features(p, [ref])[0].T
    dates = pd.DatetimeIndex(p.dates)
    rng = np.random.default_rng(3)
    for t in (100, 400, 600):
        moved = compute_features(align(_perturb(md, dates[t], info, rng)), [ref])[0].T
        upto = t if info == "open" or check_ref(ref).known == "close" else t - 1
        np.testing.assert_array_equal(moved[: upto + 1], base[: upto + 1])
        assert not np.array_equal(moved[t + 1:], base[t + 1:], equal_nan=True)


KERNELS = {
    "sum_last_valid": lambda a: K.sum_last_valid(a, 3, 2),
    "cross_rank": K.cross_rank,
    "cross_percentile": K.cross_percentile,
    "overnight_return": lambda a: K.overnight_return(a, np.abs(a[::-1]).copy()),
    "overnight_gap": lambda a: K.overnight_gap(np.abs(a), np.abs(a) + 1.0),
}

_value = st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.just(np.nan))


@st.composite
def _perturbed(draw):
    rows, cols = draw(st.integers(2, 30)), draw(st.integers(1, 4))
    a = draw(hnp.arrays(np.float64, (rows, cols), elements=_value))
    t = draw(st.integers(0, rows - 2))
    b = a.copy()
    b[t + 1:] = draw(hnp.arrays(np.float64, (rows - t - 1, cols), elements=_value))
    return a, b, t


@pytest.mark.parametrize("name", ["sum_last_valid", "cross_rank", "cross_percentile"])
@settings(max_examples=40, deadline=None)
@given(case=_perturbed())
def test_kernels_are_causal(name, case):
    a, b, t = (engine_layout(case[0]), engine_layout(case[1]), case[2])
    np.testing.assert_array_equal(KERNELS[name](a)[: t + 1], KERNELS[name](b)[: t + 1])


@settings(max_examples=40, deadline=None)
@given(case=_perturbed())
def test_overnight_kernels_are_causal(case):
    a, b, t = case
    for f in (K.overnight_return, K.overnight_gap):
        pa, pb, c = np.abs(a), np.abs(b), np.abs(a) + 1.0
        cb = c.copy()
        cb[t + 1:] = np.abs(b[t + 1:]) + 1.0
        pa, pb, c, cb = map(engine_layout, (pa, pb, c, cb))
        np.testing.assert_array_equal(f(pa, c)[: t + 1], f(pb, cb)[: t + 1])


def test_market_level_features_by_hand():
    md = _hand_market()  # index closes 80, 82, 78, 79, 70
    md.southbound = pd.DataFrame({"sh": [1e9, 2e9, 4e9, 8e9], "sz": [0.0] * 4},
                                 index=md.southbound.index.delete(2))  # Connect shut on Tue 16 Jan
    p = align(md)
    got = compute_features(p, [feature("index_dd", window=3), feature("index_ret", window=1),
                               feature("sb_cum", window=2)])[:, 0]
    nan = np.nan
    np.testing.assert_allclose(got[0], [nan, nan, 78 / 82 - 1, 79 / 82 - 1, 70 / 79 - 1], rtol=1e-15)
    np.testing.assert_allclose(got[1], [nan, 82 / 80 - 1, 78 / 82 - 1, 79 / 78 - 1, 70 / 79 - 1], rtol=1e-15)
    # the last 2 Connect days: -, 1+2, shut (missing, not zero), 2+4 (the shut day skipped), 4+8
    np.testing.assert_array_equal(got[2], [nan, 3e9, nan, 6e9, 12e9])
