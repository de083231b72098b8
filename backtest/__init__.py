"""dipflow: look-ahead-safe backtests of buy-the-dip flow strategies on HK-listed Chinese stocks.

Importing this package is cheap: numba kernels, pandas, vectorbt and plotting load only where used.
The Python API (docs/api.md) is reachable from here and loads `backtest.api` on first use:

    import backtest
    res = backtest.run("configs/dip.toml", **{"strategy.params.dip": 0.15})
    res.equity, res.trades, res.stats, res.tearsheet("out/dip_015")
"""

import types as _types

__version__ = "0.1.0"

API = ("run", "sweep", "simulate_signals", "lookahead", "load_market", "synthetic", "align", "make_config",
       "RunResult", "SweepOutput")
__all__ = list(API)
CALLABLE_MODULES = ("sweep", "lookahead")
"""Submodules that share their name with an API function: calling the module calls the function."""


def __getattr__(name: str):
    if name in CALLABLE_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")  # made callable by _Package.__setattr__
    if name in API:
        from backtest import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})


class _CallableModule(_types.ModuleType):
    """`backtest.sweep(...)` runs the API function while `backtest.sweep.run_sweep` stays the module's."""

    def __call__(self, *args, **kwargs):
        from backtest import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


class _Package(_types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # The import system binds every imported submodule here; the two that clash with API
        # functions become callable, however they were first imported.
        if name in CALLABLE_MODULES and type(value) is _types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _Package
