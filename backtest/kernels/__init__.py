"""Numba kernels: plain functions over arrays, no pandas.

numba keys a cached function on its own file only, so a kernel would keep stale machine code of a
callee edited in another file. The cache directory is therefore named after a hash of every
kernel source (and `backtest/costs.py`, whose `order_fees` they call): any edit starts afresh.
Set before any kernel is decorated, i.e. before the submodules are imported; a module outside
this package with `@njit(cache=True)` (costs.py, event_study.py) imports `backtest.kernels` first.
"""

import hashlib
import os
from pathlib import Path

import numba


def source_digest() -> str:
    """Hash of the compiled code's sources: the kernels and `backtest/costs.py`."""
    here = Path(__file__).resolve().parent
    sources = sorted(here.glob("*.py")) + [here.parent / "costs.py"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]


def _cache_dir() -> str:
    digest = source_digest()
    base = os.environ.get("DIPFLOW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dipflow")
    return os.path.join(base, f"numba-{numba.__version__}-{digest}")


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()
