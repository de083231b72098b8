"""Cold start: say when a command is about to compile kernels, and compile them two at a time.

A first run (no cached kernels for the current kernel sources, backtest/kernels/__init__.py)
spends most of its time in numba's compiler, one function after another on one core. Kernels
that do not call each other compile as well in another process: `precompile` runs small real
workloads (a config's own strategy and data, or a built-in sample) in a helper process and in
this one at once; a job that calls another's kernel (the portfolio sweep kernel calls the
portfolio single-run kernel) runs after it in the same process and loads it from the cache.
Everything lands in numba's on-disk cache, so the command that follows, and later processes,
load it. With every kernel cached nothing is started and nothing is printed.

A kernel module counts as compiled when one of its functions has an index file in numba's cache
(helpers only called from other kernels are compiled into them). A helper that fails or is killed
costs nothing but time: its work is done here instead. numba rewrites a function's cache index
without a lock; backtest/kernels/__init__.py serialises those writes between processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Callable, NamedTuple

HELPER = "from backtest.coldstart import _helper_main; _helper_main()"  # what a helper process runs
HELPER_TIMEOUT = 900.0  # seconds: a helper still compiling after this is stopped and its work done here


def _indexes(module: str, function: str | None = None) -> list[str] | None:
    """Cache index files of `module`'s kernels (or of one kernel); None if there is no such module or function."""
    from numba.core.dispatcher import Dispatcher

    import backtest.kernels  # noqa: F401  (sets the cache directory first)

    try:
        mod = importlib.import_module(module)
    except ImportError:  # a kernel module renamed or merged: the check is advice, never an error
        return None
    found = {k: f for k, f in vars(mod).items() if isinstance(f, Dispatcher) and f.__module__ == module}
    if function is not None:
        found = {function: found[function]} if function in found else {}
    paths = [getattr(getattr(getattr(f, "_cache", None), "_cache_file", None), "_index_path", None)
             for f in found.values()]
    return [p for p in paths if p] or None


def _cached(module: str, function: str | None = None) -> bool | None:
    """Whether `module` (or its kernel `function`) is in numba's cache; None when it cannot tell."""
    paths = _indexes(module, function)
    if paths is None and function is not None:  # the kernel was renamed: judge by its module
        paths = _indexes(module)
    if paths is None:
        return None
    return any(os.path.exists(p) for p in paths)


# ------------------------------------------------------------------------------------ jobs
# A job compiles some kernels by running a small real workload through the public functions, so
# the compiled signatures are the ones a run or sweep uses, whatever the kernels look like inside.

_SAMPLE = {  # the workload when no config is given: the shipped dip strategy on the sample market
    "data": {"synthetic": {"seed": 7, "symbols": 25, "years": 10}},
    "strategy": {"name": "southbound_dip",
                 "params": {"dip_window": 20, "dip": 0.10, "flow_window": 60, "flow_z": 2.0, "fade_z": -1.0}},
    "execution": {"mode": "portfolio", "max_positions": 5, "fill": "next_open", "slippage_bps": 5.0},
    "exits": {"stop_loss": 0.10, "take_profit": 0.20, "max_hold": 20},
    "costs": {"model": "hk", "commission_bps": 3.0, "commission_min": 50.0},
    "sweep": {"grid": {"dip": [0.08, 0.12], "exits.max_hold": [5, 10]}},
}


def _config(cfg):
    from backtest.config import config_from_dict

    return cfg if cfg is not None else config_from_dict(_SAMPLE, "<backtest.coldstart sample>")


def _prepare(cfg, mode: str | None = None):
    from backtest.pipeline import prepare

    if mode is not None and cfg.execution.mode != mode:
        cfg = dataclasses.replace(cfg, execution=dataclasses.replace(cfg.execution, mode=mode))
    return prepare(cfg)


def _simulate(mode: str) -> Callable:
    def job(cfg) -> None:
        """The single-run kernel of `mode` on the config's data, features all NaN (no signal: no work)."""
        import numpy as np

        from backtest.simulate import simulate

        prep = _prepare(cfg, mode)
        n_t, n_s = prep.panel.shape
        simulate(prep.panel, prep.plan, np.full((len(prep.plan.refs), n_s, n_t), np.nan), prep.cfg)
    return job


def _event_study(cfg) -> None:
    """The event study's kernels as `pipeline.run` calls it (a (F, T, N) view of the (F, N, T) stack, few
    bootstrap draws), features all NaN: a run's, which a sweep does not use."""
    import numpy as np

    from backtest.event_study import event_study

    prep = _prepare(cfg)
    n_t, n_s = prep.panel.shape
    feats = np.full((len(prep.plan.refs), n_s, n_t), np.nan)
    f = prep.panel.fields
    event_study(feats.transpose(0, 2, 1), prep.plan.entry_rule, prep.plan.entry, f["open"], f["close"],
                prep.panel.symbols, cfg.execution.fill, n_boot=10)


