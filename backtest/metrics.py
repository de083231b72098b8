"""Performance statistics as pure functions of daily returns, the trade list and the order log.

Conventions, those of empyrical-reloaded (tests/test_metrics.py compares every function with it,
and with quantstats where quantstats has the metric; docs/tearsheet.md lists the differences):

- `returns`: simple returns, one per bar (trading day), 1-D array-like; NaN = no observation.
  Functions that compound (total return, CAGR, drawdowns) treat NaN as a flat day; functions that
  average (volatility, Sharpe, Sortino, alpha/beta) skip it. CAGR counts every bar, NaN included,
  as elapsed time.
- `periods`: bars per year, 252.
- `years`: the calendar span of a run, (last date - first date) / 365.25 (`calendar_years`). The
  key metrics (`summary`) compound CAGR, count trades per year and turnover over it; `cagr(r)`
  without `years` keeps empyrical's bars / 252, which tests compare with empyrical.
- `risk_free`: an **annual** rate (0.03 = 3 %), used as the daily rate `risk_free / periods`.
  empyrical takes the daily rate itself: `sharpe(r, 0.03)` equals
  `empyrical.sharpe_ratio(r, risk_free=0.03 / 252)`.
- Degenerate inputs follow empyrical: NaN when a statistic is undefined (too few bars, 0 / 0),
  +-inf when it is unbounded (a Sortino with no down day, a Sharpe of constant positive returns).

References: W. F. Sharpe, "The Sharpe Ratio", J. Portfolio Management 21(1), 1994;
F. A. Sortino and L. N. Price, "Performance Measurement in a Downside Risk Framework",
J. Investing 3(3), 1994; T. W. Young, "Calmar Ratio: A Smoother Tool", Futures 20(1), 1991.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

PERIODS = 252
DAYS_PER_YEAR = 365.25
ROLLING_WINDOW = 126  # bars in the rolling Sharpe of the tear sheet (about six months)


def _arr(returns) -> np.ndarray:
    return np.asarray(returns, dtype=np.float64).reshape(-1)


# ---------------------------------------------------------------------------------------------
# Returns and risk


def total_return(returns) -> float:
    """prod(1 + r) - 1 over the non-NaN bars (empyrical `cum_returns_final`)."""
    r = _arr(returns)
    return float(np.nanprod(1.0 + r) - 1.0) if r.size else np.nan


def calendar_years(dates) -> float:
    """(last date - first date) in days / 365.25: the time a run's capital was at work."""
    d = pd.DatetimeIndex(dates)
    return float((d[-1] - d[0]).days / DAYS_PER_YEAR) if len(d) else np.nan


def cagr(returns, periods: int = PERIODS, years: float | None = None) -> float:
    """Compound annual growth rate: prod(1 + r) ** (1 / years) - 1.

    years defaults to len(r) / periods: every bar counts as elapsed time, NaN bars included
    (empyrical `annual_return`); the key metrics pass the calendar span (`calendar_years`).
    """
    r = _arr(returns)
    years = r.size / periods if years is None else years
    if r.size == 0 or not years > 0:
        return np.nan
    return float(np.nanprod(1.0 + r) ** (1.0 / years) - 1.0)


def annual_volatility(returns, periods: int = PERIODS) -> float:
    """std(r, ddof=1) * sqrt(periods) over the non-NaN bars (empyrical `annual_volatility`)."""
    r = _arr(returns)
    ok = r[~np.isnan(r)]
    return float(np.std(ok, ddof=1) * np.sqrt(periods)) if r.size > 1 and ok.size > 1 else np.nan


def sharpe(returns, risk_free: float = 0.0, periods: int = PERIODS) -> float:
    """mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods), rf = risk_free / periods.

    Constant excess returns have a standard deviation of exactly 0: the ratio is then +-inf, or
    NaN when they are all 0 (empyrical `sharpe_ratio`).
    """
    r = _arr(returns)
    if r.size < 2:
        return np.nan
    x = r - risk_free / periods
    ok = x[~np.isnan(x)]
    if ok.size < 2:
        return np.nan
    sd = 0.0 if ok.max() == ok.min() else np.std(ok, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(ok) / sd * np.sqrt(periods))


