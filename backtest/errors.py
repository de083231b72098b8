"""User-facing errors: bad data or config. The CLI prints them as one message and exits 2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One violation, located as precisely as the input allows."""

    file: str
    message: str
    row: int | None = None  # CSV: line number in the file (header = 1); Parquet: 0-based row
    column: str | None = None
    symbol: str | None = None
    date: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.date is not None:
            where.append(f"date {self.date}")
        if self.symbol is not None:
            where.append(f"symbol {self.symbol}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}"


class UserError(Exception):
    """Something the user can fix in their config or data; never a bug in the engine."""


class DataError(UserError):
    """Input data violates the documented format; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem], limit: int = 50):
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} data problem(s):\n{shown}{tail}")


class ConfigError(UserError):
    """A config file is invalid; the message names the file and the key."""
