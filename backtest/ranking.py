"""Honest ranking of a sweep (DESIGN §7): what is ranked, who may be ranked, and where the best sits.

- What is ranked (`ranked_column`): in portfolio mode the fund's metric; in independent mode the
  median over the symbols that traded of each symbol's own metric, counted from its first
  tradable bar (`rebase_symbols`), never the sum of accounts that counts idle cash as invested.
- Who may be ranked (`activity`): combinations with at least `sweep.min_trades` closed trades and
  `sweep.min_exposure` average exposure; the rest are listed but not ranked.
- Where the best sits (`grid_edges`): a pick on the first or last value of a grid parameter may
  have its optimum outside the grid.

docs/sweeps.md describes the choices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtest.grid import Grid
from backtest.metrics import DAYS_PER_YEAR, PERIODS

SYMBOL_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "exposure", "win_rate")


def rebase_symbols(by_symbol: pd.DataFrame, first: np.ndarray, dates) -> pd.DataFrame:
    """Per-symbol sweep metrics counted from each symbol's first tradable bar, not from bar 0
    (`rebase`); symbols that never trade are dropped. `first`: (N,) per symbol of the table's
    order of first appearance."""
    dates = pd.DatetimeIndex(dates)
    syms = by_symbol["symbol"].to_numpy()
    pos = pd.Index(by_symbol["symbol"].unique())
    f = np.asarray(first, dtype=np.int64)[pos.get_indexer(syms)]
    keep = f < len(dates)
    out = by_symbol.loc[keep].copy()
    cols = rebase({k: out[k].to_numpy() for k in SYMBOL_METRICS}, f[keep], listing_years(f[keep], dates), len(dates))
    for k, v in cols.items():
        out[k] = v
    return out


def listing_years(first: np.ndarray, dates) -> np.ndarray:
    """`metrics.calendar_years(dates[first[i]:])` per element (first < T): whole days from bar
    first[i] to the last date / DAYS_PER_YEAR."""
    days_or_finer = isinstance(dates, np.ndarray) and dates.dtype.kind == "M" \
        and np.datetime_data(dates.dtype)[0] not in ("Y", "M", "W", "generic")
    d = dates if days_or_finer else pd.DatetimeIndex(dates).to_numpy()
    days = (d[-1] - d[np.asarray(first, dtype=np.int64)]) // np.timedelta64(1, "D")  # floored, as Timedelta.days
    return days / DAYS_PER_YEAR


def rebase(m: dict[str, np.ndarray], f: np.ndarray, years: np.ndarray, n_t: int) -> dict[str, np.ndarray]:
    """Per-symbol metrics `m` (1-D arrays, one element per (combination, symbol) row) counted from
    the symbol's first tradable bar f (< n_t; `years`: `listing_years(f)`) instead of bar 0; the
    changed metrics only.

    The kernel measures every account over all T bars; before its symbol lists an account is
    flat (daily return exactly 0), so the metrics over the bars it exists follow exactly:
    total return, max drawdown, trades and win rate are unchanged; exposure scales by T / T';
    Sortino = S1 sqrt(252) / sqrt(n D2) scales by sqrt(n / n'); CAGR compounds the total return
    over the symbol's calendar years; Sharpe, a function of n and a = S1^2 / S2 only, is
    recomputed with n' returns (n = T - 1, n' = T - 1 - first bar; S1, S2, D2 the sums of r, r^2,
    min(r, 0)^2).
    """
    n = n_t - 1.0
    n1 = n - f
    out = {"exposure": m["exposure"] * n_t / (n_t - f), "sortino": m["sortino"] * np.sqrt(n / n1)}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out["cagr"] = np.where(years > 0, (1.0 + m["total_return"]) ** (1.0 / years) - 1.0, np.nan)
        x = m["sharpe"] / np.sqrt(PERIODS)
        a = x * x * n * n / (n - 1.0 + x * x * n)  # S1^2 / S2
        x1 = np.sqrt(np.maximum(a * (n1 - 1.0) / (n1 * (n1 - a)), 0.0))
        out["sharpe"] = np.where(np.isfinite(x) & (n1 > a) & (n1 >= 2), np.sign(x) * x1 * np.sqrt(PERIODS), m["sharpe"])
    return out


def symbol_medians(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per combination (rows of the (n, N') arrays `m`, rebased, listed symbols only): median over
    the symbols that traded of each metric (`sym_<metric>`, NaN values left out), the mean
    exposure over all symbols that exist (`sym_exposure_mean`; idle accounts count as 0; NaN when
    no symbol traded, as the medians), and how many symbols traded. Equal to the pandas groupby
    median / mean of the rows it replaced, bit for bit (up to the sign of a zero median)."""
    traded = m["trades"] > 0
    stack = np.stack([m[k] for k in SYMBOL_METRICS])
    stack[:, ~traded] = np.nan
    stack.sort(axis=-1)  # all metrics in one sort, in place; NaN last
    med = _median_sorted(stack)
    out = {f"sym_{k}": med[i] for i, k in enumerate(SYMBOL_METRICS)}
    out["symbols_traded"] = traded.sum(axis=1).astype(np.int64)
    out["sym_exposure_mean"] = np.where(out["symbols_traded"] > 0, _mean_rows(m["exposure"]), np.nan)
    return out


