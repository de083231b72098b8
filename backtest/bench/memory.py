"""Peak memory of this process and of child processes, and running a child to its end (wall, CPU, RSS)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from backtest.bench.data import ROOT


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


_peak_kb = 0  # highest VmHWM seen before a reset: with it, the whole process's peak survives resets


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux: clear_refs 5); False where unsupported."""
    global _peak_kb
    _peak_kb = max(_peak_kb, _status_kb("VmHWM") or 0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def process_peak_mb() -> float:
    """Peak RSS of this process since it started, MB. VmHWM, not ru_maxrss: on Linux a child's
    ru_maxrss includes its parent's peak at the fork, carried over exec."""
    hwm = _status_kb("VmHWM")
    if hwm is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(_peak_kb, hwm) / 1024


class PeakMemory:
    """Peak resident memory of a block above the resident memory at its start (MB), and the
    process's peak RSS during it. Without a resettable peak (non-Linux) the delta is unknown."""

    def __enter__(self):
        self.ok = _reset_peak()
        self.start = _status_kb("VmRSS") if self.ok else None
        return self

    def __exit__(self, *exc):
        hwm = _status_kb("VmHWM") if self.ok else None
        if hwm is None:
            self.delta_mb = float("nan")
            self.process_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        else:
            self.delta_mb = max(hwm - self.start, 0) / 1024
            self.process_mb = hwm / 1024
        return False


class Child(NamedTuple):
    seconds: float
    peak_mb: float  # the child's peak RSS
    returncode: int
    stderr: str  # its tail
    cpu: float  # its user + system CPU seconds


# Runs argv[1:] from a small Python process and reports its wall time and peak RSS (os.wait4).
# Measured from a big process directly, a child's ru_maxrss would include the parent's size at the
# fork (Linux carries the pre-exec peak over exec).
_LAUNCHER = """
import json, os, subprocess, sys, tempfile, time
err = tempfile.TemporaryFile()
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=err)
_, status, usage = os.wait4(p.pid, 0)
t = time.perf_counter() - t0
err.seek(0)
print(json.dumps([t, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status),
                  err.read().decode(errors="replace")[-2000:], usage.ru_utime + usage.ru_stime]))
"""


CHILD_MEMORY = True  # False: run children directly (no launcher; their peak memory is not measured)


def run_child(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> Child:
    """Run a command to its end: wall time (from its start to its exit), peak RSS, exit code, CPU time."""
    if not CHILD_MEMORY:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Child(t, float("nan"), p.returncode, p.stderr[-2000:], cpu)
    p = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"launcher failed: {p.stderr[-2000:]}")
    return Child(*json.loads(p.stdout.splitlines()[-1]))
