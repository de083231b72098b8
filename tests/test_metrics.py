"""backtest.metrics against empyrical-reloaded and quantstats on the same returns (DESIGN §6).

Every metric is compared with empyrical to 1e-9 (relative) on several return series: normal and
fat-tailed, with NaN gaps, all positive, constant, short, with a crash. quantstats is compared
where it has the metric and its definition agrees; where it does not (docs/tearsheet.md), the test
pins the documented relation instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from backtest import metrics as M
from tests.helpers import require

ep = require("empyrical")  # the metrics' oracle: a missing one fails in CI

warnings.filterwarnings("ignore", category=RuntimeWarning)


@pytest.fixture(scope="module")
def qs():
    """quantstats, for the tests that compare with it; the empyrical tests do not depend on it."""
    return require("quantstats")

RTOL, ATOL = 1e-9, 1e-12


def _series(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0.0004, 0.012, 1000)
    if kind == "fat":
        return np.clip(rng.standard_t(3, 1500) * 0.01, -0.5, None)
    if kind == "nan":
        r = rng.normal(0.0002, 0.015, 800)
        r[rng.random(800) < 0.07] = np.nan
        r[:3] = np.nan
        return r
    if kind == "positive":
        return rng.uniform(1e-4, 0.01, 300)
    if kind == "crash":
        r = rng.normal(0.0005, 0.01, 600)
        r[200] = -0.45
        return r
    if kind == "flat_then":
        r = np.zeros(400)
        r[250:] = rng.normal(0.0, 0.02, 150)
        return r
    if kind == "constant":
        return np.full(50, 0.001)
    if kind == "zeros":
        return np.zeros(30)
    if kind == "short":
        return np.array([0.01, -0.02])
    raise ValueError(kind)


KINDS = ["normal", "fat", "nan", "positive", "crash", "flat_then", "constant", "zeros", "short"]
SEEDS = [0, 1, 2]


def close(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=RTOL, atol=ATOL)


def _dated(r: np.ndarray) -> pd.Series:
    return pd.Series(r, index=pd.bdate_range("2018-01-01", periods=len(r)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", KINDS)
def test_return_and_risk_metrics_equal_empyrical(kind, seed):
    r = _series(kind, seed)
    close(M.total_return(r), ep.cum_returns_final(r))
    close(M.cagr(r), ep.annual_return(r))
    close(M.annual_volatility(r), ep.annual_volatility(r))
    close(M.max_drawdown(r), ep.max_drawdown(r))
    close(M.calmar(r), ep.calmar_ratio(r))
    close(M.drawdown(r), ep.stats.drawdown_series(r))
    for rf in (0.0, 0.03):
        close(M.sharpe(r, rf), ep.sharpe_ratio(r, risk_free=rf / 252))
        close(M.sortino(r, rf), ep.sortino_ratio(r, required_return=rf / 252))
        close(M.downside_risk(r, rf), ep.downside_risk(r, required_return=rf / 252))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["normal", "fat", "nan", "positive", "crash", "flat_then"])
def test_alpha_beta_equal_empyrical(kind, seed):
    r = _series(kind, seed)
    rng = np.random.default_rng(seed + 100)
    f = 0.6 * np.nan_to_num(r) + rng.normal(0.0, 0.01, r.size)
    f[rng.random(r.size) < 0.03] = np.nan
    for rf in (0.0, 0.02):
        alpha, beta = M.alpha_beta(r, f, rf)
        ea, eb = ep.alpha_beta(r, f, risk_free=rf / 252)
        close([alpha, beta], [ea, eb])


def test_alpha_beta_degenerate_factor_is_nan_like_empyrical():
    r = _series("normal")
    f = np.full(r.size, 0.001)
    assert np.isnan(M.alpha_beta(r, f)).all()
    assert np.isnan(ep.alpha_beta(r, f)).all()
    with pytest.raises(ValueError):
        M.alpha_beta(r, f[:-1])


@pytest.mark.parametrize("kind", ["normal", "nan", "flat_then"])
def test_rolling_sharpe_equals_empyrical_where_defined(kind):
    r = _series(kind)
    ours = M.rolling_sharpe(r, 126)
    theirs = ep.roll_sharpe_ratio(r, 126)
    assert np.isnan(ours[:125]).all()
    ok = np.isfinite(theirs) & np.isfinite(ours[125:])
    assert ok.mean() > 0.5
    close(ours[125:][ok], theirs[ok])
    # A window of constant returns is NaN here (empyrical: +-inf or NaN).
    assert np.isnan(ours[125:][~np.isfinite(theirs)]).all()


@pytest.mark.parametrize("kind", ["normal", "nan", "crash"])
def test_period_returns_equal_empyrical_aggregate_returns(kind):
    s = _dated(_series(kind))
    close(M.period_returns(s, "M").to_numpy(), ep.aggregate_returns(s, "monthly").to_numpy())
    close(M.period_returns(s, "Y").to_numpy(), ep.aggregate_returns(s, "yearly").to_numpy())
    assert list(M.period_returns(s, "M").index[:2]) == [(2018, 1), (2018, 2)]


# ---------------------------------------------------------------------------------------------
# quantstats


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["normal", "fat", "crash", "flat_then", "positive"])
def test_metrics_equal_quantstats_where_definitions_agree(qs, kind, seed):
    r = _series(kind, seed)
    s = _dated(r)
    close(M.annual_volatility(r), qs.stats.volatility(s))
    close(M.sharpe(r), qs.stats.sharpe(s))
    close(M.cagr(r), qs.stats.cagr(s))
    close(M.max_drawdown(r), qs.stats.max_drawdown(s))
    # quantstats de-annualises an annual rf by compounding: (1 + R) ** (1 / 252) - 1; ours divides.
    rf = 0.03
    close(M.sharpe(r, rf), qs.stats.sharpe(s, rf=(1 + rf / 252) ** 252 - 1, periods=252))
    if (r < 0).any():  # quantstats: NaN without a down day, empyrical and we: +inf
        close(M.sortino(r), qs.stats.sortino(s))
        close(M.calmar(r), qs.stats.calmar(s))
    else:
        assert M.sortino(r) == np.inf and np.isnan(qs.stats.sortino(s))


def test_cagr_with_gaps_counts_elapsed_bars_like_empyrical_not_quantstats(qs):
    r = _series("nan")
    n_obs = np.count_nonzero(~np.isnan(r))
    close(M.cagr(r), ep.annual_return(r))
    # quantstats counts only observed bars as time.
    close(qs.stats.cagr(_dated(r)), (1 + M.total_return(r)) ** (252 / n_obs) - 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_beta_equals_quantstats_and_alpha_differs_only_by_annualisation(qs, seed):
    r = _series("normal", seed)
    b = 0.5 * r + np.random.default_rng(seed).normal(0.0002, 0.01, r.size)
    alpha, beta = M.alpha_beta(r, b)
    g = qs.stats.greeks(_dated(r), _dated(b))
    close(beta, g["beta"])
    # quantstats: mean daily residual x 252; empyrical and we: compounded over 252 days.
    close(((1 + alpha) ** (1 / 252) - 1) * 252, g["alpha"])


@pytest.mark.parametrize("kind", ["normal", "crash", "positive", "flat_then"])
def test_drawdown_periods_match_quantstats_drawdown_details(qs, kind):
    r = _series(kind)
    s = _dated(r)
    ours = M.drawdown_periods(r)
    theirs = qs.stats.drawdown_details(qs.stats.to_drawdown_series(s))
    assert len(ours) == len(theirs)
    if not len(ours):
        return
    theirs = theirs.sort_values(["max drawdown", "start"], kind="stable").reset_index(drop=True)
    dates = s.index.strftime("%Y-%m-%d")
    last = len(r) - 1
    close(ours["depth"] * 100, theirs["max drawdown"])
    # quantstats: start = first bar under water, end = last bar under water.
    assert list(dates[ours["peak"] + 1]) == list(theirs["start"])
    assert list(dates[ours["trough"]]) == list(theirs["valley"])
    end = np.where(ours["recovery"] >= 0, ours["recovery"] - 1, last)
    assert list(dates[end]) == list(theirs["end"])


def test_drawdown_periods_by_hand():
    # wealth: 1.1, 0.99, 1.045, 1.21 (recovered at bar 3), 1.089, 1.2 (still under)
    r = np.array([0.10, -0.10, 0.0555555555555556, 0.1578947368421053, -0.10, 0.1019283746556474])
    p = M.drawdown_periods(r)
    assert p[["peak", "trough", "recovery", "bars"]].to_numpy().tolist() == [[0, 1, 3, 3], [3, 4, -1, 2]]
    close(p["depth"], [-0.10, -0.10])
    assert M.max_drawdown_duration(r) == 3 and M.longest_drawdown(r) == 3
    # A loss on the first bar is a drawdown from the starting wealth (peak -1).
    first = M.drawdown_periods(np.array([-0.05, 0.1]))
    assert first[["peak", "trough", "recovery", "bars"]].iloc[0].tolist() == [-1, 0, 1, 2]
    assert M.max_drawdown_duration(np.array([0.01, 0.02])) == 0


# ---------------------------------------------------------------------------------------------
# Trades, orders, benchmarks


def _trades(returns, pnl, reasons=None) -> pd.DataFrame:
    n = len(returns)
    return pd.DataFrame({"return": returns, "pnl": pnl, "reason": reasons or ["exit_signal"] * n})


def test_trade_stats_by_hand_and_against_quantstats(qs):
    ret = [0.05, -0.02, 0.10, -0.04, 0.01, 0.03]
    pnl = [500.0, -200.0, 1000.0, -400.0, 100.0, 300.0]
    t = _trades(ret + [0.2], pnl + [9999.0], ["time_stop"] * 6 + ["open"])
    s = M.trade_stats(t, years=2.0)
    assert s["trades"] == 6 and s["open_trades"] == 1
    close(s["win_rate"], 4 / 6)
    close(s["profit_factor"], 1900 / 600)
    close(s["avg_trade"], np.mean(ret))
    close(s["median_trade"], np.median(ret))
    close(s["trades_per_year"], 3.0)
    close(s["profit_factor"], qs.stats.profit_factor(pd.Series(pnl), prepare_returns=False))
    close(s["win_rate"], qs.stats.win_rate(pd.Series(ret), prepare_returns=False))


def test_trade_stats_edge_cases():
    assert M.trade_stats(_trades([0.1, 0.2], [10.0, 20.0]), 1.0)["profit_factor"] == np.inf
    empty = M.trade_stats(_trades([], []), 1.0)
    assert empty["trades"] == 0 and np.isnan(empty["win_rate"]) and np.isnan(empty["profit_factor"])
    # A flat trade is not a win (quantstats leaves it out of the denominator instead).
    close(M.trade_stats(_trades([0.1, 0.0], [10.0, 0.0]), 1.0)["win_rate"], 0.5)


def test_turnover():
    equity = np.array([100.0, 110.0, 90.0, 100.0])
    close(M.turnover(600.0, equity, 2.0), 3.0)
    assert np.isnan(M.turnover(600.0, equity, 0.0))


def test_equal_weight_returns_against_a_pandas_oracle():
    rng = np.random.default_rng(3)
    c = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (60, 4)), axis=0))
    c[:10, 1] = np.nan  # listed at row 10
    c[30:35, 2] = np.nan  # suspended
    c[:, 3] = np.nan  # never traded
    got = M.equal_weight_returns(c)
    df = pd.DataFrame(c)
    rets = df / df.ffill().shift(1) - 1
    want = rets.mean(axis=1, skipna=True).to_numpy()
    close(got, want)
    assert np.isnan(got[0])
    # The suspension's move lands on the first day back.
    close(got[35], np.nanmean([c[35, 0] / c[34, 0] - 1, c[35, 1] / c[34, 1] - 1, c[35, 2] / c[29, 2] - 1]))


def test_index_returns_carry_a_missing_level():
    lvl = np.array([np.nan, 100.0, 110.0, np.nan, 121.0])
    close(M.index_returns(lvl), [np.nan, np.nan, 0.1, 0.0, 0.1])


def test_summary_is_consistent_with_the_metric_functions():
    idx = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(5)
    equity = pd.Series(1e6 * np.cumprod(1 + rng.normal(0.0003, 0.01, 300)), index=idx)
    invested = pd.Series(np.where(np.arange(300) % 3 == 0, 0.0, 0.5) * equity.to_numpy(), index=idx)
    trades = _trades([0.01, -0.02], [100.0, -200.0])
    orders = pd.DataFrame({"value": [1e5, 2e5, 7e5], "fees": [10.0, 20.0, 99.0],
                           "status": ["filled", "filled", "skipped_no_cash"]})
    bench = pd.DataFrame({"index": np.concatenate([[np.nan], rng.normal(0, 0.012, 299)])}, index=idx)
    s = M.summary(equity, invested, trades, orders, bench, risk_free=0.01)
    r = equity.pct_change().to_numpy()[1:]
    close(s["total_return"], equity.iloc[-1] / equity.iloc[0] - 1)
    close(s["sharpe"], ep.sharpe_ratio(r, risk_free=0.01 / 252))
    close(s["exposure"], (invested / equity).mean())
    close(s["time_in_market"], 200 / 300)
    close(s["fees_paid"], 30.0)
    years = (idx[-1] - idx[0]).days / 365.25  # the calendar span, not bars / 252
    close(s["years"], years)
    close(s["turnover"], 3e5 / equity.mean() / years)
    close(s["cagr"], (equity.iloc[-1] / equity.iloc[0]) ** (1 / years) - 1)
    close([s["alpha_index"], s["beta_index"]], ep.alpha_beta(r, bench["index"].to_numpy()[1:], risk_free=0.01 / 252))
    close(s["excess_return_index"], s["total_return"] - ep.cum_returns_final(bench["index"].to_numpy()[1:]))
    assert s["start"] == "2020-01-01" and s["trades"] == 2