def _features(cfg, given: bool) -> None:
    """The feature kernels of the config's strategy and sweep (with the sample: of every shipped strategy)."""
    from backtest.features import compute_features

    prep = _prepare(cfg)
    compute_features(prep.panel, prep.plan.refs)
    if cfg.sweep.grid:
        from backtest.grid import build_grid
        from backtest.sweep import compile_sweep

        compute_features(prep.panel, compile_sweep(prep, build_grid(prep.cfg, prep.module)).refs)
    if not given:
        from backtest.strategy import load_strategy, plan, resolve_params, shipped_strategies

        for name in shipped_strategies():
            try:
                module = load_strategy(name)
                params = resolve_params(module, {})
                compute_features(prep.panel, plan(module, params, cfg.execution.fill).refs)
            except Exception:  # noqa: BLE001 -- a strategy without defaults compiles at its first run
                pass


def _sweep(mode: str) -> Callable:
    def job(cfg) -> None:
        """The sweep kernel of `mode` on the first two combinations of the config's grid, features all
        NaN (no signal: no work; the feature kernels are the features job's)."""
        import numpy as np

        from backtest.grid import build_grid
        from backtest.simulate import execution, market
        from backtest.sweep import Inputs, block_edges, compile_sweep, run_chunk

        prep = _prepare(cfg, mode)
        sp = compile_sweep(prep, build_grid(prep.cfg, prep.module))
        sp = sp.take(slice(0, min(2, sp.exits.shape[0])))
        n_t, n_s = prep.panel.shape
        feats = np.full((len(sp.refs), n_s, n_t), np.nan)
        edges = block_edges(n_t, prep.cfg.sweep.blocks)
        run_chunk(Inputs(market(prep.panel, feats, prep.cfg), execution(prep.cfg), edges), sp, 0, sp.exits.shape[0])
    return job


class Job(NamedTuple):
    name: str
    run: Callable  # run(cfg)
    kernel: tuple[str, str | None]  # (module, function) whose cache index marks the job done
    seconds: float  # CPU seconds to compile on one idle core (docs/performance.md, "Cold start"): longest first
    after: str | None = None  # a job to run first in the same process (its kernels are then loaded, not compiled)


def _jobs(kinds: tuple[str, ...], cfg, given: bool) -> list[Job]:
    """The jobs `kinds` need, each after the job it needs, leaving out what is cached."""
    modes = [cfg.execution.mode] if given else ["portfolio", "independent"]
    jobs = [Job("features", lambda c: _features(c, given), ("backtest.kernels.features", None), 2)]
    if "run" in kinds:
        jobs.append(Job("event study", _event_study, ("backtest.event_study", None), 2))
    for mode in modes:  # a run's kernel; a sweep re-runs its walk-forward picks with it (backtest.sweep_report)
        jobs.append(Job(f"simulate ({mode})", _simulate(mode), ("backtest.kernels.simulate", f"simulate_{mode}"), 9))
    if "sweep" in kinds and cfg.sweep.grid:  # one sweep kernel per mode (the sample: both, for a test suite)
        # sweep_portfolio calls simulate_portfolio with the run's types: after it, it loads it from the cache;
        # sweep_independent calls `column` with other types than simulate_independent: compiled beside it
        for mode, secs, after in [("portfolio", 2, "simulate (portfolio)"), ("independent", 11, None)]:
            if mode in modes:
                kernel = ("backtest.kernels.sweep", f"{mode}_lane")
                jobs.append(Job(f"sweep ({mode})", _sweep(mode), kernel, secs, after))
    return [j for j in jobs if _todo(j)]


def _marker(job: Job) -> str:
    import numba

    return os.path.join(numba.config.CACHE_DIR, "precompiled-" + "".join(c if c.isalnum() else "-" for c in job.name))


def _todo(job: Job) -> bool:
    """Whether `job` still has to run: its kernel is not cached, and it has not run before without
    caching it (a strategy using none of the feature kernels, say: it would otherwise run every time)."""
    return _cached(*job.kernel) is False and not os.path.exists(_marker(job))


def _lanes(jobs: list[Job], processes: int) -> list[list[Job]]:
    """Jobs spread over `processes` lanes (lane 0: this process): each job in the lane of the job it
    runs after (`jobs` lists that one first), and these chains longest first onto the least loaded lane."""
    by = {j.name: j for j in jobs}
    chains: dict[str, list[Job]] = {}
    for j in jobs:
        root = j
        while root.after in by:
            root = by[root.after]
        chains.setdefault(root.name, []).append(j)
    lanes: list[list[Job]] = [[] for _ in range(max(1, processes))]
    for chain in sorted(chains.values(), key=lambda c: -sum(j.seconds for j in c)):
        min(lanes, key=lambda lane: sum(x.seconds for x in lane)).extend(chain)
    return [lane for i, lane in enumerate(lanes) if lane or i == 0]


def _run_jobs(jobs: list[Job], cfg, failed: list[str]) -> None:
    for j in jobs:
        try:
            j.run(cfg)
        except Exception as exc:  # noqa: BLE001 -- compiling ahead is an optimisation: the command itself
            failed.append(f"{j.name}: {type(exc).__name__}: {exc}")  # compiles (or reports) what is left
            continue
        if _cached(*j.kernel) is False:
            with contextlib.suppress(OSError):
                open(_marker(j), "a").close()


