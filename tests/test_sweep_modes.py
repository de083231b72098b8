"""One sweep kernel per execution mode (backtest.kernels.sweep): run_chunk runs only its mode's kernel,
a sweep process compiles or loads only that one, cold start compiles only that one, and the results
equal the single-run engine's (itself checked against vectorbt and tests/oracle_sim.py)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher

from backtest import coldstart
from backtest.kernels import sweep as kernels
from backtest.kernels.metrics import M_MAX_DRAWDOWN, M_SHARPE, M_TOTAL_RETURN, M_TRADES
from tests.helpers import ROOT, single_run_metrics, sweep_config

GRID = 'dip = [0.04, 0.08]\nflow_z = [0.5, 1.5]\n"exits.max_hold" = [0, 6]\n'
OTHER = {"independent": "sweep_portfolio", "portfolio": "sweep_independent"}


def _chunk(tmp_path, mode):
    from backtest.grid import build_grid
    from backtest.pipeline import prepare
    from backtest.sweep import compile_sweep, make_inputs

    cfg = sweep_config(tmp_path, GRID, mode=mode, seed=4)
    prep = prepare(cfg)
    grid = build_grid(cfg, prep.module)
    sp = compile_sweep(prep, grid)
    return cfg, grid, make_inputs(prep, sp), sp


@pytest.mark.parametrize("mode", ["independent", "portfolio"])
def test_run_chunk_runs_only_its_modes_kernel_and_equals_the_single_run_engine(tmp_path, monkeypatch, mode):
    from backtest.pipeline import run
    from backtest.sweep import combo_config, run_chunk

    def refuse(*a, **k):
        raise AssertionError(f"a {mode} sweep called {OTHER[mode]}")

    monkeypatch.setattr(kernels, OTHER[mode], refuse)
    cfg, grid, inputs, sp = _chunk(tmp_path, mode)
    n = sp.exits.shape[0]
    one = run_chunk(inputs, sp, 0, n, threads=1)
    two = run_chunk(inputs, sp, 0, n, threads=2)
    for a, b in zip(one, two):  # serial and parallel: bit-identical
        np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64))
    per_symbol, combo, _ = one
    assert np.isnan(per_symbol).all() == (mode == "portfolio")
    assert combo[:, M_TRADES].sum() > 0

    for p in (0, n - 1):
        single = run(combo_config(cfg, grid.combo(p))).result
        want = single_run_metrics(single.total_equity, single.total_cash, single.trades)
        for k, name in [(M_TOTAL_RETURN, "total_return"), (M_SHARPE, "sharpe"), (M_MAX_DRAWDOWN, "max_drawdown")]:
            np.testing.assert_allclose(combo[p, k], want[name], rtol=1e-9, atol=1e-12, err_msg=f"{mode} {p} {name}")
        assert combo[p, M_TRADES] == want["trades"]


_ONE_MODE = """
import sys
from pathlib import Path
from tests.test_sweep_modes import _chunk
from backtest.kernels import sweep as kernels
from backtest.sweep import run_chunk

mode = sys.argv[1]
cfg, grid, inputs, sp = _chunk(Path(sys.argv[2]), mode)
run_chunk(inputs, sp, 0, 2)
print(len(kernels.independent_lane.signatures), len(kernels.portfolio_lane.signatures))
"""


@pytest.mark.parametrize("mode", ["independent", "portfolio"])
def test_a_sweep_process_compiles_or_loads_only_its_modes_kernel(tmp_path, mode):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(_ONE_MODE), mode, str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == (["1", "0"] if mode == "independent" else ["0", "1"])


@pytest.mark.parametrize("mode", ["independent", "portfolio"])
def test_cold_start_compiles_the_sweep_kernel_of_the_configs_mode_only(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(coldstart, "_todo", lambda job: True)  # as with an empty cache
    cfg = sweep_config(tmp_path, GRID, mode=mode)
    jobs = {j.name: j for j in coldstart._jobs(("sweep",), cfg, True)}
    # the sweep kernel of the mode, and the single-run kernel of the mode the report's walk-forward re-runs
    assert sorted(jobs) == ["features", f"simulate ({mode})", f"sweep ({mode})"]
    assert jobs[f"sweep ({mode})"].kernel == ("backtest.kernels.sweep", f"{mode}_lane")
    assert isinstance(getattr(kernels, f"{mode}_lane"), Dispatcher)
    lanes = [[j.name for j in lane] for lane in coldstart._lanes(list(jobs.values()), 2)]
    assert len(lanes) == 2
    if mode == "portfolio":  # sweep_portfolio calls simulate_portfolio: after it, in the same process
        assert ["simulate (portfolio)", "sweep (portfolio)"] in lanes
    else:  # nothing to wait for: the sweep kernel beside the rest
        assert ["sweep (independent)"] in lanes
    names = sorted(j.name for j in coldstart._jobs(("sweep",), coldstart._config(None), False))  # a test suite
    assert names == ["features", "simulate (independent)", "simulate (portfolio)", "sweep (independent)",
                     "sweep (portfolio)"]


def test_lanes_keep_a_job_after_the_one_it_needs_and_balance_the_chains():
    job = lambda name, s, after=None: coldstart.Job(name, None, ("m", name), s, after)  # noqa: E731
    jobs = [job("a", 9), job("b", 5), job("c", 4, "a"), job("d", 3, "c"), job("e", 1), job("f", 2, "b")]
    lanes = [[j.name for j in lane] for lane in coldstart._lanes(jobs, 2)]
    assert lanes == [["a", "c", "d"], ["b", "f", "e"]]  # chains of 16 and 7 CPU s, then e onto the lighter
    assert [[j.name for j in lane] for lane in coldstart._lanes(jobs, 1)] == [["a", "c", "d", "b", "f", "e"]]
    assert [[j.name for j in lane] for lane in coldstart._lanes(jobs[1:], 3)] == [["b", "f"], ["c", "d"], ["e"]]
