"""Robustness of a parameter sweep: deflated Sharpe ratio, PBO by CSCV, walk-forward selection.

Every function here works on **block power sums**, the sweep's summary of each combination's
daily returns (docs/robustness.md). The backtest is cut into S contiguous blocks; for combination
p and block s the sweep kernel records

    n[p, s]  = number of daily returns r_t in the block
    s1[p, s] = sum r_t    s2[p, s] = sum r_t**2    s3[p, s] = sum r_t**3    s4[p, s] = sum r_t**4

with r_t the simple daily return of the combination's equity. Sums add, so the mean, variance,
skewness and kurtosis of the returns over any union of blocks follow exactly from the column sums
over those blocks, and so does the Sharpe ratio of the concatenated returns. All arrays have the
same shape (P, S) (or (S,) for one combination); `blocks` selects columns.

Conventions, as in backtest/metrics.py: simple daily returns, annualisation factor 252, standard
deviation with ddof=1, risk-free rate annual and divided by 252. Skewness and kurtosis are the
moment estimators of the sample itself (scipy.stats.skew / kurtosis with bias=True, kurtosis
non-excess, 3 for a normal). The deflated and probabilistic Sharpe ratios take **per-period**
(daily, non-annualised) Sharpe ratios, as in the papers.

References
----------
Bailey, D. H. and Lopez de Prado, M. (2012). The Sharpe Ratio Efficient Frontier. Journal of
    Risk 15(2), 3-44.
Bailey, D. H. and Lopez de Prado, M. (2014). The Deflated Sharpe Ratio: Correcting for Selection
    Bias, Backtest Overfitting and Non-Normality. Journal of Portfolio Management 40(5), 94-107.
Bailey, D. H., Borwein, J. M., Lopez de Prado, M. and Zhu, Q. J. (2017). The Probability of
    Backtest Overfitting. Journal of Computational Finance 20(4), 39-69 (SSRN 2326253, 2015).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import NamedTuple

import numpy as np

from backtest.metrics import PERIODS

METRICS = ("sharpe", "mean", "total_return")
SWEEP_METRICS = {"sharpe": "sharpe", "total_return": "total_return", "cagr": "total_return"}
"""sweep.metric -> the metric PBO and walk-forward compute from block sums (`robust_metric`)."""
MAX_SPLITS = 12_870  # C(16, 8): every split for S <= 16; larger S is sampled down to this
_CHUNK_ELEMENTS = 500_000  # (combinations x splits) elements per array per chunk in pbo_cscv (4 MB)
ROWS = 65_536  # combinations the statistics read at once from (P, S) sums (`row_blocks`)
_EPS = np.finfo(np.float64).eps


class Moments(NamedTuple):
    """Per-combination moments of the daily returns over the selected blocks."""

    mean: np.ndarray
    std: np.ndarray  # ddof=1
    skew: np.ndarray  # m3 / m2**1.5
    kurt: np.ndarray  # m4 / m2**2, non-excess (3 for a normal)


# ---------------------------------------------------------------- block sums -> statistics


def _as_sums(*arrays) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = out[0].shape
    if out[0].ndim == 0 or any(a.shape != shape for a in out):
        raise ValueError(f"power sums must share one shape (..., S); got {[a.shape for a in out]}")
    return out


def _mapping(a) -> mmap.mmap | None:
    """The file mapping behind a memory-mapped array or a view of one, else None."""
    while a is not None and not isinstance(a, mmap.mmap):
        a = getattr(a, "base", None)
    return a


def row_blocks(arrays: list[np.ndarray], rows=None, size: int | None = None):
    """(ids, [a[ids] for a in arrays]) for consecutive groups of at most `size` (default ROWS) of the combinations
    `rows` (sorted row indices; None: all rows). Memory-mapped arrays (the sweep's block sums) are
    read group by group and their pages released after each read, so a statistic over a million
    combinations holds one group in memory, not the whole file."""
    size = size or ROWS
    ids_all = np.arange(arrays[0].shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    drop = getattr(mmap, "MADV_DONTNEED", None)  # (not on Windows: the pages then stay mapped)
    maps = {id(m): m for m in map(_mapping, arrays) if m is not None and drop is not None}.values()
    for lo in range(0, max(ids_all.size, 1), size):
        ids = ids_all[lo:lo + size]
        if ids.size and ids[-1] - ids[0] + 1 == ids.size:  # consecutive rows: one slice, no gather
            blk = [np.array(a[ids[0]:ids[-1] + 1]) for a in arrays]
        else:
            blk = [np.asarray(a)[ids] for a in arrays]
        for m in maps:
            m.madvise(drop)  # drop the mapped pages from this process (the page cache keeps them)
        yield ids, blk


def _block_mask(blocks, n_blocks: int) -> np.ndarray:
    """Boolean mask over the S blocks from None (all), block indices or a boolean mask."""
    if blocks is None:
        return np.ones(n_blocks, dtype=bool)
    b = np.asarray(blocks)
    if b.dtype == bool:
        if b.shape != (n_blocks,):
            raise ValueError(f"boolean blocks mask must have length {n_blocks}, got {b.shape}")
        return b.copy()
    idx = b.astype(np.int64).ravel()
    if idx.size and (idx.min() < -n_blocks or idx.max() >= n_blocks):
        raise ValueError(f"block index out of range for {n_blocks} blocks: {idx.tolist()}")
    mask = np.zeros(n_blocks, dtype=bool)
    mask[idx] = True
    if mask.sum() != idx.size:
        raise ValueError(f"repeated block index: {idx.tolist()}")
    return mask


def _union(arrays: list[np.ndarray], blocks) -> list[np.ndarray]:
    mask = _block_mask(blocks, arrays[0].shape[-1])
    return [a[..., mask].sum(axis=-1) for a in arrays]


def _sum_squares(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """sum (r - mean)^2 = s2 - s1^2 / n, set to 0 where it is within rounding error of 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ss = s2 - s1 * (s1 / n)
    # Rounding in s1, s2 (each a sum of n terms) leaves an error of order n * eps * s2 here; a
    # smaller result is indistinguishable from a constant series.
    return np.where(ss > 4.0 * _EPS * n * s2, ss, 0.0)


def _sharpe(n, s1, s2, risk_free: float = 0.0, periods: int = PERIODS) -> np.ndarray:
    ss = _sum_squares(n, s1, s2)
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = s1 / n - risk_free / periods
        sr = excess * np.sqrt(periods * (n - 1.0) / ss)
        # constant returns: +-inf, or NaN when the excess return is 0 too (as metrics.sharpe)
        sr = np.where(ss > 0, sr, np.where(excess == 0, np.nan, np.sign(excess) * np.inf))
    return np.where(n >= 2, sr, np.nan)


def robust_metric(sweep_metric: str) -> tuple[str, str]:
    """(metric for PBO and walk-forward, note) for a sweep's ranking metric.

    Sharpe is exact from the block sums; total return and CAGR rank alike over one set of blocks
    and come from the sum of log(1 + r) to fourth order (`_metric`); Sortino, max drawdown and win
    rate are not sums over blocks, so PBO and walk-forward rank those sweeps by Sharpe, and the
    note says so."""
    if sweep_metric in SWEEP_METRICS:
        return SWEEP_METRICS[sweep_metric], ""
    return "sharpe", (f"sweep.metric = {sweep_metric} cannot be computed per time block from the sweep's power "
                      "sums; PBO and walk-forward rank by Sharpe instead")



def _perf(arrays, metric: str) -> np.ndarray:
    """`_metric` of a list of sums [n, s1, s2] or [n, s1, s2, s3, s4]."""
    return _metric(arrays[0], arrays[1], arrays[2], metric, *arrays[3:])


def _metric(n, s1, s2, metric: str, s3=None, s4=None) -> np.ndarray:
    """Performance over a union of blocks from its sums. total_return: exp(G) - 1 with
    G = S1 - S2 / 2 + S3 / 3 - S4 / 4, the sum of log(1 + r) to fourth order (error below
    |r|^5 / 5 a day: 2e-7 at a 5 % day)."""
    if metric == "sharpe":
        return _sharpe(n, s1, s2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if metric == "total_return":
            if s3 is None or s4 is None:
                raise ValueError("metric 'total_return' needs the third and fourth power sums (s3, s4)")
            return np.where(n >= 1, np.expm1(s1 - s2 / 2.0 + s3 / 3.0 - s4 / 4.0), np.nan)
        return np.where(n >= 1, s1 / n, np.nan)


def moments(n, s1, s2, s3, s4, blocks=None) -> Moments:
    """Mean, standard deviation (ddof=1), skewness and kurtosis over a union of blocks, exactly.

    With N, S1..S4 the sums over the selected blocks and mu = S1 / N:

        std  = sqrt((S2 - S1 mu) / (N - 1))
        m2   = (S2 - S1 mu) / N
        m3   = S3 / N - 3 mu S2 / N + 2 mu^3
        m4   = S4 / N - 4 mu S3 / N + 6 mu^2 S2 / N - 3 mu^4
        skew = m3 / m2^(3/2)            kurt = m4 / m2^2   (non-excess, Pearson)

    identical to scipy.stats.skew and scipy.stats.kurtosis(fisher=False) with bias=True on the
    concatenated returns. The raw-moment form loses about (|mu| / sigma)^k * eps in relative
    precision for moment k, negligible for daily returns (|mu| / sigma < 1). NaN where N < 2
    (std) or where the returns are constant (skew, kurt).

    `blocks`: None for all blocks, a sequence of block indices, or a boolean mask of length S.
    Arrays of shape (P, S) give arrays of shape (P,).
    """
    n, s1, s2, s3, s4 = _union(_as_sums(n, s1, s2, s3, s4), blocks)
    ss = _sum_squares(n, s1, s2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = s1 / n
        std = np.where(n >= 2, np.sqrt(ss / (n - 1.0)), np.nan)
        m2 = ss / n
        m3 = s3 / n - 3.0 * mu * (s2 / n) + 2.0 * mu**3
        m4 = s4 / n - 4.0 * mu * (s3 / n) + 6.0 * mu**2 * (s2 / n) - 3.0 * mu**4
        ok = (n >= 1) & (m2 > 0)
        skew = np.where(ok, m3 / np.where(ok, m2, 1.0) ** 1.5, np.nan)
        kurt = np.where(ok, m4 / np.where(ok, m2, 1.0) ** 2, np.nan)
    mean = np.where(n >= 1, mu, np.nan)
    return Moments(mean[()], std[()], skew[()], kurt[()])


def sharpe_from_sums(n, s1, s2, blocks=None, risk_free: float = 0.0,
                     periods: int = PERIODS) -> np.ndarray:
    """Sharpe ratio over a union of blocks: (mean - rf / periods) / std * sqrt(periods).

    The same definition as backtest.metrics.sharpe on the concatenated returns (std with ddof=1,
    annual risk-free rate `risk_free`). `periods=252` (default) gives the annualised ratio;
    `periods=1` gives the per-period (daily) ratio the deflated and probabilistic Sharpe ratios
    expect (then `risk_free` is a per-day rate). NaN where N < 2; constant returns give +-inf, or
    NaN when their excess return is 0 (a combination that never trades), as metrics.sharpe.
    """
    n, s1, s2 = _union(_as_sums(n, s1, s2), blocks)
    return _sharpe(n, s1, s2, risk_free, periods)[()]


# ---------------------------------------------------------------- PSR and DSR


def probabilistic_sharpe_ratio(sr, sr_benchmark, n_obs, skew, kurt):
    """PSR(SR*): probability that the true Sharpe ratio exceeds `sr_benchmark`.

        PSR = Phi( (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

    Bailey and Lopez de Prado (2012), restated in Bailey and Lopez de Prado (2014).
    SR and SR* are **per-period** Sharpe ratios (daily returns: divide an annualised ratio by
    sqrt(252)); T = `n_obs` is the number of returns; g3 = `skew`; g4 = `kurt`, non-excess
    (3 for normal returns). The denominator is the asymptotic standard deviation of the Sharpe
    estimate times sqrt(T - 1) (Mertens 2002); it is positive whenever g4 >= g3^2 + 1, which
    the sample moments of any series satisfy. NaN where T < 2 or the denominator is not positive.
    Broadcasts over arrays.
    """
    from scipy.special import ndtr  # = scipy.stats.norm.cdf bit for bit, without scipy.stats' ~0.6 s import

    sr, sr_b, t, g3, g4 = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64)
                                                for x in (sr, sr_benchmark, n_obs, skew, kurt)))
    den = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2
    ok = (t >= 2) & (den > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (sr - sr_b) * np.sqrt(t - 1.0) / np.sqrt(np.where(ok, den, 1.0))
    return np.where(ok, ndtr(z), np.nan)[()]


def expected_max_sharpe(n_trials, sr_trials_var):
    """SR0: expected maximum of `n_trials` Sharpe estimates when every true Sharpe ratio is 0.

        SR0 = sqrt(V) * ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))

    Bailey and Lopez de Prado (2014), from the extreme-value approximation of the
    maximum of N independent normals; g = 0.5772... (Euler-Mascheroni), N = `n_trials`,
    V = `sr_trials_var`, the variance of the trials' Sharpe estimates, in the **per-period** units
    of the Sharpe ratio it will be compared with (annualised variance / 252 for daily returns).
    N = 1 gives 0 (the bracket is clamped at 0, the exact value for one trial). The approximation
    overstates the exact expected maximum of N standard normals by about 2 % at N = 10 and 1 % at
    N = 100, i.e. it errs on the strict side. N need not be an integer (an effective number of
    independent trials); N < 1 raises ValueError.
    """
    from scipy.special import ndtri  # = scipy.stats.norm.ppf bit for bit, without importing scipy.stats

    n_trials = np.asarray(n_trials, dtype=np.float64)
    if np.any(~(n_trials >= 1)):
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    g = np.euler_gamma
    with np.errstate(divide="ignore"):
        z = (1.0 - g) * ndtri(1.0 - 1.0 / n_trials) + g * ndtri(1.0 - 1.0 / (n_trials * np.e))
    return (np.sqrt(np.asarray(sr_trials_var, dtype=np.float64)) * np.maximum(z, 0.0))[()]


def deflated_sharpe_ratio(sr, n_obs, skew, kurt, n_trials, sr_trials_var):
    """DSR: probability that the selected strategy's true Sharpe ratio is above the expected
    maximum of `n_trials` skill-less trials, i.e. PSR(SR0) with SR0 = expected_max_sharpe.

        DSR = Phi( (SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

    Bailey and Lopez de Prado (2014). **All Sharpe quantities per period**:
    `sr` is the selected strategy's daily (non-annualised) Sharpe ratio, `sr_trials_var` the
    variance across all trials of their daily Sharpe ratios (annualised values: divide the ratio
    by sqrt(252) and the variance by 252). `n_obs` is the number of daily returns behind `sr`,
    `skew` and `kurt` (non-excess) their moments. `n_trials` is the number of *independent* trials;
    the P combinations of a sweep are correlated, so P is an upper bound and gives a strict
    (low) DSR. Read DSR like 1 - p-value: 0.95 or more rejects "no skill" at 5 %.
    """
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n_trials, sr_trials_var),
                                      n_obs, skew, kurt)


