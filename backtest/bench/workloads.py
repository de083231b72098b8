"""The engine's benchmark workloads: feature kernels, simulate, sweep, pipeline, tear sheet, command line.

Each setup function prepares its inputs (untimed) and returns the timed callable, or
(callable, info) where info may hold: "cells" (bars x symbols x combinations per call), "scale"
(multiply the measured time: a subset was timed), "note", "verify" (called with the last result,
returns a dict for the report), "warmup" (False: setup already warmed it, or a call is too long
to repeat), "untimed" (returns seconds of the last call to leave out: our own bookkeeping) and
"collect" (run the garbage collector between samples, outside the timing).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from backtest.bench.data import CONFIGS, FLAT_PCT, REF_N, REF_T, _signal_panel, bench_panel, sweep_case
from backtest.bench.memory import Child, run_child

SLOWDOWN_ENV = "DIPFLOW_BENCH_SLOWDOWN"  # "name=factor,...": make benchmarks do their work `factor` times
SINGLE = dict(stop_loss=0.10, take_profit=0.20, fee_pct=FLAT_PCT, slippage=0.0005, cash=1e6)


def _features(kernel: str):
    def setup():
        from backtest.kernels import features as k

        p = bench_panel(REF_T, REF_N)
        close = np.ascontiguousarray(p.fields["close"])
        flows = np.ascontiguousarray(np.broadcast_to(p.series["sb_net_buy"][:, None], close.shape))
        call = {"drawdown": lambda: k.drawdown(close, 20, 20),
                "return_zscore": lambda: k.return_zscore(close, 20, 60, 30),
                "trailing_zscore": lambda: k.trailing_zscore(flows, 60, 30),
                "trailing_percentile": lambda: k.trailing_percentile(flows, 60, 30)}[kernel]
        call()
        return call
    return setup


def _simulate(n_s: int):
    def setup():
        from backtest.costs import CostModel, cost_table
        from backtest.kernels import simulate as nb

        o, h, lo, c, en, ex = _signal_panel(REF_T, n_s)
        sym = lambda a: np.ascontiguousarray(a.T)  # noqa: E731  symbol-major (N, T)
        from backtest.rules import compile_rule, feature

        feats = np.ascontiguousarray(np.stack([en.T, ex.T]).astype(np.float64))
        one = lambda i: compile_rule(feature(f"signal{i}") >= 0.5, {feature(f"signal{i}"): i})  # noqa: E731
        table = cost_table(CostModel(kind="flat", flat_pct=SINGLE["fee_pct"]),
                           np.busday_offset(np.datetime64("2016-01-04", "D"), np.arange(REF_T), roll="forward"))
        args = (nb.Market(sym(o), sym(h), sym(lo), sym(c), np.ones((n_s, REF_T)), feats, table), one(0), one(1), -1,
                1.0, nb.Execution(nb.FILL_NEXT_OPEN, SINGLE["cash"], SINGLE["slippage"], False, 0, SINGLE["stop_loss"],
                                  SINGLE["take_profit"], 0.0, 0))
        return lambda: nb.simulate(*args)
    return setup


def _sweep(n_t: int, n_s: int, n_p: int, costs: str = "hk"):
    def setup():
        from backtest.sweep import run_chunk

        inputs, sp = sweep_case(n_t, n_s, n_p, costs)
        n = sp.exits.shape[0]
        run_chunk(inputs, sp, 0, min(n, 2))  # compiles or loads the kernel (not timed)
        call = lambda: run_chunk(inputs, sp, 0, n)  # noqa: E731
        return call, {"cells": n_t * n_s * n, "warmup": n_t * n_s * n < 2e7}
    return setup


def _pipeline():
    from backtest.config import load_config
    from backtest.pipeline import run

    cfg = load_config(CONFIGS / "dip.toml")
    out = run(cfg)
    t, n = out.prepared.panel.shape
    return (lambda: run(cfg)), {"cells": t * n}


def _tearsheet():
    from backtest.config import load_config
    from backtest.output import write_outputs
    from backtest.pipeline import run

    out = run(load_config(CONFIGS / "dip.toml"))
    d = _scratch()
    write_outputs(out, d)
    return lambda: write_outputs(out, d)


def _scratch() -> Path:
    """A temporary directory removed when this process exits (outputs, numba caches of children)."""
    d = Path(tempfile.mkdtemp(prefix="dipflow-bench-"))
    atexit.register(shutil.rmtree, d, True)
    return d


def _child_env(cache_dir: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", SLOWDOWN_ENV)}
    if cache_dir:
        env["DIPFLOW_CACHE_DIR"] = cache_dir
    return env


def _cli(args: list[str], cold: bool = False):
    def setup():
        tmp = _scratch()
        cmd = [sys.executable, "-m", "backtest", *[a.replace("{out}", str(tmp / "out")) for a in args]]
        if not cold:
            env = _child_env(str(tmp / "cache"))

            def call():
                res = run_child(cmd, env)
                _ok(res, cmd)
                return res

            call()  # fills the numba cache (a no-op for --help)
            return call

        def call():  # an empty numba cache every time: every kernel compiles
            cache = tempfile.mkdtemp(prefix="dipflow-cold-", dir=tmp)
            try:
                res = run_child(cmd, _child_env(cache))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            _ok(res, cmd)
            return res
        return call, {"warmup": False}
    return setup


def _ok(res: Child, cmd):
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr}")
