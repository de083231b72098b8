"""Rolling feature kernels (DESIGN §4): dips, flow spikes and ADR-discount extremes.

Every kernel is a plain `numba.njit(cache=True, nogil=True)` function over float64 arrays; none
sees pandas. Panels are 2D arrays of shape (T, N) = (dates, symbols); a market-level series is
passed as shape (T, 1). Columns are independent: column j of the output depends only on column j
of the inputs. Each kernel returns a new C-contiguous float64 array of the input's shape and never
writes to its inputs. Pass C-contiguous inputs: pandas hands out F-ordered arrays, and each memory
layout is a separate compile and cache entry.

Conventions
-----------
Causality (DESIGN §3).
    Output row t uses input rows <= t only; changing any row after t never changes rows <= t
    (tests prove it). Kernels named `trailing_*` / `ratio_to_trailing_mean` go further and compare
    x[t] with a reference window of the *prior* rows t-window .. t-1, so a spike does not dampen
    its own score. Input row t holds what is known at bar t (the data layer aligns each source to
    when it becomes known); filling orders on output row t at t+1 is the caller's job.
Windows are rows, not valid values.
    A window of length `window` ending at row e is rows e-window+1 .. e (clipped at row 0); NaNs
    inside it are skipped, so fewer than `window` values may count. A window longer than T is
    allowed: it covers every row so far, and min_periods decides when output starts.
min_periods.
    The minimum number of valid (non-NaN) values in the window; with fewer the output is NaN.
    Statistics that need more (a sample std needs 2) require max(min_periods, 2). Must satisfy
    0 <= min_periods <= window and window >= 1, else ValueError (as pandas).
Current value.
    If the current value x[t] (close[t] for price kernels) is NaN, the output at t is NaN, even
    where pandas' `rolling` would still report the window's statistic. A missing flow is missing,
    not zero (DESIGN §3).
Undefined ratios.
    Division by a zero denominator (a zero std, a zero mean, a zero price) gives NaN, never inf.

Numerics
--------
Rolling means and standard deviations use running sums of deviations from an anchor, giving
O(T) work per column. The anchor is the window's mean, recomputed directly (two passes) every
`window` rows and whenever cancellation threatens accuracy (the window's sum of squared
deviations falls below 1e-3 of the largest running sum of squares since the last anchor, e.g.
after a large outlier leaves or the level trends far from the anchor). A window whose valid
values are all identical gives exactly std 0 and mean equal to that value. Measured against a
direct two-pass std: ~1e-14 relative on prices and flows, ~1e-11 on a stress series (1e9 level
with unit noise, a 1e15 outlier, a level jump), where pandas' online std is off by 2e-5. The
rolling max uses a monotonic deque (O(T)); the trailing percentile counts the window directly
(O(T * window)). Inputs are finite or NaN; infinities are not supported.
"""

from __future__ import annotations

import numba
import numpy as np

# Recompute the anchored sums when M2 < _CANCEL * (largest sum of squares since the anchor):
# rounding error of the running sums is ~ 2 * window * eps * that peak, so M2 keeps ~11 digits.
_CANCEL = 1e-3


@numba.njit(cache=True, nogil=True)
def _check_window(window, min_periods):
    if window < 1:
        raise ValueError("window must be >= 1")
    if min_periods < 0 or min_periods > window:
        raise ValueError("min_periods must be between 0 and window")


@numba.njit(cache=True, nogil=True)
def _direct_sums(col, lo, hi):
    """(n, mean, s1, s2) over the valid values of col[lo..hi], deviations taken from their mean.

    Branch-free on NaN (x == x is False only for NaN): NaN gaps are irregular and would
    otherwise cost a mispredicted branch per row.
    """
    n = 0
    total = 0.0
    for k in range(lo, hi + 1):
        v = col[k]
        valid = v == v
        n += 1 if valid else 0
        total += v if valid else 0.0
    if n == 0:
        return 0, 0.0, 0.0, 0.0
    shift = total / n
    s1 = 0.0
    s2 = 0.0
    for k in range(lo, hi + 1):
        d = col[k] - shift
        d = d if d == d else 0.0
        s1 += d
        s2 += d * d
    return n, shift, s1, s2


