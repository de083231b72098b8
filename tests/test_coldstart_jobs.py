"""Cold start's jobs (backtest.coldstart) compile exactly what the commands then use: after a job's
workload (features all NaN, two combinations), the real `run` / `sweep` pipeline with real features
adds no second signature to any kernel, so a first command after `precompile` compiles nothing.
Each case runs in a fresh interpreter (a dispatcher's signatures start empty) on the suite's cache."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import ROOT

_CHECK = """
import sys
from pathlib import Path

from numba.core.dispatcher import Dispatcher

from backtest import coldstart
from tests.helpers import sweep_config

kind, mode, tmp = sys.argv[1], sys.argv[2], Path(sys.argv[3])
cfg = sweep_config(tmp, 'dip = [0.04, 0.08]\\nflow_z = [0.5, 1.5]\\n"exits.max_hold" = [0, 6]\\n', mode=mode, seed=6)
coldstart._todo = lambda job: True  # every job, cached or not (a cached kernel is loaded: one signature)
for job in coldstart._jobs((kind,), cfg, True):
    job.run(cfg)

import backtest.event_study, backtest.kernels.features, backtest.kernels.rules, backtest.kernels.simulate
import backtest.kernels.sweep, backtest.kernels.metrics

modules = [backtest.event_study, backtest.kernels.features, backtest.kernels.rules, backtest.kernels.simulate,
           backtest.kernels.sweep, backtest.kernels.metrics]
kernels = {f"{m.__name__}.{k}": f for m in modules for k, f in vars(m).items()
           if isinstance(f, Dispatcher) and f.__module__ == m.__name__}
before = {k: len(f.signatures) for k, f in kernels.items()}
if kind == "run":
    from backtest.pipeline import run

    run(cfg)
else:
    from backtest.sweep import run_sweep
    from backtest.sweep_report import walk_forward_oos

    res = run_sweep(cfg, tmp / "out", workers=2, progress=False)
    walk_forward_oos(res, cfg)
grown = {k: (before[k], len(f.signatures)) for k, f in kernels.items() if len(f.signatures) > before[k]}
used = [k for k, f in kernels.items() if f.signatures]
print(repr((grown, used)))
"""


def _check(tmp_path, kind, mode):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(_CHECK), kind, mode, str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return eval(r.stdout.strip().splitlines()[-1])  # noqa: S307 -- our own repr of dicts and lists of str


@pytest.mark.parametrize("kind, mode", [("sweep", "independent"), ("sweep", "portfolio"), ("run", "independent")])
def test_the_jobs_compile_every_signature_the_command_then_uses(tmp_path, kind, mode):
    grown, used = _check(tmp_path, kind, mode)
    # a kernel the command called first (not reached by any job) or with other types than the job's
    assert grown == {}, f"the {kind} ({mode}) compiled kernels its cold-start jobs did not: {grown}"
    want = {"sweep": f"backtest.kernels.sweep.{mode}_lane", "run": f"backtest.kernels.simulate.simulate_{mode}"}[kind]
    assert want in used  # the check saw the kernel itself
    assert f"backtest.kernels.simulate.simulate_{mode}" in used  # a sweep's walk-forward re-runs: the run's kernel
