"""Parameter sweeps: compile every combination's rules, run them in chunks, persist each chunk.

A chunk is written (atomically) as soon as it finishes, so an interrupted sweep resumes with
`--resume` and redoes nothing it finished. The local engine runs chunks in this process on
numba.get_num_threads() threads; the Dask engine sends them to a cluster. Each combination's
result depends only on its parameters, so both give identical numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import sys
import time
from array import array
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
from backtest.rules import (Cond, FeatureRef, Program, Rule, RuleError, RuleGrid, check_structure, compile_rule,
                            loosest, lower_bounds, program)
from backtest.strategy import check_feature, rank_of, resolve_params, rules_of

EXIT_FIELDS = ("stop_loss", "take_profit", "trailing_stop", "max_hold")


@dataclass(frozen=True)
class SweepPlan:
    """Rules of every combination over one shared list of feature slots (one structure, P parameter sets)."""

    grid: Grid
    refs: list[FeatureRef]
    entry: RuleGrid
    exit: RuleGrid
    r_feat: np.ndarray  # (P,) int64
    r_sign: np.ndarray  # (P,)
    exits: np.ndarray  # (P, 4): stop loss, take profit, trailing stop, max hold

    def take(self, rows: np.ndarray | slice) -> SweepPlan:
        """The plan of some combinations (the grid stays whole: rows index it)."""
        c = np.ascontiguousarray
        return dataclasses.replace(self, entry=self.entry.take(rows), exit=self.exit.take(rows),
                                   r_feat=c(self.r_feat[rows]), r_sign=c(self.r_sign[rows]), exits=c(self.exits[rows]))


def combo_config(cfg: Config, combo: dict) -> Config:
    """The single-run config of one combination (used to re-run or check a sweep's pick)."""
    params = {**cfg.strategy.params, **{k: v for k, v in combo.items() if not k.startswith("exits.")}}
    exits = {k.split(".", 1)[1]: v for k, v in combo.items() if k.startswith("exits.")}
    return dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, params=params),
                               exits=dataclasses.replace(cfg.exits, **exits))


def compile_sweep(prep: Prepared, grid: Grid) -> SweepPlan:
    """Line up every combination's rules as arrays over one list of feature slots (checked to share
    one structure). The `exits.*` keys do not change the rules, so the rows of each distinct set of
    *strategy* parameters are broadcast over them. Those rows come from one call of the strategy
    with the swept parameters symbolic (`_traced`), checked against real calls; a strategy that
    needs the values themselves (a branch on a parameter, a rule shape that changes with it, ...)
    is called once per set in grid order instead (`_per_set`). Both give what `strategy.plan` gives
    for each set, bit for bit (tests/test_compile_trace.py)."""
    cfg = prep.cfg
    n_p = grid.size
    strat = [i for i, k in enumerate(grid.keys) if not k.startswith("exits.")]
    names = [grid.keys[i] for i in strat]
    sets = [grid.values[i].tolist() for i in strat]
    from backtest.trace import Escape

    try:
        built = (_traced(prep, names, sets) if strat else None) or _per_set(prep, names, sets)
    except Escape:  # a symbol of the traced call, kept by the strategy, came back in a real call
        raise ConfigError(f"{cfg.source or 'config'}: strategy {prep.module.NAME!r} keeps state between calls "
                          f"(a parameter value from an earlier call of entry/exit/rank came back); a sweep "
                          f"needs rules built from p alone") from None
    refs, rows, progs, r_feat, r_sign = built
    n_u = len(r_sign)
    if n_u == n_p:  # no exit axes (or one value each): the strategy's rows are the combinations'
        row = slice(None)
    else:  # combination p's strategy row
        idx = grid.indices(0, n_p)
        row = np.ravel_multi_index(tuple(idx[:, strat].T), tuple(map(len, sets))) if strat else np.zeros(n_p, np.int64)
        del idx
    entry, exit_ = (r.grid(pr, n_u, row) for r, pr in zip(rows, progs))
    exits = np.empty((n_p, 4))
    exits[:] = [getattr(cfg.exits, f) for f in EXIT_FIELDS]
    for i, k in enumerate(grid.keys):
        if k.startswith("exits.") and k[6:] in EXIT_FIELDS:
            exits[:, EXIT_FIELDS.index(k[6:])] = _axis(grid, i)
    r_feat, r_sign = np.frombuffer(r_feat, np.int64), np.frombuffer(r_sign, np.float64)
    return SweepPlan(grid, refs, entry, exit_, np.ascontiguousarray(r_feat[row]), np.ascontiguousarray(r_sign[row]),
                     exits)