@numba.njit(cache=True, nogil=True)
def _window_moments(col, window, lag, count, mean, m2):
    """For every row t, the valid values of col in rows t-lag-window+1 .. t-lag: their count,
    mean and sum of squared deviations (M2), written into `count`, `mean` and `m2` (length T).

    lag=0 is the usual window ending at t; lag=1 the prior window t-window .. t-1. Empty windows
    give count 0 and NaN mean and M2. See the module docstring for the anchoring scheme.
    """
    T = col.shape[0]
    n = 0
    shift = 0.0  # anchor; s1, s2 = sums of (v - shift) and (v - shift)**2 over the window
    s1 = 0.0
    s2 = 0.0
    peak = 0.0  # largest s2 since the anchor: the scale of the rounding error in s2
    run_val = np.nan  # value of the run of identical valid values ending at the newest one
    run_len = 0
    since = window  # rows since the last direct recompute; forces one at the first row
    for t in range(T):
        hi = t - lag
        lo = hi - window + 1
        if hi < 0:
            count[t] = 0
            mean[t] = np.nan
            m2[t] = np.nan
            continue
        v = col[hi]
        valid = v == v
        if valid:
            if v == run_val:
                run_len += 1
            else:
                run_val = v
                run_len = 1
        since += 1
        if since >= window:
            n, shift, s1, s2 = _direct_sums(col, max(lo, 0), hi)
            peak = s2
            since = 0
        else:
            # Drop row lo-1 and add row hi; a NaN contributes nothing (branch-free, see above).
            w = col[lo - 1] if lo >= 1 else np.nan
            dw = w - shift
            dw = dw if dw == dw else 0.0
            dv = v - shift
            dv = dv if valid else 0.0
            n += (1 if valid else 0) - (1 if w == w else 0)
            s1 += dv - dw
            s2 += dv * dv - dw * dw
            if n == 0 or (n == 1 and valid):  # empty, or only the new value: re-anchor exactly
                shift = v if valid else 0.0
                s1 = 0.0
                s2 = 0.0
                peak = 0.0
            peak = s2 if s2 > peak else peak
        count[t] = n
        if n == 0:
            mean[t] = np.nan
            m2[t] = np.nan
        elif run_len >= n:
            mean[t] = run_val
            m2[t] = 0.0
        else:
            q = s2 - s1 * s1 / n
            if q < _CANCEL * peak:
                n, shift, s1, s2 = _direct_sums(col, max(lo, 0), hi)
                peak = s2
                since = 0
                q = s2 - s1 * s1 / n
            mean[t] = shift + s1 / n
            m2[t] = q if q > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _rolling_max_col(col, window, need, idx, out):
    """Rolling max of the valid values of col over rows t-window+1 .. t into out (monotonic deque
    of row indices in idx, length >= T); NaN where col[t] is NaN or fewer than `need` are valid."""
    T = col.shape[0]
    head = 0
    tail = 0
    nvalid = 0
    for t in range(T):
        while head < tail and idx[head] <= t - window:
            head += 1
        if t >= window and not np.isnan(col[t - window]):
            nvalid -= 1
        v = col[t]
        if np.isnan(v):
            out[t] = np.nan
            continue
        nvalid += 1
        while tail > head and col[idx[tail - 1]] <= v:
            tail -= 1
        idx[tail] = t
        tail += 1
        out[t] = col[idx[head]] if nvalid >= need else np.nan


@numba.njit(cache=True, nogil=True)
def rolling_max(x, window, min_periods):
    """Max of the valid values of x in rows t-window+1 .. t; NaN where x[t] is NaN."""
    _check_window(window, min_periods)
    T, N = x.shape
    out = np.empty((T, N))
    idx = np.empty(T, np.int64)
    res = np.empty(T)
    need = max(min_periods, 1)
    for j in range(N):
        _rolling_max_col(x[:, j], window, need, idx, res)
        out[:, j] = res
    return out


@numba.njit(cache=True, nogil=True)
def drawdown(close, window, min_periods):
    """close[t] / rolling_max(close, window, min_periods)[t] - 1: fall from the rolling high, <= 0
    for positive prices (0 at a new high)."""
    _check_window(window, min_periods)
    T, N = close.shape
    out = np.empty((T, N))
    idx = np.empty(T, np.int64)
    res = np.empty(T)
    need = max(min_periods, 1)
    for j in range(N):
        _rolling_max_col(close[:, j], window, need, idx, res)
        for t in range(T):
            m = res[t]
            out[t, j] = close[t, j] / m - 1.0 if m != 0.0 else np.nan
    return out


@numba.njit(cache=True, nogil=True)
def pct_change(close, window):
    """close[t] / close[t-window] - 1, by rows (a NaN at either end gives NaN; no filling)."""
    if window < 1:
        raise ValueError("window must be >= 1")
    T, N = close.shape
    out = np.empty((T, N))
    for j in range(N):
        for t in range(T):
            if t < window:
                out[t, j] = np.nan
                continue
            a = close[t - window, j]
            b = close[t, j]
            out[t, j] = b / a - 1.0 if a != 0.0 else np.nan  # NaN propagates
    return out


