"""Typed, range-checked parameters shared by strategies and features."""

from __future__ import annotations

import numbers
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

    def validate(self, where: str) -> None:
        """ConfigError unless the declaration is usable: grids, ranges and sweeps are numeric."""
        if not (isinstance(self.type, type) and issubclass(self.type, numbers.Real)) or self.type is bool:
            raise ConfigError(f"{where}: parameter {self.name!r} needs a number type (int, float), got {self.type!r}")
        nums = (self.lo, self.default, self.hi)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in nums) or not self.lo <= self.default <= self.hi:
            raise ConfigError(f"{where}: parameter {self.name!r} needs numbers lo <= default <= hi, got lo = "
                              f"{self.lo!r}, default = {self.default!r}, hi = {self.hi!r}")
        self.check(self.default, f"{where}: default")

    def check(self, value: Any, where: str) -> int | float:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or isinstance(value, bool):
            raise ConfigError(f"{where}: parameter {self.name!r} expects {self.type.__name__}, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise ConfigError(f"{where}: parameter {self.name!r} = {value!r} is out of range [{self.lo}, {self.hi}]")
        return value
