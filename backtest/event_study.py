"""Event study of a strategy's entry signals (DESIGN §6): what the price did after each signal.

Signals are the entry rule's top-level parts (its conditions, or nested rules and modifiers), one
by one, and the whole entry rule, evaluated from the stacked features by the simulation kernel's
own evaluator (`backtest.rules.evaluate`; docs/rules.md). Every signal row counts, including rows
on which the strategy could not enter because it already held the symbol.

Definitions (docs/tearsheet.md has the longer version):

- Fill: a signal on row t fills at the open of t+1 (`fill = "next_open"`), the close of t+1
  (`"next_close"`) or the close of t (`"same_close"`), at the raw price: no slippage, no fees.
- Forward return at horizon h: `close[e] / fill_price - 1`, where e is the bar whose close ends
  h trading sessions of exposure after the fill: e = t + h for next_open (open of t+1 to the close
  of t+h) and for same_close (close of t to the close of t+h); e = t + 1 + h for next_close.
  Undefined, and left out, when the fill price or close[e] is missing or e is past the last bar.
- Unconditional: the same forward return from every row of the same symbols over the same
  dates, signal or not (per symbol: every row of that symbol; pooled: every row of every symbol).
- Statistics per (signal, horizon), pooled over symbols (`symbol == "*"`) and per symbol: count,
  mean, median, hit rate (fraction > 0), and a 95 % interval of the mean from a circular
  moving-block bootstrap over dates: blocks of L = max(horizons) consecutive rows with every
  symbol of a row, ceil(T / L) blocks per resample, `n_boot` resamples drawn once from a fixed
  seed and shared by every signal, symbol and horizon; the interval is the 2.5th and 97.5th
  percentiles of the resampled means (resamples without an observation are dropped). Blocks as
  long as the longest horizon keep overlapping forward windows, the cross-section of a date and
  runs of consecutive signal days (one dip fires on many days in a row) together; an independent
  bootstrap of observations would treat those as independent and understate the interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

import backtest.kernels  # noqa: F401  sets numba's cache directory before the @njit below
from backtest.rules import CompiledRule, FeatureRef, Rule, evaluate, leaves

HORIZONS = (1, 5, 10, 20)
N_BOOT = 1000
SEED = 20240229
POOLED = "*"
COLUMNS = ["signal", "symbol", "horizon", "n", "mean", "median", "hit_rate", "ci_low", "ci_high",
           "uncond_n", "uncond_mean", "uncond_median", "uncond_hit_rate", "excess_mean"]


def signal_masks(feats: np.ndarray, rule: Rule, compiled: CompiledRule) -> np.ndarray:
    """(S + 1, T, N) bool: where each of the rule's S top-level parts holds, then the rule itself.
    feats: the (F, T, N) stack `compiled` refers to."""
    index: dict[FeatureRef, int] = {}
    for (cond, _), slot in zip(leaves(rule), compiled.feat):
        index.setdefault(cond.feature, int(slot))
    stack = feats.transpose(0, 2, 1)  # the kernel's (F, N, T)
    return np.stack([evaluate(part, stack, index) for part in (*rule.conds, rule)])


def _lead(x: np.ndarray, k: int) -> np.ndarray:
    """Row t holds x[t + k] (NaN past the end)."""
    out = np.full_like(x, np.nan)
    if k < x.shape[0]:
        out[: x.shape[0] - k] = x[k:]
    return out


def forward_returns(open_: np.ndarray, close: np.ndarray, fill: str,
                    horizons: tuple[int, ...] = HORIZONS) -> np.ndarray:
    """(H, T, N): forward return at each horizon of a signal on row t (module docstring)."""
    if fill == "next_open":
        price, lag = _lead(open_, 1), 0
    elif fill == "next_close":
        price, lag = _lead(close, 1), 1
    elif fill == "same_close":
        price, lag = close, 0
    else:
        raise ValueError(f"unknown fill {fill!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([_lead(close, lag + h) / price - 1.0 for h in horizons])


def _block_sums(x: np.ndarray, block: int) -> np.ndarray:
    """(T, K): sums of x over the circular block of `block` rows starting at each row."""
    n = x.shape[0]
    ext = np.concatenate([x, x[: block - 1]])
    cum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(ext, axis=0)])
    return cum[block: block + n] - cum[:n]


@njit(cache=True, nogil=True)
def _resample_sums(block_sums, starts):
    """out[b] = sum over k of block_sums[starts[b, k]]: one resample's total per column."""
    n_boot, n_blocks = starts.shape
    out = np.zeros((n_boot, block_sums.shape[1]))
    for b in range(n_boot):
        for k in range(n_blocks):
            row = block_sums[starts[b, k]]
            for c in range(row.shape[0]):
                out[b, c] += row[c]
    return out


