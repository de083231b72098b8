"""Event study of a strategy's entry signals (DESIGN §6): what the price did after each signal.

Signals are the entry rule's conditions, one by one, and the whole entry rule, evaluated from the
stacked features exactly as the simulation kernel evaluates them (a NaN feature never holds; the
rule holds when at least k of its conditions hold). Every signal row counts, including rows on
which the strategy could not enter because it already held the symbol.

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
  moving-block bootstrap over dates: blocks of h consecutive rows (all symbols of a row move
  together), ceil(T / h) blocks per resample, `n_boot` resamples from a fixed seed, the 2.5th and
  97.5th percentiles of the resampled means (resamples without an observation are dropped).
  Blocks of h rows keep the overlap of h-day forward windows and the cross-section of one date
  inside a block, which an independent bootstrap of observations would break and so understate
  the interval.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from backtest.rules import CompiledRule, Rule

HORIZONS = (1, 5, 10, 20)
N_BOOT = 1000
SEED = 20240229
POOLED = "*"
COLUMNS = ["signal", "symbol", "horizon", "n", "mean", "median", "hit_rate", "ci_low", "ci_high",
           "uncond_n", "uncond_mean", "uncond_median", "uncond_hit_rate", "excess_mean"]
_OPS = (np.less_equal, np.greater_equal, np.less, np.greater)  # in backtest.rules.OPS order


def signal_masks(feats: np.ndarray, rule: CompiledRule) -> np.ndarray:
    """(C + 1, T, N) bool: where each of the rule's C conditions holds, then the rule itself."""
    _, n_t, n_s = feats.shape
    n_c = rule.feat.shape[0]
    out = np.zeros((n_c + 1, n_t, n_s), dtype=bool)
    for c in range(n_c):
        out[c] = _OPS[rule.op[c]](feats[rule.feat[c]], rule.thr[c])  # False where the feature is NaN
    if rule.k > 0:
        out[n_c] = out[:n_c].sum(axis=0) >= rule.k
    return out


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


def bootstrap_means(sums: np.ndarray, counts: np.ndarray, block: int, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K) means of circular moving-block resamples of rows; NaN where a resample is empty.

    sums, counts: (T, K) per-row sums and counts of observations of K groups; resampling rows
    keeps every group's observations of a date together.
    """
    n = sums.shape[0]
    block = max(1, min(block, n))
    starts = rng.integers(0, n, size=(n_boot, -(-n // block)))
    rows = (starts + (np.arange(n_boot) * n)[:, None]).ravel()
    w = np.bincount(rows, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    s = w @ _block_sums(sums, block)
    c = w @ _block_sums(counts, block)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / c, np.nan)


def _describe(fwd: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """n, mean, median, hit rate of fwd where mask: per column, then pooled (last)."""
    x = np.where(mask, fwd, np.nan)
    n = np.append(mask.sum(axis=0), mask.sum())
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # symbols without observations
        total = np.append(np.nansum(x, axis=0), np.nansum(x))
        ups = np.append((x > 0).sum(axis=0), (x > 0).sum())
        med = np.append(np.nanmedian(x, axis=0), np.median(fwd[mask]) if n[-1] else np.nan)
        return n, np.where(n > 0, total / n, np.nan), med, np.where(n > 0, ups / n, np.nan)


def event_study(feats: np.ndarray, rule: Rule, compiled: CompiledRule, open_: np.ndarray,
                close: np.ndarray, symbols: tuple[str, ...] | list[str], fill: str,
                horizons: tuple[int, ...] = HORIZONS, n_boot: int = N_BOOT,
                seed: int = SEED) -> pd.DataFrame:
    """One row per (signal, symbol, horizon) with the columns of `COLUMNS`.

    feats: the (F, T, N) feature stack the rule was compiled against; rule / compiled: the entry
    rule and its compiled form; open_, close: (T, N) prices; fill: `cfg.execution.fill`.
    Signals are the conditions (labelled `str(cond)`) then the rule (`str(rule)`); symbols are
    "*" (pooled) then each symbol in panel order. Deterministic for a given seed.
    """
    labels = [str(c) for c in rule.conds] + [str(rule)]
    masks = signal_masks(feats, compiled)
    fwd_all = forward_returns(open_, close, fill, horizons)
    n_sig, n_sym, n_h = len(labels), len(symbols), len(horizons)
    res = np.full((n_sig, n_sym + 1, n_h, len(COLUMNS) - 3), np.nan)
    for i, h in enumerate(horizons):
        fwd = fwd_all[i]
        valid = ~np.isnan(fwd)
        un, umean, umed, uhit = _describe(fwd, valid)
        sums, counts = [], []
        for s in range(n_sig):
            m = masks[s] & valid
            n, mean, med, hit = _describe(fwd, m)
            res[s, :, i, :4] = np.column_stack([n, mean, med, hit])
            res[s, :, i, 6:10] = np.column_stack([un, umean, umed, uhit])
            res[s, :, i, 10] = mean - umean
            x = np.where(m, fwd, 0.0)
            sums += [x, x.sum(axis=1, keepdims=True)]
            counts += [m, m.sum(axis=1, keepdims=True)]
        boot = bootstrap_means(np.hstack(sums), np.hstack(counts).astype(np.float64), h, n_boot,
                               np.random.default_rng([seed, h]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # groups without observations
            lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
        res[:, :, i, 4] = lo.reshape(n_sig, n_sym + 1)
        res[:, :, i, 5] = hi.reshape(n_sig, n_sym + 1)
    # Pooled first: move the last symbol slot to the front.
    res = np.concatenate([res[:, -1:], res[:, :-1]], axis=1)
    sym = [POOLED, *symbols]
    df = pd.DataFrame(res.reshape(-1, res.shape[-1]), columns=COLUMNS[3:])
    df.insert(0, "horizon", np.tile(np.asarray(horizons, dtype=np.int64), n_sig * (n_sym + 1)))
    df.insert(0, "symbol", np.tile(np.repeat(np.asarray(sym, dtype=object), n_h), n_sig))
    df.insert(0, "signal", np.repeat(np.asarray(labels, dtype=object), (n_sym + 1) * n_h))
    for col in ("n", "uncond_n"):
        df[col] = df[col].astype(np.int64)
    return df
