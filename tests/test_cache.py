"""numba's on-disk cache: every kernel lands in DIPFLOW_CACHE_DIR (never in the source tree),
whatever module is imported first, and any edit of compiled code starts a fresh cache."""

import shutil
import subprocess
import sys

from tests.helpers import ROOT

NUMBA_FILES = ("*.nbi", "*.nbc")


def _numba_files(root):
    return sorted(str(p) for pat in NUMBA_FILES for p in root.rglob(pat))


def _python(code, cwd, env):
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | env
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_costs_and_event_study_imported_first_still_cache_into_dipflow_cache_dir(tmp_path):
    # A copy of the package, so nothing another test (or a user run) compiled can hide a stray file.
    src = tmp_path / "src"
    for pkg in ("backtest", "strategies"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    code = ("import numpy as np\n"
            "from backtest import costs, event_study\n"  # before backtest.kernels
            "costs.fees(costs.CostModel(kind='hk'), '2024-03-01', 38020.0)\n"
            "event_study.bootstrap_means(np.ones((40, 2)), np.ones((40, 2)), 5, 10, np.random.default_rng(1))\n")
    r = _python(code, src, {"PYTHONPATH": str(src), "DIPFLOW_CACHE_DIR": str(cache)})
    assert r.returncode == 0, r.stderr
    assert _numba_files(src) == [], "compiled kernels written into the source tree"
    cached = _numba_files(cache)
    assert any("order_fees" in p for p in cached) and any("_resample_sums" in p for p in cached), cached


def test_an_edit_of_compiled_code_moves_the_cache(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "backtest", src / "backtest", ignore=shutil.ignore_patterns("__pycache__"))
    code = "import numba, backtest.kernels; print(numba.config.CACHE_DIR)"
    env = {"PYTHONPATH": str(src), "DIPFLOW_CACHE_DIR": str(tmp_path / "c")}
    before = _python(code, src, env).stdout.strip()
    assert before.startswith(str(tmp_path / "c")), before
    costs = src / "backtest" / "costs.py"
    costs.write_text(costs.read_text() + "\n# edited\n")
    after = _python(code, src, env).stdout.strip()
    assert after.startswith(str(tmp_path / "c")) and after != before
    assert _python(code, src, env).stdout.strip() == after  # and stays put while nothing changes
