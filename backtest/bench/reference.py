"""Reference workloads: fixed work timed beside each benchmark, so a loaded machine cancels out."""

from __future__ import annotations

import json
import sys
from typing import Callable

import numpy as np
from numba import njit

import backtest.kernels  # noqa: F401  (sets numba's cache directory before the reference loop is compiled)
from backtest.bench.data import SEED
from backtest.bench.memory import run_child


@njit(cache=True, nogil=True)
def _ref_loop(x, reps):
    """A fixed, branchy, path-dependent scan of an (N, T) array: the shape of the engine's work."""
    n_s, n_t = x.shape
    acc = 0.0
    for _ in range(reps):
        for j in range(n_s):
            peak = -np.inf
            held = False
            entry = 0.0
            for t in range(n_t):
                v = x[j, t]
                if v > peak:
                    peak = v
                d = v / peak - 1.0
                if not held:
                    if d < -0.05:
                        held = True
                        entry = v
                elif v < entry * 0.9 or v > entry * 1.2 or d > -0.01:
                    acc += v / entry - 1.0
                    held = False
    return acc


# A reference takes a number of units and does that many units of fixed work (about 4 ms each
# here; `python -c pass` is one indivisible unit). Times are per unit. The unit count is chosen so
# a reference sample lasts about as long as a benchmark sample: under time-slicing by other
# processes a short sample is more likely to run undisturbed than a long one, so equal lengths
# keep the wall-time ratio honest.

def _ref_numba():
    rng = np.random.default_rng(SEED)
    x = np.ascontiguousarray(100 * np.exp(np.cumsum(rng.standard_normal((50, 2520)) * 0.02, axis=1)))
    _ref_loop(x, 1)
    return lambda units=1: _ref_loop(x, 20 * units)


def _ref_python():
    import pandas as pd

    rng = np.random.default_rng(SEED)
    df = pd.DataFrame(rng.standard_normal((500, 10)), index=pd.bdate_range("2016-01-04", periods=500))
    words = [f"w{i}" for i in range(2000)]

    def unit():
        acc = 0
        d: dict[str, int] = {}
        for i in range(10_000):
            k = words[i % 2000]
            d[k] = d.get(k, 0) + i
            acc += i * 3 % 7
        r = df.pct_change().rolling(20).std() + df.rolling(60).mean()
        text = df.resample("ME").last().to_csv() + df.iloc[::10].to_csv()
        js = json.dumps({str(k): float(v) for k, v in df.iloc[-1].items()})
        return acc + len(text) + len(js) + float(r.iloc[-1].sum())

    def work(units=1):
        for _ in range(units):
            out = unit()
        return out

    return work


def _ref_startup():
    cmd = [sys.executable, "-c", "pass"]
    return lambda units=1: run_child(cmd)


REFERENCES: dict[str, Callable[[], Callable[..., object]]] = {
    "numba": _ref_numba, "python": _ref_python, "startup": _ref_startup}