@numba.njit(cache=True, nogil=True)
def return_zscore(close, window, vol_window, min_periods):
    """The `window`-row return in units of its volatility:

        pct_change(close, window)[t] / (std(r[t-vol_window+1 .. t]) * sqrt(window))

    with daily returns r[t] = close[t] / close[t-1] - 1 (NaN if either is NaN) and the sample
    std (ddof=1) over the valid returns in the vol window; `min_periods` counts those returns
    (at least 2 are needed). A zero std gives NaN.
    """
    if window < 1:
        raise ValueError("window must be >= 1")
    _check_window(vol_window, min_periods)
    T, N = close.shape
    out = np.empty((T, N))
    r = np.empty(T)
    count = np.empty(T, np.int64)
    mean = np.empty(T)
    m2 = np.empty(T)
    need = max(min_periods, 2)
    scale = np.sqrt(window)
    for j in range(N):
        r[0] = np.nan
        for t in range(1, T):
            a = close[t - 1, j]
            r[t] = close[t, j] / a - 1.0 if a != 0.0 else np.nan
        _window_moments(r, vol_window, 0, count, mean, m2)
        for t in range(T):
            out[t, j] = np.nan
            if t < window or count[t] < need:
                continue
            a = close[t - window, j]
            sd = np.sqrt(m2[t] / (count[t] - 1))
            if a != 0.0 and sd > 0.0:
                out[t, j] = (close[t, j] / a - 1.0) / (sd * scale)
    return out


@numba.njit(cache=True, nogil=True)
def trailing_zscore(x, window, min_periods):
    """(x[t] - mean) / std with mean and sample std (ddof=1) of the valid values of x in the
    prior rows t-window .. t-1 (x[t] itself excluded). Needs max(min_periods, 2) valid prior
    values; a zero std gives NaN. The z-score for southbound flows and ADR premia."""
    _check_window(window, min_periods)
    T, N = x.shape
    out = np.empty((T, N))
    count = np.empty(T, np.int64)
    mean = np.empty(T)
    m2 = np.empty(T)
    need = max(min_periods, 2)
    for j in range(N):
        _window_moments(x[:, j], window, 1, count, mean, m2)
        for t in range(T):
            out[t, j] = np.nan
            v = x[t, j]
            if np.isnan(v) or count[t] < need:
                continue
            sd = np.sqrt(m2[t] / (count[t] - 1))
            if sd > 0.0:
                out[t, j] = (v - mean[t]) / sd
    return out


@numba.njit(cache=True, nogil=True)
def trailing_percentile(x, window, min_periods):
    """Fraction (0..1) of the valid values of x in the prior rows t-window .. t-1 that are
    <= x[t]. Needs max(min_periods, 1) valid prior values. O(T * window) per column."""
    _check_window(window, min_periods)
    T, N = x.shape
    out = np.empty((T, N))
    col = np.empty(T)
    need = max(min_periods, 1)
    for j in range(N):
        col[:] = x[:, j]  # contiguous copy: the inner loop scans it
        nvalid = 0  # valid values in rows t-window .. t-1
        for t in range(T):
            if t >= 1 and not np.isnan(col[t - 1]):
                nvalid += 1
            if t >= window + 1 and not np.isnan(col[t - window - 1]):
                nvalid -= 1
            v = col[t]
            if np.isnan(v) or nvalid < need:
                out[t, j] = np.nan
                continue
            below = 0
            for k in range(max(t - window, 0), t):
                if col[k] <= v:  # False for NaN
                    below += 1
            out[t, j] = below / nvalid
    return out


@numba.njit(cache=True, nogil=True)
def ratio_to_trailing_mean(x, y, window, min_periods):
    """x[t] / mean of the valid values of y in the prior rows t-window .. t-1, e.g. southbound net
    buy / average daily turnover. x and y have the same shape. NaN if that mean is 0 or NaN
    (fewer than max(min_periods, 1) valid values)."""
    _check_window(window, min_periods)
    if x.shape != y.shape:
        raise ValueError("x and y must have the same shape")
    T, N = x.shape
    out = np.empty((T, N))
    count = np.empty(T, np.int64)
    mean = np.empty(T)
    m2 = np.empty(T)
    need = max(min_periods, 1)
    for j in range(N):
        _window_moments(y[:, j], window, 1, count, mean, m2)
        for t in range(T):
            m = mean[t]
            if count[t] < need or m == 0.0:
                out[t, j] = np.nan
            else:
                out[t, j] = x[t, j] / m  # NaN x stays NaN
    return out