def _median_sorted(s: np.ndarray) -> np.ndarray:
    """Median of the non-NaN values along the last axis of `s`, sorted along it (NaN last; NaN if
    none): the middle value, or the two middle values' sum halved."""
    if not s.shape[-1]:
        return np.full(s.shape[:-1], np.nan)
    k = (~np.isnan(s)).sum(axis=-1)
    at = lambda i: np.take_along_axis(s, i[..., None], axis=-1)[..., 0]  # noqa: E731
    hi, lo = at(np.minimum(k // 2, s.shape[-1] - 1)), at(np.maximum(k // 2 - 1, 0))
    return np.where(k == 0, np.nan, np.where(k % 2 == 1, hi, (hi + lo) / 2))


def _mean_rows(x: np.ndarray) -> np.ndarray:
    """Mean of each row's non-NaN values, bit for bit as pandas' groupby mean of the rows (a
    sequential sum per group when nothing is missing; pandas itself otherwise)."""
    if not np.isnan(x).any():
        return np.add.reduceat(x.reshape(-1), np.arange(0, x.size, max(x.shape[1], 1))) / x.shape[1] \
            if x.size else np.full(len(x), np.nan)
    return pd.Series(x.reshape(-1)).groupby(np.repeat(np.arange(len(x)), x.shape[1])).mean() \
        .reindex(np.arange(len(x))).to_numpy()


def calendar_cagr(total_return: np.ndarray, dates) -> np.ndarray:
    """CAGR of each total return over the calendar span of `dates` (NaN when it is not positive)."""
    years = listing_years(np.zeros(1, np.int64), dates)[0] if len(dates) else np.nan  # = calendar_years(dates)
    if not years > 0:
        return np.full(len(total_return), np.nan)
    with np.errstate(invalid="ignore"):
        return (1.0 + total_return) ** (1.0 / years) - 1.0


def ranked_column(metric: str, table: pd.DataFrame) -> str:
    """The column a sweep ranks by: `sym_<metric>` in independent mode (when the table has it)."""
    return f"sym_{metric}" if f"sym_{metric}" in table.columns else metric


def exposure_column(table: pd.DataFrame) -> str:
    """Independent mode: the mean exposure of the symbols' accounts; portfolio: the fund's."""
    return "sym_exposure_mean" if "sym_exposure_mean" in table.columns else "exposure"


def activity(table: pd.DataFrame, min_trades: int, min_exposure: float) -> np.ndarray:
    """(P,) bool: combinations active enough to be ranked (closed trades and average exposure)."""
    return ((table["trades"].to_numpy() >= min_trades)
            & (table[exposure_column(table)].to_numpy(dtype=np.float64) >= min_exposure))


def ranking(table: pd.DataFrame, metric: str, eligible: np.ndarray | None = None) -> np.ndarray:
    """Combination ids, best first by `ranked_column(metric)` (higher is better); the eligible
    ones first, then the rest; ties keep grid order; NaN last within each part."""
    col = ranked_column(metric, table)
    t = pd.DataFrame({"combo": table["combo"].to_numpy(), "v": table[col].to_numpy(dtype=np.float64),
                      "out": ~np.asarray(eligible, dtype=bool) if eligible is not None else False})
    t = t.sort_values("v", ascending=False, kind="stable", na_position="last")
    return t.sort_values("out", kind="stable")["combo"].to_numpy()


def grid_edges(grid: Grid, p: int) -> list[tuple[str, str]]:
    """(key, "lowest" or "highest") for every grid parameter with at least two values whose
    value in combination p is the first or last of its grid."""
    idx = grid.indices(int(p), int(p) + 1)[0]
    out = []
    for k, v, i in zip(grid.keys, grid.values, idx):
        if len(v) >= 2 and i in (0, len(v) - 1):
            out.append((k, "lowest" if i == 0 else "highest"))
    return out


def edge_warning(grid: Grid, p: int, what: str) -> str:
    """A one-line warning when combination p sits on an edge of the grid, else ""."""
    edges = grid_edges(grid, p)
    if not edges:
        return ""
    combo = grid.combo(int(p))
    where = "; ".join(f"{k} = {combo[k]:g} is the {side} value swept" for k, side in edges)
    return (f"{what} #{int(p)} sits on the edge of the grid ({where}): the optimum may lie outside the grid; "
            "extend the grid past it before trusting the pick")
