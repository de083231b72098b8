"""The synthetic sample market, generated once and then read from disk (docs/performance.md).

Generating it costs ~0.3-0.5 s of CPU per run, most of it building exchange calendars; reading it
back costs a few milliseconds. A cached market is the pickled `MarketData` of
`synth.generate(seed, symbols, years)`, keyed by those arguments and by a digest of everything its
bits depend on: the generator's and the calendars' sources, the reference files they read
(backtest/data/*.csv, *.py) and the versions of numpy, pandas and exchange_calendars. Any change
to one of them misses the cache and regenerates, so a cached market is always bit-identical to a
fresh one (tests/test_synth_cache.py). An unreadable or unwritable cache falls back to generating.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import pickle
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from backtest.data.market import MarketData

_FORMAT = 1  # bump when the cache file layout changes


def cache_base() -> Path:
    """dipflow's cache directory: $DIPFLOW_CACHE_DIR, else $XDG_CACHE_HOME/dipflow, else ~/.cache/dipflow
    (the same base as the numba cache of backtest/kernels)."""
    base = os.environ.get("DIPFLOW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dipflow")
    return Path(base)


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "none"


@cache
def generator_digest() -> str:
    """Hash of what the generated bits depend on besides the arguments."""
    import numpy as np
    import pandas as pd

    here = Path(__file__).resolve().parent
    sources = sorted(p for p in here.iterdir() if p.is_file() and p.suffix in (".py", ".csv"))
    h = hashlib.sha256(f"{_FORMAT} numpy {np.__version__} pandas {pd.__version__} "
                       f"exchange_calendars {_version('exchange_calendars')}".encode())
    for p in sources:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _cacheable(seed, symbols, years) -> bool:
    """Plain integers and a finite number: anything else goes straight to the generator (and its errors)."""
    def whole(x) -> bool:
        return isinstance(x, numbers.Integral) and not isinstance(x, bool)

    return whole(seed) and whole(symbols) and isinstance(years, numbers.Real) and not isinstance(years, bool) \
        and math.isfinite(years)


def cache_path(seed: int, symbols: int, years: float) -> Path:
    """Where the market of these arguments is (or will be) cached."""
    name = f"synth-{generator_digest()}-seed{int(seed)}-symbols{int(symbols)}-years{float(years)!r}.pkl"
    return cache_base() / "markets" / name


def _generate(seed, symbols, years) -> MarketData:
    from backtest.data import synth  # on a miss only: reading the cache needs none of its ~0.05 s import

    return synth.generate(seed=seed, symbols=symbols, years=years)


def generate_cached(seed: int = 7, symbols: int = 25, years: float = 10.0) -> MarketData:
    """`synth.generate(seed, symbols, years)`, read from the cache when this exact market was made before."""
    if not _cacheable(seed, symbols, years):
        return _generate(seed, symbols, years)
    path = cache_path(seed, symbols, years)
    key = (generator_digest(), int(seed), int(symbols), float(years))
    try:
        with open(path, "rb") as f:
            stored_key, md = pickle.load(f)
        if stored_key == key and isinstance(md, MarketData):
            return md
    except Exception:  # absent, truncated or from an incompatible library version: regenerate
        pass
    md = _generate(seed, symbols, years)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump((key, md), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        _prune(path.parent)
    except OSError:  # a read-only or full cache directory only costs the next run the generation
        pass
    return md


STALE_DAYS = 7


def _prune(directory: Path) -> None:
    """Remove markets of other generator versions not written for `STALE_DAYS` days (a version
    still in use elsewhere, e.g. another checkout, keeps its files while it runs)."""
    import time

    current = f"synth-{generator_digest()}-"
    cutoff = time.time() - STALE_DAYS * 86400
    for p in directory.glob("synth-*.pkl"):
        try:
            if not p.name.startswith(current) and p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError:
            pass