def effective_trials(series) -> float:
    """Effective number of independent trials among M correlated ones (Nyholt 2004):

        M_eff = 1 + (M - 1) (1 - Var(lambda) / M)  =  M - sum_{i != j} rho_ij^2 / M

    lambda: the eigenvalues of the M x M correlation matrix of the trials' return series (rows of
    `series`, (M, S)); Var with divisor M - 1 (the eigenvalues average 1). M identical series give
    1, M uncorrelated ones M. Constant rows (a combination that never trades) carry no
    information and are left out; the sum of rho^2 comes from the S x S Gram matrix, so the cost
    is O(M S^2), not O(M^2 S). Nyholt, D. R. (2004), A simple correction for multiple testing for
    single-nucleotide polymorphisms in linkage disequilibrium with each other, American Journal
    of Human Genetics 74(4), 765-769.
    """
    if np.ndim(series) != 2 or np.shape(series)[1] < 2:
        raise ValueError(f"effective_trials needs (M, S >= 2) series, got shape {np.shape(series)}")
    return trials_from_gram(*trials_gram(series))


def trials_gram(series) -> tuple[np.ndarray, int]:
    """(S x S Gram matrix Z^T Z, M) of the rows of `series` (M, S) that are finite and not
    constant, each centred and scaled to unit norm (Z). Gram matrices of groups of rows add up, so
    `effective_trials` of a million series can be computed a group at a time (`trials_from_gram`)."""
    x = np.asarray(series, dtype=np.float64)
    x = x[np.all(np.isfinite(x), axis=1)]
    x = x - x.mean(axis=1, keepdims=True)
    norm_ = np.sqrt((x * x).sum(axis=1))
    z = x[norm_ > 0] / norm_[norm_ > 0, None]
    return z.T @ z, z.shape[0]  # trace((Z Z^T)^2) = ||Z^T Z||_F^2 = sum of squared correlations


