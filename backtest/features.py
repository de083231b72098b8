"""Feature registry: name -> how to compute it from a Panel, its typed parameters, and when it becomes known.

`known` is the first moment a value on row t can be acted on: "close" (HK close of t, prices) or
"next_open" (before the HK open of t+1: southbound flows, ADR closes, FX). A fill earlier than
`known` is look-ahead and is refused in `backtest.strategy`. Built-in and user features share one
registry (`FEATURES`); users add theirs with `register_feature` (docs/strategies.md):

    @register_feature(params=(Param("window", int, 20, 2, 500, "bars"),), known="close",
                      help="close over its `window`-bar mean")
    def close_vs_mean(panel, window):
        close = panel.frame("close")
        return close / close.rolling(window).mean()
"""

from __future__ import annotations

import inspect
import linecache
import re
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from backtest.data.market import Panel
from backtest.errors import ConfigError, UserError
from backtest.params import Param
from backtest.rules import FeatureRef

KNOWN = ("close", "next_open")
MAX_BARS = 10_000  # upper end of every built-in window: 40 years of HK bars


@dataclass(frozen=True)
class FeatureDef:
    """A registered feature: `compute(panel, **params)` gives a (T, N) array-like of floats."""

    name: str
    compute: Callable[..., Any]
    params: tuple[Param, ...]
    known: str
    help: str
    builtin: bool = True

    def values(self, panel: Panel, ref: FeatureRef) -> np.ndarray:
        """The checked (T, N) float64 values for one reference (errors name the feature)."""
        given = dict(ref.params)
        given = {p.name: p.check(given[p.name], f"feature {ref}") for p in self.params}
        if self.builtin:
            return self.compute(_read_only(panel), **given)
        try:
            out = self.compute(_read_only(panel), **given)
        except Exception as exc:  # the user's code failed: show their frame, not ours
            text = " ".join(str(exc).split())  # one line, whatever the exception's message
            raise UserError(f"feature {ref}: {getattr(self.compute, '__name__', self.name)}() raised "
                            f"{type(exc).__name__}: {text}{_user_frame(exc, self.compute)}") from None
        return _as_panel_array(out, panel, f"feature {ref}")


def _read_only(panel: Panel) -> Panel:
    """The panel with read-only views of its arrays in the documented layout ((T, N) fields in
    Fortran order): a user feature cannot change another's inputs, and a built-in kernel sees one
    array type whichever loader made the panel (numba compiles a kernel again for another)."""
    def ro(a: np.ndarray) -> np.ndarray:
        v = (np.asfortranarray(a) if a.ndim == 2 else np.ascontiguousarray(a)).view()
        v.flags.writeable = False
        return v

    return replace(panel, fields={k: ro(v) for k, v in panel.fields.items()},
                   series={k: ro(v) for k, v in panel.series.items()})


def _user_frame(exc: BaseException, fn: Callable) -> str:
    """' at FILE:LINE in FUNC: `source`' for the deepest traceback frame in the feature's own file."""
    frames = traceback.extract_tb(exc.__traceback__)
    home = getattr(getattr(fn, "__code__", None), "co_filename", None)
    mine = [f for f in frames if f.filename == home] or frames[1:] or frames
    f = mine[-1]
    line = (f.line or linecache.getline(f.filename, f.lineno)).strip()
    return f" at {f.filename}:{f.lineno} in {f.name}" + (f": `{line}`" if line else "")


