"""Every workload of backtest/bench.py under pytest-benchmark; how to run and check: conftest.py."""

from __future__ import annotations

import math
import time

import pytest

from backtest.bench import measure, registry


def _marks(b: registry.Bench) -> list:
    marks = []
    if b.quick:
        marks.append(pytest.mark.quick)
    if b.name.startswith("vectorbt"):
        marks.append(pytest.mark.vectorbt)
    if b.isolate or b.name.startswith("cli.run"):
        marks.append(pytest.mark.slow)
    return marks


@pytest.mark.parametrize("name", [pytest.param(b.name, marks=_marks(b), id=b.name) for b in registry.BENCHES])
def test_bench(benchmark, record, name):
    b = registry.BY_NAME[name]
    timer = benchmark._timer  # the clock pytest-benchmark times with (--benchmark-timer)
    clock = "cpu" if timer in (time.process_time, time.thread_time) else "wall"
    if clock == "cpu" and b.ref == "startup":
        pytest.skip("a child process's CPU time is not this process's: needs a wall clock")
    with measure.numba_threads(b.threads):
        fn, info, ref = measure.prepare(b, measure._slowdowns().get(name, 1))  # DIPFLOW_BENCH_SLOWDOWN: see the gate fail
        rounds, t = b.repeats, measure.MIN_SAMPLE
        if info.get("warmup", True):
            t0 = time.perf_counter()
            fn()
            t = time.perf_counter() - t0
            if t < 0.1:  # short workloads: more rounds, so the minimum is a clean one
                rounds = min(50, max(b.repeats, math.ceil(0.5 / t)))
        units = measure.ref_units(ref, b.ref, t)  # a reference sample about as long as a round
        ref_times: list[float] = []

        def time_reference():  # before every round: the reference shares the round's conditions
            s = timer()
            ref(units)
            ref_times.append((timer() - s) / units)

        res = benchmark.pedantic(fn, setup=time_reference, rounds=rounds, warmup_rounds=0)
    if benchmark.stats is None:  # --benchmark-disable
        return
    best = benchmark.stats.stats.min
    seconds = best * info.get("scale", 1.0)
    cells = info.get("cells", measure._default_cells(name))
    out = {"normalised": best / min(ref_times), "clock": clock, "reference": b.ref, "ref_seconds": min(ref_times),
           "seconds": seconds, "cells": cells, "cells_per_s": cells / seconds if cells else None}
    if "verify" in info:
        out["verify"] = info["verify"](res)
    out["note"] = info.get("note", "")
    benchmark.extra_info.update(out)
    record(name, out)
    if "verify" in out:
        assert out["verify"]["equal"], out["verify"]
