"""The first-run compile notice (backtest/coldstart.py) and the sweep's plain-line progress."""

import io
import os
import subprocess
import sys
import textwrap

from backtest import sweep
from tests.helpers import ROOT


_SCRIPT = textwrap.dedent("""
    import io, os
    from numba.core.dispatcher import Dispatcher
    from backtest import coldstart as c
    out = io.StringIO()
    assert c.notice(c.RUN, out) and c.notice(c.SWEEP, out)
    print(out.getvalue(), end="")
    for name in set(c.RUN[1] + c.SWEEP[1]):  # what numba writes once a module's kernel is compiled
        mod = __import__(name, fromlist=["x"])
        f = next(f for f in vars(mod).values() if isinstance(f, Dispatcher) and f.__module__ == name)
        os.makedirs(os.path.dirname(f._cache._cache_file._index_path), exist_ok=True)
        open(f._cache._cache_file._index_path, "wb").close()
    again = io.StringIO()
    assert not c.notice(c.RUN, again) and not c.notice(c.SWEEP, again) and again.getvalue() == ""
    print("warm: silent")
""")


def test_notice_only_while_the_cache_is_empty(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(DIPFLOW_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    run, swp, warm = r.stdout.splitlines()
    assert run.startswith("compiling the simulation kernels (") and "first run with this version only" in run
    assert swp.startswith("compiling the sweep kernels (") and "sweep" in swp
    assert str(tmp_path / "cache") in run and warm == "warm: silent"


def test_plain_progress_lines_when_not_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = sweep._progress(1000, 0, True)
    assert isinstance(bar, sweep._Lines)
    bar.every = 0.0  # every update prints
    bar.update(250)
    bar.update(750)
    bar.close()
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("sweep: 250 of 1,000 combinations (25%)")
    assert lines[-1].startswith("sweep: 1,000 of 1,000 combinations (100%)")
    quiet = sweep._progress(1000, 0, False)
    quiet.update(5)
    quiet.close()
    assert len(err.getvalue().splitlines()) == len(lines)
