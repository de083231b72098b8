"""Feature kernels (DESIGN §4) against plain pandas oracles; causality (§3); hand-computed cases.

The oracles are written the obvious pandas way and then given the kernels' conventions: NaN
where the current value is NaN, NaN (never inf) where a denominator is zero.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backtest.kernels import features as F
from tests.helpers import engine_layout

T = 160
# (window, min_periods): window=1, min_periods=0, a full-window requirement, windows longer than T
# (250 fills from 30 valid rows on; 500 with 300 never fills).
WINDOWS = [(1, 0), (1, 1), (3, 2), (5, 5), (20, 1), (20, 15), (60, 40), (250, 30), (500, 300)]
RTOL = 1e-9
ATOL = 1e-12


def _panel(seed: int) -> np.ndarray:
    """(T, 6) float64 with the gaps real data has.

    0: prices, scattered NaNs        1: prices, a 15-row suspension      2: all NaN
    3: prices, listed at row 40      4: HK$ flows, fat tails, ~20 % NaN   5: constant stretches
    """
    rng = np.random.default_rng(seed)
    x = np.empty((T, 6))
    for j in (0, 1, 3):
        x[:, j] = 50.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(T)))
    x[rng.random(T) < 0.1, 0] = np.nan
    x[70:85, 1] = np.nan
    x[:, 2] = np.nan
    x[:40, 3] = np.nan
    x[:, 4] = 1e9 * (4.0 + 3.0 * rng.standard_t(3, T))
    x[rng.random(T) < 0.2, 4] = np.nan
    x[:, 5] = np.repeat(rng.uniform(10.0, 20.0, T // 8 + 1), 8)[:T]
    x[rng.random(T) < 0.1, 5] = np.nan
    return x


@pytest.fixture(scope="module", params=[1, 2])
def panel(request) -> pd.DataFrame:
    return pd.DataFrame(_panel(request.param))


def _arr(df: pd.DataFrame) -> np.ndarray:
    """The layout the engine passes (each layout is its own numba compile)."""
    return engine_layout(df.to_numpy(dtype=float))


def _close(got: np.ndarray, want: pd.DataFrame) -> None:
    want = want.to_numpy(dtype=float)
    assert got.shape == want.shape
    assert got.dtype == np.float64 and got.flags.c_contiguous
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _sample_std(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(np.std(a, ddof=1)) if len(a) >= 2 else np.nan


def _nan_if_zero(d: pd.DataFrame) -> pd.DataFrame:
    return d.where(d != 0)


# ---------------------------------------------------------------- oracles vs kernels


@pytest.mark.parametrize("window,mp", WINDOWS)
def test_rolling_max(panel, window, mp):
    want = panel.rolling(window, min_periods=mp).max().where(panel.notna())
    _close(F.rolling_max(_arr(panel), window, mp), want)


@pytest.mark.parametrize("window,mp", WINDOWS)
def test_drawdown(panel, window, mp):
    high = panel.rolling(window, min_periods=mp).max()
    want = panel / high - 1
    got = F.drawdown(_arr(panel), window, mp)
    _close(got, want)
    assert np.nanmax(got[:, [0, 1, 3, 5]], initial=0.0) <= 0.0


@pytest.mark.parametrize("window", [1, 2, 5, 20, 200])
def test_pct_change(panel, window):
    want = panel / panel.shift(window) - 1
    _close(F.pct_change(_arr(panel), window), want)


@pytest.mark.parametrize("window", [1, 5, 20])
@pytest.mark.parametrize("vol_window,mp", [(2, 2), (20, 10), (60, 1), (250, 30)])
def test_return_zscore(panel, window, vol_window, mp):
    # Two-pass std per window: pandas' online .std() leaves ~1e-9 residue on windows of exactly
    # zero returns (a suspended stock) once NaNs have passed through, and the z-score divides by it.
    daily = panel / panel.shift(1) - 1
    sd = _nan_if_zero(daily.rolling(vol_window, min_periods=mp).apply(_sample_std, raw=True))
    want = (panel / panel.shift(window) - 1) / (sd * math.sqrt(window))
    _close(F.return_zscore(_arr(panel), window, vol_window, mp), want)


@pytest.mark.parametrize("window,mp", WINDOWS)
def test_trailing_zscore(panel, window, mp):
    prior = panel.shift(1).rolling(window, min_periods=mp)
    want = (panel - prior.mean()) / _nan_if_zero(prior.std())
    _close(F.trailing_zscore(_arr(panel), window, mp), want)


@pytest.mark.parametrize("window,mp", WINDOWS)
def test_trailing_percentile(panel, window, mp):
    def pct(a: np.ndarray) -> float:
        current, prior = a[-1], a[:-1]
        prior = prior[~np.isnan(prior)]
        if np.isnan(current) or len(prior) < max(mp, 1):
            return np.nan
        return float(np.mean(prior <= current))

    want = panel.rolling(window + 1, min_periods=1).apply(pct, raw=True)
    _close(F.trailing_percentile(_arr(panel), window, mp), want)


@pytest.mark.parametrize("window,mp", WINDOWS)
def test_ratio_to_trailing_mean(panel, window, mp):
    x = panel.iloc[:, [4, 4, 4, 4, 4, 4]].set_axis(panel.columns, axis=1)  # net buy
    y = panel.abs() * 1e6  # turnover
    y.iloc[100:130, 0] = 0.0  # no trading: mean 0 -> NaN
    want = x / _nan_if_zero(y.shift(1).rolling(window, min_periods=mp).mean())
    _close(F.ratio_to_trailing_mean(_arr(x), _arr(y), window, mp), want)


@pytest.mark.parametrize("window,mp", WINDOWS)
def test_rolling_mean(panel, window, mp):
    want = panel.rolling(window, min_periods=mp).mean().where(panel.notna())
    _close(F.rolling_mean(_arr(panel), window, mp), want)


@pytest.mark.parametrize("window,mp", WINDOWS)
def test_rolling_std(panel, window, mp):
    want = panel.rolling(window, min_periods=mp).std().where(panel.notna())
    _close(F.rolling_std(_arr(panel), window, mp), want)


def test_all_nan_column_stays_nan(panel):
    x = _arr(panel)
    for out in (
        F.rolling_max(x, 5, 1),
        F.drawdown(x, 5, 1),
        F.pct_change(x, 1),
        F.return_zscore(x, 5, 20, 2),
        F.trailing_zscore(x, 5, 2),
        F.trailing_percentile(x, 5, 1),
        F.ratio_to_trailing_mean(x, x, 5, 1),
        F.rolling_mean(x, 5, 1),
        F.rolling_std(x, 5, 2),
    ):
        assert np.isnan(out[:, 2]).all()


# ---------------------------------------------------------------- numerics


def test_running_sums_stay_accurate_through_outliers_and_level_shifts():
    """A direct two-pass numpy oracle (pandas' own running sums are not exact here): a 1e9
    level with unit noise, a 1e15 outlier that enters and leaves, then a jump to 5e9."""
    rng = np.random.default_rng(7)
    n = 2000
    x = 1e9 + rng.standard_normal(n)
    x[500] = 1e15
    x[1200:] += 4e9
    x[rng.random(n) < 0.1] = np.nan
    window = 30
    std = F.rolling_std(x[:, None], window, 2)[:, 0]
    mean = F.rolling_mean(x[:, None], window, 1)[:, 0]
    z = F.trailing_zscore(x[:, None], window, 2)[:, 0]
    for t in range(n):
        win = x[max(t - window + 1, 0) : t + 1]
        win = win[~np.isnan(win)]
        prior = x[max(t - window, 0) : t]
        prior = prior[~np.isnan(prior)]
        if np.isnan(x[t]):
            assert np.isnan(std[t]) and np.isnan(mean[t]) and np.isnan(z[t])
            continue
        assert mean[t] == pytest.approx(np.mean(win), rel=1e-14)
        if len(win) >= 2:
            assert std[t] == pytest.approx(np.std(win, ddof=1), rel=RTOL)
        if len(prior) >= 2:
            sd = np.std(prior, ddof=1)
            want = (x[t] - np.mean(prior)) / sd
            # x[t] - mean cannot beat the float spacing at the 1e9 level (~1e-7): a few ulps.
            assert z[t] == pytest.approx(want, rel=1e-9, abs=4 * np.spacing(x[t]) / sd)


def test_constant_window_has_exactly_zero_std_and_nan_zscore():
    x = np.array([1.0, 7.0, 3.0, 0.1, np.nan, 0.1, 0.1, np.nan, 0.1, 0.3])[:, None]
    std = F.rolling_std(x, 3, 1)[:, 0]
    assert std[5] == 0.0 and std[6] == 0.0 and std[8] == 0.0
    z = F.trailing_zscore(x, 3, 2)[:, 0]
    assert np.isnan(z[6]) and np.isnan(z[8]) and np.isnan(z[9])  # prior 0.1, 0.1(, 0.1): std 0
    assert np.isfinite(z[5])


# ---------------------------------------------------------------- hand-computed


def test_drawdown_by_hand():
    close = np.array([10.0, 12.0, np.nan, 9.0, 15.0, 12.0])[:, None]
    # highs over 3 rows: 10, 12, -, max(12, 9)=12, max(9, 15)=15, max(9, 15, 12)=15
    want = [0.0, 0.0, np.nan, 9 / 12 - 1, 0.0, 12 / 15 - 1]
    np.testing.assert_allclose(F.drawdown(close, 3, 1)[:, 0], want, rtol=1e-15)
    want[0] = np.nan  # min_periods=2: row 0 sees one price
    np.testing.assert_allclose(F.drawdown(close, 3, 2)[:, 0], want, rtol=1e-15)


def test_trailing_zscore_by_hand():
    x = np.array([1.0, 2.0, 3.0, np.nan, 10.0, 4.0])[:, None]
    r2 = math.sqrt(2.0)
    want = [
        np.nan,  # no prior values
        np.nan,  # one prior value: no std
        (3 - 1.5) / math.sqrt(0.5),  # prior {1, 2}
        np.nan,  # current value missing
        (10 - 2.5) / math.sqrt(0.5),  # prior {2, 3}: the spike is not in its own window
        (4 - 6.5) / (3.5 * r2),  # prior {3, 10}
    ]
    np.testing.assert_allclose(F.trailing_zscore(x, 3, 2)[:, 0], want, rtol=1e-14)


def test_trailing_percentile_and_ratio_by_hand():
    x = np.array([3.0, 1.0, np.nan, 2.0, 5.0, 2.0])[:, None]
    # prior rows (window 3): -, {3}, -, {3, 1}, {1, 2}, {2, 5}
    want = [np.nan, 0.0, np.nan, 0.5, 1.0, 0.5]
    np.testing.assert_allclose(F.trailing_percentile(x, 3, 1)[:, 0], want, rtol=0)
    y = np.array([4.0, 2.0, np.nan, 0.0, 0.0, 1.0])[:, None]
    # prior means of y: -, 4, 3, 3, 1, 0 -> NaN
    want = [np.nan, 1 / 4, np.nan, 2 / 3, 5.0, np.nan]
    np.testing.assert_allclose(F.ratio_to_trailing_mean(x, y, 3, 1)[:, 0], want, rtol=1e-15)


# ---------------------------------------------------------------- causality (DESIGN §3)

KERNELS = {
    "rolling_max": lambda a: F.rolling_max(a, 4, 2),
    "drawdown": lambda a: F.drawdown(a, 4, 1),
    "pct_change": lambda a: F.pct_change(a, 3),
    "return_zscore": lambda a: F.return_zscore(a, 2, 5, 2),
    "trailing_zscore": lambda a: F.trailing_zscore(a, 5, 2),
    "trailing_percentile": lambda a: F.trailing_percentile(a, 4, 1),
    "ratio_to_trailing_mean": lambda a: F.ratio_to_trailing_mean(a, np.abs(a), 3, 1),
    "rolling_mean": lambda a: F.rolling_mean(a, 3, 1),
    "rolling_std": lambda a: F.rolling_std(a, 6, 2),
}

_value = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.just(np.nan),
)


@st.composite
def _perturbed(draw):
    rows = draw(st.integers(2, 40))
    cols = draw(st.integers(1, 3))
    a = draw(hnp.arrays(np.float64, (rows, cols), elements=_value))
    t = draw(st.integers(0, rows - 2))
    b = a.copy()
    b[t + 1 :] = draw(hnp.arrays(np.float64, (rows - t - 1, cols), elements=_value))
    return a, b, t


@pytest.mark.parametrize("name", sorted(KERNELS))
@settings(max_examples=40, deadline=None)
@given(case=_perturbed())
def test_causal(name, case):
    """Changing rows after t never changes outputs at rows <= t (bit for bit)."""
    a, b, t = (engine_layout(case[0]), engine_layout(case[1]), case[2])
    kernel = KERNELS[name]
    np.testing.assert_array_equal(kernel(a)[: t + 1], kernel(b)[: t + 1])


# ---------------------------------------------------------------- shapes and arguments


def test_layout_market_series_and_inputs_untouched(panel):
    x = np.asfortranarray(_arr(panel))
    before = x.copy()
    out = F.trailing_zscore(x, 20, 10)
    assert out.flags.c_contiguous and out.shape == x.shape
    np.testing.assert_array_equal(out, F.trailing_zscore(np.ascontiguousarray(x), 20, 10))
    np.testing.assert_array_equal(x, before)
    market = x[:, 4:5].copy()  # a market-level series is (T, 1)
    np.testing.assert_array_equal(F.trailing_zscore(market, 20, 10), out[:, 4:5])


@pytest.mark.parametrize(
    "call",
    [
        lambda a: F.rolling_max(a, 0, 0),
        lambda a: F.rolling_mean(a, 3, 4),
        lambda a: F.rolling_std(a, 3, -1),
        lambda a: F.trailing_zscore(a, 0, 0),
        lambda a: F.trailing_percentile(a, 2, 3),
        lambda a: F.drawdown(a, 0, 0),
        lambda a: F.pct_change(a, 0),
        lambda a: F.return_zscore(a, 0, 5, 2),
        lambda a: F.return_zscore(a, 5, 5, 6),
        lambda a: F.ratio_to_trailing_mean(a, a[:, :1].copy(), 3, 1),
    ],
)
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call(np.ones((10, 2)))