def downside_risk(returns, risk_free: float = 0.0, periods: int = PERIODS) -> float:
    """sqrt(mean(min(r - rf, 0) ** 2)) * sqrt(periods): the annualised downside deviation."""
    r = _arr(returns)
    if r.size == 0:
        return np.nan
    x = np.minimum(r - risk_free / periods, 0.0)
    ok = x[~np.isnan(x)]
    return float(np.sqrt(np.mean(ok * ok)) * np.sqrt(periods)) if ok.size else np.nan


def sortino(returns, risk_free: float = 0.0, periods: int = PERIODS) -> float:
    """mean(r - rf) * periods / downside_risk(r, rf): +inf when no bar is below rf (empyrical)."""
    r = _arr(returns)
    if r.size < 2:
        return np.nan
    x = r - risk_free / periods
    ok = x[~np.isnan(x)]
    if ok.size == 0:
        return np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(ok) * periods / downside_risk(r, risk_free, periods))


def drawdown(returns) -> np.ndarray:
    """Underwater curve, one value per bar: wealth / running peak - 1 (<= 0).

    Wealth starts at 1 before the first bar, and that start counts as a peak, so a loss on the
    first bar is a drawdown. NaN bars are flat.
    """
    wealth = np.cumprod(1.0 + np.nan_to_num(_arr(returns)))
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    return wealth / peak - 1.0


def max_drawdown(returns) -> float:
    """Most negative value of the underwater curve (empyrical `max_drawdown`)."""
    dd = drawdown(returns)
    return float(dd.min()) if dd.size else np.nan


def drawdown_periods(returns) -> pd.DataFrame:
    """Every drawdown, deepest first, in bar positions of `returns`.

    A drawdown runs from its `peak` (the last bar at the running high; -1 = the starting wealth
    before bar 0) through its `trough` (deepest bar) to its `recovery` (first bar back at the
    peak; -1 if it has not recovered). `depth` is the trough's underwater value; `bars` the
    trading days from the peak to the recovery, or to the last bar if it has not recovered.
    """
    dd = drawdown(returns)
    under = np.concatenate(([False], dd < 0.0, [False]))
    edges = np.flatnonzero(under[1:] != under[:-1])
    first, end = edges[0::2], edges[1::2]  # run of underwater bars: [first, end)
    n = dd.size
    rows = []
    for a, b in zip(first, end):
        trough = a + int(np.argmin(dd[a:b]))
        recovery = b if b < n else -1
        rows.append((a - 1, trough, recovery, float(dd[trough]), (b if b < n else n - 1) - (a - 1)))
    out = pd.DataFrame(rows, columns=["peak", "trough", "recovery", "depth", "bars"])
    return out.sort_values(["depth", "peak"], kind="stable").reset_index(drop=True)


def max_drawdown_duration(returns) -> int:
    """Trading days from the peak of the deepest drawdown to its recovery (or the last bar)."""
    p = drawdown_periods(returns)
    return int(p["bars"].iloc[0]) if len(p) else 0


def longest_drawdown(returns) -> int:
    """Trading days of the longest drawdown, peak to recovery (or the last bar)."""
    p = drawdown_periods(returns)
    return int(p["bars"].max()) if len(p) else 0


def calmar(returns, periods: int = PERIODS, years: float | None = None) -> float:
    """CAGR / |max drawdown|; NaN without a drawdown (empyrical `calmar_ratio`)."""
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return np.nan
    c = cagr(returns, periods, years) / -mdd
    return float(c) if np.isfinite(c) else np.nan


def alpha_beta(returns, factor_returns, risk_free: float = 0.0, periods: int = PERIODS) -> tuple[float, float]:
    """Daily CAPM regression r - rf = alpha_d + beta * (f - rf) on the bars where both exist.

    beta = cov(f, r) / var(f) (NaN when var(f) < 1e-30); alpha is annualised by compounding the
    mean daily residual: (1 + mean(r - rf - beta * (f - rf))) ** periods - 1 (empyrical
    `alpha_beta`; quantstats `greeks` annualises by multiplying by `periods` instead).
    """
    r, f = _arr(returns), _arr(factor_returns)
    if r.size != f.size:
        raise ValueError(f"returns ({r.size}) and factor returns ({f.size}) must have one value per bar each")
    ok = ~np.isnan(r) & ~np.isnan(f)
    if np.count_nonzero(ok) < 2:
        return np.nan, np.nan
    x, y = f[ok], r[ok]
    xr = x - x.mean()
    var = np.mean(xr * xr)
    if var < 1e-30:
        return np.nan, np.nan
    beta = float(np.mean(xr * y) / var)
    rf = risk_free / periods
    alpha = float((1.0 + np.mean((y - rf) - beta * (x - rf))) ** periods - 1.0)
    return alpha, beta