class _Helper:
    """A helper process running some jobs; `wait` returns True if it finished them."""

    def __init__(self, names: list[str], cfg, given: bool):
        import numba

        self.log = tempfile.TemporaryFile()
        env = dict(os.environ)
        env["NUMBA_CACHE_DIR"] = numba.config.CACHE_DIR  # this process's cache directory, exactly
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # this process's `backtest` and strategies
        self.proc = subprocess.Popen([sys.executable, "-c", HELPER],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        try:
            self.proc.stdin.write(pickle.dumps((names, cfg if given else None)))
            self.proc.stdin.close()
        except (OSError, pickle.PicklingError):
            self.stop()

    def wait(self, timeout: float = HELPER_TIMEOUT) -> bool:
        try:
            return self.proc.wait(timeout) == 0
        except subprocess.TimeoutExpired:
            self.stop()
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def error(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]


def _helper_main() -> None:
    """Entry point of a helper process: job names and a config (or None: the sample) on stdin."""
    names, cfg = pickle.loads(sys.stdin.buffer.read())
    given = cfg is not None
    cfg = _config(cfg)
    by = {j.name: j for j in _jobs(("run", "sweep"), cfg, given)}
    failed: list[str] = []
    _run_jobs([by[n] for n in names if n in by], cfg, failed)
    if failed:
        sys.exit("\n".join(failed))


def _say(lanes: list[list[Job]], kinds, stream) -> None:
    """The one-line notice: what compiles, in how many processes, roughly how long, only this once."""
    import numba

    label = "sweep" if "run" not in kinds else "simulation" if "sweep" not in kinds else "simulation and sweep"
    how = f"{len(lanes)} processes at once, " if len(lanes) > 1 else ""
    secs = max(sum(j.seconds for j in lane) for lane in lanes)
    names = ", ".join(j.name for lane in lanes for j in lane)
    print(f"compiling the {label} kernels ({names}; {how}first run with this "
          f"version only, ~{secs:.0f} s on an idle machine); later runs load them from {numba.config.CACHE_DIR}",
          file=stream, flush=True)


@contextlib.contextmanager
def _exclusive(path: str):
    """Hold an exclusive lock on `path` (one precompile at a time per cache: a second waits, then finds
    the kernels cached); no lock where flock is missing."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Precompiled(NamedTuple):
    """What `precompile` did: job names per process (this one first), wall seconds, and the jobs that
    failed (left to the command). Empty lanes: all was cached."""

    lanes: list[list[str]]
    seconds: float
    failed: list[str]


def precompile(kinds: tuple[str, ...] = ("run", "sweep"), processes: int = 2, config=None,
               stream=None) -> Precompiled:
    """Compile into numba's cache the kernels that `kinds` ("run", "sweep") need, on up to
    `processes` processes at once; nothing is started when everything is cached, and concurrent
    calls on one cache take turns (the later ones then find the kernels cached). `config`: compile
    for this Config's strategy, data and sweep grid (the CLI passes the command's own); None: the
    sample dip strategy, the simulation and sweep kernels of both modes and every shipped
    strategy's features (for a test suite). `stream`: where to print the one-line notice (None:
    silent). A job that fails is left to the command, which compiles it in its own time."""
    import numba

    import backtest.kernels  # noqa: F401  (sets numba's cache directory)

    if numba.config.DISABLE_JIT:
        return Precompiled([], 0.0, [])
    try:  # an unwritable cache would make every process compile everything again
        os.makedirs(numba.config.CACHE_DIR, exist_ok=True)
        writable = os.access(numba.config.CACHE_DIR, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        return Precompiled([], 0.0, [f"numba cache directory {numba.config.CACHE_DIR} is not writable"])
    processes = max(1, min(processes, os.cpu_count() or 1))
    given = config is not None
    cfg = _config(config)
    jobs = _jobs(tuple(kinds), cfg, given)
    if not jobs:
        return Precompiled([], 0.0, [])
    t0 = time.perf_counter()
    if stream is not None:
        _say(_lanes(jobs, processes), kinds, stream)
    failed: list[str] = []
    with _exclusive(os.path.join(numba.config.CACHE_DIR, "precompile.lock")):
        lanes = _lanes(_jobs(tuple(kinds), cfg, given), processes)  # again: another process may have compiled some
        helpers = []
        try:
            helpers = [(lane, _Helper([j.name for j in lane], cfg, given)) for lane in lanes[1:]]
        except OSError as exc:  # cannot start a process: compile here
            failed.append(f"helper: {exc}")
            lanes = [sum(lanes, [])]
        try:
            _run_jobs(lanes[0], cfg, failed)
            for lane, h in helpers:
                if not h.wait():
                    failed.append(f"helper ({', '.join(j.name for j in lane)}) exited {h.proc.returncode}: {h.error()}")
                _run_jobs([j for j in lane if _todo(j)], cfg, failed)  # what it left undone
        finally:
            for _, h in helpers:
                h.stop()
    return Precompiled([[j.name for j in lane] for lane in lanes], time.perf_counter() - t0, failed)
