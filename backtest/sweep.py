"""Parameter sweeps: compile every combination's rules, run them in chunks, persist each chunk.

A chunk is written (atomically) as soon as it finishes, so an interrupted sweep resumes with
`--resume` and redoes nothing it finished. The local engine runs chunks in this process with
numba threads; the Dask engine sends them to a cluster. Each combination's result depends only
on its parameters, so both give identical numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from backtest.config import Config
from backtest.errors import ConfigError, UserError
from backtest.grid import Grid, build_grid
from backtest.data.market import MarketData
from backtest.pipeline import Prepared, load_market, prepare
from backtest.rules import FeatureRef, compile_rule
from backtest.strategy import _default_rank, plan, resolve_params

EXIT_FIELDS = ("stop_loss", "take_profit", "trailing_stop", "max_hold")


@dataclass(frozen=True)
class SweepPlan:
    """Rules of every combination as arrays over one shared list of feature slots."""

    grid: Grid
    refs: list[FeatureRef]
    e_feat: np.ndarray  # (P, C) int64
    e_sign: np.ndarray  # (C,), shared
    e_bound: np.ndarray  # (P, C)
    e_k: np.ndarray  # (P,)
    x_feat: np.ndarray
    x_sign: np.ndarray
    x_bound: np.ndarray
    x_k: np.ndarray
    r_feat: np.ndarray  # (P,)
    r_sign: np.ndarray  # (P,)
    exits: np.ndarray  # (P, 4): stop loss, take profit, trailing stop, max hold


def combo_config(cfg: Config, combo: dict) -> Config:
    """The single-run config of one combination (used to re-run or check a sweep's pick)."""
    params = {**cfg.strategy.params, **{k: v for k, v in combo.items() if not k.startswith("exits.")}}
    exits = {k.split(".", 1)[1]: v for k, v in combo.items() if k.startswith("exits.")}
    return dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, params=params),
                               exits=dataclasses.replace(cfg.exits, **exits))


def compile_sweep(prep: Prepared, grid: Grid) -> SweepPlan:
    """Call the strategy for every combination and line its rules up as arrays (checked to share one shape)."""
    cfg, module = prep.cfg, prep.module
    where = cfg.source or "config"
    index: dict[FeatureRef, int] = {}
    n_p = grid.size
    rows = {"e": [], "x": []}
    e_k, x_k, r_feat, r_sign = (np.empty(n_p, np.int64), np.empty(n_p, np.int64), np.empty(n_p, np.int64),
                                np.empty(n_p))
    exits = np.empty((n_p, 4))
    shape = None
    idx = grid.indices(0, n_p)
    for p in range(n_p):
        combo = {k: _val(v[i]) for k, v, i in zip(grid.keys, grid.values, idx[p])}
        c = combo_config(cfg, combo)
        params = resolve_params(module, c.strategy.params, where)
        sp = plan(module, params, cfg.execution.fill, where)
        entry = compile_rule(sp.entry_rule, index)
        exit_ = compile_rule(sp.exit_rule, index)
        rank_ref, order = module.rank(params) if hasattr(module, "rank") else _default_rank(sp.entry_rule)
        r_feat[p] = index.setdefault(rank_ref, len(index))
        r_sign[p] = 1.0 if order == "high_first" else -1.0
        this = (tuple(entry.sign), tuple(exit_.sign))
        if shape is None:
            shape = this
        elif this != shape:
            raise ConfigError(f"{where}: strategy {module.NAME!r} builds rules of different shapes across the grid "
                              f"(combination {combo}); a sweep needs the same conditions, varying only parameters")
        rows["e"].append((entry.feat, entry.bound))
        rows["x"].append((exit_.feat, exit_.bound))
        e_k[p], x_k[p] = entry.k, exit_.k
        exits[p] = [getattr(c.exits, f) for f in EXIT_FIELDS]

    def stack(key, i, dtype):
        return np.ascontiguousarray(np.array([r[i] for r in rows[key]], dtype=dtype).reshape(n_p, -1))

    return SweepPlan(grid, list(index), stack("e", 0, np.int64), np.array(shape[0]), stack("e", 1, np.float64), e_k,
                     stack("x", 0, np.int64), np.array(shape[1]), stack("x", 1, np.float64), x_k, r_feat, r_sign, exits)


def _val(x):
    return int(x) if isinstance(x, np.integer) else float(x)


@dataclass(frozen=True)
class Inputs:
    """Everything a chunk needs besides its combination range (sent once to Dask workers)."""

    arrays: tuple  # open, high, low, close, lot (N, T), feats (F, N, T)
    costs: np.ndarray
    fill: int
    init_cash: float
    slippage: float
    use_lots: bool
    max_positions: int
    edges: np.ndarray


