"""The sweep report (DESIGN §7): `sweep.html` and `walk_forward.csv` from a finished sweep.

`write_sweep_report(res, cfg)` reads a `SweepResult` (the table of metrics and the block power
sums) and writes into `res.out_dir`:

sweep.html        one self-contained page: heatmaps of the chosen metric for every pair of grid
                  parameters, its distribution, the top 10 combinations, neighbourhood stability
                  of the top 5, the deflated Sharpe ratio, PBO by CSCV and walk-forward selection
walk_forward.csv  the stitched out-of-sample daily returns of the walk-forward picks, re-run with
                  the single-run engine (date, oos_return, oos_equity, combo, step, parameters)

The statistics come from `backtest.robustness` on the block sums; this module only arranges them.
The numbers are computed by small pure functions (`ranking`, `neighbourhood`, `deflated`,
`walk_forward_oos`) and the page by `render`, so tests can check each on its own. Charts and page
furniture are the tear sheet's (`backtest.charts`, `backtest.page`): inline SVG, every data or
config text escaped, a Content-Security-Policy that allows no network request. docs/sweeps.md
describes the page section by section.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtest import metrics
from backtest.config import Config
from backtest.grid import Grid
from backtest.ranking import activity, edge_warning, exposure_column, ranked_column
from backtest.ranking import ranking as _ranking
from backtest.robustness import (PBOResult, WalkForwardResult, deflated_sharpe_ratio, expected_max_sharpe, moments,
                                 pbo_cscv, probabilistic_sharpe_ratio, robust_metric, row_blocks, sharpe_from_sums,
                                 trials_from_gram, trials_gram, walk_forward)
from backtest.sweep import SweepResult, block_edges, combo_config
from backtest.charts import Heatmap, Norm, Plot, days
from backtest.page import (CSP, CSS, SORT_JS, SYNTHETIC_BANNER, e, finite, html_table, is_synthetic, num, pct,
                           sign_class, td)

SECTIONS = (
    ("summary", "Summary"),
    ("heatmaps", "Heatmaps"),
    ("distribution", "Distribution"),
    ("top", "Top 10"),
    ("stability", "Neighbourhood stability"),
    ("dsr", "Deflated Sharpe ratio"),
    ("pbo", "Overfitting (PBO)"),
    ("walk-forward", "Walk-forward"),
    ("config", "Config"),
)
"""(id, title) of every section after the header (id "header"), in page order."""

TOP = 10  # rows of the top table
PICKS = 5  # top combinations whose neighbourhood is shown
ANNOTATE_CELLS = 150  # heatmaps with at most this many cells, and at most ANNOTATE_AXIS per axis, print values
ANNOTATE_AXIS = 15
METRIC_LABELS = {"total_return": "Total return", "cagr": "CAGR", "sharpe": "Sharpe", "sortino": "Sortino",
                 "max_drawdown": "Max drawdown", "exposure": "Exposure", "trades": "Trades", "win_rate": "Win rate"}
PERCENT = {"total_return", "cagr", "max_drawdown", "exposure", "win_rate"}

EXTRA_CSS = """
.grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:10px 18px}
.card .s{font-size:12px;color:var(--muted)}
.two.even{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
tr.pick td{font-weight:600}
.narrow{max-width:560px;margin:8px 0}
"""



# ---------------------------------------------------------------------------------------------
# Numbers


def ranking(table: pd.DataFrame, metric: str, eligible: np.ndarray | None = None) -> np.ndarray:
    """Combination ids, best first (backtest.ranking.ranking): the active enough first; higher is
    better for every metric; ties keep grid order; NaN last."""
    return _ranking(table, metric, eligible)


@dataclass(frozen=True)
class Ranked:
    """What the page ranks: the column, who is eligible, the order, the warnings."""

    metric: str  # sweep.metric
    column: str  # the table column ranked (sym_<metric> in independent mode)
    eligible: np.ndarray  # (P,) bool: active enough to be ranked
    order: np.ndarray  # combination ids, best first, eligible first
    robust: str  # the metric PBO and walk-forward use
    robust_note: str  # why it differs from sweep.metric ("" if it does not)
    min_trades: int
    min_exposure: float

    @property
    def excluded(self) -> int:
        return int((~self.eligible).sum())


def ranked(res: SweepResult, cfg: Config) -> Ranked:
    """Rank the sweep as the page and the CLI do (docs/sweeps.md, "Honest ranking")."""
    sw = cfg.sweep
    eligible = activity(res.table, sw.min_trades, sw.min_exposure)
    robust, note = robust_metric(sw.metric)
    return Ranked(sw.metric, ranked_column(sw.metric, res.table), eligible, ranking(res.table, sw.metric, eligible),
                  robust, note, sw.min_trades, sw.min_exposure)


def _cube(grid: Grid, values: np.ndarray) -> np.ndarray:
    """Per-combination values as an array over the grid (one axis per key; combination p is row p)."""
    return np.asarray(values, dtype=np.float64).reshape([len(v) for v in grid.values])


@dataclass(frozen=True)
class Neighbourhood:
    """Per combination, over its grid neighbours (every offset in {-1, 0, +1}^K but the all-zero
    one, inside the grid, value not NaN): their count, mean and minimum. (P,) arrays."""

    count: np.ndarray
    mean: np.ndarray
    min: np.ndarray
    region: np.ndarray  # mean over the combination and its neighbours (NaN if its own value is NaN)


def neighbourhood(grid: Grid, values: np.ndarray) -> Neighbourhood:
    """Mean / min of `values` over each combination's grid neighbours, for all combinations at once."""
    cube = _cube(grid, values)
    shape = cube.shape
    padded = np.pad(cube, 1, constant_values=np.nan)
    total, count = np.zeros(shape), np.zeros(shape, dtype=np.int64)
    low = np.full(shape, np.nan)
    for off in itertools.product((-1, 0, 1), repeat=cube.ndim):
        if not any(off):
            continue
        v = padded[tuple(slice(1 + o, 1 + o + n) for o, n in zip(off, shape))]
        ok = ~np.isnan(v)
        total += np.where(ok, v, 0.0)
        count += ok
        low = np.fmin(low, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        region = np.where(np.isnan(cube), np.nan, (total + np.nan_to_num(cube)) / (count + 1))
    return Neighbourhood(count.ravel(), mean.ravel(), low.ravel(), region.ravel())


@dataclass(frozen=True)
class Deflated:
    """Inputs and result of the deflated Sharpe ratio for every combination (all Sharpe values per day)."""

    sr: np.ndarray  # (P,) daily Sharpe ratio from the block sums
    n_obs: np.ndarray  # (P,) daily returns
    skew: np.ndarray
    kurt: np.ndarray  # non-excess
    n_trials: float  # effective number of independent trials (Nyholt 2004), at most n_combos
    n_combos: int
    var: float  # variance of the finite daily Sharpe ratios over all combinations (ddof=1)
    sr0: float  # expected maximum daily Sharpe of n_trials skill-less trials
    psr0: np.ndarray  # (P,) PSR against 0
    dsr: np.ndarray  # (P,) DSR: PSR against sr0


def deflated(sums: np.ndarray, fine: np.ndarray | None = None) -> Deflated:
    """Deflated Sharpe ratio of every combination (docs/robustness.md, recipe). The number of
    trials is the effective number of independent ones (`effective_trials`) among the P
    combinations, from the correlation of their mean daily returns per sub-block of `fine`
    (P, S', 5) power sums; without `fine` (or with fewer than 2 sub-blocks), P."""
    n_combos = int(sums.shape[0])
    sr, n_obs, skew, kurt = (np.empty(n_combos) for _ in range(4))
    for ids, (blk,) in row_blocks([sums]):  # a group of combinations at a time: sums may be a memmap of 400 MB
        n, s1, s2, s3, s4 = (blk[..., i] for i in range(5))
        m = moments(n, s1, s2, s3, s4)
        sr[ids], n_obs[ids] = sharpe_from_sums(n, s1, s2, periods=1), n.sum(axis=1)
        skew[ids], kurt[ids] = m.skew, m.kurt
    fin = sr[np.isfinite(sr)]
    var = float(np.var(fin, ddof=1)) if fin.size >= 2 else 0.0
    n_trials = float(n_combos)
    if fine is not None and fine.shape[1] >= 2 and n_combos >= 2:
        gram, m_rows = np.zeros((fine.shape[1], fine.shape[1])), 0
        for _, (blk,) in row_blocks([fine]):
            with np.errstate(invalid="ignore", divide="ignore"):
                g, k = trials_gram(blk[..., 1] / blk[..., 0])
            gram, m_rows = gram + g, m_rows + k
        n_trials = trials_from_gram(gram, m_rows)
    return Deflated(sr, n_obs, skew, kurt, n_trials, n_combos, var, float(expected_max_sharpe(n_trials, var)),
                    np.atleast_1d(probabilistic_sharpe_ratio(sr, 0.0, n_obs, skew, kurt)),
                    np.atleast_1d(deflated_sharpe_ratio(sr, n_obs, skew, kurt, n_trials, var)))


@dataclass(frozen=True)
class WalkForwardOOS:
    """Walk-forward selection re-run with the single-run engine and stitched out of sample."""

    wf: WalkForwardResult
    frame: pd.DataFrame  # walk_forward.csv: date, oos_return, oos_equity, combo, step, parameters
    reference: np.ndarray  # daily returns of wf.reference (look-ahead) on the same dates
    dates: pd.DatetimeIndex  # every bar of the backtest
    edges: np.ndarray  # block_edges(T, S)
    stats: dict  # "stitched" / "reference" -> total_return, cagr, sharpe, max_drawdown
    sums_gap: float  # largest |re-run block sum - sweep block sum| of the re-run combinations' returns
    runs: int  # distinct combinations re-run
    seconds: float


def _run_stats(r: np.ndarray, years: float | None = None) -> dict:
    return {"total_return": metrics.total_return(r), "cagr": metrics.cagr(r, years=years), "sharpe": metrics.sharpe(r),
            "max_drawdown": metrics.max_drawdown(r)}


def _pool(rk: Ranked) -> np.ndarray:
    """Combinations PBO and walk-forward choose among: the eligible ones (all if fewer than 2)."""
    ids = np.flatnonzero(rk.eligible)
    return ids if ids.size >= 2 else np.arange(rk.eligible.size)


def walk_forward_oos(res: SweepResult, cfg: Config, market=None, rk: Ranked | None = None):
    """Walk-forward picks (robustness.walk_forward on the block sums), each re-run with the
    single-run engine (once per distinct combination: `pipeline.prepare`, `compute_features`,
    `simulate`, i.e. `pipeline.run` without the statistics and event study it adds for the tear
    sheet) and its daily returns taken over its test blocks. Block b holds the returns ending at
    bars edges[b] .. edges[b + 1] - 1.

    The picks are made among the combinations active enough to be ranked (`ranked`; all of them
    when fewer than two are), by the metric `robust_metric(sweep.metric)`.

    Returns (WalkForwardOOS, the Prepared of the first re-run: data fingerprint, strategy module).
    """
    from backtest.features import compute_features
    from backtest.pipeline import load_market, prepare
    from backtest.simulate import simulate

    t0 = time.perf_counter()
    rk = rk if rk is not None else ranked(res, cfg)
    n, s1, s2, s3, s4 = (res.sums[..., i] for i in range(5))
    wf = walk_forward(n, s1, s2, train_blocks=cfg.sweep.train_blocks, metric=rk.robust, s3=s3, s4=s4, rows=_pool(rk))
    market = market if market is not None else load_market(cfg)
    cache: dict[int, np.ndarray] = {}
    exposure: dict[int, np.ndarray] = {}  # share of the pick's equity invested at each bar's close
    first = []

    def returns(p: int) -> np.ndarray:
        if p not in cache:
            one = combo_config(cfg, res.grid.combo(p))
            prep = prepare(one, market, first[0].panel if first else None)  # combos differ in rules only
            result = simulate(prep.panel, prep.plan, compute_features(prep.panel, prep.plan.refs), one)
            if not first:
                first.append(prep)
            eq = result.total_equity.to_numpy(dtype=np.float64)
            cache[p] = np.concatenate([[np.nan], eq[1:] / eq[:-1] - 1.0])  # r[t] ends at bar t
            exposure[p] = 1.0 - result.total_cash.to_numpy(dtype=np.float64) / eq
        return cache[p]

    returns(int(wf.steps[0][1]))
    prep = first[0]
    dates = pd.DatetimeIndex(prep.panel.dates)
    edges = block_edges(len(dates), res.sums.shape[1])
    if not np.array_equal(np.diff(edges), res.sums[0, :, 0]):
        raise ValueError("the re-run's bars do not match the sweep's blocks: was the data changed after the sweep?")
    parts = []
    for k, (test, p) in enumerate(wf.steps):
        a, b = edges[test[0]], edges[test[-1] + 1]
        parts.append(pd.DataFrame({"date": dates[a:b], "oos_return": returns(p)[a:b], "combo": p, "step": k}))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(2, "oos_equity", np.cumprod(1.0 + frame["oos_return"].to_numpy()))
    idx = res.grid.indices(0, res.grid.size)[frame["combo"].to_numpy()]
    for i, (key, vals) in enumerate(zip(res.grid.keys, res.grid.values)):
        frame[key] = vals[idx[:, i]]
    a0, b1 = edges[wf.steps[0][0][0]], edges[-1]
    reference = returns(int(wf.reference))[a0:b1]
    gap = 0.0
    for p, r in cache.items():
        block = np.array([r[edges[b]:edges[b + 1]].sum() for b in range(len(edges) - 1)])
        gap = max(gap, float(np.max(np.abs(block - res.sums[p, :, 1]))))
    years = metrics.calendar_years(frame["date"])
    stats = {"stitched": _run_stats(frame["oos_return"].to_numpy(), years), "reference": _run_stats(reference, years)}
    stats["stitched"]["exposure"] = float(np.mean(np.concatenate(
        [exposure[p][edges[test[0]]:edges[test[-1] + 1]] for test, p in wf.steps])))
    stats["reference"]["exposure"] = float(np.mean(exposure[int(wf.reference)][a0:b1]))
    return (WalkForwardOOS(wf, frame, reference, dates, edges, stats, gap, len(cache), time.perf_counter() - t0),
            prep)


# ---------------------------------------------------------------------------------------------
# Formatting


def _ratio(a, b) -> float:
    """a / b when both are finite and b is not 0, else NaN (neighbour mean / pick)."""
    return float(a / b) if finite(a) and finite(b) and b != 0 else np.nan


def fmt_value(v) -> str:
    """A grid value as text: integers plainly, floats in %g."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):g}"


def fmt_metric(metric: str, v) -> str:
    if metric == "trades":
        return f"{int(v):,}" if finite(v) else "–"
    return pct(v) if metric in PERCENT else num(v)


def _section(sid: str, body: str, note: str = "") -> str:
    """`body` and `note` are HTML; the title comes from SECTIONS."""
    title = dict(SECTIONS)[sid]
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<section id="{sid}"><h2>{e(title)}</h2>{note_html}{body}</section>'


def _card(title: str, value: str, sign=None, sub: str = "") -> str:
    """`title` and `sub` plain text (escaped here); `value` already formatted text."""
    cls = sign_class(sign) if sign is not None else ""
    return (f'<div class="card"><div class="k">{e(title)}</div><div class="v {cls}">{e(value)}</div>'
            f'{f"<div class={chr(34)}s{chr(34)}>{e(sub)}</div>" if sub else ""}</div>')


def _params(grid: Grid, p: int) -> str:
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in grid.combo(int(p)).items())


def _param_cells(grid: Grid, p: int) -> str:
    return "".join(td(e(fmt_value(v)), float(v)) for v in grid.combo(int(p)).values())


def _date(ts) -> str:
    return str(pd.Timestamp(ts).date())


def _period(dates: pd.DatetimeIndex, edges: np.ndarray, blocks) -> str:
    """Dates of the returns of blocks [first, last] (the bars they end at)."""
    return f"{_date(dates[edges[blocks[0]]])} – {_date(dates[edges[blocks[-1] + 1] - 1])}"


# ---------------------------------------------------------------------------------------------
# Charts


def _ticks(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Positions and labels of a grid axis: every value, or every k-th to keep at most 12 labels."""
    step = max(1, int(np.ceil(len(values) / 12)))
    pos = np.arange(0, len(values), step)
    return pos, [fmt_value(values[i]) for i in pos]


def _cell_text(metric: str, v: float) -> str:
    """A heatmap cell's value (percent metrics in %, without the sign); "" when missing."""
    if np.isnan(v):
        return ""
    if np.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{v * 100:.1f}" if metric in PERCENT else f"{v:.2f}"
    return (text.lstrip("-") if float(text) == 0 else text).replace("-", "−")


def heatmap(mean: np.ndarray, keys: tuple[str, str], values: tuple[np.ndarray, np.ndarray], metric: str,
            lo: float, hi: float, best: tuple[int, int]) -> str:
    """`mean` (len(values[0]), len(values[1])): rows are keys[0] (y), columns keys[1] (x); colours on
    [lo, hi] of matplotlib's RdYlGn, centred on 0 when the range spans it; `best` (row, column) outlined."""
    cells = None
    if mean.size <= ANNOTATE_CELLS and max(mean.shape) <= ANNOTATE_AXIS:
        cells = [[_cell_text(metric, v) for v in row] for row in mean]
    percent = metric in PERCENT
    hm = Heatmap(mean, Norm(lo, hi, 0.0), _ticks(values[1]), _ticks(values[0]), xlabel=keys[1], ylabel=keys[0],
                 bar_label=f"mean {METRIC_LABELS.get(metric, metric)}" + (" (%)" if percent else ""),
                 bar_format=(lambda t: f"{t * 100:g}".replace("-", "−")) if percent else None,
                 cells=cells, cell_size=7.0 if mean.size > 60 else 8.0, best=best)
    return hm.svg(f"heatmap of mean {metric} over {keys[0]} and {keys[1]}")


def line_chart(mean: np.ndarray, key: str, values: np.ndarray, metric: str) -> str:
    p = Plot(3.0, width=7.0, bottom=0.55, xticks=_ticks(values), xlabel=key, ylabel=f"mean {metric}",
             ypercent=1 if metric in PERCENT else False)
    p.line(np.arange(len(values)), mean, "#1d4ed8", marker=6.0)
    return p.svg(f"mean {metric} over {key}")


def histogram(values: np.ndarray, metric: str, best: float, picks: np.ndarray) -> str:
    p = Plot(3.0, width=7.0, bottom=0.5, xpercent=1 if metric in PERCENT else False,
             xlabel=METRIC_LABELS.get(metric, metric), ylabel="combinations", legend_loc="upper left")
    v = values[np.isfinite(values)]
    if v.size:
        counts, edges = np.histogram(v, bins=int(np.clip(np.sqrt(v.size) * 2, 10, 60)))
        p.bars((edges[:-1] + edges[1:]) / 2, counts, np.diff(edges), "#93c5fd", edge="#fff")
        med = float(np.median(v))
        f = pct if metric in PERCENT else num
        p.vline(med, "#6b7280", 1.2, "--", label=f"median {f(med)}")
        if finite(best):
            p.vline(best, "#1d4ed8", 1.6, label=f"best {f(best)}")
        fin = picks[np.isfinite(picks)]
        if fin.size:
            p.rug(fin, "#ea580c", 14.0, 1.5, label=f"top {fin.size}")
    return p.svg(f"distribution of {metric} over all combinations")


def logit_hist(pbo: PBOResult) -> str:
    p = Plot(3.0, width=5.6, bottom=0.5, ylabel="splits",
             xlabel="logit of the in-sample best's out-of-sample rank (≤ 0: below the OOS median)")
    lg = pbo.logits[np.isfinite(pbo.logits)]
    lo, hi = (float(lg.min()), float(lg.max())) if lg.size else (-1.0, 1.0)
    counts, edges = np.histogram(lg, bins=np.linspace(min(lo, -0.5), max(hi, 0.5), 31))
    mid = (edges[:-1] + edges[1:]) / 2
    p.bars(mid, counts, np.diff(edges), np.where(mid <= 0, "#f87171", "#4ade80"), edge="#fff")
    p.vline(0.0, "#111827", 1.0)
    return p.svg("histogram of the CSCV logits")


def degradation(pbo: PBOResult) -> str:
    """Each split's winner: out-of-sample against in-sample performance, every split drawn, and
    the OLS degradation line with its equation as the title."""
    x, y = pbo.is_perf, pbo.oos_perf
    ok = np.isfinite(x) & np.isfinite(y)
    fit = bool(ok.any() and finite(pbo.slope))
    label = "Sharpe" if pbo.metric == "sharpe" else pbo.metric.replace("_", " ")
    title = (f"fit: OOS = {num(pbo.intercept)} {'+' if pbo.slope >= 0 else '−'} {abs(pbo.slope):.2f} × IS"
             if fit else "")
    p = Plot(3.0, width=5.6, bottom=0.5, top=0.3, title=title, title_color="#dc2626",
             xlabel=f"in-sample {label} of the in-sample best", ylabel=f"its out-of-sample {label}")
    p.scatter(x[ok], y[ok], "#1d4ed8", 3.0, 0.45)
    if fit:
        xs = np.array([x[ok].min(), x[ok].max()])
        p.line(xs, pbo.intercept + pbo.slope * xs, "#dc2626", 1.4)
    p.hline(0.0, "#6b7280", 0.8)
    return p.svg("out-of-sample versus in-sample Sharpe of each split's winner")


def wf_chart(wfo: WalkForwardOOS) -> str:
    f = wfo.frame
    a0 = wfo.edges[wfo.wf.steps[0][0][0]]
    x = days(wfo.dates[a0 - 1:])
    p = Plot(3.6, top=0.3, xlim=(x[0], x[-1]) if len(x) > 1 else None, xdates=True, y_nbins=6,
             ylabel="value of 1 invested", legend_loc="lower left", legend_ncols=2)
    p.hline(1.0, "#9ca3af", 0.8, below=True)
    p.line(x, np.concatenate([[1.0], f["oos_equity"].to_numpy()]), "#1d4ed8", 1.5,
           label="walk-forward (stitched out of sample)")
    p.line(x, np.concatenate([[1.0], np.cumprod(1.0 + wfo.reference)]), "#ea580c", 1.1, dash="--",
           label=f"full-sample best #{int(wfo.wf.reference)} (look-ahead)")
    for k, (test, pick) in enumerate(wfo.wf.steps):
        d = float(days(wfo.dates[[wfo.edges[test[0]]]])[0])
        if k:
            p.vline(d, "#cbd5e1", 0.8, below=True)
        p.text(d, f"#{pick}", "#475569", 8.0, y=1.0, dx=2.5)
    return p.svg("walk-forward stitched out-of-sample equity versus the full-sample best")


# ---------------------------------------------------------------------------------------------
# Sections


def _label(rk: Ranked) -> str:
    base = METRIC_LABELS.get(rk.metric, rk.metric)
    return f"median per-symbol {base}" if rk.column != rk.metric else base


def _header(res: SweepResult, cfg: Config, about: dict, rk: Ranked) -> str:
    grid = res.grid
    values = "<br>".join(f"<code>{e(k)}</code> ({len(v)}): {e(', '.join(fmt_value(x) for x in v))}"
                         for k, v in zip(grid.keys, grid.values))
    ex = cfg.execution
    data = e(about.get("source") or "")
    if about.get("fingerprint"):
        data += f" · fingerprint <code>{e(about['fingerprint'])}</code>"
    items = [
        ("Config", e(cfg.source or "(in memory)")),
        ("Data", data or "–"),
        ("Period", e(about.get("period", "–"))),
        ("Combinations", e(f"{grid.size:,} (" + ("all computed in this call" if res.computed == grid.size else
                                                 f"{res.computed:,} computed in this call, the rest read from saved "
                                                 "chunks") + ")")),
        ("Grid", values or "–"),
        ("Ranked by", e(f"{_label(rk)} (higher is better), among combinations with at least {rk.min_trades} closed "
                        f"trades and {pct(rk.min_exposure, 1)} average exposure ({rk.excluded:,} of {grid.size:,} "
                        f"excluded); {cfg.sweep.blocks} time blocks, walk-forward trains on {cfg.sweep.train_blocks}")),
        ("Execution", e(f"{ex.mode}" + (f" (HK${ex.init_cash:,.0f} shared by at most {ex.max_positions} positions)"
                                        if ex.mode == "portfolio" else
                                        " (one account per symbol, each from its first tradable bar)")
                        + f", fill {ex.fill}, slippage {ex.slippage_bps:g} bps")),
        ("Run", e(f"sweep {res.seconds:.2f} s · walk-forward re-runs {about.get('wf_seconds', 0.0):.2f} s")),
    ]
    meta = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    synthetic = about.get("synthetic")
    return (f'<header id="header">{SYNTHETIC_BANNER if synthetic else ""}<div class="in"><h1>'
            f'{e(about.get("strategy") or cfg.strategy.name)} · sweep{" · synthetic data" if synthetic else ""}</h1>'
            f'<p class="help">{e(str(about.get("help") or ""))}</p><dl class="meta">{meta}</dl></div></header>')


def warnings_for(res: SweepResult, rk: Ranked, nb: Neighbourhood) -> list[str]:
    """Plain-text warnings the page and the CLI print: nothing active enough to rank, a best or a
    stable-region centre on the grid's edge, a metric PBO and walk-forward cannot use."""
    out = []
    best = int(rk.order[0])
    if not rk.eligible.any():
        out.append(f"no combination has {rk.min_trades} closed trades and {pct(rk.min_exposure, 1)} average exposure: "
                   "the ranking below is of inactive combinations (lower sweep.min_trades / min_exposure knowingly, "
                   "or widen the grid)")
    w = edge_warning(res.grid, best, "the best combination")
    if w:
        out.append(w)
    centre = _centre(nb)
    if centre is not None:
        w = edge_warning(res.grid, centre, "the centre of the most stable region")
        if w:
            out.append(w)
    if rk.robust_note:
        out.append(rk.robust_note)
    return out


def best_lines(res: SweepResult, cfg: Config) -> list[str]:
    """What the CLI prints about the ranking: how many were ranked, the best with its trades and
    exposure, then one "warning: ..." line per warning."""
    rk = ranked(res, cfg)
    p = int(rk.order[0])
    t = res.table
    combo = ", ".join(f"{k}={v}" for k, v in res.grid.combo(p).items())
    head = (f"{int(rk.eligible.sum())} ranked, {rk.excluded} below {rk.min_trades} trades or "
            f"{rk.min_exposure:.1%} exposure; best {_label(rk)} {float(t[rk.column].iloc[p]):.3f} "
            f"({int(t['trades'].iloc[p])} trades, exposure {float(t[exposure_column(t)].iloc[p]):.1%}) at {combo}")
    nb = neighbourhood(res.grid, _ranked_values(res, rk))
    return [head] + [f"warning: {w}" for w in warnings_for(res, rk, nb)]


def _centre(nb: Neighbourhood) -> int | None:
    """The combination whose neighbourhood (itself included) has the highest mean."""
    if not np.isfinite(nb.region).any():
        return None
    return int(np.argmax(np.where(np.isfinite(nb.region), nb.region, -np.inf)))


def _activity(res: SweepResult, p: int) -> str:
    t = res.table
    return f"{int(t['trades'].iloc[p]):,} trades · exposure {pct(float(t[exposure_column(t)].iloc[p]), 1)}"


def _summary(res, rk: Ranked, nb, dfl, pbo, wfo, warns: list[str]) -> str:
    metric, order = rk.column, rk.order
    best = int(order[0])
    v = res.table[metric].to_numpy()
    s = wfo.stats
    cards = [
        _card(f"Best {_label(rk)}", fmt_metric(rk.metric, v[best]), v[best],
              f"combination #{best} · {_activity(res, best)}"),
        _card("Ranked", f"{int(rk.eligible.sum()):,} of {len(v):,}", None,
              f"{rk.excluded:,} below {rk.min_trades} trades or {pct(rk.min_exposure, 1)} exposure"),
        _card("Neighbour mean / best", num(_ratio(nb.mean[best], v[best])),
              None, f"neighbour mean {fmt_metric(rk.metric, nb.mean[best])}"),
        _card("Deflated Sharpe (best)", num(dfl.dsr[best], 3), None,
              f"over {dfl.n_trials:,.1f} effective trials; ≥ 0.95 = skill"),
        _card("PBO", num(pbo.pbo, 3) if pbo is not None else "–", None,
              "≈ 0 good · 0.5 = coin toss" if pbo is not None else "needs an even number of blocks"),
        _card(f"Walk-forward Sharpe (picks by {rk.robust})", num(s["stitched"]["sharpe"]), s["stitched"]["sharpe"],
              f"look-ahead best: {num(s['reference']['sharpe'])}"),
        _card("Walk-forward return", pct(s["stitched"]["total_return"]), s["stitched"]["total_return"],
              f"at {pct(s['stitched']['exposure'], 1)} exposure · look-ahead best: "
              f"{pct(s['reference']['total_return'])}"),
    ]
    note = ("Read left to right: how good the best looks and how active it is, how many combinations were active "
            "enough to be ranked, whether its neighbours agree, whether it beats the best of "
            f"{dfl.n_trials:,.1f} skill-less trials, whether in-sample winners stay winners, and what picking on the "
            "past would have earned. Details below; docs/sweeps.md explains each.")
    warn_html = "".join(f'<div class="warn" role="alert">WARNING: {e(w)}</div>' for w in warns)
    return _section("summary", f'{warn_html}<div class="cards">{"".join(cards)}</div>', e(note))


def _ranked_values(res: SweepResult, rk: Ranked) -> np.ndarray:
    """The ranked column, NaN where a combination is not active enough to be ranked (unless none is)."""
    v = res.table[rk.column].to_numpy(dtype=np.float64)
    return np.where(rk.eligible, v, np.nan) if rk.eligible.any() else v


def _heatmaps(res: SweepResult, rk: Ranked, best: int) -> str:
    grid = res.grid
    metric = rk.metric
    cube = _cube(grid, _ranked_values(res, rk))
    axes = [i for i, v in enumerate(grid.values) if len(v) >= 2]
    best_idx = grid.indices(best, best + 1)[0]
    label = _label(rk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no combination traded
        if len(axes) == 0:
            return _section("heatmaps", "<p>Every grid parameter has a single value: nothing to map.</p>")
        if len(axes) == 1:
            i = axes[0]
            mean = np.nanmean(cube, axis=tuple(a for a in range(cube.ndim) if a != i))
            svg = line_chart(mean, grid.keys[i], grid.values[i], metric)
            return _section("heatmaps", f'<div class="chart">{svg}</div>',
                            e(f"Mean {label} for each value of the only parameter with more than one value."))
        pairs = list(itertools.combinations(axes, 2))
        means = [np.nanmean(cube, axis=tuple(a for a in range(cube.ndim) if a not in (i, j))) for i, j in pairs]
    fin = np.concatenate([m[np.isfinite(m)] for m in means])
    lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
    svgs = [heatmap(m, (grid.keys[i], grid.keys[j]), (grid.values[i], grid.values[j]), metric, lo, hi,
                    (best_idx[i], best_idx[j])) for (i, j), m in zip(pairs, means)]
    unit = " (cells in %)" if metric in PERCENT else ""
    note = (f"Mean {label}{unit} over the other parameters, for every pair of grid parameters, of the combinations "
            "active enough to be ranked (grey: none); one colour scale for all maps. The blue square is the best "
            "combination. A broad bright plateau is a robust region; a lone bright cell among dull ones is luck; a "
            "best on the border of a map may have its optimum outside the grid.")
    cells = "".join(f'<div class="chart">{s}</div>' for s in svgs)
    return _section("heatmaps", f'<div class="grid2">{cells}</div>', e(note))


def _distribution(res: SweepResult, rk: Ranked) -> str:
    metric, order = rk.metric, rk.order
    v = _ranked_values(res, rk)
    svg = histogram(v, metric, v[order[0]], v[order[:PICKS]])
    fin = v[np.isfinite(v)]
    rows = []
    if fin.size:
        for name, q in (("min", 0), ("5 %", 5), ("25 %", 25), ("median", 50), ("75 %", 75), ("95 %", 95), ("max", 100)):
            x = float(np.percentile(fin, q))
            rows.append(f'<tr><td class="t">{e(name)}</td>{td(fmt_metric(metric, x), x, sign_class(x))}</tr>')
        rows.append(f'<tr><td class="t">above 0</td>{td(pct(float(np.mean(fin > 0)), 1))}</tr>')
    table = html_table(["Quantile", _label(rk)], rows)
    note = (f"{_label(rk)} of all {len(v):,} combinations"
            + (f"; {len(v) - fin.size:,} are left out (not active enough to be ranked, never traded, or no losing day)"
               if fin.size < len(v) else "")
            + f". The blue line is the best, the orange ticks the top {PICKS}. A best far out in the right tail "
            "of a distribution centred near 0 is what selection from noise looks like.")
    return _section("distribution", f'<div class="two"><div class="chart">{svg}</div><div>{table}</div></div>', e(note))


def _columns(t: pd.DataFrame, rk: Ranked) -> list[tuple[str, str, str]]:
    """(column, title, format metric) of the tables: the ranked one first, then trades and exposure
    beside it, then the rest."""
    cols = [(rk.column, _label(rk), rk.metric), ("trades", "Trades", "trades"),
            (exposure_column(t), "Exposure" + (" (mean of symbols)" if exposure_column(t) != "exposure" else ""),
             "exposure")]
    if "symbols_traded" in t:
        cols.append(("symbols_traded", "Symbols traded", "trades"))
    prefix = "All accounts: " if rk.column != rk.metric else ""
    cols += [(m, prefix + METRIC_LABELS[m], m) for m in METRIC_LABELS if m not in {c for c, _, _ in cols}]
    return cols


def _top(res: SweepResult, rk: Ranked, nb: Neighbourhood, dfl: Deflated) -> str:
    grid, t = res.grid, res.table
    metric, order = rk.column, rk.order
    cols = _columns(t, rk)
    vals = {c: t[c].to_numpy() for c, _, _ in cols}
    rows = []
    v = vals[metric]
    for rank, p in enumerate(order[:TOP], 1):
        ratio = _ratio(nb.mean[p], v[p])
        cells = "".join(td(fmt_metric(f, vals[c][p]), float(vals[c][p]), sign_class(vals[c][p]) if c == metric else "")
                        for c, _, f in cols)
        rank_cell = f'<td class="t" data-v="{rank}">{rank if rk.eligible[p] else "not ranked"}</td>'
        rows.append(f'<tr>{rank_cell}{td(f"#{p}", int(p))}{_param_cells(grid, p)}'
                    f"{cells}{td(num(dfl.dsr[p], 3), float(dfl.dsr[p]))}{td(num(ratio), ratio)}</tr>")
    head = ["#", "Combo", *grid.keys, *(title + (" ▸" if c == metric else "") for c, title, _ in cols),
            "DSR", "Neighbour mean / value"]
    note = (f"Ranked by {e(_label(rk))} (▸) among the {int(rk.eligible.sum()):,} combinations with at least "
            f"{rk.min_trades} closed trades and {pct(rk.min_exposure, 1)} average exposure; {rk.excluded:,} less active "
            "ones are not ranked (sweep.min_trades, sweep.min_exposure). Trades and exposure stand beside the ranked "
            f"metric. DSR: deflated Sharpe ratio against the best of {dfl.n_trials:,.1f} effective independent trials "
            f"(see below). Neighbour mean / value: the ranked metric of the combination's grid neighbours relative to "
            "its own; near 1 (or above) = a plateau. Click a header to sort.")
    return _section("top", f'<div class="scroll">{html_table(head, rows, sortable=True)}</div>', note)


def _stability(res: SweepResult, rk: Ranked, nb: Neighbourhood) -> str:
    grid, t = res.grid, res.table
    order = rk.order
    v = _ranked_values(res, rk)
    centre = _centre(nb)
    trades, expo = t["trades"].to_numpy(), t[exposure_column(t)].to_numpy()

    def row(label: str, p: int, cls: str = "") -> str:
        ratio = _ratio(nb.mean[p], v[p])
        c = f' class="{cls}"' if cls else ""
        return (f'<tr{c}><td class="t">{e(label)}</td>{td(f"#{p}")}{_param_cells(grid, p)}'
                f"{td(fmt_metric(rk.metric, v[p]), v[p], sign_class(v[p]))}"
                f"{td(f'{int(trades[p]):,}', int(trades[p]))}{td(pct(expo[p], 1), expo[p])}{td(str(int(nb.count[p])))}"
                f"{td(fmt_metric(rk.metric, nb.mean[p]), nb.mean[p], sign_class(nb.mean[p]))}"
                f"{td(fmt_metric(rk.metric, nb.min[p]), nb.min[p], sign_class(nb.min[p]))}{td(num(ratio), ratio)}"
                f"{td(fmt_metric(rk.metric, nb.region[p]), nb.region[p])}</tr>")

    rows = [row(str(rank), int(p)) for rank, p in enumerate(order[:PICKS], 1) if rk.eligible[p]]
    if centre is not None:
        rows.append(row("best region", centre, "pick"))
    head = ["#", "Combo", *grid.keys, _label(rk), "Trades", "Exposure", "Neighbours", "Neighbour mean",
            "Neighbour min", "Mean / pick", "Region mean (with pick)"]
    note = (f"Neighbours of a combination: every combination one grid step away or less along each parameter "
            f"(all offsets in {{−1, 0, +1}} per axis except all 0; up to 3^{len(grid.keys)} − 1), ignoring those whose "
            f"{_label(rk)} is undefined or that are not active enough to be ranked. Mean / pick near 1 means the "
            "result does not hinge on the exact parameters; "
            "a ratio far below 1 or a negative neighbour min means the pick is a lucky point. 'best region' is the "
            "combination whose neighbourhood (itself included) has the highest mean: the centre of the most robust "
            "region, a better candidate than the luckiest point.")
    return _section("stability", html_table(head, rows, left=1), e(note))


def _dsr(res: SweepResult, order: np.ndarray, dfl: Deflated) -> str:
    b = int(order[0])
    root = np.sqrt(metrics.PERIODS)
    rows = [
        ("Combination", f"#{b} ({_params(res.grid, b)})"),
        ("Its activity", _activity(res, b)),
        ("Sharpe ratio, annualised", num(dfl.sr[b] * root, 3)),
        ("Sharpe ratio per day (SR)", num(dfl.sr[b], 4)),
        ("Daily returns (T)", f"{int(dfl.n_obs[b]):,}"),
        ("Skewness", num(dfl.skew[b], 3)),
        ("Kurtosis (non-excess, normal = 3)", num(dfl.kurt[b], 3)),
        ("Combinations tried", f"{dfl.n_combos:,}"),
        ("Effective independent trials (N, Nyholt 2004)", f"{dfl.n_trials:,.1f}"),
        ("Variance of the trials' daily Sharpe ratios (V)", f"{dfl.var:.3g}" if finite(dfl.var) else "–"),
        ("Expected best of N skill-less trials (SR0), per day", num(dfl.sr0, 4)),
        ("SR0 annualised", num(dfl.sr0 * root, 3)),
        ("PSR(0): probability the true Sharpe is above 0", num(dfl.psr0[b], 3)),
        ("DSR = PSR(SR0)", num(dfl.dsr[b], 3)),
    ]
    table = html_table(["Best combination", "Value"], [f'<tr><td class="t">{e(k)}</td>{td(e(v))}</tr>' for k, v in rows])
    cards = (f'<div class="cards">{_card("DSR of the best", num(dfl.dsr[b], 3), None, "≥ 0.95: skill at 5 %")}'
             f'{_card("Its Sharpe", num(dfl.sr[b] * root), dfl.sr[b], "annualised")}'
             f'{_card("Bar to beat (SR0)", num(dfl.sr0 * root), None, "annualised best of N null trials")}'
             f'{_card("Effective trials", f"{dfl.n_trials:,.1f}", None, f"of {dfl.n_combos:,} correlated combinations")}'
             "</div>")
    note = ("Bailey and López de Prado (2014): the probability that the best combination's true Sharpe ratio is above "
            "the Sharpe ratio the best of N skill-less trials would show by luck, given its skewness and kurtosis. "
            "All Sharpe values in the formula are per day (docs/robustness.md). Neighbouring combinations are "
            "correlated, so N is the effective number of independent trials: M − Σ(i≠j) ρᵢⱼ² / M over the "
            "correlations ρ of the combinations' mean daily returns per sub-block of about a month (Nyholt 2004; "
            "docs/robustness.md). The Sharpe and the ranking use every combination tried, active or not. "
            "Count every sweep you ran on this data, not only this one. Read it like 1 − p-value.")
    return _section("dsr", cards + table, e(note))


def _pbo(pbo: PBOResult | None, why: str, rk: Ranked) -> str:
    if pbo is None:
        return _section("pbo", f"<p>{e(why)}</p>")
    cards = (f'<div class="cards">{_card("PBO", num(pbo.pbo, 3), None, "share of splits with logit ≤ 0")}'
             f'{_card("P(OOS loss)", num(pbo.prob_oos_loss, 3), None, "winner loses out of sample")}'
             f'{_card("Degradation slope", num(pbo.slope), pbo.slope, f"OOS on IS {pbo.metric}")}'
             f'{_card("Splits", f"{len(pbo.logits):,}", None, f"{pbo.splits.shape[1]} blocks, half in sample")}</div>')
    body = (cards + f'<div class="two even"><div class="chart">{logit_hist(pbo)}</div>'
            f'<div class="chart">{degradation(pbo)}</div></div>')
    note = ("Combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado and Zhu 2017): the time blocks "
            f"are split every way into two halves; the best combination on one half (by {pbo.metric}, from "
            f"sweep.metric = {rk.metric}, among the {_pool(rk).size:,} combinations active enough to be ranked) is "
            "ranked on the other. "
            "PBO is the share of splits where it lands at or below the out-of-sample median: near 0, selection by "
            "backtest carries information; near 0.5, it is a coin toss (pure noise gives 0.5); above, the optimiser "
            "fits noise that reverses. A negative degradation slope: the better in sample, the worse out of sample.")
    return _section("pbo", body, e(note))


def _walk_forward(res: SweepResult, wfo: WalkForwardOOS, rk: Ranked) -> str:
    wf, grid, f = wfo.wf, res.grid, wfo.frame
    perf = num if wf.metric == "sharpe" else pct
    mlabel = "Sharpe" if wf.metric == "sharpe" else wf.metric.replace("_", " ")
    t = res.table
    trades, expo = t["trades"].to_numpy(), t[exposure_column(t)].to_numpy()
    rows = []
    for k, ((test, p), train) in enumerate(zip(wf.steps, wf.train)):
        r = f.loc[f["step"] == k, "oos_return"].to_numpy()
        tr = metrics.total_return(r)
        rows.append(f'<tr><td class="t">{k + 1}</td><td class="t">{e(_period(wfo.dates, wfo.edges, train))}</td>'
                    f'<td class="t">{e(_period(wfo.dates, wfo.edges, test))}</td>{td(f"#{p}")}{_param_cells(grid, p)}'
                    f"{td(f'{int(trades[p]):,}', int(trades[p]))}{td(pct(expo[p], 1), expo[p])}"
                    f"{td(perf(wf.is_perf[k]), wf.is_perf[k], sign_class(wf.is_perf[k]))}"
                    f"{td(perf(wf.oos_perf[k]), wf.oos_perf[k], sign_class(wf.oos_perf[k]))}{td(pct(tr), tr, sign_class(tr))}</tr>")
    steps = html_table(["Step", "Train (in sample)", "Test (out of sample)", "Chosen", *grid.keys,
                        "Trades (full run)", "Exposure (full run)", f"IS {mlabel}", f"OOS {mlabel}", "OOS return"],
                       rows, left=3)
    s = wfo.stats
    krows = []
    for label, key, fmt in (("Exposure (average share invested)", "exposure", pct), ("Total return", "total_return", pct),
                            ("CAGR", "cagr", pct), ("Sharpe", "sharpe", num),
                            ("Max drawdown", "max_drawdown", pct)):
        a, b = s["stitched"][key], s["reference"][key]
        ca, cb = ("", "") if key == "exposure" else (sign_class(a), sign_class(b))
        krows.append(f'<tr><td class="t">{e(label)}</td>{td(fmt(a), a, ca)}{td(fmt(b), b, cb)}</tr>')
    krows.append(f'<tr><td class="t">{e(mlabel)} from the sweep\'s block sums</td>{td(perf(wf.stitched))}'
                 f"{td(perf(wf.reference_oos))}</tr>")
    key_table = html_table(["Out of sample", "Walk-forward", f"Best #{int(wf.reference)} (look-ahead)"], krows)
    distinct = len(set(int(c) for c in wf.chosen))
    check = (f"the re-runs reproduce the sweep's block sums (largest gap {wfo.sums_gap:.1e})" if wfo.sums_gap < 1e-8
             else f"WARNING: the re-runs differ from the sweep's block sums by up to {wfo.sums_gap:.2e}")
    note = (f"Rolling walk-forward: at each step, pick the combination with the best {mlabel} (from sweep.metric = "
            f"{rk.metric}) over the previous {len(wf.train[0])} blocks, among the {_pool(rk).size:,} combinations "
            f"active enough to be ranked, and trade it over the next block; {len(wf.steps)} steps, {distinct} distinct "
            f"picks. Each pick is re-run with the single-run engine ({wfo.runs} runs, {wfo.seconds:.1f} s) and its daily "
            "returns over its test block are chained into one out-of-sample curve (walk_forward.csv); a switch at a "
            "block boundary inherits the new pick's positions at no cost. The dashed line is the full-sample best over "
            "the same dates: it is chosen with hindsight and is a yardstick, never a tradable result. "
            f"Check: {check}.")
    body = (f'<div class="chart">{wf_chart(wfo)}</div><div class="narrow">{key_table}</div>'
            f"<h3>Picks per step</h3>{steps}")
    return _section("walk-forward", body, e(note))


@dataclass(frozen=True)
class Review:
    """The robustness verdict on a sweep, as the page, the CLI and the Python API show it."""

    ranked: Ranked
    neighbourhood: Neighbourhood
    deflated: Deflated
    pbo: PBOResult | None
    pbo_note: str  # why PBO is missing ("" when it is there)
    warnings: list[str]


def review(res: SweepResult, cfg: Config) -> Review:
    """Rank, neighbourhoods, deflated Sharpe, PBO (among the combinations eligible for ranking)
    and the warnings of one sweep."""
    rk = ranked(res, cfg)
    nb = neighbourhood(res.grid, _ranked_values(res, rk))
    pbo, why = None, ""
    try:
        sums = res.sums
        pbo = pbo_cscv(*(sums[..., i] for i in range(3)), metric=rk.robust, s3=sums[..., 3], s4=sums[..., 4],
                       rows=_pool(rk))
    except ValueError as exc:
        why = f"PBO by CSCV is not available for this sweep: {exc}. Use an even sweep.blocks (8 to 16)."
    return Review(rk, nb, deflated(res.sums, res.fine_sums), pbo, why, warnings_for(res, rk, nb))


def render(res: SweepResult, cfg: Config, wfo: WalkForwardOOS, about: dict) -> str:
    """The whole page as one string. `about`: strategy, help, source, fingerprint, period, wf_seconds
    (plain texts, escaped here). Every text from data or config is escaped."""
    if not np.array_equal(res.table["combo"].to_numpy(), np.arange(res.grid.size)):
        raise ValueError("the sweep table must hold one row per combination, in grid order")
    rv = review(res, cfg)
    rk, nb, dfl, pbo, why, warns = rv.ranked, rv.neighbourhood, rv.deflated, rv.pbo, rv.pbo_note, rv.warnings
    order = rk.order
    sections = [
        _summary(res, rk, nb, dfl, pbo, wfo, warns),
        _heatmaps(res, rk, int(order[0])),
        _distribution(res, rk),
        _top(res, rk, nb, dfl),
        _stability(res, rk, nb),
        _dsr(res, order, dfl),
        _pbo(pbo, why, rk),
        _walk_forward(res, wfo, rk),
        _section("config", f"<pre>{e(cfg.text or '(no config text)')}</pre>",
                 e(f"Source: {cfg.source or '(in memory)'}")),
    ]
    nav = "".join(f'<a href="#{sid}">{e(title)}</a>' for sid, title in SECTIONS)
    title = e(f"{about.get('strategy') or cfg.strategy.name} · sweep")
    fp = e(str(about.get("fingerprint") or "–"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,">
<style>{CSS}{EXTRA_CSS}</style></head><body>
{_header(res, cfg, about, rk)}
<nav aria-label="sections"><div class="in">{nav}</div></nav>
<main>
{chr(10).join(sections)}
<footer>{"SYNTHETIC DATA · " if about.get("synthetic") else ""}dipflow sweep report · data fingerprint {fp} · machine-readable twins: results.parquet, results.csv, \
walk_forward.csv</footer>
</main>
<script>{SORT_JS}</script>
</body></html>
"""


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_sweep_report(res: SweepResult, cfg: Config, market=None) -> Path:
    """Write sweep.html and walk_forward.csv into res.out_dir; return the page's path.

    `market` (optional) is the MarketData the sweep ran on, to spare reloading it for the
    walk-forward re-runs.
    """
    out = Path(res.out_dir)
    wfo, prep = walk_forward_oos(res, cfg, market, ranked(res, cfg))
    frame = wfo.frame.assign(date=wfo.frame["date"].dt.strftime("%Y-%m-%d"))
    _atomic(out / "walk_forward.csv", lambda p: frame.to_csv(p, index=False))
    about = {"strategy": prep.module.NAME, "help": getattr(prep.module, "HELP", ""),
             "source": f"{prep.panel.source or cfg.data.path or 'sample market'} · {len(prep.panel.symbols)} symbols × "
                       f"{len(wfo.dates):,} bars",
             "fingerprint": prep.panel.fingerprint,
             "period": f"{_date(wfo.dates[0])} to {_date(wfo.dates[-1])}", "wf_seconds": wfo.seconds,
             "synthetic": is_synthetic(prep.panel.source, prep.panel.meta.get("name"))}
    page = render(res, cfg, wfo, about)
    path = out / "sweep.html"
    _atomic(path, lambda p: p.write_text(page, encoding="utf-8"))
    return path
