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


def _lock_cache_writes() -> None:
    """numba adds a kernel to its cache by reading the function's index, picking the next free data
    file name and rewriting the index, without a lock: two processes compiling different signatures
    of one function at once (parallel compilation, test workers, Dask workers) can give both the
    same data file, and the index one's name with the other's machine code. An exclusive flock per
    index file makes each save whole. Applies to this package's cache directory only."""
    try:
        import fcntl

        from numba.core.caching import IndexDataCacheFile
    except ImportError:  # no flock (Windows) or numba moved it: numba's own behaviour
        return
    save = IndexDataCacheFile.save
    if getattr(save, "dipflow_locked", False):
        return

    def locked_save(self, key, data):
        path = getattr(self, "_index_path", "")
        if not numba.config.CACHE_DIR or not path.startswith(numba.config.CACHE_DIR):
            return save(self, key, data)
        try:
            fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return save(self, key, data)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return save(self, key, data)
        finally:
            os.close(fd)

    locked_save.dipflow_locked = True
    IndexDataCacheFile.save = locked_save


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()
_lock_cache_writes()
