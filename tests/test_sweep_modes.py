"""One sweep kernel per execution mode (backtest.kernels.sweep): run_chunk runs only its mode's kernel,
a sweep process compiles or loads only that one, cold start compiles only that one, and the results
equal the single-run engine's (itself checked against vectorbt and tests/oracle_sim.py)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

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
print(len(kernels.sweep_independent.signatures), len(kernels.sweep_portfolio.signatures))
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
    first, then = coldstart._jobs(("sweep",), cfg, True)
    assert [j.name for j in then] == [f"sweep ({mode})"]
    assert [j.kernel for j in then] == [("backtest.kernels.sweep", f"sweep_{mode}")]
    assert all(hasattr(kernels, j.kernel[1]) for j in then)
    # sweep_portfolio calls simulate_portfolio: compiled beside the features first, then loaded
    assert ("simulate (portfolio)" in [j.name for j in first]) == (mode == "portfolio")
    first, then = coldstart._jobs(("sweep",), coldstart._config(None), False)  # the sample, for a test suite
    assert sorted(j.name for j in then) == ["sweep (independent)", "sweep (portfolio)"]
