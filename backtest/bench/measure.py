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


class _State:
    """One benchmark being measured: its workload, reference, sample size and samples so far."""

    def __init__(self, bench: Bench, slowdown: int):
        self.bench, self.slowdown = bench, slowdown
        with numba_threads(bench.threads) as threads:
            self.threads = threads
            self.fn, self.info, ref_work = prepare(bench, slowdown)
            if self.info.get("warmup", True):
                t, _, _ = _timed(self.fn, 1)
                self.number = max(1, math.ceil(MIN_SAMPLE / t)) if t < MIN_SAMPLE else 1
                sample = t * self.number
            else:
                self.number, sample = 1, MIN_SAMPLE
            self.units = ref_units(ref_work, bench.ref, sample)
        self.ref = lambda: ref_work(self.units)
        self.times, self.ref_times, self.cpu, self.ref_cpu = [], [], [], []
        self.mem, self.proc, self.res = 0.0, 0.0, None

    def sample(self) -> None:
        """Its reference once, then the benchmark once (`number` calls)."""
        with numba_threads(self.bench.threads):
            t, c, _ = _timed(self.ref, 1)
            self.ref_times.append(t / self.units)
            self.ref_cpu.append(c / self.units)
            with PeakMemory() as pm:
                t, c, self.res = _timed(self.fn, self.number)
        if "untimed" in self.info:  # time the workload spent on bookkeeping of ours (per call)
            skip = self.info["untimed"]()
            t, c = t - skip, c - skip
        self.times.append(t)
        self.cpu.append(c)
        self.mem, self.proc = max(self.mem, pm.delta_mb), max(self.proc, pm.process_mb)
        if self.info.get("collect"):  # vectorbt leaves reference cycles: free them between samples
            gc.collect()

    def result(self) -> dict:
        info, times, cpu = self.info, self.times, self.cpu
        scale = info.get("scale", 1.0)
        seconds = min(times) * scale
        cells = info.get("cells", _default_cells(self.bench.name))
        out = {"name": self.bench.name, "seconds": seconds, "cpu_seconds": min(cpu) * scale, "ref": self.bench.ref,
               "ref_seconds": min(self.ref_times), "normalised": min(times) / min(self.ref_times), "samples": times,
               "ref_samples": self.ref_times, "normalised_cpu": min(cpu) / min(self.ref_cpu), "cpu_samples": cpu,
               "ref_cpu_samples": self.ref_cpu, "number": self.number, "ref_units": self.units, "repeats": len(times),
               "cells": cells, "cells_per_s": cells / seconds if cells else None, "mem_mb": self.mem,
               "process_mb": self.proc, "threads": self.threads, "note": info.get("note", ""),
               "slowdown": self.slowdown}
        if isinstance(self.res, Child):  # the work ran in a child process: its own peak
            out["mem_mb"], out["process_mb"] = float("nan"), self.res.peak_mb
        if "verify" in info:
            out["verify"] = info["verify"](self.res)
            out["note"] = info.get("note", "")
        return out


def measure_together(benches: list[Bench], repeats: int | None = None,
                     slowdown: dict[str, int] | None = None) -> list[dict]:
    """Time `benches` round-robin in this process: each round, each benchmark's reference and then
    the benchmark, at its own thread count (a benchmark stops after its repeats). Benchmarks that
    are compared with each other (ours and vectorbt's) so meet the same load, minutes not passing
    between them. `slowdown`: name -> factor (to test the gate)."""
    slowdown = slowdown or {}
    states = [_State(b, slowdown.get(b.name, 1)) for b in benches]
    for r in range(max(repeats or s.bench.repeats for s in states)):
        for s in states:
            if r < (repeats or s.bench.repeats):
                s.sample()
    return [s.result() for s in states]


def measure(bench: Bench, repeats: int | None = None, slowdown: int = 1) -> dict:
    """Time `bench` interleaved with its reference; see the package docstring. `slowdown` > 1
    makes the workload do its work that many times (to test the gate)."""
    return measure_together([bench], repeats, {bench.name: slowdown})[0]


def _default_cells(name: str) -> int:
    inside = name[name.find("[") + 1:name.find("]")] if "[" in name else ""
    try:
        return math.prod(int(x) for x in inside.split("x"))
    except ValueError:
        return 0


def measure_isolated(benches: list[Bench], repeats: int | None = None,
                     slowdown: dict[str, int] | None = None) -> list[dict]:
    """`measure_together` in a fresh Python process; also that process's peak RSS ("process_peak_mb",
    for a benchmark measured alone: its own; for several, None and "shared_peak_mb")."""
    code = ("import json, sys; from backtest.bench import measure as m, memory, registry; "
            "names, repeats, slow = json.loads(sys.argv[1]); "
            "rs = m.measure_together([registry.BY_NAME[n] for n in names], repeats, slow); "
            "peak = memory.process_peak_mb(); "
            "[r.update(process_peak_mb=peak) if len(rs) == 1 else r.update(process_peak_mb=None, shared_peak_mb=peak) "
            "for r in rs]; "
            "print('@@' + json.dumps(rs))")
    env = {k: v for k, v in os.environ.items() if k != SLOWDOWN_ENV}
    arg = json.dumps([[b.name for b in benches], repeats, slowdown or {}])
    p = subprocess.run([sys.executable, "-c", code, arg], cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [x for x in p.stdout.splitlines() if x.startswith("@@")]
    if p.returncode != 0 or not lines:
        names = ", ".join(b.name for b in benches)
        raise RuntimeError(f"benchmark(s) {names} failed in their subprocess:\n{p.stderr[-3000:]}")
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
    """Measure `benches` in order; those sharing a `group` together (`measure_together`), in a fresh
    process if any of them is isolated."""
    slow = _slowdowns()
    done: dict[str, dict] = {}
    for b in benches:
        if b.name in done:
            continue
        batch = [x for x in benches if b.group and x.group == b.group] or [b]
        if progress:
            progress(f"  {', '.join(x.name for x in batch)}{' (interleaved)' if len(batch) > 1 else ''} ...")
        sl = {x.name: slow[x.name] for x in batch if x.name in slow}
        rs = measure_isolated(batch, repeats, sl) if any(x.isolate for x in batch) else \
            measure_together(batch, repeats, sl)
        for r in rs:
            if len(rs) > 1:
                r["interleaved_with"] = [x["name"] for x in rs if x is not r]
            done[r["name"]] = r
    return [done[b.name] for b in benches]


def ref_units(ref, kind: str, sample: float) -> int:
    """Units of reference work lasting about `sample` seconds (1 for start-up)."""
    if kind == "startup":
        return 1
    unit = min(_timed(ref, 1)[0] for _ in range(3))
    return int(min(max(round(sample / unit), 1), MAX_UNITS))