def _as_panel_array(out: Any, panel: Panel, where: str) -> np.ndarray:
    """A user feature's result as C-contiguous float64 (T, N); one error naming what is wrong.

    A DataFrame must carry the panel's dates and symbols (in any order: it is reindexed, but none
    may be missing or extra); a Series, or an array of shape (T,) or (T, 1), is a market-level series that holds
    for every symbol.
    """
    import pandas as pd

    n_t, n_s = panel.shape
    if isinstance(out, (pd.DataFrame, pd.Series)):
        dates = pd.DatetimeIndex(panel.dates)
        if not isinstance(out.index, pd.DatetimeIndex) or not out.index.sort_values().equals(dates):
            raise UserError(f"{where}: returned a {type(out).__name__} whose index is not the panel's "
                            f"{n_t} dates ({dates[0].date()} .. {dates[-1].date()}); index it like panel.frame(...)")
        if isinstance(out, pd.DataFrame):
            cols = [str(c) for c in out.columns]
            if sorted(cols) != sorted(panel.symbols) or len(set(cols)) != len(cols):
                missing = sorted(set(panel.symbols) - set(cols))[:5]
                extra = sorted(set(cols) - set(panel.symbols))[:5]
                raise UserError(f"{where}: returned a DataFrame whose columns are not the panel's symbols "
                                f"(missing {missing}, unexpected {extra})")
            bad = [(str(c), str(d)) for c, d in out.dtypes.items() if d.kind not in "biuf"]
            if bad:
                raise UserError(f"{where}: returned non-numeric column(s) {bad[:5]} (column, dtype); "
                                f"expected numbers (float64)")
            out = out.set_axis(cols, axis=1).reindex(index=dates, columns=list(panel.symbols))
        else:
            out = out.reindex(dates)
        out = out.to_numpy()
    arr = np.asarray(out)
    if arr.dtype.kind not in "biuf":
        got = "None" if out is None else f"values of dtype {arr.dtype}"
        raise UserError(f"{where}: returned {got}; expected a (dates, symbols) array or DataFrame of numbers")
    if arr.shape in ((n_t,), (n_t, 1)):  # a market-level series: the same value for every symbol
        arr = np.broadcast_to(arr.reshape(n_t, 1), (n_t, n_s))
    if arr.shape != (n_t, n_s):
        raise UserError(f"{where}: returned shape {arr.shape}; expected (dates, symbols) = ({n_t}, {n_s}) "
                        f"or ({n_t},) / ({n_t}, 1) for a market-level series")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    inf = np.isinf(arr)
    if inf.any():
        t, j = np.argwhere(inf)[0]
        raise UserError(f"{where}: {int(inf.sum())} infinite value(s), first {arr[t, j]} on "
                        f"{np.datetime_as_string(panel.dates[t], unit='D')} for symbol {panel.symbols[j]}; "
                        f"return NaN where the value is undefined")
    return arr


FEATURES: dict[str, FeatureDef] = {}