def trials_from_gram(gram: np.ndarray, m: int) -> float:
    """`effective_trials` from the summed `trials_gram` of all the series."""
    if m <= 1:
        return float(max(m, 1))
    sum_sq = float((gram * gram).sum())
    return float(min(max(m - (sum_sq - m) / m, 1.0), m))


# ---------------------------------------------------------------- PBO by CSCV


@dataclass(frozen=True)
class PBOResult:
    """Outcome of pbo_cscv. K splits; splits[k] and splits[k + K/2] are complements."""

    pbo: float  # fraction of splits with logit <= 0
    logits: np.ndarray  # (K,) ln(w / (1 - w)), w = OOS relative rank of the in-sample best
    is_best: np.ndarray  # (K,) index of the in-sample best combination
    is_perf: np.ndarray  # (K,) its in-sample performance
    oos_perf: np.ndarray  # (K,) its out-of-sample performance
    splits: np.ndarray  # (K, S) bool, the in-sample blocks of each split
    slope: float  # OLS oos_perf = intercept + slope * is_perf (performance degradation)
    intercept: float
    prob_oos_loss: float  # fraction of splits with oos_perf < 0
    metric: str


def _unrank(rank: int, items: list[int], k: int) -> list[int]:
    """The `rank`-th (0-based) k-combination of `items` in lexicographic order."""
    out: list[int] = []
    m = len(items)
    i = 0
    while k > 0:
        c = comb(m - i - 1, k - 1)  # combinations whose next element is items[i]
        if rank < c:
            out.append(items[i])
            k -= 1
        else:
            rank -= c
        i += 1
    return out


