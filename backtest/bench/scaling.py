"""Sweep-kernel cost at three sizes along bars, symbols and combinations, and the fitted exponents."""

from __future__ import annotations

import numpy as np

from backtest.bench.data import REF_N, REF_P, REF_T
from backtest.bench.measure import measure
from backtest.bench.registry import Bench
from backtest.bench.workloads import _sweep


# Three sizes per axis, the §8 sweep (2,520 x 50 x 500) in the middle, 4x below and 4x above it.
SCALING = {"bars": [(t, REF_N, REF_P) for t in (630, 2520, 10080)],
           "symbols": [(REF_T, n, REF_P) for n in (12, 50, 200)],
           "combinations": [(REF_T, REF_N, p) for p in (125, 500, 2000)]}
PER_CORE_TARGET = 400e6  # cells/s of the sweep kernel on one thread (DESIGN §8), at every size above


def scaling(repeats: int = 3, threads: int = 1, progress=None) -> list[dict]:
    """The §8 sweep kernel (HK costs) at three sizes along each axis, on `threads` threads."""
    rows = []
    for axis, sizes in SCALING.items():
        for n_t, n_s, n_p in sizes:
            if progress:
                progress(f"  scaling {axis}: {n_t} x {n_s} x {n_p} ...")
            b = Bench(f"sweep[{n_t}x{n_s}x{n_p}]", _sweep(n_t, n_s, n_p), "numba", threads=threads, repeats=repeats)
            r = measure(b)
            rows.append({"axis": axis, "bars": n_t, "symbols": n_s, "combinations": n_p, **r})
    return rows


def linearity(rows: list[dict]) -> dict[str, dict]:
    """Per axis: cells per CPU second at each size and the exponent b of CPU time ~ size^b (1 =
    linear). CPU time of a one-thread kernel is time on one core, whatever else the machine runs."""
    out = {}
    for axis in SCALING:
        rs = [r for r in rows if r["axis"] == axis]
        key = {"bars": "bars", "symbols": "symbols", "combinations": "combinations"}[axis]
        x = np.log([r[key] for r in rs])
        y = np.log([r["cpu_seconds"] for r in rs])
        b = float(np.polyfit(x, y, 1)[0]) if len(rs) > 1 else float("nan")
        cps = [r["cells"] / r["cpu_seconds"] for r in rs]
        out[axis] = {"exponent": b, "cells_per_s": cps, "spread": max(cps) / min(cps)}
    return out