def register_feature(name: str | Callable | None = None, *, params: tuple[Param, ...] = (), known: str = "close",
                     help: str = "") -> Callable:
    """Decorator: add `compute(panel, **params) -> (T, N) array or DataFrame` to `FEATURES` as `name`
    (default: the function's name). Use it in rules as `feature(name, **params)`."""
    if callable(name):  # bare @register_feature
        return register_feature()(name)

    def deco(fn: Callable) -> Callable:
        fname = name or getattr(fn, "__name__", "")
        where = f"register_feature {fname!r}"
        if not isinstance(fname, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", fname):
            raise ConfigError(f"{where}: the name must be an identifier (letters, digits, _)")
        old = FEATURES.get(fname)
        if old is not None and (old.builtin or _origin(old.compute) != _origin(fn)):
            kind = "a built-in feature" if old.builtin else f"a feature from {_origin(old.compute)[0]}"
            raise ConfigError(f"{where}: the name is already taken by {kind}; choose another name")
        if known not in KNOWN:
            raise ConfigError(f"{where}: known must be 'close' (HK close of the bar: prices) or 'next_open' "
                              f"(before the next HK open: flows, ADR closes, FX), got {known!r}")
        if not isinstance(params, (tuple, list)) or not all(isinstance(p, Param) for p in params):
            raise ConfigError(f"{where}: params must be a tuple of backtest.params.Param")
        for p in params:
            p.validate(where)
        if not callable(fn):
            raise ConfigError(f"{where}: decorate a function compute(panel, **params)")
        try:
            inspect.signature(fn).bind(None, **{p.name: p.default for p in params})
        except TypeError as exc:
            raise ConfigError(f"{where}: compute must accept (panel, {', '.join(p.name for p in params)}) "
                              f"as declared in params: {exc}") from None
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        FEATURES[fname] = FeatureDef(fname, fn, tuple(params), known, help or (doc[0] if doc else ""), builtin=False)
        return fn

    return deco


def _origin(fn: Callable) -> tuple[str, str]:
    return getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", "?")


# ---------------------------------------------------------------- built-in features


def _k():
    from backtest.kernels import features as k  # numba compiles (or loads its cache) only here

    return k


def _z_min(window: int) -> int:
    """Z-scores and percentiles need half their window of valid values (flows have closed days)."""
    return max(2, window // 2)


def _market(p: Panel, name: str) -> np.ndarray:
    return np.ascontiguousarray(p.series[name][:, None])


def _wide(x: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(x, (x.shape[0], n)))


def _c(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x)


def _bars(name: str, lo: int = 2, help: str = "bars") -> Param:
    """A window; rolling statistics need >= 2 values, a return horizon or a sum may be 1."""
    return Param(name, int, 20, lo, MAX_BARS, help)


def _builtin(name: str, compute: Callable, params: tuple[Param, ...], known: str, help: str) -> None:
    FEATURES[name] = FeatureDef(name, compute, params, known, help)


W = (_bars("window"),)
_builtin("drawdown", lambda p, window: _k().drawdown(p.fields["close"], window, window), W, "close",
         "close / highest close of the last `window` bars - 1 (<= 0)")
_builtin("ret", lambda p, window: _k().pct_change(p.fields["close"], window), (_bars("window", 1),), "close",
         "`window`-bar simple return of the close")
_builtin("ret_z", lambda p, window, vol_window: _k().return_zscore(p.fields["close"], window, vol_window,
                                                                   _z_min(vol_window)),
         (_bars("window", 1), _bars("vol_window")), "close",
         "`window`-bar return / (daily-return std over `vol_window` x sqrt(window))")
_builtin("index_dd", lambda p, window: _wide(_k().drawdown(_market(p, "index_close"), window, window), len(p.symbols)),
         W, "close", "benchmark index close / its highest close of the last `window` bars - 1 (<= 0); "
                     "the same for every symbol")
_builtin("index_ret", lambda p, window: _wide(_k().pct_change(_market(p, "index_close"), window), len(p.symbols)),
         (_bars("window", 1),), "close", "`window`-bar return of the benchmark index, same for every symbol")
_builtin("sb_z", lambda p, window: _wide(_k().trailing_zscore(_market(p, "sb_net_buy"), window, _z_min(window)),
                                          len(p.symbols)),
         W, "next_open", "z-score of aggregate southbound net buy vs the prior `window` Connect days")
_builtin("sb_pct", lambda p, window: _wide(_k().trailing_percentile(_market(p, "sb_net_buy"), window, _z_min(window)),
                                            len(p.symbols)),
         W, "next_open", "percentile (0-1) of aggregate southbound net buy in the prior `window` bars")


def _sb_cum(p: Panel, window: int) -> np.ndarray:
    return _k().sum_last_valid(_market(p, "sb_net_buy"), window, window)


_builtin("sb_cum", lambda p, window: _wide(_sb_cum(p, window), len(p.symbols)), (_bars("window", 1, "Connect days"),),
         "next_open",
         "aggregate southbound net buy (HK$) summed over the last `window` Connect days (closed days skipped; "
         "NaN until `window` of them, and on closed days)")
_builtin("sb_cum_z", lambda p, window, z_window: _wide(_k().trailing_zscore(_sb_cum(p, window), z_window,
                                                                            _z_min(z_window)), len(p.symbols)),
         (_bars("window", 1, "Connect days"), _bars("z_window")), "next_open",
         "z-score of sb_cum(window) vs its values on the prior `z_window` bars")
_builtin("sb_stock_z", lambda p, window: _k().trailing_zscore(p.fields["sb_net_buy"], window, _z_min(window)),
         W, "next_open", "z-score of the stock's southbound net buy (CCASS record date) vs prior `window` bars")
_builtin("sb_rank", lambda p: _k().cross_rank(_c(p.fields["sb_net_buy"])), (), "next_open",
         "rank of the stock's southbound net buy among the symbols that day (1 = largest; ties share the best rank)")
_builtin("sb_rank_pct", lambda p: _k().cross_percentile(_c(p.fields["sb_net_buy"])), (), "next_open",
         "fraction of symbols that day whose southbound net buy is <= the stock's (1 = the largest)")
_builtin("sb_adv", lambda p, window: _k().ratio_to_trailing_mean(p.fields["sb_net_buy"], p.fields["turnover"], window,
                                                                 _z_min(window)),
         W, "next_open", "stock's southbound net buy / its average daily turnover over the prior `window` bars")
_builtin("adr_premium", lambda p: p.fields["adr_premium"], (), "next_open",
         "ADR close x USDHKD / ratio / HK close - 1 (negative = ADR discount)")
_builtin("adr_z", lambda p, window: _k().trailing_zscore(p.fields["adr_premium"], window, _z_min(window)),
         W, "next_open", "z-score of the ADR premium vs the prior `window` bars")
_builtin("adr_pct", lambda p, window: _k().trailing_percentile(p.fields["adr_premium"], window, _z_min(window)),
         W, "next_open", "percentile (0-1) of the ADR premium in the prior `window` bars")
_builtin("adr_staleness", lambda p: p.fields["adr_staleness"], (), "next_open",
         "weekdays between the HK date and the US close used (US holidays)")
_builtin("adr_overnight", lambda p: _k().overnight_return(_c(p.fields["adr_overnight_hkd"]), _c(p.fields["close"])),
         (), "close",
         "ADR close of the US session before this bar's HK open, in HK$ (x USDHKD / ratio), / previous HK close - 1")
_builtin("adr_gap", lambda p: _k().overnight_gap(_c(p.fields["adr_overnight_hkd"]), _c(p.fields["close"])),
         (), "close", "adr_overnight - this bar's HK close-to-close return (negative: the ADR fell further)")
del W


def check_ref(ref: FeatureRef) -> FeatureDef:
    """The definition of a feature reference, or a ConfigError naming what is wrong."""
    if ref.name not in FEATURES:
        raise ConfigError(f"unknown feature {ref.name!r}; known: {', '.join(sorted(FEATURES))}")
    fd = FEATURES[ref.name]
    given = dict(ref.params)
    names = [p.name for p in fd.params]
    if set(given) != set(names):
        raise ConfigError(f"feature {ref}: takes parameters {names}, got {sorted(given)}")
    for p in fd.params:
        p.check(given[p.name], f"feature {ref}")
    return fd


def compute_features(panel: Panel, refs: list[FeatureRef]) -> np.ndarray:
    """Stack the features in `refs` order into one symbol-major (F, N, T) array, each computed once."""
    n_t, n_s = panel.shape
    out = np.empty((len(refs), n_s, n_t), dtype=np.float64)
    first: dict[FeatureRef, int] = {}
    for i, ref in enumerate(refs):
        j = first.setdefault(ref, i)
        out[i] = out[j] if j < i else check_ref(ref).values(panel, ref).T
    return out


def describe_features() -> str:
    """Every registered feature with its parameters, ranges and when it is known (for `strategies`)."""
    lines = []
    for fd in sorted(FEATURES.values(), key=lambda f: (not f.builtin, f.name)):
        origin = "" if fd.builtin else f"  [{_origin(fd.compute)[0]}]"
        lines.append(f"  {fd.name}({', '.join(p.name for p in fd.params)})  known: {fd.known}{origin}")
        lines.append(f"      {fd.help}")
        for p in fd.params:
            lines.append(f"      {p.name:<12} {p.type.__name__:<5} range [{p.lo}, {p.hi}]  {p.help}")
    return "features (feature(name, **params) in rules; known = when a value on bar t can be acted on):\n" + \
        "\n".join(lines)
