"""Metrics of an equity curve inside compiled code, for sweeps (definitions of backtest.metrics).

`total_metrics` (what the sweep runs) must agree with `backtest.metrics` on the same curve;
tests/test_sweep_oracle.py and test_sweep_kernel.py check (the latter against its readable two-pass form).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtest.kernels.simulate import (CS_D2, CS_EQ0, CS_EQ1, CS_INVESTED, CS_MDD, CS_RMAX, CS_RMIN, CS_S1, CS_S2,
                                      T_ENTRY_FEES, T_ENTRY_PRICE, T_EXIT_BAR, T_EXIT_FEES, T_EXIT_PRICE, T_SHARES)

PERIODS = 252
M_TOTAL_RETURN, M_CAGR, M_SHARPE, M_SORTINO, M_MAX_DRAWDOWN, M_EXPOSURE, M_TRADES, M_WIN_RATE = range(8)
NMET = 8
METRIC_NAMES = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "exposure", "trades", "win_rate")
NSUM = 5  # per block: count, sum r, sum r^2, sum r^3, sum r^4 (backtest.robustness)


@njit(cache=True, nogil=True)
def _ratio(num, den):
    """num / den with IEEE semantics (numba would raise on a zero denominator)."""
    if den != 0.0:
        return num / den
    if num == 0.0 or num != num:
        return np.nan
    return np.inf if num > 0.0 else -np.inf


@njit(cache=True, nogil=True, inline="always")
def _risk(out, n, total, down, lo, hi, ss):
    """Sharpe and Sortino of n daily returns from their sum, downside sum of squares, extremes and
    sum of squared deviations from the mean."""
    if n >= 2:
        mean = total / n
        sd = 0.0 if lo == hi else np.sqrt(ss / (n - 1))
        out[M_SHARPE] = _ratio(mean, sd) * np.sqrt(PERIODS)
        out[M_SORTINO] = _ratio(mean * PERIODS, np.sqrt(down / n) * np.sqrt(PERIODS))
    else:
        out[M_SHARPE] = np.nan
        out[M_SORTINO] = np.nan


@njit(cache=True, nogil=True)
def total_metrics(eq, cash, base, deltas, edges, out, sums):
    """Return metrics and block power sums of a sweep combination's total equity and cash (T,), or,
    with `deltas`, of their per-bar changes summed over symbols (`base`, the starting total, then
    goes to bar 0): the metrics and the block sums in one pass, the variance in a second over the
    returns kept in `cash`. The same operations in the same order as the readable two-pass
    definitions in tests/test_sweep_kernel.py, so the same bits. Overwrites eq
    (the curve) and cash (its daily returns). `edges` must be sorted (block_edges, fine_edges)."""
    n_t = eq.shape[0]
    n = n_t - 1
    n_b = edges.shape[0] - 1
    sums[:] = 0.0
    e = eq[0] + base if deltas else eq[0]
    c = cash[0] + base if deltas else cash[0]
    eq[0] = e
    e0 = e
    peak = e
    mdd = 0.0
    if not e >= peak:  # a NaN start
        mdd = min(mdd, e / peak - 1.0)
    invested = 0.0
    if e != c:
        invested += (e - c) / e
    total = 0.0
    down = 0.0
    lo = np.inf
    hi = -np.inf
    b = 0
    for t in range(1, n_t):
        prev = e
        e = eq[t] + prev if deltas else eq[t]
        c = cash[t] + c if deltas else cash[t]
        eq[t] = e
        rb = e / prev - 1.0  # the block sums' return; the metrics' is 0 where nothing changed
        r = rb if e != prev else 0.0
        total += r
        down += min(r, 0.0) ** 2
        lo = min(lo, r)
        hi = max(hi, r)
        while b < n_b and t >= edges[b + 1]:
            b += 1
        if b < n_b and t >= edges[b]:
            r2 = rb * rb
            sums[b, 0] += 1.0
            sums[b, 1] += rb
            sums[b, 2] += r2
            sums[b, 3] += r2 * rb
            sums[b, 4] += r2 * r2
        if e >= peak:
            peak = e
        else:
            mdd = min(mdd, e / peak - 1.0)
        if e != c:
            invested += (e - c) / e
        cash[t] = r
    out[M_TOTAL_RETURN] = e / e0 - 1.0
    out[M_CAGR] = (e / e0) ** (PERIODS / n) - 1.0 if n > 0 else np.nan
    ss = 0.0
    if n >= 2:
        mean = total / n
        for t in range(1, n_t):
            d = cash[t] - mean
            ss += d * d
    _risk(out, n, total, down, lo, hi, ss)
    out[M_MAX_DRAWDOWN] = mdd
    out[M_EXPOSURE] = invested / n_t


@njit(cache=True, nogil=True)
def stats_metrics(stats, n_t, out):
    """The return metrics of `total_metrics` from a column's running statistics (simulate.CS_*), without
    another pass over its bars; the variance comes from the sums (one pass)."""
    n = n_t - 1
    eq0 = stats[CS_EQ0]
    eq1 = stats[CS_EQ1]
    out[M_TOTAL_RETURN] = eq1 / eq0 - 1.0
    out[M_CAGR] = (eq1 / eq0) ** (PERIODS / n) - 1.0 if n > 0 else np.nan
    if n >= 2:
        mean = stats[CS_S1] / n
        var = max((stats[CS_S2] - stats[CS_S1] * mean) / (n - 1), 0.0)
        sd = 0.0 if stats[CS_RMIN] == stats[CS_RMAX] else np.sqrt(var)
        out[M_SHARPE] = _ratio(mean, sd) * np.sqrt(PERIODS)
        out[M_SORTINO] = _ratio(mean * PERIODS, np.sqrt(stats[CS_D2] / n) * np.sqrt(PERIODS))
    else:
        out[M_SHARPE] = np.nan
        out[M_SORTINO] = np.nan
    out[M_MAX_DRAWDOWN] = stats[CS_MDD]
    out[M_EXPOSURE] = stats[CS_INVESTED] / n_t


@njit(cache=True, nogil=True)
def trade_counts(trades, n_tr):
    """(closed trades, winning closed trades: proceeds after fees above cost) of the first n_tr rows."""
    closed = 0
    wins = 0
    for i in range(n_tr):
        if trades[i, T_EXIT_BAR] < 0:
            continue
        closed += 1
        cost = trades[i, T_SHARES] * trades[i, T_ENTRY_PRICE] + trades[i, T_ENTRY_FEES]
        proceeds = trades[i, T_SHARES] * trades[i, T_EXIT_PRICE] - trades[i, T_EXIT_FEES]
        if proceeds > cost:
            wins += 1
    return closed, wins
