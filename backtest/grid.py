"""Parameter grids from a config's [sweep.grid]: lists, linear ranges and log ranges.

    dip = [0.05, 0.1, 0.15]                               # a list
    flow_z = { start = 1.0, stop = 3.0, num = 5 }         # linear, both ends included
    flow_window = { start = 20, stop = 250, num = 4, log = true }   # log-spaced
    "exits.max_hold" = { start = 5, stop = 30, step = 5 }  # by step, both ends included

Keys are strategy parameters or `exits.<name>` (stop_loss, take_profit, trailing_stop, max_hold).
Integer parameters take integer values; a range that rounds two points onto one is an error.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from types import ModuleType

import numpy as np

from backtest.config import Config, ExitConfig
from backtest.errors import ConfigError
from backtest.strategy import Param

MAX_POINTS = 100_000  # values per grid key
MAX_COMBINATIONS = 10_000_000  # combinations per grid
EXIT_KEYS = tuple(f"exits.{f.name}" for f in fields(ExitConfig))


@dataclass(frozen=True)
class Grid:
    """The cartesian product of `values`, in key order; combination p is `combo(p)`."""

    keys: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    @property
    def size(self) -> int:
        return int(np.prod([len(v) for v in self.values])) if self.values else 1

    def indices(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, K) indices into `values` of combinations start..stop-1 (last key fastest)."""
        shape = [len(v) for v in self.values]
        return np.stack(np.unravel_index(np.arange(start, stop), shape), axis=1) if shape else np.zeros((stop - start, 0), int)

    def combo(self, p: int) -> dict[str, int | float]:
        idx = self.indices(p, p + 1)[0]
        return {k: _scalar(v[i]) for k, v, i in zip(self.keys, self.values, idx)}


def _scalar(x):
    return int(x) if isinstance(x, np.integer) else float(x)


def _exit_spec(key: str) -> Param:
    f = {f.name: f for f in fields(ExitConfig)}[key.split(".", 1)[1]]
    kind = int if f.type in ("int", int) else float
    return Param(key, kind, f.default, f.metadata["lo"], f.metadata["hi"] if f.metadata["hi"] is not None else np.inf,
                 f.metadata["help"])


def _number(spec: dict, k: str, key: str, where: str) -> float:
    v = spec[k]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > 1e15:
        raise ConfigError(f"{where}: [sweep.grid] {key!r}: {k} must be a finite number (|x| <= 1e15), got {v!r}")
    return float(v)


def _expand(key: str, spec, param: Param, where: str) -> np.ndarray:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: [sweep.grid] {key!r} is an empty list")
        vals = [param.check(v, f"{where}: [sweep.grid]") for v in spec]
    elif isinstance(spec, dict):
        allowed = {"start", "stop", "num", "step", "log"}
        for k in spec:
            if k not in allowed:
                close = difflib.get_close_matches(k, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{where}: [sweep.grid] {key!r}: unknown range key {k!r}{hint}")
        if "start" not in spec or "stop" not in spec or ("num" in spec) == ("step" in spec):
            raise ConfigError(f"{where}: [sweep.grid] {key!r}: a range needs start, stop and one of num or step")
        start, stop = (_number(spec, k, key, where) for k in ("start", "stop"))
        if not isinstance(spec.get("log", False), bool):
            raise ConfigError(f"{where}: [sweep.grid] {key!r}: log must be true or false, got {spec['log']!r}")
        num = None
        if "num" in spec:
            num = spec["num"]
            if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= MAX_POINTS:
                raise ConfigError(f"{where}: [sweep.grid] {key!r}: num must be an integer in [1, {MAX_POINTS}], "
                                  f"got {num!r}")
        if spec.get("log"):
            if num is None or start <= 0 or stop <= 0:
                raise ConfigError(f"{where}: [sweep.grid] {key!r}: a log range needs num and positive start and stop")
            raw = np.geomspace(start, stop, num)
        elif num is not None:
            raw = np.linspace(start, stop, num)
        else:
            step = _number(spec, "step", key, where)
            if step <= 0:
                raise ConfigError(f"{where}: [sweep.grid] {key!r}: step must be positive")
            n = math.floor((stop - start) / step + 1e-9) + 1
            if n > MAX_POINTS:
                raise ConfigError(f"{where}: [sweep.grid] {key!r}: the range has {n} points; at most {MAX_POINTS}")
            raw = start + step * np.arange(max(n, 0))
            if not len(raw):
                raise ConfigError(f"{where}: [sweep.grid] {key!r}: the range is empty (stop < start)")
        vals = [param.check(int(round(x)) if param.type is int else float(f"{x:.12g}"), f"{where}: [sweep.grid]") for x in raw]
    else:
        vals = [param.check(spec, f"{where}: [sweep.grid]")]
    if len(set(vals)) != len(vals):
        raise ConfigError(f"{where}: [sweep.grid] {key!r} has repeated values {vals} (integer rounding?)")
    return np.array(vals, dtype=np.int64 if param.type is int else np.float64)


def build_grid(cfg: Config, module: ModuleType) -> Grid:
    """Validate [sweep.grid] against the strategy's parameters and the exit settings."""
    where = cfg.source or "config"
    params = {p.name: p for p in module.PARAMS}
    keys, values = [], []
    for key, spec in cfg.sweep.grid.items():
        if key in params:
            param = params[key]
        elif key in EXIT_KEYS:
            param = _exit_spec(key)
        else:
            valid = list(params) + list(EXIT_KEYS)
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (valid: {', '.join(valid)})"
            raise ConfigError(f"{where}: [sweep.grid] unknown parameter {key!r} for strategy {module.NAME!r}{hint}")
        keys.append(key)
        values.append(_expand(key, spec, param, where))
    size = math.prod(len(v) for v in values)
    if size > MAX_COMBINATIONS:
        raise ConfigError(f"{where}: [sweep.grid] has {size} combinations; at most {MAX_COMBINATIONS}")
    return Grid(tuple(keys), tuple(values))
