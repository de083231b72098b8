"""Performance statistics as pure functions of daily returns or the trade list.

Definitions follow empyrical-reloaded (tests compare them): simple daily returns, annualisation
factor 252, sample standard deviation (ddof=1), risk-free rate as an annual rate converted to
daily by division by 252.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PERIODS = 252


def _clean(returns: pd.Series | np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    return r[~np.isnan(r)]


def total_return(returns) -> float:
    """prod(1 + r) - 1."""
    r = _clean(returns)
    return float(np.prod(1.0 + r) - 1.0) if r.size else np.nan


def cagr(returns, periods: int = PERIODS) -> float:
    """Compound annual growth: (prod(1 + r)) ** (periods / n) - 1 (empyrical `annual_return`)."""
    r = _clean(returns)
    if r.size == 0:
        return np.nan
    return float(np.prod(1.0 + r) ** (periods / r.size) - 1.0)


def annual_volatility(returns, periods: int = PERIODS) -> float:
    """std(r, ddof=1) * sqrt(periods)."""
    r = _clean(returns)
    return float(np.std(r, ddof=1) * np.sqrt(periods)) if r.size > 1 else np.nan


def sharpe(returns, risk_free: float = 0.0, periods: int = PERIODS) -> float:
    """mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods); NaN when volatility is zero."""
    r = _clean(returns) - risk_free / periods
    if r.size < 2:
        return np.nan
    sd = np.std(r, ddof=1)
    return float(np.mean(r) / sd * np.sqrt(periods)) if sd > 0 else np.nan


def sortino(returns, risk_free: float = 0.0, periods: int = PERIODS) -> float:
    """mean(r - rf) * periods / (sqrt(mean(min(r - rf, 0)^2)) * sqrt(periods)) (empyrical)."""
    r = _clean(returns) - risk_free / periods
    if r.size < 2:
        return np.nan
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * np.sqrt(periods)
    return float(np.mean(r) * periods / downside) if downside > 0 else np.nan


def drawdown(returns) -> np.ndarray:
    """Underwater curve: wealth / running peak - 1 (the starting wealth of 1 counts as a peak)."""
    wealth = np.cumprod(1.0 + np.nan_to_num(np.asarray(returns, dtype=np.float64)))
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    return wealth / peak - 1.0


def max_drawdown(returns) -> float:
    """Most negative value of the underwater curve."""
    dd = drawdown(returns)
    return float(dd.min()) if dd.size else np.nan


def max_drawdown_duration(returns) -> int:
    """Longest run of bars spent below a previous peak."""
    under = drawdown(returns) < 0
    longest = run = 0
    for u in under:
        run = run + 1 if u else 0
        longest = max(longest, run)
    return longest


def calmar(returns, periods: int = PERIODS) -> float:
    """CAGR / |max drawdown|."""
    mdd = max_drawdown(returns)
    return float(cagr(returns, periods) / -mdd) if mdd < 0 else np.nan


def trade_stats(trades: pd.DataFrame, years: float) -> dict[str, float]:
    """Win rate, profit factor, average/median trade return and trades per year (closed trades)."""
    closed = trades[trades["reason"] != "open"]
    ret = closed["return"].to_numpy()
    pnl = closed["pnl"].to_numpy()
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return {
        "trades": int(len(closed)),
        "win_rate": float(np.mean(ret > 0)) if ret.size else np.nan,
        "profit_factor": float(gains / losses) if losses > 0 else np.nan,
        "avg_trade": float(np.mean(ret)) if ret.size else np.nan,
        "median_trade": float(np.median(ret)) if ret.size else np.nan,
        "trades_per_year": float(len(closed) / years) if years > 0 else np.nan,
    }


def summary(equity: pd.Series, trades: pd.DataFrame, exposure: pd.Series, fees: float,
            risk_free: float = 0.0) -> dict[str, float]:
    """The key-metrics table of a run, from total equity, trades, invested fraction and fees paid."""
    returns = equity.pct_change().iloc[1:]
    years = len(returns) / PERIODS
    out = {
        "start": str(equity.index[0].date()),
        "end": str(equity.index[-1].date()),
        "total_return": total_return(returns),
        "cagr": cagr(returns),
        "annual_volatility": annual_volatility(returns),
        "sharpe": sharpe(returns, risk_free),
        "sortino": sortino(returns, risk_free),
        "max_drawdown": max_drawdown(returns),
        "max_drawdown_days": max_drawdown_duration(returns),
        "calmar": calmar(returns),
        "exposure": float(exposure.mean()),
        "fees_paid": float(fees),
        "fees_pct_of_start": float(fees / equity.iloc[0]),
    }
    out.update(trade_stats(trades, years))
    return out