class _Slots:
    """One list of feature slots shared by every parameter set, in order of first use."""

    def __init__(self) -> None:
        self.index: dict[FeatureRef, int] = {}
        self.refs: list[FeatureRef] = []

    def __call__(self, ref: FeatureRef) -> int:
        s = self.index.get(ref)
        if s is None:
            s = self.index[ref] = len(self.refs)
            self.refs.append(ref)
        return s


def _per_set(prep: Prepared, names: list[str], sets: list[list]):
    """The rows of every strategy parameter set from one call of the strategy per set, in grid order
    (last key fastest), each checked and mapped as `strategy.plan` does."""
    cfg, module = prep.cfg, prep.module
    where, fill = cfg.source or "config", cfg.execution.fill
    slot = _Slots()
    first = mismatch = base = None
    rows = (_Rows(), _Rows())
    r_feat, r_sign = array("q"), array("d")
    for values in itertools.product(*sets):
        given = dict(zip(names, values))
        if base is None:  # the values were checked by build_grid with the same Params; the rest once here
            params = resolve_params(module, {**cfg.strategy.params, **given}, where)
            base = dict(vars(params))  # a copy: a strategy that sets p.<name> must not change the next sets
        else:
            params = SimpleNamespace(**{**base, **given})
        rules, progs = _call(module, params, where)
        ops = [tuple(c.op for c in pr.conds) for pr in progs]
        new = len(slot.refs)
        if first is None:
            first = rules, progs, ops
        elif mismatch is None and not (all(a.code == b.code and a.arg == b.arg for a, b in zip(first[1], progs))
                                       and (ops == first[2] or list(map(_signs, ops)) == list(map(_signs, first[2])))):
            try:
                for a, b in zip(first[0], rules):
                    check_structure(compile_rule(a, {}), compile_rule(b, {}))
            except RuleError as exc:
                mismatch = exc
        for r, pr, o in zip(rows, progs, ops):
            r.add([slot(c.feature) for c in pr.conds], [c.threshold for c in pr.conds], pr.count, o)
        ref, sign = rank_of(module, params, rules[0], where)
        r_feat.append(slot(ref))
        r_sign.append(sign)
        for ref in slot.refs[new:]:
            check_feature(module, ref, fill, where)
    if mismatch is not None:
        raise ConfigError(f"{where}: strategy {module.NAME!r} builds rules of different shapes across the grid "
                          f"({mismatch}); a sweep needs the same conditions, varying only parameters")
    return slot.refs, rows, first[1], r_feat, r_sign


def _call(module, params: SimpleNamespace, where: str) -> tuple[tuple, list[Program]]:
    """The strategy's entry and exit rules for `params` and their programs (errors as `strategy.plan`'s)."""
    rules = rules_of(module, params, where)
    try:
        return rules, [program(r) for r in rules]
    except RuleError as exc:
        raise ConfigError(f"{where}: strategy {module.NAME!r}: {exc}") from None


