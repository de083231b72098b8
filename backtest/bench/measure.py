"""Timing a benchmark interleaved with its reference workload: CPU and wall time, memory, threads."""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import json
import math
import os
import subprocess
import sys
import time

from backtest.bench.data import ROOT
from backtest.bench.memory import Child, PeakMemory
from backtest.bench.reference import REFERENCES
from backtest.bench.registry import BENCHES, Bench
from backtest.bench.workloads import SLOWDOWN_ENV

MIN_SAMPLE = 0.05  # seconds: short workloads are looped so one sample takes at least this long
MAX_UNITS = 100


def _slowdowns() -> dict[str, int]:
    spec = os.environ.get(SLOWDOWN_ENV, "")
    out = {}
    for part in filter(None, (s.strip() for s in spec.split(","))):
        name, _, factor = part.partition("=")
        out[name] = int(factor or 2)
    return out


def _timed(fn, number: int) -> tuple[float, float, object]:
    """Wall and CPU seconds per call of fn (called `number` times, garbage collector off) and its
    last result. A call that ran a child process (returns a Child) counts the child's own times."""
    gc_on = gc.isenabled()
    gc.disable()
    try:
        child, child_cpu = 0.0, 0.0
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            res = fn()
            if isinstance(res, Child):
                child += res.seconds
                child_cpu += res.cpu
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if isinstance(res, Child):
            t, c = child, child_cpu
        return t / number, c / number, res
    finally:
        if gc_on:
            gc.enable()


def _repeated(work, k: int):
    """`work` doing its work k times: an injected k-fold slowdown, to show the gate catches one."""
    def slower():
        res = [work() for _ in range(k)]
        if isinstance(res[-1], Child):
            return res[-1]._replace(seconds=sum(r.seconds for r in res), cpu=sum(r.cpu for r in res))
        return res[-1]
    return slower


@contextlib.contextmanager
def numba_threads(n: int):
    """numba runs parallel kernels on n threads inside the block (0: leave as is); yields the count."""
    import numba

    before = numba.get_num_threads()
    if n:
        numba.set_num_threads(n)
    try:
        yield n or before
    finally:
        numba.set_num_threads(before)


def prepare(bench: Bench, slowdown: int = 1):
    """(workload, info, reference workload) of a benchmark: set up and warmed, nothing timed."""
    made = bench.setup()
    fn, info = made if isinstance(made, tuple) else (made, {})
    if slowdown > 1:
        fn = _repeated(fn, slowdown)
    ref = REFERENCES[bench.ref]()
    ref()
    return fn, info, ref


def measure(bench: Bench, repeats: int | None = None, slowdown: int = 1) -> dict:
    """Time `bench` interleaved with its reference; see the module docstring. `slowdown` > 1
    makes the workload do its work that many times (to test the gate)."""
    repeats = repeats or bench.repeats
    with numba_threads(bench.threads) as threads:
        fn, info, ref_work = prepare(bench, slowdown)
        if info.get("warmup", True):
            t, _, _ = _timed(fn, 1)
            number = max(1, math.ceil(MIN_SAMPLE / t)) if t < MIN_SAMPLE else 1
            sample = t * number
        else:
            number, sample = 1, MIN_SAMPLE
        units = ref_units(ref_work, bench.ref, sample)
        ref = lambda: ref_work(units)  # noqa: E731
        times, ref_times, cpu, ref_cpu, mem, proc = [], [], [], [], 0.0, 0.0
        res = None
        for _ in range(repeats):
            t, c, _ = _timed(ref, 1)
            ref_times.append(t / units)
            ref_cpu.append(c / units)
            with PeakMemory() as pm:
                t, c, res = _timed(fn, number)
            if "untimed" in info:  # time the workload spent on bookkeeping of ours (per call)
                skip = info["untimed"]()
                t, c = t - skip, c - skip
            times.append(t)
            cpu.append(c)
            mem, proc = max(mem, pm.delta_mb), max(proc, pm.process_mb)
            if info.get("collect"):  # vectorbt leaves reference cycles: free them between samples
                gc.collect()
    scale = info.get("scale", 1.0)
    seconds = min(times) * scale
    cells = info.get("cells", _default_cells(bench.name))
    out = {"name": bench.name, "seconds": seconds, "cpu_seconds": min(cpu) * scale, "ref": bench.ref, "ref_seconds": min(ref_times),
           "normalised": min(times) / min(ref_times), "samples": times, "ref_samples": ref_times,
           "normalised_cpu": min(cpu) / min(ref_cpu), "cpu_samples": cpu, "ref_cpu_samples": ref_cpu,
           "number": number, "ref_units": units, "repeats": repeats, "cells": cells, "cells_per_s": cells / seconds if cells else None,
           "mem_mb": mem, "process_mb": proc, "threads": threads, "note": info.get("note", ""),
           "slowdown": slowdown}
    if isinstance(res, Child):  # the work ran in a child process: its own peak
        out["mem_mb"], out["process_mb"] = float("nan"), res.peak_mb
    if "verify" in info:
        out["verify"] = info["verify"](res)
        out["note"] = info.get("note", "")
    return out


def _default_cells(name: str) -> int:
    inside = name[name.find("[") + 1:name.find("]")] if "[" in name else ""
    try:
        return math.prod(int(x) for x in inside.split("x"))
    except ValueError:
        return 0


def measure_isolated(bench: Bench, repeats: int | None = None, slowdown: int = 1) -> dict:
    """`measure` in a fresh Python process; also its whole-process peak RSS."""
    code = ("import json, sys; from backtest.bench import measure as m, memory, registry; "
            "r = m.measure(registry.BY_NAME[sys.argv[1]], int(sys.argv[2]) or None, int(sys.argv[3])); "
            "r['process_peak_mb'] = memory.process_peak_mb(); "
            "print('@@' + json.dumps(r))")
    env = {k: v for k, v in os.environ.items() if k != SLOWDOWN_ENV}
    p = subprocess.run([sys.executable, "-c", code, bench.name, str(repeats or 0), str(slowdown)], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    lines = [x for x in p.stdout.splitlines() if x.startswith("@@")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark {bench.name} failed in its subprocess:\n{p.stderr[-3000:]}")
    return json.loads(lines[-1][2:])


def select(names: list[str] | None = None, quick: bool = False) -> list[Bench]:
    """Benchmarks matching any of `names` (shell patterns), else all (or the quick set)."""
    if names:
        out = [b for b in BENCHES if any(fnmatch.fnmatchcase(b.name, n) or b.name == n for n in names)]
        unknown = [n for n in names if not any(fnmatch.fnmatchcase(b.name, n) or b.name == n for b in BENCHES)]
        if unknown:
            from backtest.errors import UserError

            raise UserError(f"no benchmark matches {', '.join(unknown)}; known: {', '.join(b.name for b in BENCHES)}")
        return out
    return [b for b in BENCHES if b.quick or not quick]


def run_benchmarks(benches: list[Bench], repeats: int | None = None, progress=None) -> list[dict]:
    slow = _slowdowns()
    results = []
    for b in benches:
        if progress:
            progress(f"  {b.name} ...")
        f = slow.get(b.name, 1)
        results.append(measure_isolated(b, repeats, f) if b.isolate else measure(b, repeats, f))
    return results


def ref_units(ref, kind: str, sample: float) -> int:
    """Units of reference work lasting about `sample` seconds (1 for start-up)."""
    if kind == "startup":
        return 1
    unit = min(_timed(ref, 1)[0] for _ in range(3))
    return int(min(max(round(sample / unit), 1), MAX_UNITS))
