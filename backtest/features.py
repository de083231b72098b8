"""Feature registry: name -> how to compute it from a Panel, and when it becomes known (DESIGN §3-§4).

`known` is the first moment a value on row t can be acted on: "close" (HK close of t, prices) or
"next_open" (before the HK open of t+1: southbound flows, ADR closes, FX). A fill earlier than
`known` is look-ahead and is refused in `backtest.strategy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from backtest.data.market import Panel
from backtest.errors import ConfigError
from backtest.rules import FeatureRef


@dataclass(frozen=True)
class FeatureDef:
    compute: Callable[..., np.ndarray]
    params: tuple[str, ...]
    known: str
    help: str


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


FEATURES: dict[str, FeatureDef] = {
    "drawdown": FeatureDef(
        lambda p, window: _k().drawdown(p.fields["close"], window, window),
        ("window",), "close", "close / highest close of the last `window` bars - 1 (<= 0)"),
    "ret": FeatureDef(
        lambda p, window: _k().pct_change(p.fields["close"], window),
        ("window",), "close", "`window`-bar simple return of the close"),
    "ret_z": FeatureDef(
        lambda p, window, vol_window: _k().return_zscore(p.fields["close"], window, vol_window, _z_min(vol_window)),
        ("window", "vol_window"), "close", "`window`-bar return / (daily-return std over `vol_window` x sqrt(window))"),
    "sb_z": FeatureDef(
        lambda p, window: _wide(_k().trailing_zscore(_market(p, "sb_net_buy"), window, _z_min(window)), len(p.symbols)),
        ("window",), "next_open", "z-score of aggregate southbound net buy vs the prior `window` Connect days"),
    "sb_pct": FeatureDef(
        lambda p, window: _wide(_k().trailing_percentile(_market(p, "sb_net_buy"), window, _z_min(window)), len(p.symbols)),
        ("window",), "next_open", "percentile (0-1) of aggregate southbound net buy in the prior `window` bars"),
    "sb_stock_z": FeatureDef(
        lambda p, window: _k().trailing_zscore(p.fields["sb_net_buy"], window, _z_min(window)),
        ("window",), "next_open", "z-score of the stock's southbound net buy (CCASS record date) vs prior `window` bars"),
    "sb_adv": FeatureDef(
        lambda p, window: _k().ratio_to_trailing_mean(p.fields["sb_net_buy"], p.fields["turnover"], window, _z_min(window)),
        ("window",), "next_open", "stock's southbound net buy / its average daily turnover over the prior `window` bars"),
    "adr_premium": FeatureDef(
        lambda p: p.fields["adr_premium"],
        (), "next_open", "ADR close x USDHKD / ratio / HK close - 1 (negative = ADR discount)"),
    "adr_z": FeatureDef(
        lambda p, window: _k().trailing_zscore(p.fields["adr_premium"], window, _z_min(window)),
        ("window",), "next_open", "z-score of the ADR premium vs the prior `window` bars"),
    "adr_pct": FeatureDef(
        lambda p, window: _k().trailing_percentile(p.fields["adr_premium"], window, _z_min(window)),
        ("window",), "next_open", "percentile (0-1) of the ADR premium in the prior `window` bars"),
    "adr_staleness": FeatureDef(
        lambda p: p.fields["adr_staleness"],
        (), "next_open", "weekdays between the HK date and the US close used (US holidays)"),
}


def check_ref(ref: FeatureRef) -> FeatureDef:
    """The definition of a feature reference, or a ConfigError naming what is wrong."""
    if ref.name not in FEATURES:
        raise ConfigError(f"unknown feature {ref.name!r}; known: {', '.join(sorted(FEATURES))}")
    fd = FEATURES[ref.name]
    given = dict(ref.params)
    if set(given) != set(fd.params):
        raise ConfigError(f"feature {ref.name!r} takes parameters {list(fd.params)}, got {sorted(given)}")
    # Every window parameter counts bars. Rolling statistics (z-scores, percentiles, means, stds,
    # the rolling high) need at least 2 bars; a return horizon alone may be a single bar.
    one_bar_ok = {("ret", "window"), ("ret_z", "window")}
    for key, value in given.items():
        lo = 1 if (ref.name, key) in one_bar_ok else 2
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ConfigError(f"feature {ref}: parameter {key!r} must be an integer number of bars >= {lo}, "
                              f"got {value!r}")
    return fd


def compute_features(panel: Panel, refs: list[FeatureRef]) -> np.ndarray:
    """Stack the features in `refs` order into one symbol-major (F, N, T) array, each computed once."""
    n_t, n_s = panel.shape
    out = np.empty((len(refs), n_s, n_t), dtype=np.float64)
    for i, ref in enumerate(refs):
        out[i] = FEATURES[ref.name].compute(panel, **dict(ref.params)).T
    return out


def register_feature(name: str | None = None, *, params: tuple = (), known: str = "close",
                     help: str = "") -> Callable:
    """STOP-GAP from the api branch (owners.md interface 2) so docs/examples run; the features
    engineer's version replaces it. `compute(panel, **params) -> (T, N) array-like`."""
    def register(compute: Callable) -> Callable:
        def values(panel: Panel, **kw) -> np.ndarray:
            return np.ascontiguousarray(np.asarray(compute(panel, **kw), dtype=np.float64))

        FEATURES[name or compute.__name__] = FeatureDef(values, tuple(p.name for p in params), known, help)
        return compute
    return register