def rolling_sharpe(returns, window: int = ROLLING_WINDOW, periods: int = PERIODS) -> np.ndarray:
    """Sharpe ratio (risk-free 0) of each trailing `window` bars; NaN for the first window - 1.

    Equal to empyrical `roll_sharpe_ratio` aligned on the window's last bar, except that a window
    of constant returns gives NaN (a chart has no use for +-inf).
    """
    r = _arr(returns)
    out = np.full(r.size, np.nan)
    if r.size < window or window < 2:
        return out
    w = np.lib.stride_tricks.sliding_window_view(r, window)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        sd = np.nanstd(w, axis=1, ddof=1)
        flat = np.nanmax(w, axis=1) == np.nanmin(w, axis=1)
        out[window - 1:] = np.where(flat, np.nan, np.nanmean(w, axis=1) / sd * np.sqrt(periods))
    return out


def period_returns(returns: pd.Series, freq: str) -> pd.Series:
    """Compounded returns per calendar month ("M") or year ("Y"), indexed by (year, month) or year.

    Equal to empyrical `aggregate_returns(returns, "monthly" / "yearly")`; NaN bars are flat.
    """
    idx = pd.DatetimeIndex(returns.index)
    keys = [idx.year, idx.month] if freq == "M" else [idx.year]
    growth = (1.0 + returns.fillna(0.0)).groupby(keys).prod() - 1.0
    growth.index.names = ["year", "month"] if freq == "M" else ["year"]
    return growth


# ---------------------------------------------------------------------------------------------
# Benchmarks


def index_returns(level) -> np.ndarray:
    """Daily returns of an index level; a missing level is carried, so a return spanning a gap
    lands on the first bar after it. NaN on the first bar (and before the first level)."""
    x = pd.Series(_arr(level)).ffill().to_numpy()
    out = np.full(x.size, np.nan)
    out[1:] = x[1:] / x[:-1] - 1.0
    return out


