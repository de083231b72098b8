"""Shipped reference tables: the ADR pair table (DESIGN §2) and the default symbol universe."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pandas as pd


def _read(name: str) -> pd.DataFrame:
    with files("backtest.data").joinpath(name).open("r") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@cache
def adr_pair_history() -> pd.DataFrame:
    """Dated pair table: one row per (ADR ticker, ratio in force from `valid_from`), oldest first.

    An empty valid_from means "since the pair existed"; a ratio change is a new row."""
    df = _read("adr_pairs.csv")
    df["adr_ratio"] = df["adr_ratio"].astype(float)
    df["valid_from"] = pd.to_datetime(df["valid_from"].replace("", "1900-01-01"))
    return df.sort_values(["adr_ticker", "valid_from"], kind="stable").reset_index(drop=True)


@cache
def adr_pairs() -> pd.DataFrame:
    """US ADR ticker -> HK symbol and HK shares per ADR (the ratio in force now)."""
    return adr_pair_history().groupby("adr_ticker", sort=False).last()


@cache
def default_symbols() -> pd.DataFrame:
    """The universe the synthetic market draws from: name, board lot, ADR ticker and ratio."""
    df = _read("symbols.csv").set_index("symbol")
    df["board_lot"] = df["board_lot"].astype(int)
    df["adr_ratio"] = pd.to_numeric(df["adr_ratio"].replace("", None), errors="raise").astype(float)
    return df


@cache
def closures() -> pd.DataFrame:
    """Whole-day exchange closures missing from exchange_calendars: exchange, date, reason."""
    return _read("closures.csv")


@cache
def board_lot_history() -> pd.DataFrame:
    """Dated board-lot changes: symbol, valid_from, board_lot (the lot from valid_from on).

    A symbol without rows keeps its symbols.csv lot throughout; before a symbol's first change the
    lot is the one that change replaced, so each symbol's history starts with a row valid_from ""
    (since listing) and its last row equals the symbols.csv lot (tests/test_import.py)."""
    df = _read("board_lots.csv")
    df["valid_from"] = pd.to_datetime(df["valid_from"].replace("", "1900-01-01"))
    df["board_lot"] = df["board_lot"].astype(int)
    return df.sort_values(["symbol", "valid_from"], kind="stable").reset_index(drop=True)
