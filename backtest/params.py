"""Typed, range-checked parameters shared by strategies and features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backtest.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """A strategy parameter: its type, default, inclusive valid range and one line of help."""

    name: str
    type: type
    default: int | float
    lo: float
    hi: float
    help: str

    def check(self, value: Any, where: str) -> int | float:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or isinstance(value, bool):
            raise ConfigError(f"{where}: parameter {self.name!r} expects {self.type.__name__}, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise ConfigError(f"{where}: parameter {self.name!r} = {value!r} is out of range [{self.lo}, {self.hi}]")
        return value