def run_chunk(inputs: Inputs, sp: SweepPlan, start: int, stop: int, threads: int | None = None):
    """Metrics of combinations start..stop-1: per symbol (n, N, M), per combination (n, M), block sums (n, S, 5)."""
    import numba

    from backtest.kernels.sweep import sweep

    if threads:
        numba.set_num_threads(threads)
    s = slice(start, stop)
    e_feat = sp.e_feat[s]
    groups, group = np.unique(e_feat, axis=0, return_inverse=True)
    return sweep(*inputs.arrays, e_feat, sp.e_sign, sp.e_bound[s], sp.e_k[s], sp.x_feat[s], sp.x_sign, sp.x_bound[s],
                 sp.x_k[s], sp.r_feat[s], sp.r_sign[s], inputs.fill, inputs.init_cash, inputs.slippage,
                 np.ascontiguousarray(sp.exits[s]), inputs.costs, inputs.use_lots, inputs.max_positions, inputs.edges,
                 np.ascontiguousarray(group.reshape(-1), dtype=np.int64), len(groups), numba.get_num_threads())


def block_edges(n_t: int, blocks: int) -> np.ndarray:
    """Bar indices splitting the T - 1 daily returns (bars 1..T-1) into `blocks` near-equal blocks."""
    return np.round(np.linspace(1, n_t, blocks + 1)).astype(np.int64)


def make_inputs(prep: Prepared, sp: SweepPlan) -> Inputs:
    from backtest.features import compute_features
    from backtest.simulate import FILLS, cost_model, kernel_inputs
    from backtest.costs import cost_table

    cfg = prep.cfg
    ex = cfg.execution
    feats = compute_features(prep.panel, sp.refs)
    return Inputs(arrays=(*kernel_inputs(prep.panel), feats), costs=cost_table(cost_model(cfg), prep.panel.dates),
                  fill=FILLS[ex.fill], init_cash=ex.init_cash, slippage=ex.slippage_bps / 1e4, use_lots=ex.board_lots,
                  max_positions=ex.max_positions if ex.mode == "portfolio" else 0,
                  edges=block_edges(prep.panel.shape[0], cfg.sweep.blocks))


def _fingerprint(cfg: Config, prep: Prepared, grid: Grid, chunk: int) -> str:
    """What a chunk file's numbers depend on (config, data, grid, chunking, engine code); a resume
    with anything else would mix sweeps."""
    from backtest.kernels import source_digest

    h = hashlib.sha256()
    for part in (cfg.text, prep.panel.fingerprint, repr(grid.keys), repr([v.tolist() for v in grid.values]),
                 str(chunk), source_digest()):
        h.update(part.encode())
    return h.hexdigest()[:16]


