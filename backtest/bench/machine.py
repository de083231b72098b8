"""What a figure was measured on: the machine, the library versions and the tree."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from backtest.bench.data import ROOT


def machine() -> dict:
    """CPU model, cores, memory and library versions: what a figure was measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 2**20
    except OSError:
        pass
    import numba
    import pandas

    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gb": round(mem_gb, 1), "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pandas.__version__, "numba": numba.__version__,
            "platform": platform.platform()}


def tree() -> dict:
    """What was measured: git commit, files changed since it (backtest/, strategies/, configs/),
    and the digest of the compiled kernels' sources (backtest.kernels.source_digest)."""
    from backtest.kernels import source_digest

    out = {"kernels": source_digest(), "commit": None, "changed": []}
    try:
        git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,  # noqa: E731
                                        timeout=10).stdout
        out["commit"] = git("rev-parse", "--short", "HEAD").strip() or None
        out["changed"] = [line[3:] for line in git("status", "--porcelain", "--", "backtest", "strategies",
                                                   "configs").splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    return out