@numba.njit(cache=True, nogil=True)
def rolling_mean(x, window, min_periods):
    """Mean of the valid values of x in rows t-window+1 .. t; NaN where x[t] is NaN."""
    _check_window(window, min_periods)
    T, N = x.shape
    out = np.empty((T, N))
    count = np.empty(T, np.int64)
    mean = np.empty(T)
    m2 = np.empty(T)
    need = max(min_periods, 1)
    for j in range(N):
        _window_moments(x[:, j], window, 0, count, mean, m2)
        for t in range(T):
            ok = count[t] >= need and not np.isnan(x[t, j])
            out[t, j] = mean[t] if ok else np.nan
    return out


@numba.njit(cache=True, nogil=True)
def rolling_std(x, window, min_periods):
    """Sample std (ddof=1) of the valid values of x in rows t-window+1 .. t; NaN where x[t] is
    NaN or fewer than max(min_periods, 2) values are valid."""
    _check_window(window, min_periods)
    T, N = x.shape
    out = np.empty((T, N))
    count = np.empty(T, np.int64)
    mean = np.empty(T)
    m2 = np.empty(T)
    need = max(min_periods, 2)
    for j in range(N):
        _window_moments(x[:, j], window, 0, count, mean, m2)
        for t in range(T):
            n = count[t]
            ok = n >= need and not np.isnan(x[t, j])
            out[t, j] = np.sqrt(m2[t] / (n - 1)) if ok else np.nan
    return out


@numba.njit(cache=True, nogil=True)
def sum_last_valid(x, count, min_periods):
    """Sum of the last `count` valid (non-NaN) values of x at or before row t: windows count valid
    values, not rows (southbound flows over the last `count` Connect days, closed days skipped).
    NaN where x[t] is NaN or fewer than max(min_periods, 1) valid values exist so far. Summed
    directly per row (O(T * count)), so every output is exact to one rounding per addition."""
    _check_window(count, min_periods)
    T, N = x.shape
    out = np.empty((T, N))
    buf = np.empty(count)
    need = max(min_periods, 1)
    for j in range(N):
        n = 0  # valid values seen so far (the buffer holds the last min(n, count) of them)
        for t in range(T):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            buf[n % count] = v
            n += 1
            if n < need:
                out[t, j] = np.nan
                continue
            m = min(n, count)
            s = 0.0
            for k in range(n - m, n):  # oldest first: the same order whatever the buffer position
                s += buf[k % count]
            out[t, j] = s
    return out


@numba.njit(cache=True, nogil=True)
def cross_rank(x):
    """Rank of each valid x[t, j] within row t, 1 = largest; ties share the best (smallest) rank,
    as pandas `rank(axis=1, ascending=False, method="min")`. NaN stays NaN and is not counted."""
    T, N = x.shape
    out = np.empty((T, N))
    for t in range(T):
        for j in range(N):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            above = 0
            for k in range(N):
                if x[t, k] > v:  # False for NaN
                    above += 1
            out[t, j] = above + 1.0
    return out


@numba.njit(cache=True, nogil=True)
def cross_percentile(x):
    """Fraction (0..1] of the valid values in row t that are <= x[t, j] (1 = the largest; ties all
    get the highest), as pandas `rank(axis=1, pct=True, method="max")`. NaN stays NaN."""
    T, N = x.shape
    out = np.empty((T, N))
    for t in range(T):
        n = 0
        for k in range(N):
            n += 0 if np.isnan(x[t, k]) else 1
        for j in range(N):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            below = 0
            for k in range(N):
                if x[t, k] <= v:
                    below += 1
            out[t, j] = below / n
    return out


@numba.njit(cache=True, nogil=True)
def overnight_return(price, close):
    """price[t] / close[t-1] - 1: a price seen before the open of t against the previous HK close
    (the ADR's overnight move in HK$). NaN on row 0, where either is NaN or close[t-1] is 0."""
    T, N = close.shape
    out = np.empty((T, N))
    for j in range(N):
        out[0, j] = np.nan
        for t in range(1, T):
            a = close[t - 1, j]
            out[t, j] = price[t, j] / a - 1.0 if a != 0.0 else np.nan
    return out


@numba.njit(cache=True, nogil=True)
def overnight_gap(price, close):
    """overnight_return(price, close)[t] - (close[t] / close[t-1] - 1): how much further the ADR moved
    overnight than the HK line moved by its close (negative: the ADR fell more)."""
    T, N = close.shape
    out = np.empty((T, N))
    for j in range(N):
        out[0, j] = np.nan
        for t in range(1, T):
            a = close[t - 1, j]
            if a != 0.0:
                out[t, j] = (price[t, j] / a - 1.0) - (close[t, j] / a - 1.0)
            else:
                out[t, j] = np.nan
    return out
