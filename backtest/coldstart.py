"""Say so when a command is about to compile kernels (numba's first run with these sources).

A first run spends most of its time compiling; without a word it looks hung. Each kernel module's
compiled functions are checked for a cached index file in numba's cache directory (named after a
digest of the kernel sources, backtest/kernels/__init__.py); if any is missing, one line goes to
stderr before the work starts. Later runs load the cache and print nothing.
"""

from __future__ import annotations

import importlib
import os
import sys

# What each command compiles, and roughly how long it takes on one core of the 2-core machine
# (docs/performance.md, "Cold start": 12 s of CPU for the first run, 28 s for the first sweep).
RUN = ("simulation", ("backtest.kernels.features", "backtest.kernels.simulate", "backtest.costs",
                      "backtest.event_study"), 15)
SWEEP = ("sweep", ("backtest.kernels.features", "backtest.kernels.sweep", "backtest.kernels.metrics",
                   "backtest.costs"), 30)


def uncached(modules: tuple[str, ...]) -> list[str]:
    """Those of `modules` with none of their compiled functions in numba's cache yet. (Per module:
    helpers only ever called from other kernels are compiled into their callers, never cached
    alone, so one cached entry means the module was compiled.)"""
    from numba.core.dispatcher import Dispatcher

    import backtest.kernels  # noqa: F401  (sets the cache directory first)

    out = []
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # a kernel module renamed or merged: the notice is advice, never an error
            continue
        indexes = [getattr(getattr(getattr(f, "_cache", None), "_cache_file", None), "_index_path", None)
                   for f in vars(mod).values() if isinstance(f, Dispatcher) and f.__module__ == name]
        indexes = [i for i in indexes if i]
        if indexes and not any(os.path.exists(i) for i in indexes):
            out.append(name)
    return out


def notice(what: tuple[str, tuple[str, ...], int], stream=None) -> bool:
    """Print the compile notice for `what` (RUN or SWEEP) if its kernels are not cached; True if printed."""
    import numba

    label, modules, seconds = what
    missing = uncached(modules)
    if missing:
        print(f"compiling the {label} kernels ({', '.join(m.rsplit('.', 1)[1] for m in missing)}; first run with "
              f"this version only, "
              f"~{seconds} s, longer on a busy machine); later runs load them from "
              f"{numba.config.CACHE_DIR}", file=stream or sys.stderr, flush=True)
    return bool(missing)
