"""Parallel cold-start compilation (backtest.coldstart.precompile) and the locked numba cache writes
(backtest/kernels/__init__.py). Real compilation is measured in docs/performance.md, not here: these
tests drive precompile with two tiny kernels so they stay cheap."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(DIPFLOW_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


_KERNELS = """
import backtest.kernels  # noqa: F401  (dipflow's cache directory and its locked writes)
from numba import njit

@njit(cache=True)
def a(x):
    return x + 1

@njit(cache=True)
def b(x):
    return x * 2
"""

_DRIVE = """
import subprocess, sys
from backtest import coldstart as c
import fakek

jobs = [c.Job("a", lambda cfg: fakek.a(1), ("fakek", "a"), 5.0), c.Job("b", lambda cfg: fakek.b(1), ("fakek", "b"), 4.0)]
c._jobs = lambda kinds, cfg, given: [j for j in jobs if c._cached(*j.kernel) is False]
c.HELPER = sys.argv[1]
r = c.precompile(processes=2)
print(r.lanes, bool(r.failed), c._cached("fakek", "a"), c._cached("fakek", "b"))

def refuse(*a, **k):
    raise AssertionError("a process was started with every kernel cached")

subprocess.Popen = refuse
print(c.precompile(processes=2))
"""


def _drive(tmp_path: Path, helper: str) -> list[str]:
    (tmp_path / "fakek.py").write_text(_KERNELS)
    code = _DRIVE.replace("sys.argv[1]", repr(helper))
    return _run(code, tmp_path).splitlines()


def test_a_killed_helper_leaves_its_kernels_to_this_process_and_a_warm_cache_starts_nothing(tmp_path):
    first, again = _drive(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert first == "[['a'], ['b']] True True True"  # b was the helper's; compiled here after it died
    assert again == "Precompiled(lanes=[], seconds=0.0, failed=[])"


def test_a_helper_that_exits_without_compiling_is_caught(tmp_path):
    first, _ = _drive(tmp_path, "pass")
    assert first == "[['a'], ['b']] False True True"


_SAVER = """
import os, sys
import numba
import backtest.kernels  # noqa: F401
from numba.core.caching import IndexDataCacheFile

os.makedirs(os.path.join(numba.config.CACHE_DIR, "race"), exist_ok=True)
f = IndexDataCacheFile(os.path.join(numba.config.CACHE_DIR, "race"), "f", "stamp")
me = int(sys.argv[1])
for i in range(40):
    f.save((me, i), ("payload", me, i))
"""


def test_concurrent_cache_saves_of_different_signatures_keep_every_entry(tmp_path):
    """numba's own save reads the index, picks a free data file and rewrites the index: without a lock
    two processes lose entries or give two signatures one data file. Four writers at once, then every
    key must load its own payload."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(DIPFLOW_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", _SAVER, str(w)], env=env, stderr=subprocess.PIPE) for w in range(4)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    check = textwrap.dedent("""
        import os, numba
        import backtest.kernels
        from numba.core.caching import IndexDataCacheFile
        f = IndexDataCacheFile(os.path.join(numba.config.CACHE_DIR, "race"), "f", "stamp")
        bad = [(w, i) for w in range(4) for i in range(40) if f.load((w, i)) != ("payload", w, i)]
        print(len(bad))
    """)
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "0", out.stderr


_TWICE = """
import sys, time
from backtest import coldstart as c
import fakek

def ran(name, f):
    def job(cfg):
        with open("ran.txt", "a") as log:
            log.write(name + "\\n")
        time.sleep(0.5)
        f(1)
    return job

jobs = [c.Job("a", ran("a", fakek.a), ("fakek", "a"), 5.0), c.Job("b", ran("b", fakek.b), ("fakek", "b"), 4.0)]
c._jobs = lambda kinds, cfg, given: [j for j in jobs if c._todo(j)]
c.HELPER = "pass"  # a helper that does nothing: this process compiles both
c.precompile(processes=2)
"""


def test_concurrent_precompiles_take_turns_and_compile_once(tmp_path):
    (tmp_path / "fakek.py").write_text(_KERNELS)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(DIPFLOW_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    procs = [subprocess.Popen([sys.executable, "-c", _TWICE], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
             for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["a", "b"]


def test_precompile_in_a_fresh_process_finds_dipflows_cache_directory(tmp_path):
    """Nothing imported but backtest.coldstart: precompile still uses (and checks) dipflow's cache directory."""
    out = _run("""
        from backtest import coldstart as c
        c._jobs = lambda kinds, cfg, given: []
        import numba
        print(c.precompile().failed, numba.config.CACHE_DIR.startswith(%r))
    """ % str(tmp_path / "cache"), tmp_path)
    assert out.strip() == "[] True"


_NOTICE = """
import io
from backtest import coldstart as c
import fakek

jobs = [c.Job("a", lambda cfg: fakek.a(1), ("fakek", "a"), 5.0), c.Job("b", lambda cfg: fakek.b(1), ("fakek", "b"), 4.0)]
c._jobs = lambda kinds, cfg, given: [j for j in jobs if c._todo(j)]
for _ in range(2):
    out = io.StringIO()
    c.precompile(processes=2, stream=out)
    print(repr(out.getvalue()))
"""


def test_the_notice_says_what_compiles_once_and_nothing_when_cached(tmp_path):
    (tmp_path / "fakek.py").write_text(_KERNELS)
    cold, warm = _run(_NOTICE, tmp_path).splitlines()
    assert cold.startswith("'compiling the simulation and sweep kernels (a, b; 2 processes at once, first run with "
                           "this version only, ~5 s on an idle machine); later runs load them from ")
    assert str(tmp_path / "cache") in cold
    assert warm == "''"