def bootstrap_means(sums: np.ndarray, counts: np.ndarray, block: int, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K) means of circular moving-block resamples of rows; NaN where a resample is empty.

    sums, counts: (T, K) per-row sums and counts of observations of K groups. A resample is
    ceil(T / block) blocks of `block` consecutive rows (wrapping at the end) with uniformly drawn
    starts, so every group's observations of a date, and of nearby dates, stay together.
    """
    n, k = sums.shape
    block = max(1, min(block, n))
    starts = rng.integers(0, n, size=(n_boot, -(-n // block)))
    tot = _resample_sums(np.ascontiguousarray(_block_sums(np.hstack([sums, counts]), block)), starts)
    s, c = tot[:, :k], tot[:, k:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / c, np.nan)


def column_quantiles(x: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """(len(q), K) quantiles of each column of x (M, K), NaN skipped, numpy's default 'linear'
    interpolation (equal to np.nanquantile, without its per-column Python loop)."""
    s = np.sort(x, axis=0)  # NaN last
    m = np.count_nonzero(~np.isnan(x), axis=0)
    out = np.full((len(q), x.shape[1]), np.nan)
    cols = np.arange(x.shape[1])
    ok = m > 0
    for i, qi in enumerate(q):
        pos = qi * (m - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
        a, b = s[np.maximum(lo, 0), cols], s[hi, cols]
        out[i] = np.where(ok, a + (b - a) * (pos - lo), np.nan)
    return out


def _describe(fwd: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """n, mean, median, hit rate of fwd where mask: per column, then pooled (last)."""
    x = np.where(mask, fwd, np.nan)
    n = np.append(mask.sum(axis=0), mask.sum())
    total = np.append(np.nansum(x, axis=0), np.nansum(x))
    ups = np.append((x > 0).sum(axis=0), (x > 0).sum())
    med = np.append(column_quantiles(x, (0.5,))[0], column_quantiles(x.reshape(-1, 1), (0.5,))[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return n, np.where(n > 0, total / n, np.nan), med, np.where(n > 0, ups / n, np.nan)


def event_study(feats: np.ndarray, rule: Rule, compiled: CompiledRule, open_: np.ndarray,
                close: np.ndarray, symbols: tuple[str, ...] | list[str], fill: str,
                horizons: tuple[int, ...] = HORIZONS, n_boot: int = N_BOOT,
                seed: int = SEED) -> pd.DataFrame:
    """One row per (signal, symbol, horizon) with the columns of `COLUMNS`.

    feats: the (F, T, N) feature stack the rule was compiled against; rule / compiled: the entry
    rule and its compiled form; open_, close: (T, N) prices; fill: `cfg.execution.fill`.
    Signals are the rule's top-level parts (labelled `str(part)`) then the rule (`str(rule)`); symbols are
    "*" (pooled) then each symbol in panel order. Deterministic for a given seed.
    """
    labels = [str(c) for c in rule.conds] + [str(rule)]
    masks = signal_masks(feats, rule, compiled)
    fwd_all = forward_returns(open_, close, fill, horizons)
    n_sig, n_sym, n_h = len(labels), len(symbols), len(horizons)
    res = np.full((n_h, n_sig, n_sym + 1, len(COLUMNS) - 3), np.nan)  # symbol slot n_sym = pooled
    sums, counts = [], []
    for i in range(n_h):
        fwd = fwd_all[i]
        valid = ~np.isnan(fwd)
        uncond = np.column_stack(_describe(fwd, valid))
        for s in range(n_sig):
            m = masks[s] & valid
            res[i, s, :, :4] = np.column_stack(_describe(fwd, m))
            res[i, s, :, 6:10] = uncond
            x = np.where(m, fwd, 0.0)
            sums += [x, x.sum(axis=1, keepdims=True)]
            counts += [m, m.sum(axis=1, keepdims=True)]
    boot = bootstrap_means(np.hstack(sums), np.hstack(counts).astype(np.float64), max(horizons), n_boot,
                           np.random.default_rng(seed))
    res[..., 4:6] = column_quantiles(boot, (0.025, 0.975)).T.reshape(n_h, n_sig, n_sym + 1, 2)
    res[..., 10] = res[..., 1] - res[..., 7]
    # Rows ordered signal, symbol (pooled first), horizon.
    res = np.concatenate([res[:, :, -1:], res[:, :, :-1]], axis=2).transpose(1, 2, 0, 3)
    sym = [POOLED, *symbols]
    df = pd.DataFrame(res.reshape(-1, res.shape[-1]), columns=COLUMNS[3:])
    df.insert(0, "horizon", np.tile(np.asarray(horizons, dtype=np.int64), n_sig * (n_sym + 1)))
    df.insert(0, "symbol", np.tile(np.repeat(np.asarray(sym, dtype=object), n_h), n_sig))
    df.insert(0, "signal", np.repeat(np.asarray(labels, dtype=object), (n_sym + 1) * n_h))
    for col in ("n", "uncond_n"):
        df[col] = df[col].astype(np.int64)
    return df