def _traced(prep: Prepared, names: list[str], sets: list[list]):
    """`_per_set`'s result from one call of the strategy with the swept parameters symbolic
    (`backtest.trace`): each set's thresholds, feature parameters and k's / n's are the recorded
    arithmetic replayed on its values, then checked as the rules and `strategy.plan` check them.
    None (call per set instead) when a parameter escaped, a set's value fails a check, or the
    rows of a checked set differ from a real call of the strategy: the middle and last sets and one
    set per value of the longest axis that holds every value of every axis (`_diagonal`)."""
    from backtest.trace import Escape, symbols

    cfg, module = prep.cfg, prep.module
    where, fill = cfg.source or "config", cfg.execution.fill
    kinds = {q.name: int if q.type is int else float for q in module.PARAMS}  # the grid's values' types
    trace, syms = symbols(names, [kinds[n] for n in names])
    try:  # the fixed parameters as _per_set resolves them
        base = vars(resolve_params(module, {**cfg.strategy.params, **{n: v[0] for n, v in zip(names, sets)}}, where))
        p = SimpleNamespace(**{**base, **syms})
        rules, progs = _call(module, p, where)
        rank = rank_of(module, p, rules[0], where)
        row = _Replay(rules, progs, rank[0])
    except (Escape, Exception):  # noqa: BLE001 -- whatever went wrong, the per-set calls do it for real
        return None
    if trace.escaped:
        return None
    ops = [tuple(c.op for c in pr.conds) for pr in progs]
    slot = _Slots()
    rows = (_Rows(), _Rows())
    r_feat, r_sign = array("q"), array("d")
    n_u = math.prod(map(len, sets))
    check = dict.fromkeys(sorted({n_u // 2, n_u - 1, *_diagonal(list(map(len, sets)))}))
    const = None  # slots of the refs that do not depend on the swept values (the same in every set)
    try:
        for u, values in enumerate(itertools.product(*sets)):
            got = row(dict(zip(names, values)))
            if got is None:
                return None
            refs, thresholds, counts = got
            new = len(slot.refs)
            feat = [slot(r) for r in refs] if const is None else [s if s >= 0 else slot(r) for s, r in zip(const, refs)]
            if const is None:
                const = [-1 if f else s for f, s in zip(row.ref_fns, feat)]
            for ref in slot.refs[new:]:
                check_feature(module, ref, fill, where)
            n_e = len(progs[0].conds)
            for r, f, t, c, o in zip(rows, (feat[:n_e], feat[n_e:-1]), thresholds, counts, ops):
                r.add(f, t, c, o)
            r_feat.append(feat[-1])
            r_sign.append(rank[1])
            if u in check:
                check[u] = (values, refs, thresholds, counts)
        for values, refs, thresholds, counts in check.values():  # the traced rows against real calls
            params = SimpleNamespace(**{**base, **dict(zip(names, values))})
            real, real_progs = _call(module, params, where)
            ref, sign = rank_of(module, params, real[0], where)
            real_refs = [c.feature for pr in real_progs for c in pr.conds] + [ref]
            if not (sign == rank[1] and real_refs == refs and [pr.count for pr in real_progs] == counts
                    and all(a.code == b.code and a.arg == b.arg for a, b in zip(progs, real_progs))
                    and [tuple(c.op for c in pr.conds) for pr in real_progs] == ops
                    and all(array("d", [c.threshold for c in pr.conds]).tobytes() == array("d", t).tobytes()
                            for pr, t in zip(real_progs, thresholds))):
                return None
    except (Escape, Exception):  # noqa: BLE001 -- as above
        return None
    return slot.refs, rows, progs, r_feat, r_sign


def _diagonal(lens: list[int]) -> list[int]:
    """Sets j = 0, 1, ... max(lens) - 1 (grid order, last key fastest) taking value j % len of each
    axis: every value of every swept parameter appears in one of them. The trace cannot see a
    strategy observe a value through `type()` or `is`; checking these sets against real calls
    catches any such dependence on a single parameter's value, wherever it sits in the grid."""
    strides = [math.prod(lens[i + 1:]) for i in range(len(lens))]
    return [sum(j % n * s for n, s in zip(lens, strides)) for j in range(max(lens))]


class _Replay:
    """A traced call's rows for one set of swept values: its feature refs (entry's leaves, exit's,
    the ranking feature), thresholds and k's / n's per rule, or None where a value fails a check
    that a real call of the strategy would fail (it then raises the error itself)."""

    def __init__(self, rules: tuple, progs: list[Program], rank_ref: FeatureRef) -> None:
        from backtest.trace import evaluator

        self.refs = [c.feature for pr in progs for c in pr.conds] + [rank_ref]
        self.ref_fns = [_ref_fn(r) for r in self.refs]
        self.thr = [[(c.threshold, evaluator(c.threshold)) for c in pr.conds] for pr in progs]
        nodes = [list(_nodes(r)) if r is not None else [None] for r in rules]  # no exit rule: count [0]
        self.cnt = [[(k, evaluator(k), node) for k, node in zip(pr.count, ns)] for pr, ns in zip(progs, nodes)]

    def __call__(self, values: dict):
        refs = [r if f is None else f(values) for r, f in zip(self.refs, self.ref_fns)]
        thresholds = []
        for leaves in self.thr:
            out = []
            for t, f in leaves:
                if f is not None:  # as FeatureRef._cond checks a threshold
                    t = f(values)
                    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, float, np.integer, np.floating)) \
                            or t != t:
                        return None
                    t = float(t)
                out.append(t)
            thresholds.append(out)
        counts = []
        for slots in self.cnt:
            out = []
            for k, f, node in slots:
                if f is not None:  # as Rule / Held check k and n
                    k = f(values)
                    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                            or not (1 <= k <= len(node.conds) if isinstance(node, Rule) else k >= 1):
                        return None
                    k = int(k)
                out.append(k)
            counts.append(out)
        return refs, thresholds, counts


def _ref_fn(ref: FeatureRef):
    """For a feature ref with swept parameters, the function of the swept values giving it; else None."""
    from backtest.trace import evaluator

    fns = [(k, v, evaluator(v)) for k, v in ref.params]
    if all(f is None for _, _, f in fns):
        return None
    return lambda values: FeatureRef(ref.name, tuple((k, v if f is None else f(values)) for k, v, f in fns))


def _nodes(node):
    """The nodes of a rule that hold a count (k_of's k, held's n, 0 for the others), in program order."""
    if isinstance(node, Cond):
        return
    yield node
    for c in (node.conds if isinstance(node, Rule) else (node.x,)):
        yield from _nodes(c)


def _signs(ops: tuple[str, ...]) -> list[float]:
    """`rules.lower_bound`'s sign of each comparison."""
    return [-1.0 if op in ("<=", "<") else 1.0 for op in ops]


def _axis(grid: Grid, i: int) -> np.ndarray:
    """(P,) the value of grid key i in every combination (last key fastest)."""
    inner = math.prod(len(v) for v in grid.values[i + 1:])
    return np.tile(np.repeat(grid.values[i], inner), grid.size // (inner * len(grid.values[i])))


class _Rows:
    """The leaves (feature slot, threshold, comparison) and k's / n's of one rule of every strategy
    parameter set, appended set by set into flat typed arrays (8 B a value, no Python objects)."""

    def __init__(self) -> None:
        self.feat, self.threshold, self.count, self.ops = array("q"), array("d"), array("q"), array("q")
        self.kinds: dict[tuple[str, ...], int] = {}

    def add(self, feat: list[int], threshold: list[float], count: list[int], ops: tuple[str, ...]) -> None:
        self.feat.extend(feat)
        self.threshold.extend(threshold)
        self.count.extend(count)
        self.ops.append(self.kinds.setdefault(ops, len(self.kinds)))

    def grid(self, pr: Program, n: int, row: np.ndarray | slice) -> RuleGrid:
        """The RuleGrid of rows `row` of the n sets (all of one structure, that of `pr`)."""
        n_c, n_m = len(pr.conds), len(pr.count)
        ops = np.array(list(self.kinds), dtype=object).reshape(len(self.kinds), n_c)
        strict = np.isin(ops, ("<", ">")).astype(bool)[np.frombuffer(self.ops, np.int64)]
        sign = np.array(_signs(next(iter(self.kinds))), dtype=np.float64)
        take = lambda a, dtype, k: np.ascontiguousarray(np.frombuffer(a, dtype).reshape(n, k)[row])  # noqa: E731
        bound = lower_bounds(sign, np.frombuffer(self.threshold, np.float64).reshape(n, n_c), strict)
        return RuleGrid(np.array(pr.code, dtype=np.int64), np.array(pr.arg, dtype=np.int64), sign,
                        take(self.feat, np.int64, n_c), np.ascontiguousarray(bound[row]),
                        take(self.count, np.int64, n_m), pr.flat)


@dataclass(frozen=True)
class Inputs:
    """Everything a chunk needs besides its combination range (sent once to Dask workers)."""

    market: tuple  # backtest.kernels.simulate.Market
    execution: tuple  # backtest.kernels.simulate.Execution (its exits are replaced per combination)
    edges: np.ndarray


def run_chunk(inputs: Inputs, sp: SweepPlan, start: int, stop: int, threads: int | None = None):
    """Metrics of combinations start..stop-1: per symbol (n, N, M), per combination (n, M), block sums (n, S, 5)."""
    import numba

    from backtest.kernels import sweep as kernels

    if threads:
        numba.set_num_threads(threads)
    part = sp.take(slice(start, stop))
    if inputs.execution.max_positions > 0:  # one compiled kernel per mode: a sweep compiles only its own
        return kernels.sweep_portfolio(inputs.market, inputs.execution, part.entry, part.exit, part.r_feat,
                                       part.r_sign, part.exits, inputs.edges, numba.get_num_threads())
    group, loose = loosest(part.entry)
    return kernels.sweep_independent(inputs.market, inputs.execution, part.entry, part.exit, part.exits, group, loose,
                                     inputs.edges, numba.get_num_threads(), 0)


def block_edges(n_t: int, blocks: int) -> np.ndarray:
    """Bar indices splitting the T - 1 daily returns (bars 1..T-1) into `blocks` near-equal blocks."""
    return np.round(np.linspace(1, n_t, blocks + 1)).astype(np.int64)


FINE_SUMS = 2_000_000  # most (combination x fine block) cells kept for the effective number of trials


def fine_edges(n_t: int, blocks: int, n_p: int) -> np.ndarray:
    """`block_edges` with each block cut into m near-equal sub-blocks (about 21 bars each, i.e.
    months, at most FINE_SUMS / (P x blocks) of them): the sweep keeps power sums per sub-block,
    whose sums over a block are exactly the block's, and whose series give the correlation of
    combinations for the DSR's effective number of trials."""
    coarse = block_edges(n_t, blocks)
    m = int(max(1, min(np.min(np.diff(coarse)) // 21, FINE_SUMS // max(n_p * blocks, 1))))
    parts = [np.round(np.linspace(a, b, m + 1)).astype(np.int64)[:-1] for a, b in zip(coarse[:-1], coarse[1:])]
    return np.concatenate([*parts, coarse[-1:]])


def make_inputs(prep: Prepared, sp: SweepPlan, edges: np.ndarray | None = None) -> Inputs:
    from backtest.features import compute_features
    from backtest.simulate import execution, market

    cfg = prep.cfg
    feats = compute_features(prep.panel, sp.refs)
    return Inputs(market(prep.panel, feats, cfg), execution(cfg),
                  block_edges(prep.panel.shape[0], cfg.sweep.blocks) if edges is None else edges)


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
    by_symbol_path: Path | None  # independent mode: by_symbol.parquet, (combination, symbol) metrics from each listing
    sums: np.ndarray  # (P, S, 5) power sums of daily returns per block (memory-mapped from chunks/block_sums.npy
    # when each block is one sub-block, as at a million combinations)
    seconds: float
    computed: int  # combinations computed in this call (the rest came from finished chunks)
    market: MarketData  # what the sweep ran on, for re-runs of its picks
    fine_sums: np.ndarray | None = None  # (P, S * m, 5) the same power sums per sub-block (fine_edges),
    # memory-mapped from chunks/block_sums.npy (read-only)

    @property
    def by_symbol(self) -> pd.DataFrame | None:
        """The per-(combination, symbol) metrics, read from by_symbol.parquet (P x N rows: at a
        million combinations of 50 symbols, 3 GB; read it with filters or columns instead)."""
        return None if self.by_symbol_path is None else pd.read_parquet(self.by_symbol_path)


def _write_by_symbol(path: Path, chunk_files: list[Path], n_p: int, panel, names: tuple[str, ...]
                     ) -> dict[str, np.ndarray]:
    """by_symbol.parquet streamed from the chunk files, one row group per chunk, each symbol's
    metrics counted from its first tradable bar (`ranking.rebase`; symbols that never list left
    out); returns the per-combination medians over symbols (`ranking.symbol_medians`). Memory
    stays at one chunk's table however many combinations the sweep has."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from backtest.metrics import first_tradable
    from backtest.ranking import listing_years

    n_t = panel.shape[0]
    first = first_tradable(panel.fields["close"])
    listed = np.flatnonzero(first < n_t)
    f, n_l = first[listed], len(listed)
    years = listing_years(f, panel.dates)
    symbols = np.asarray(panel.symbols, dtype=object)[listed]
    tmp = path.with_name(f".{path.name}.tmp")
    writer, start, medians, schema = None, 0, {}, None
    try:
        for file in chunk_files:
            with np.load(file) as z:
                per = z["per_symbol"][:, listed]  # (n, N', M)
            n_c = per.shape[0]
            cols, med = _symbol_table(per, names, f, years, n_t)
            for k, v in med.items():
                medians.setdefault(k, np.empty(n_p, v.dtype))[start:start + n_c] = v
            combos = np.repeat(np.arange(start, start + n_c, dtype=np.int64), n_l)
            if schema is None:  # pandas' schema (with its metadata), from the chunk's first row as a DataFrame
                rows = min(len(combos), 1)
                sample = pa.Table.from_pandas(pd.DataFrame({"combo": combos[:rows], "symbol": symbols[:rows],
                                                            **{k: v[:rows] for k, v in cols.items()}}),
                                              preserve_index=False)
                schema = sample.schema
                sym_names = pa.array(list(symbols), type=schema.field("symbol").type)
            if n_l:
                sym = sym_names.take(pa.array(np.tile(np.arange(n_l, dtype=np.int64), n_c)))
                arrays = [pa.array(combos), sym, *(pa.array(v, from_pandas=True) for v in cols.values())]  # NaN: null
                table = pa.Table.from_arrays(arrays, schema=schema)
            else:  # nothing listed: empty tables of pandas' schema
                table = sample
            if writer is None:  # dictionary pages only where values repeat (5x faster than trying every column)
                writer = pq.ParquetWriter(tmp, table.schema, use_dictionary=["combo", "symbol"])
            writer.write_table(table)
            start += n_c
            del per, cols, table
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return medians


def _symbol_table(per: np.ndarray, names: tuple[str, ...], f: np.ndarray, years: np.ndarray, n_t: int
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The by_symbol columns of one chunk's (n, N', M) per-symbol metrics (listed symbols; `f`,
    `years`: their first tradable bar and calendar years), flat in (combination, symbol) order and
    rebased to each symbol's listing, and the chunk's per-combination medians over symbols."""
    from backtest.ranking import rebase, symbol_medians

    n_c, n_l = per.shape[:2]
    metric = np.moveaxis(per, 2, 0).copy()  # (M, n, N'): each metric contiguous
    cols = {k: metric[j] for j, k in enumerate(names)}
    cols["trades"] = cols["trades"].astype(np.int64)
    cols.update(rebase(cols, f, years, n_t))  # (n, N') against (N',): broadcast, elementwise as per row
    return {k: v.reshape(-1) for k, v in cols.items()}, symbol_medians(cols)


def run_sweep(cfg: Config, out_dir: str | Path, workers: int | None = None, scheduler: str | None = None,
              engine: str = "local", resume: bool = False, progress: bool = True,
              market: MarketData | None = None) -> SweepResult:
    """Run (or resume) the sweep of `cfg` into `out_dir` (on `market` instead of the config's data
    when given); see the module docstring.

    The output directory is checked first and locked for the whole run (a second sweep into it is
    refused). On resume, a chunk file that does not load or does not belong to this sweep is
    recomputed; an unreadable manifest.json is rewritten (each chunk carries its own fingerprint).
    """
    from backtest.outdir import prepare_out_dir, sweep_lock

    if not cfg.sweep.grid:
        raise ConfigError(f"{cfg.source}: no [sweep.grid] table: nothing to sweep")
    out = prepare_out_dir(out_dir)
    with sweep_lock(out):
        return _run_sweep(cfg, out, workers, scheduler, engine, resume, progress, market)


CHUNK_ARRAYS = ("per_symbol", "combo", "sums")
CHUNK_CELLS = 50_000_000  # (bar x symbol x combination) cells an automatic chunk holds at least


def auto_chunk(n_p: int, n_t: int, n_s: int) -> int:
    """Combinations per chunk when the config leaves it to us: P / 20 (a resume loses little, the
    progress moves), but at least CHUNK_CELLS cells (~0.1-0.3 s of kernel per chunk, so a small
    sweep is not mostly per-chunk files and tables) and 16 combinations, at most 5,000 (memory)."""
    return int(min(max(math.ceil(n_p / 20), math.ceil(CHUNK_CELLS / max(n_t * n_s, 1)), 16), 5000))


class _ForeignChunk(Exception):
    pass


def _load_chunk(path: Path, fp: str, rows: int) -> dict[str, np.ndarray] | None:
    """A finished chunk's arrays; None if the file is missing or damaged (to recompute). A whole chunk
    of another sweep raises _ForeignChunk: it is someone's result, not ours to overwrite."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in (*CHUNK_ARRAYS, "fingerprint")}
    except Exception:  # noqa: BLE001 -- truncated zip, bad header, missing array: all mean "recompute"
        return None
    if str(arrays.pop("fingerprint")) != fp:
        raise _ForeignChunk(path.name)
    if any(a.shape[0] != rows for a in arrays.values()):
        return None
    return arrays


def _read_manifest(manifest: Path) -> dict | None:
    try:
        old = json.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return old if isinstance(old, dict) else None


def _run_sweep(cfg: Config, out: Path, workers: int | None, scheduler: str | None, engine: str, resume: bool,
               progress: bool, market: MarketData | None) -> SweepResult:
    from backtest.kernels.metrics import METRIC_NAMES

    t0 = time.perf_counter()
    market = market if market is not None else load_market(cfg)
    prep = prepare(cfg, market)
    grid = build_grid(cfg, prep.module)
    n_p = grid.size
    sp = compile_sweep(prep, grid)
    chunk_dir = out / "chunks"
    chunk_size = cfg.sweep.chunk_size or auto_chunk(n_p, *prep.panel.shape)
    n_chunks = math.ceil(n_p / chunk_size)
    fp = _fingerprint(cfg, prep, grid, chunk_size)
    manifest = out / "manifest.json"
    if manifest.exists() or chunk_dir.exists():
        if not resume:
            raise UserError(f"{out} already holds a sweep; pass --resume to continue it or choose another --out")
        old = _read_manifest(manifest)
        if old is None:
            print(f"note: {manifest} is missing or unreadable (truncated?); rewriting it (every chunk file "
                  "carries its own fingerprint, checked below)", file=sys.stderr)
        elif old.get("fingerprint") != fp:
            raise UserError(f"{out} holds a sweep of a different config, data, chunking or engine version; "
                            f"it cannot be resumed with {cfg.source}: choose another --out")
    chunk_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*chunk_dir.glob(".chunk_*.tmp"), *chunk_dir.glob(".block_sums*.tmp")]:  # writes cut off by a kill
        stale.unlink()
    tmp = manifest.with_name(".manifest.json.tmp")
    tmp.write_text(json.dumps({"fingerprint": fp, "config": cfg.source, "combinations": n_p,
                               "chunk_size": chunk_size, "chunks": n_chunks}, indent=2) + "\n")
    os.replace(tmp, manifest)
    path = lambda i: chunk_dir / f"chunk_{i:06d}.npz"  # noqa: E731
    bounds = lambda i: (i * chunk_size, min((i + 1) * chunk_size, n_p))  # noqa: E731
    combo: list[np.ndarray] = []  # (P, M) per-combination metrics, filled chunk by chunk (block sums stay on disk)
    done: set[int] = set()

    def fill(i: int, arrays: dict[str, np.ndarray]) -> None:
        if not combo:
            combo.append(np.empty((n_p, *arrays["combo"].shape[1:])))
        combo[0][slice(*bounds(i))] = arrays["combo"]
        done.add(i)

    bad = []
    for i in range(n_chunks):
        try:
            got = _load_chunk(path(i), fp, bounds(i)[1] - bounds(i)[0])
        except _ForeignChunk:
            raise UserError(f"{path(i)} belongs to a sweep of a different config, data, chunking or engine "
                            f"version; it cannot be resumed with {cfg.source}: choose another --out") from None
        if got is not None:
            fill(i, got)
        elif path(i).exists():
            bad.append(path(i).name)
        del got
    if bad:
        print(f"note: recomputing {len(bad)} damaged chunk file(s) in {chunk_dir}: {', '.join(bad[:5])}"
              + (" ..." if len(bad) > 5 else ""), file=sys.stderr)
    todo = [i for i in range(n_chunks) if i not in done]
    edges = fine_edges(prep.panel.shape[0], cfg.sweep.blocks, n_p)
    inputs = make_inputs(prep, sp, edges) if todo else None
    bar = _progress(n_p, n_p - sum(bounds(i)[1] - bounds(i)[0] for i in todo), progress)

    def keep(i: int, res) -> None:
        arrays = dict(zip(CHUNK_ARRAYS, res))
        _save(path(i), fingerprint=np.array(fp), **arrays)
        fill(i, arrays)  # per-symbol tables stay on disk
        bar.update(bounds(i)[1] - bounds(i)[0])

    try:
        if engine == "dask" or scheduler:
            from backtest.cluster import run_on_dask

            for n, (i, res) in enumerate(run_on_dask(run_chunk, inputs, sp, [(i, *bounds(i)) for i in todo],
                                                     workers, scheduler), 1):
                keep(i, res)
                _test_interrupt(n)
        else:
            for n, i in enumerate(todo, 1):
                keep(i, run_chunk(inputs, sp, *bounds(i), threads=workers))
                _test_interrupt(n)
    except KeyboardInterrupt:  # Ctrl-C: say what is kept, then let it end the command (exit 130)
        bar.close()
        print(f"{len(done)} of {n_chunks} chunks are saved in {chunk_dir}; rerun with --resume to finish",
              file=sys.stderr)
        raise
    bar.close()
    del sp, inputs  # the plan and the feature stack are not needed for the tables

    files = [path(i) for i in range(n_chunks)]
    fine, sums = _stack_sums(chunk_dir / "block_sums.npy", files, n_p, cfg.sweep.blocks)
    medians = by_symbol = None
    if cfg.execution.mode == "independent":
        by_symbol = out / "by_symbol.parquet"
        medians = _write_by_symbol(by_symbol, files, n_p, prep.panel, METRIC_NAMES)
    table = _table(grid, combo.pop(), METRIC_NAMES, prep.panel.dates, medians)
    return SweepResult(out, grid, table, by_symbol, sums, time.perf_counter() - t0,
                       sum(bounds(i)[1] - bounds(i)[0] for i in todo), market, fine)


def _stack_sums(path: Path, chunk_files: list[Path], n_p: int, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """The chunks' power sums per sub-block (P, S', NSUM) as one .npy file, written chunk by chunk and
    returned memory-mapped (read-only): 400 B per combination at 10 blocks, which the statistics
    read when they need them instead of the sweep holding them in memory; and the sums per block
    (P, blocks, NSUM): the same memory map when each block is one sub-block, else summed chunk by
    chunk as they are written (not read back)."""
    tmp = path.with_name(f".{path.name}.tmp")
    sums, start = None, 0
    with open(tmp, "wb") as fh:
        for file in chunk_files:
            with np.load(file) as z:
                part = np.ascontiguousarray(z["sums"], dtype=np.float64)
            n, n_s, n_sum = part.shape
            if start == 0:
                np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(part.dtype),
                                                          "fortran_order": False, "shape": (n_p, n_s, n_sum)})
                sums = np.empty((n_p, blocks, n_sum)) if n_s > blocks else None
            fh.write(part.tobytes())
            if n_s > blocks:
                sums[start:start + n] = part.reshape(n, blocks, n_s // blocks, n_sum).sum(axis=2)
            start += n
    os.replace(tmp, path)
    fine = np.load(path, mmap_mode="r")
    return fine, fine if sums is None else sums


def _table(grid: Grid, combo: np.ndarray, names: tuple[str, ...], dates, medians: dict[str, np.ndarray] | None
           ) -> pd.DataFrame:
    """One row per combination: its id, its grid values, its metrics (trades as integers, CAGR over
    the calendar span: `ranking.calendar_cagr`), then in independent mode the medians over symbols
    (`ranking.symbol_medians`); one DataFrame built once from numpy columns, without copies (at a
    million combinations each column is 8 MB)."""
    from backtest.ranking import calendar_cagr

    n_p = grid.size
    metrics = {k: combo[:, j].astype(np.int64) if k == "trades" else np.ascontiguousarray(combo[:, j])
               for j, k in enumerate(names)}
    metrics["cagr"] = calendar_cagr(metrics["total_return"], dates)
    medians = medians or {}
    cols = [np.arange(n_p), *(_axis(grid, i) for i in range(len(grid.keys))), *metrics.values(), *medians.values()]
    names = ["combo", *grid.keys, *metrics, *medians]
    if len(set(names)) == len(names):
        return pd.DataFrame(dict(zip(names, cols)), copy=False)
    table = pd.DataFrame(dict(enumerate(cols)), copy=False)
    table.columns = names  # a parameter may share a metric's name: both columns stay
    return table


class _Lines:
    """Progress as plain lines when stderr is not a terminal (a log file, CI): one line at most
    every `every` seconds and one at the end, so a long sweep shows it is alive without flooding."""

    def __init__(self, total: int, done: int, every: float = 10.0) -> None:
        self.total, self.done, self.every = total, done, every
        self.t0 = self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._say(now)

    def _say(self, now: float) -> None:
        print(f"sweep: {self.done:,} of {self.total:,} combinations ({self.done / max(self.total, 1):.0%}), "
              f"{now - self.t0:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.last != self.t0 or self.done < self.total:
            self._say(time.perf_counter())


def _test_interrupt(saved: int) -> None:
    """Test hook: DIPFLOW_TEST_INTERRUPT="k:ctrl-c" (or "k:kill") interrupts (SIGKILLs) this process
    once k chunks are saved in this call, so tests of interruption and resume cannot race."""
    spec = os.environ.get("DIPFLOW_TEST_INTERRUPT", "")
    if spec and saved == int(spec.split(":")[0]):
        if spec.endswith(":kill"):
            os.kill(os.getpid(), 9)  # SIGKILL
        raise KeyboardInterrupt


def _progress(total: int, done: int, enabled: bool):
    """A tqdm bar on a terminal, plain lines every 10 s otherwise, nothing when disabled."""
    if not enabled:
        return SimpleNamespace(update=lambda n: None, close=lambda: None)
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=done, unit="combo", smoothing=0.1, dynamic_ncols=True)
    return _Lines(total, done)


def write_results(res: SweepResult) -> None:
    """results.parquet / results.csv (per combination); by_symbol.parquet (independent mode) is
    written by run_sweep, streamed from the chunks. The parquet file is written in row groups of
    RESULT_ROWS rows, so no copy of the whole table is made."""
    out = res.out_dir
    for name, write in (("results.parquet", lambda p: _write_parquet(res.table, p, list(res.grid.keys))),
                        ("results.csv", lambda p: _write_csv(res.table, p))):
        tmp = out / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, out / name)


RESULT_ROWS = 100_000
CSV_ROWS = 20_000


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    """`table.to_csv(path, index=False)`, byte for byte, 1.5x faster for numeric columns: pandas'
    csv writer (the csv module, minimal quoting) fed each float's repr (what numpy's str gives
    pandas; empty for NaN) and each integer's str, CSV_ROWS rows at a time."""
    import csv

    cols = [table.iloc[:, i].to_numpy() for i in range(table.shape[1])]
    if len(cols) < 2 or any(c.dtype.kind not in "if" for c in cols):  # one column or not numbers: pandas itself
        table.to_csv(path, index=False)
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator=os.linesep)
        writer.writerow(list(table.columns))
        for a in range(0, len(table), CSV_ROWS):
            part = []
            for c in cols:
                c = c[a:a + CSV_ROWS]
                text = list(map(float.__repr__ if c.dtype.kind == "f" else int.__repr__, c.tolist()))
                if c.dtype.kind == "f":
                    for j in np.flatnonzero(np.isnan(c)).tolist():
                        text[j] = ""
                part.append(text)
            writer.writerows(zip(*part))


def _write_parquet(table: pd.DataFrame, path: Path, repeated: list[str]) -> None:
    """`table.to_parquet(path, index=False)`, converted to Arrow RESULT_ROWS rows at a time, with
    dictionary pages for the `repeated` columns only (the metrics rarely repeat)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for a in range(0, max(len(table), 1), RESULT_ROWS):
            part = pa.Table.from_pandas(table.iloc[a:a + RESULT_ROWS], preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema, use_dictionary=repeated)
            writer.write_table(part)
    finally:
        if writer is not None:
            writer.close()