def _cscv_halves(n_blocks: int, n_splits: int | None, seed: int) -> np.ndarray:
    """In-sample masks of the splits that contain block 0, one per complementary pair."""
    half = n_blocks // 2
    total_pairs = comb(n_blocks - 1, half - 1)
    want = MAX_SPLITS if n_splits is None else int(n_splits)
    if want < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    pairs = min(total_pairs, -(-want // 2))
    if pairs == total_pairs:
        chosen = [(0, *c) for c in combinations(range(1, n_blocks), half - 1)]
    else:
        ranks = np.sort(np.random.default_rng(seed).choice(total_pairs, pairs, replace=False))
        chosen = [(0, *_unrank(int(r), list(range(1, n_blocks)), half - 1)) for r in ranks]
    masks = np.zeros((len(chosen), n_blocks), dtype=bool)
    for i, c in enumerate(chosen):
        masks[i, list(c)] = True
    return masks


def _argbest(perf: np.ndarray) -> np.ndarray:
    """Index of the highest value along the last axis (combinations); NaN ranks lowest, ties go
    to the lowest index."""
    return np.where(np.isnan(perf), -np.inf, perf).argmax(axis=-1)


def _split_perf(blk: list[np.ndarray], halves: np.ndarray, size: int, metric: str):
    """Per chunk of at most `size` complementary pairs: (slice of the pairs, performance over
    each in-sample half (k, R), over its complement (k, R)) of one group of combinations."""
    sums_t = [np.ascontiguousarray(x.T) for x in blk]  # (S, R)
    totals = [x.sum(axis=0) for x in sums_t]
    for lo in range(0, len(halves), size):
        hi = min(lo + size, len(halves))
        mask = halves[lo:hi].astype(np.float64)  # (k, S): the halves holding block 0
        sums_a = [mask @ x for x in sums_t]  # (k, R) sums over each half
        yield slice(lo, hi), _perf(sums_a, metric), _perf([tot - a for tot, a in zip(totals, sums_a)], metric)


def pbo_cscv(n, s1, s2, metric: str = "sharpe", n_splits: int | None = None,
             seed: int = 0, s3=None, s4=None, rows=None) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, Lopez de Prado and Zhu (2017). The S blocks (S even) are split
    into an in-sample union J of S/2 blocks and its complement; for every split c:

        n*    = argmax_p R_p(J)                  (ties: lowest p; NaN never wins)
        w_c   = rank of Rbar_{n*} among Rbar_1..Rbar_P / (P + 1)   (average rank, 1 = worst)
        l_c   = ln(w_c / (1 - w_c))
        PBO   = #{c : l_c <= 0} / #splits

    with R, Rbar the performance over J and over its complement, computed exactly from the block
    sums: `metric="sharpe"` is the annualised Sharpe ratio of the concatenated daily returns
    (risk-free 0), `metric="mean"` the mean daily return, `metric="total_return"` the compounded
    return (needs `s3`, `s4`; see `_metric`). NaN performance (a combination that is
    flat over a union, Sharpe 0 / 0) ranks below every number. PBO near 0: the in-sample winner stays above the
    OOS median; near 0.5 or above: picking the in-sample best is no better than a coin.
    `rows` (sorted row indices; None: all) are the combinations to choose among; `is_best` holds
    row indices of the arrays.

    The degradation line is the OLS fit oos_perf = intercept + slope * is_perf over the splits
    (slope < 0: the better the in-sample result, the worse out of sample). prob_oos_loss is the
    fraction of splits whose in-sample best loses out of sample (oos_perf < 0).

    Splits: all C(S, S/2) when that is at most `n_splits` (default MAX_SPLITS = 12,870 = C(16, 8),
    so every split for S <= 16); otherwise a seeded sample of complementary pairs, rounded up to
    an even count. Cost: O(P * splits * S) time, twice (a pass finds each split's in-sample best,
    a second ranks its out-of-sample value); memory O(ROWS * chunk of splits) whatever P: the
    arrays (memory-mapped ones too) are read in groups of `ROWS` combinations (`row_blocks`).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    extra = metric == "total_return"
    if extra and (s3 is None or s4 is None):
        raise ValueError("metric 'total_return' needs the third and fourth power sums (s3, s4)")
    arrays = _as_sums(n, s1, s2, *((s3, s4) if extra else ()))
    n = arrays[0]
    if n.ndim != 2:
        raise ValueError(f"pbo_cscv needs (P, S) arrays, got shape {n.shape}")
    n_comb, n_blocks = (n.shape[0] if rows is None else len(rows)), n.shape[1]
    if n_comb < 2 or n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"pbo_cscv needs P >= 2 combinations and an even S >= 2 blocks, "
                         f"got P={n_comb}, S={n_blocks}")
    halves = _cscv_halves(n_blocks, n_splits, seed)
    n_pairs = len(halves)
    chunk = max(1, _CHUNK_ELEMENTS // min(n_comb, ROWS))
    k2 = 2 * n_pairs
    best = np.full(k2, -1, dtype=np.int64)
    best_v, x, y = np.full(k2, -np.inf), np.full(k2, np.nan), np.full(k2, np.nan)
    orient = lambda pa, pb: ((0, pa, pb), (n_pairs, pb, pa))  # noqa: E731 (in-sample half, then its complement)
    for ids, blk in row_blocks(arrays, rows):  # pass 1: each split's in-sample best (first of equals)
        for sl, perf_a, perf_b in _split_perf(blk, halves, chunk, metric):
            for offset, ins, oos in orient(perf_a, perf_b):
                j = _argbest(ins)
                r = np.arange(len(j))
                v = np.where(np.isnan(ins[r, j]), -np.inf, ins[r, j])
                s = slice(offset + sl.start, offset + sl.stop)
                new = (v > best_v[s]) | (best[s] < 0)
                best[s] = np.where(new, ids[j], best[s])
                best_v[s], x[s], y[s] = (np.where(new, a, b) for a, b in ((v, best_v[s]), (ins[r, j], x[s]),
                                                                          (oos[r, j], y[s])))
    target = np.where(np.isnan(y), -np.inf, y)[:, None]
    below, equal = np.zeros(k2, dtype=np.int64), np.zeros(k2, dtype=np.int64)
    for ids, blk in row_blocks(arrays, rows):  # pass 2: rank of its out-of-sample value
        for sl, perf_a, perf_b in _split_perf(blk, halves, chunk, metric):
            for offset, _, oos in orient(perf_a, perf_b):
                s = slice(offset + sl.start, offset + sl.stop)
                o = np.where(np.isnan(oos), -np.inf, oos)
                below[s] += (o < target[s]).sum(axis=1)
                equal[s] += (o == target[s]).sum(axis=1)
    w = (below + (equal + 1) / 2.0) / (n_comb + 1.0)  # average rank, 1 = worst
    logits = np.log(w / (1.0 - w))
    fin = np.isfinite(x) & np.isfinite(y)
    slope = intercept = np.nan
    if fin.sum() >= 2 and np.ptp(x[fin]) > 0:
        slope, intercept = (float(v) for v in np.polyfit(x[fin], y[fin], 1))
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        is_best=best,
        is_perf=x,
        oos_perf=y,
        splits=np.concatenate([halves, ~halves]),
        slope=slope,
        intercept=intercept,
        prob_oos_loss=float(np.mean(y < 0)),
        metric=metric,
    )


# ---------------------------------------------------------------- walk-forward


@dataclass(frozen=True)
class WalkForwardResult:
    """Outcome of walk_forward: one step per test window, in time order."""

    train: tuple[np.ndarray, ...]  # in-sample block indices of each step
    test: tuple[np.ndarray, ...]  # out-of-sample block indices of each step
    chosen: np.ndarray  # (K,) combination picked on `train`, traded on `test`
    is_perf: np.ndarray  # (K,) its in-sample metric
    oos_perf: np.ndarray  # (K,) its metric on the step's test blocks
    stitched: float  # metric of the stitched out-of-sample returns (all test blocks)
    reference: int  # full-sample best combination (LOOK-AHEAD: for comparison only)
    reference_oos: float  # its metric over the same out-of-sample blocks
    metric: str

    @property
    def steps(self) -> list[tuple[tuple[int, ...], int]]:
        """(test block indices, chosen combination) per step: what to re-run and stitch."""
        return [(tuple(int(b) for b in t), int(c)) for t, c in zip(self.test, self.chosen)]


def walk_forward(n, s1, s2, train_blocks: int, test_blocks: int = 1, anchored: bool = False,
                 metric: str = "sharpe", s3=None, s4=None, rows=None) -> WalkForwardResult:
    """Walk-forward selection: pick the in-sample best on past blocks, trade it on the next ones.

    Step k tests blocks [t, t + test_blocks) (the last window is cut at S), t = train_blocks +
    k * test_blocks, and trains on blocks [t - train_blocks, t) (rolling) or [0, t)
    (`anchored=True`). The pick is argmax_p of the metric over the training blocks; ties go to the
    lowest index and NaN never wins. `metric` is "sharpe" (annualised, risk-free 0), "mean"
    (mean daily return), computed exactly from the block sums, or "total_return" (compounded,
    from `s3` and `s4` too; see `_metric`).

    `stitched` is the metric of the out-of-sample daily returns obtained by trading each step's
    pick over its test blocks, one after another. It takes each pick's returns from the sweep as
    they were, so it assumes a switch between combinations at a block boundary is free and
    instantaneous (positions a pick carried into the block are inherited). Re-run
    `result.steps` to get the exact stitched equity. `reference` is the best combination over the
    whole sample and `reference_oos` its metric over the same test blocks: it chooses with
    hindsight (look-ahead) and is a yardstick, not a strategy.

    `rows` (sorted row indices; None: all) are the combinations to choose among; `chosen` and
    `reference` are row indices of the arrays, which are read in groups of `ROWS` (`row_blocks`).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    extra = metric == "total_return"
    if extra and (s3 is None or s4 is None):
        raise ValueError("metric 'total_return' needs the third and fourth power sums (s3, s4)")
    arrays = _as_sums(n, s1, s2, *((s3, s4) if extra else ()))
    n = arrays[0]
    if n.ndim != 2:
        raise ValueError(f"walk_forward needs (P, S) arrays, got shape {n.shape}")
    n_blocks = n.shape[1]
    if (n.shape[0] if rows is None else len(rows)) < 1:
        raise ValueError("walk_forward needs at least one combination to choose from")
    if not 1 <= train_blocks < n_blocks or test_blocks < 1:
        raise ValueError(f"need 1 <= train_blocks < S={n_blocks} and test_blocks >= 1, "
                         f"got train_blocks={train_blocks}, test_blocks={test_blocks}")
    starts = range(train_blocks, n_blocks, test_blocks)
    train = tuple(np.arange(0 if anchored else t - train_blocks, t) for t in starts)
    test = tuple(np.arange(t, min(t + test_blocks, n_blocks)) for t in starts)
    train_mask = np.zeros((n_blocks, len(starts)))
    test_mask = np.zeros((n_blocks, len(starts)))
    for k, (a, b) in enumerate(zip(train, test)):
        train_mask[a, k] = 1.0
        test_mask[b, k] = 1.0
    k = len(starts)
    chosen, best_v, is_perf = np.full(k, -1, dtype=np.int64), np.full(k, -np.inf), np.full(k, np.nan)
    reference, ref_v = -1, -np.inf
    for ids, blk in row_blocks(arrays, rows):  # the first of equals wins, as _argbest over all rows
        perf = _perf([train_mask.T @ x.T for x in blk], metric)  # (K, R)
        j = _argbest(perf)
        v = perf[np.arange(k), j]
        vv = np.where(np.isnan(v), -np.inf, v)
        new = (vv > best_v) | (chosen < 0)
        chosen, best_v, is_perf = np.where(new, ids[j], chosen), np.where(new, vv, best_v), np.where(new, v, is_perf)
        total = _perf([x.sum(1) for x in blk], metric)
        j = int(_argbest(total))
        tv = -np.inf if np.isnan(total[j]) else float(total[j])
        if tv > ref_v or reference < 0:
            reference, ref_v = int(ids[j]), tv
    oos = [(x[chosen] * test_mask.T).sum(axis=1) for x in arrays]
    oos_blocks = test_mask.any(axis=1)
    return WalkForwardResult(
        train=train,
        test=test,
        chosen=chosen,
        is_perf=is_perf,
        oos_perf=_perf(oos, metric),
        stitched=float(_perf([x.sum() for x in oos], metric)),
        reference=reference,
        reference_oos=float(_perf([x[reference, oos_blocks].sum() for x in arrays], metric)),
        metric=metric,
    )