def _save(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


@dataclass
class SweepResult:
    out_dir: Path
    grid: Grid
    table: pd.DataFrame  # one row per combination: parameters, metrics
    by_symbol: pd.DataFrame | None  # independent mode: (combination, symbol) metrics
    sums: np.ndarray  # (P, S, 5) power sums of daily returns per block
    seconds: float
    computed: int  # combinations computed in this call (the rest came from finished chunks)
    market: MarketData  # what the sweep ran on, for re-runs of its picks


def run_sweep(cfg: Config, out_dir: str | Path, workers: int | None = None, scheduler: str | None = None,
              engine: str = "local", resume: bool = False, progress: bool = True) -> SweepResult:
    """Run (or resume) the sweep of `cfg` into `out_dir`; see the module docstring."""
    from backtest.kernels.metrics import METRIC_NAMES

    t0 = time.perf_counter()
    if not cfg.sweep.grid:
        raise ConfigError(f"{cfg.source}: no [sweep.grid] table: nothing to sweep")
    market = load_market(cfg)
    prep = prepare(cfg, market)
    grid = build_grid(cfg, prep.module)
    n_p = grid.size
    sp = compile_sweep(prep, grid)
    out = Path(out_dir)
    chunk_dir = out / "chunks"
    chunk_size = cfg.sweep.chunk_size or int(min(max(math.ceil(n_p / 20), 16), 5000))
    n_chunks = math.ceil(n_p / chunk_size)
    fp = _fingerprint(cfg, prep, grid, chunk_size)
    manifest = out / "manifest.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if not resume:
            raise UserError(f"{out} already holds a sweep; pass --resume to continue it or choose another --out")
        if old.get("fingerprint") != fp:
            raise UserError(f"{out} holds a sweep of a different config, data, chunking or engine version; "
                            f"it cannot be resumed with {cfg.source}: choose another --out")
    chunk_dir.mkdir(parents=True, exist_ok=True)
    for stale in chunk_dir.glob(".chunk_*.tmp"):  # a write cut off by a kill
        stale.unlink()
    manifest.write_text(json.dumps({"fingerprint": fp, "config": cfg.source, "combinations": n_p,
                                    "chunk_size": chunk_size, "chunks": n_chunks}, indent=2) + "\n")
    path = lambda i: chunk_dir / f"chunk_{i:06d}.npz"  # noqa: E731
    todo = [i for i in range(n_chunks) if not path(i).exists()]
    inputs = make_inputs(prep, sp) if todo else None
    bounds = lambda i: (i * chunk_size, min((i + 1) * chunk_size, n_p))  # noqa: E731
    bar = _progress(n_p, n_p - sum(bounds(i)[1] - bounds(i)[0] for i in todo), progress)
    try:
        if engine == "dask" or scheduler:
            from backtest.cluster import run_on_dask

            for n, (i, res) in enumerate(run_on_dask(inputs, sp, [(i, *bounds(i)) for i in todo], workers,
                                                     scheduler), 1):
                _save(path(i), per_symbol=res[0], combo=res[1], sums=res[2])
                bar.update(bounds(i)[1] - bounds(i)[0])
                _test_interrupt(n)
        else:
            for n, i in enumerate(todo, 1):
                res = run_chunk(inputs, sp, *bounds(i), threads=workers)
                _save(path(i), per_symbol=res[0], combo=res[1], sums=res[2])
                bar.update(bounds(i)[1] - bounds(i)[0])
                _test_interrupt(n)
    except KeyboardInterrupt:
        bar.close()
        done = sum(path(i).exists() for i in range(n_chunks))
        raise UserError(f"interrupted: {done} of {n_chunks} chunks are saved in {chunk_dir}; "
                        f"rerun with --resume to finish") from None
    bar.close()

    parts = [np.load(path(i)) for i in range(n_chunks)]
    combo = np.concatenate([p["combo"] for p in parts])
    per_symbol = np.concatenate([p["per_symbol"] for p in parts])
    sums = np.concatenate([p["sums"] for p in parts])
    params = pd.DataFrame({k: v[grid.indices(0, n_p)[:, i]] for i, (k, v) in enumerate(zip(grid.keys, grid.values))})
    table = pd.concat([pd.DataFrame({"combo": np.arange(n_p)}), params, pd.DataFrame(combo, columns=METRIC_NAMES)],
                      axis=1)
    table["trades"] = table["trades"].astype(np.int64)
    by_symbol = None
    if cfg.execution.mode == "independent":
        n_s = len(prep.panel.symbols)
        by_symbol = pd.DataFrame(per_symbol.reshape(n_p * n_s, -1), columns=METRIC_NAMES)
        by_symbol.insert(0, "symbol", np.tile(np.asarray(prep.panel.symbols, dtype=object), n_p))
        by_symbol.insert(0, "combo", np.repeat(np.arange(n_p), n_s))
        by_symbol["trades"] = by_symbol["trades"].astype(np.int64)
    return SweepResult(out, grid, table, by_symbol, sums, time.perf_counter() - t0,
                       sum(bounds(i)[1] - bounds(i)[0] for i in todo), market)


def _test_interrupt(saved: int) -> None:
    """Test hook: DIPFLOW_TEST_INTERRUPT="k:ctrl-c" (or "k:kill") interrupts (SIGKILLs) this process
    once k chunks are saved in this call, so tests of interruption and resume cannot race."""
    spec = os.environ.get("DIPFLOW_TEST_INTERRUPT", "")
    if spec and saved == int(spec.split(":")[0]):
        if spec.endswith(":kill"):
            os.kill(os.getpid(), 9)  # SIGKILL
        raise KeyboardInterrupt


def _progress(total: int, done: int, enabled: bool):
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=done, unit="combo", smoothing=0.1, dynamic_ncols=True)
    return SimpleNamespace(update=lambda n: None, close=lambda: None)


def write_results(res: SweepResult) -> None:
    """results.parquet / results.csv (per combination) and by_symbol.parquet (independent mode)."""
    out = res.out_dir
    for name, write in (("results.parquet", lambda p: res.table.to_parquet(p, index=False)),
                        ("results.csv", lambda p: res.table.to_csv(p, index=False))):
        tmp = out / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, out / name)
    if res.by_symbol is not None:
        tmp = out / ".by_symbol.parquet.tmp"
        res.by_symbol.to_parquet(tmp, index=False)
        os.replace(tmp, out / "by_symbol.parquet")