def equal_weight_returns(close: np.ndarray) -> np.ndarray:
    """Daily returns of an equal-weight portfolio of the universe, rebalanced every bar.

    r_t = mean over names of close[t, j] / c[j] - 1, where c[j] is the name's previous close
    (carried across suspensions, so the gap's move lands on its first bar back); names without
    a close on t or without an earlier one (not yet listed) sit out that bar. NaN when no name
    has a return (always on the first bar).
    """
    c = np.asarray(close, dtype=np.float64)
    prev = pd.DataFrame(c).ffill().shift(1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = c / prev - 1.0
    n = np.count_nonzero(~np.isnan(r), axis=1)
    s = np.nansum(r, axis=1)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def relative(returns, bench_returns, risk_free: float = 0.0, periods: int = PERIODS) -> dict[str, float]:
    """Alpha and beta (`alpha_beta`) and excess total return (strategy - benchmark, same bars)."""
    alpha, beta = alpha_beta(returns, bench_returns, risk_free, periods)
    return {"alpha": alpha, "beta": beta,
            "excess_return": total_return(returns) - total_return(bench_returns)}


def return_stats(returns, risk_free: float = 0.0, periods: int = PERIODS,
                 years: float | None = None) -> dict[str, float]:
    """The return and risk block of the key metrics, for a strategy or a benchmark (CAGR and
    Calmar over `years`, default bars / periods)."""
    r = _arr(returns)
    dd = drawdown_periods(r)
    return {
        "total_return": total_return(r),
        "cagr": cagr(r, periods, years),
        "annual_volatility": annual_volatility(r, periods),
        "sharpe": sharpe(r, risk_free, periods),
        "sortino": sortino(r, risk_free, periods),
        "max_drawdown": max_drawdown(r),
        "max_drawdown_days": int(dd["bars"].iloc[0]) if len(dd) else 0,
        "longest_drawdown_days": int(dd["bars"].max()) if len(dd) else 0,
        "calmar": calmar(r, periods, years),
    }


# ---------------------------------------------------------------------------------------------
# Trades and orders


def trade_stats(trades: pd.DataFrame, years: float) -> dict[str, float]:
    """Statistics of closed trades (positions still open at the end are left out).

    win_rate: trades with return > 0 / closed trades. profit_factor: gross profit / gross loss in
    HK$ (+inf with no losing trade, NaN with no trade or only flat ones). avg_trade /
    median_trade: of the trade returns, net of fees. trades_per_year: closed trades / years.
    """
    closed = trades[trades["reason"] != "open"]
    ret = closed["return"].to_numpy(dtype=np.float64)
    pnl = closed["pnl"].to_numpy(dtype=np.float64)
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    if losses > 0:
        pf = gains / losses
    else:
        pf = np.inf if gains > 0 else np.nan
    return {
        "trades": int(len(closed)),
        "open_trades": int(len(trades) - len(closed)),
        "win_rate": float(np.mean(ret > 0)) if ret.size else np.nan,
        "profit_factor": float(pf),
        "avg_trade": float(np.mean(ret)) if ret.size else np.nan,
        "median_trade": float(np.median(ret)) if ret.size else np.nan,
        "trades_per_year": float(len(closed) / years) if years > 0 else np.nan,
    }


def turnover(traded_value: float, equity, years: float) -> float:
    """Traded value (buys + sells, HK$) / mean equity / years: the equity traded per year."""
    mean_equity = float(np.nanmean(_arr(equity)))
    return float(traded_value / mean_equity / years) if years > 0 and mean_equity > 0 else np.nan


# ---------------------------------------------------------------------------------------------
# Capital that exists (DESIGN §5)


def first_tradable(close) -> np.ndarray:
    """Per symbol, the first bar with a close: the bar its account (or a slot for it) exists from.
    (N,) int64; T for a symbol that never trades."""
    c = np.asarray(close, dtype=np.float64)
    ok = np.isfinite(c)
    return np.where(ok.any(axis=0), ok.argmax(axis=0), c.shape[0]).astype(np.int64)


def live_accounts(equity: pd.DataFrame, cash: pd.DataFrame, first) -> pd.DataFrame:
    """Per bar, the accounts that exist, taken together; an account exists from bar `first[j]` on.

    Columns: `equity` and `invested` (HK$ in existing accounts), `exposure` (invested / equity),
    `accounts` (how many exist), `pnl` (HK$ change of the accounts that existed on the previous
    bar) and `return` = pnl / their equity on the previous bar (NaN on bar 0 and while no account
    exists): the time-weighted return of capital that exists, so an account that has not listed
    yet adds neither return nor idle cash. One account that exists from bar 0 (portfolio mode)
    gives exactly its own equity's returns.
    """
    eq = equity.to_numpy(dtype=np.float64)
    inv = eq - cash.to_numpy(dtype=np.float64)
    live = np.arange(eq.shape[0])[:, None] >= np.asarray(first)[None, :]
    eq_live = np.where(live, eq, 0.0).sum(axis=1)
    inv_live = np.where(live, inv, 0.0).sum(axis=1)
    ret = np.full(eq.shape[0], np.nan)
    pnl = np.zeros(eq.shape[0])
    prev = live[:-1]
    before = np.where(prev, eq[:-1], 0.0).sum(axis=1)
    now = np.where(prev, eq[1:], 0.0).sum(axis=1)
    pnl[1:] = now - before
    with np.errstate(invalid="ignore", divide="ignore"):
        ret[1:] = np.where(before > 0, now / before - 1.0, np.nan)
        exposure = np.where(eq_live > 0, inv_live / eq_live, np.nan)
    return pd.DataFrame({"equity": eq_live, "invested": inv_live, "exposure": exposure,
                         "accounts": live.sum(axis=1), "pnl": pnl, "return": ret}, index=equity.index)


def symbol_results(equity: pd.DataFrame, cash: pd.DataFrame, trades: pd.DataFrame, first,
                   risk_free: float = 0.0, periods: int = PERIODS) -> pd.DataFrame:
    """Independent mode: each symbol's account on its own, from its first tradable bar.

    One row per symbol that can trade: first_date, years (calendar), total_return, cagr, sharpe,
    max_drawdown, exposure (mean share of its equity invested), trades (closed).
    """
    dates = pd.DatetimeIndex(equity.index)
    closed = trades[trades["reason"] != "open"]["symbol"].value_counts()
    rows = []
    for j, sym in enumerate(equity.columns):
        a = int(first[j])
        if a >= len(dates):
            continue
        eq = equity[sym].to_numpy(dtype=np.float64)[a:]
        inv = eq - cash[sym].to_numpy(dtype=np.float64)[a:]
        r = eq[1:] / eq[:-1] - 1.0
        years = calendar_years(dates[a:])
        rows.append({"symbol": sym, "first_date": dates[a], "years": years, "total_return": total_return(r),
                     "cagr": cagr(r, periods, years), "sharpe": sharpe(r, risk_free, periods),
                     "max_drawdown": max_drawdown(r), "exposure": float(np.mean(inv / eq)),
                     "trades": int(closed.get(sym, 0))})
    return pd.DataFrame(rows, columns=["symbol", "first_date", "years", "total_return", "cagr", "sharpe",
                                       "max_drawdown", "exposure", "trades"])


DISTRIBUTION = ("total_return", "cagr", "sharpe", "max_drawdown", "exposure")


def symbol_distribution(table: pd.DataFrame) -> dict[str, float]:
    """The spread of per-symbol results (`symbol_results`): how many symbols, how many traded, the
    share of those that traded with a positive total return, and the quartiles of each metric over
    the symbols that traded (`symbol_<metric>_q1 / _median / _q3`)."""
    traded = table[table["trades"] > 0]
    out: dict = {"symbols": int(len(table)), "symbols_traded": int(len(traded)),
                 "symbols_positive": float(np.mean(traded["total_return"] > 0)) if len(traded) else np.nan}
    for m in DISTRIBUTION:
        v = traded[m].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        for name, q in (("q1", 25), ("median", 50), ("q3", 75)):
            out[f"symbol_{m}_{name}"] = float(np.percentile(v, q)) if v.size else np.nan
    return out


# ---------------------------------------------------------------------------------------------
# The key-metrics table


def summary(equity: pd.Series, invested: pd.Series, trades: pd.DataFrame, orders: pd.DataFrame,
            benchmarks: pd.DataFrame | None = None, risk_free: float = 0.0,
            periods: int = PERIODS, returns=None, capital: float | None = None) -> dict[str, float]:
    """The key metrics of a run.

    equity: equity per bar (HK$) of the capital that exists; invested: value of open positions
    per bar; trades: the trade list; orders: the order log (only `status == "filled"` rows count);
    benchmarks: daily returns, one column per benchmark, on the equity's bars (row 0 is ignored,
    as for the strategy, whose first return is undefined). `returns` (one per bar, row 0 ignored)
    replaces equity.pct_change() when capital joins over time (`live_accounts`); `capital` (HK$
    ever committed, default the first equity) is what fees are set against. `alpha_<name>`,
    `beta_<name>` and `excess_return_<name>` compare the strategy with each benchmark column.
    Years are the calendar span of the equity's dates (`calendar_years`).
    """
    returns = equity.pct_change().to_numpy()[1:] if returns is None else _arr(returns)[1:]
    years = calendar_years(equity.index)
    filled = orders[orders["status"] == "filled"]
    with np.errstate(invalid="ignore", divide="ignore"):
        exposure = (invested / equity).to_numpy()
    capital = float(equity.iloc[0]) if capital is None else capital
    pnl = float(np.nansum(returns * equity.to_numpy()[:-1])) if returns.size else 0.0
    mean_invested = float(np.nanmean(invested.to_numpy()))
    out: dict = {"start": str(equity.index[0].date()), "end": str(equity.index[-1].date()), "years": years}
    out.update(return_stats(returns, risk_free, periods, years))
    out.update({
        "exposure": float(np.nanmean(exposure)),
        "time_in_market": float(np.mean(invested.to_numpy() > 0)),
        "return_on_capital_employed": pnl / mean_invested / years if mean_invested > 0 and years > 0 else np.nan,
        "turnover": turnover(float(filled["value"].sum()), equity, years),
        "fees_paid": float(filled["fees"].sum()),
        "fees_pct_of_start": float(filled["fees"].sum() / capital),
    })
    out.update(trade_stats(trades, years))
    if benchmarks is not None:
        for name in benchmarks.columns:
            rel = relative(returns, benchmarks[name].to_numpy()[1:], risk_free, periods)
            out.update({f"{k}_{name}": v for k, v in rel.items()})
    return out
