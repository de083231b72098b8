"""Read and validate the on-disk market data format (docs/data.md).

    load_market(path) -> MarketData      every violation is collected, then one DataError is raised

`backtest.data.write.write_market` writes the same format; `load_market` reads it back equal.

A dataset is a directory holding `dataset.toml` (units, index name) and the tables `symbols`,
`hk_daily`, `southbound`, `index`, `adr`, `fx`, each as `.csv` or `.parquet`; `hk_daily` and `adr`
may instead be wide directories with one file per field. Reading is vectorised; Python loops only
format the (capped) problems. Nothing is filled or dropped: a (date, symbol) without a row is NaN
because the stock did not trade (or was not listed) that day, which is what the data says.
"""

from __future__ import annotations

import csv
import difflib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.data import reference
from backtest.data.market import (HK_OPTIONAL, HK_REQUIRED, PRICE_FIELDS, SOUTHBOUND_LINKS, SOUTHBOUND_TOTAL,
                                  MarketData)
from backtest.errors import DataError, Problem

__all__ = ["load_market", "MANIFEST", "UNITS", "MAX_PER_CHECK", "FX_BAND", "PREMIUM_LIMIT"]

MANIFEST = "dataset.toml"
MAX_PER_CHECK = 20  # problems listed per (file, check); the rest are counted in one summary line
FX_BAND = (7.0, 8.5)  # plausible HK$ per US$ (the peg band is 7.75-7.85)
OHLC_RTOL = 1e-9  # relative tolerance of the high/low checks: float32 round trips are not errors
PREMIUM_LIMIT = 0.25  # |median ADR premium| above this means a wrong ratio or wrong units
DATE_DTYPE = "datetime64[us]"  # pandas 3 default resolution for parsed dates

# unit key -> accepted value -> factor to the engine's unit (HK$, US$, shares, HK$ per US$)
UNITS: dict[str, dict[str, float]] = {
    "hk_prices": {"HKD": 1.0},
    "adr_prices": {"USD": 1.0},
    "turnover": {"HKD": 1.0, "HKD_thousands": 1e3, "HKD_millions": 1e6},
    "southbound": {"HKD": 1.0, "HKD_millions": 1e6, "HKD_billions": 1e9},
    "volume": {"shares": 1.0},
    "fx": {"HKD_per_USD": 1.0},
}
# stated only when hk_daily carries the optional per-stock sb_net_buy column
OPTIONAL_UNITS: dict[str, dict[str, float]] = {
    "sb_net_buy": {"HKD": 1.0, "HKD_thousands": 1e3, "HKD_millions": 1e6, "HKD_billions": 1e9},
}
MANIFEST_KEYS = ("index_name", "units", "description")

SYMBOLS_COLUMNS = ("symbol", "name", "board_lot", "adr_ticker", "adr_ratio")
HK_FIELDS = (*HK_REQUIRED, *HK_OPTIONAL)
TABLES = ("symbols", "hk_daily", "southbound", "index", "adr", "fx")
WIDE_TABLES = {"hk_daily": (HK_REQUIRED, HK_OPTIONAL), "adr": (("close",), ())}
EXTS = (".csv", ".parquet")
MISSING_TOKENS = ("", "nan", "NaN", "NA")
# Plausible magnitudes, in the file's units (docs/data.md): a value outside is a unit error or
# corruption. They keep every product and sum the engine forms finite (e.g. shares = cash / price
# with cash <= 1e15 HK$, rolling sums and squares of flows). Sign rules are checked separately.
PRICE_RANGE = (1e-4, 1e6)  # HK$ or US$ per share; HK's tick floor is 0.001
MAGNITUDE = {"volume": 1e13, "turnover": 1e15, "sb_net_buy": 1e15, "sh": 1e15, "sz": 1e15, "total": 1e15,
             "board_lot": 1e7, "index": 1e7}
ISO_DATE = r"\d{4}-\d{2}-\d{2}"


# --------------------------------------------------------------------------------------------
# problem collection
# --------------------------------------------------------------------------------------------

class _Problems:
    """Collects problems, at most MAX_PER_CHECK per (file, check), counting the rest."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], list[Problem]] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._what: dict[tuple[str, str], tuple[str | None, str]] = {}

    def add(self, check: str, problem: Problem) -> None:
        self.many(problem.file, check, [0], lambda _i: problem, problem.column, problem.message)

    def many(self, file: str, check: str, positions, make: Callable[[int], Problem],
             column: str | None = None, what: str = "") -> None:
        """Record one problem per position (lazily: only the first MAX_PER_CHECK are formatted)."""
        positions = np.asarray(positions)
        if positions.size == 0:
            return
        key = (file, check)
        group = self._groups.setdefault(key, [])
        room = MAX_PER_CHECK - len(group)
        for i in positions[:max(room, 0)]:
            group.append(make(int(i)))
        self._counts[key] = self._counts.get(key, 0) + int(positions.size)
        self._what.setdefault(key, (column, what or check))

    def __bool__(self) -> bool:
        return bool(self._groups)

    def result(self) -> list[Problem]:
        out: list[Problem] = []
        for key, group in self._groups.items():
            out.extend(group)
            more = self._counts[key] - len(group)
            if more > 0:
                column, what = self._what[key]
                out.append(Problem(key[0], f"... and {more} more like this ({what}); "
                                            f"showing the first {len(group)}", column=column))
        return out


def _suggest(name: str, valid) -> str:
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _iso(d) -> str | None:
    if d is None or pd.isna(d):
        return None
    return str(np.datetime_as_string(np.datetime64(d, "D")))


def _fmt(x: float) -> str:
    return f"{x:.10g}"


# --------------------------------------------------------------------------------------------
# reading one table
# --------------------------------------------------------------------------------------------

@dataclass
class _Table:
    file: str  # path relative to the dataset directory, posix style
    df: pd.DataFrame
    parquet: bool

    def row(self, i: int) -> int:
        """Problem row of record i: CSV line number (header = 1) or 0-based Parquet row."""
        return int(i) if self.parquet else int(i) + 2

    @property
    def header_row(self) -> int | None:
        return None if self.parquet else 1

    def rows(self, positions: np.ndarray) -> np.ndarray:
        return positions if self.parquet else positions + 2


def _read(root: Path, rel: str, probs: _Problems, allow_empty: bool = False) -> _Table | None:
    """One table file as strings (CSV) or typed columns (Parquet); None (reported) if unusable or,
    unless `allow_empty`, without rows."""
    t = _read_any(root, rel, probs)
    if t is not None and t.df.empty and not allow_empty:
        probs.add("no rows", Problem(rel, f"{rel} has no rows"
                                          + ("" if t.parquet else " (only a header)")))
        return None
    return t


def _read_any(root: Path, rel: str, probs: _Problems) -> _Table | None:
    path = root / rel
    if rel.endswith(".parquet"):
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            probs.add("read", Problem(rel, f"cannot read Parquet file: {exc}"))
            return None
        if isinstance(df.index, pd.MultiIndex) or df.index.name is not None:
            df = df.reset_index()
        df.columns = [str(c) for c in df.columns]
        return _Table(rel, df, True)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError:
        _not_utf8(path, rel, probs)
        return None
    except (OSError, csv.Error) as exc:
        probs.add("read", Problem(rel, f"cannot read CSV file: {exc}"))
        return None
    if not header:
        probs.add("read", Problem(rel, "empty file: expected a header line", row=1))
        return None
    df = _read_csv_body(path, rel, header, probs)
    if df is None:
        return None
    # pandas renames repeated headers ("close", "close.1"): report them and keep the first
    first: dict[str, int] = {}
    for pos, name in enumerate(header):
        if name in first:
            probs.add("duplicate column", Problem(
                rel, f"duplicate column {name!r} (columns {first[name] + 1} and {pos + 1})",
                row=1, column=name))
        else:
            first[name] = pos
    df = df.iloc[:, sorted(first.values())]
    df.columns = [header[p] for p in sorted(first.values())]
    return _Table(rel, df, False)


def _not_utf8(path: Path, rel: str, probs: _Problems) -> bool:
    """Report the first byte that is not UTF-8, by line and offset; False if the file decodes."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as dec:
        probs.add("read", Problem(rel, f"byte {raw[dec.start]:#04x} at offset {dec.start} is not UTF-8; "
                                       "save the file as UTF-8", row=raw[:dec.start].count(b"\n") + 1))
        return True
    return False


def _read_csv_body(path: Path, rel: str, header: list[str], probs: _Problems) -> pd.DataFrame | None:
    """The data lines as strings, one column per header field; None (reported) if any line has
    another number of fields than the header (shifted fields would be read as wrong values)."""
    import pyarrow as pa
    from pyarrow import csv as pcsv

    names = [f"c{i}" for i in range(len(header))]
    bad: list[tuple[int | None, int]] = []

    def invalid(row) -> str:
        bad.append((row.number, row.actual_columns))
        return "skip"

    try:
        table = pcsv.read_csv(
            path, read_options=pcsv.ReadOptions(use_threads=False, skip_rows=1, column_names=names),
            parse_options=pcsv.ParseOptions(invalid_row_handler=invalid, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as exc:
        if not _not_utf8(path, rel, probs):
            probs.add("read", Problem(rel, f"cannot parse CSV: {exc}"))
        return None
    probs.many(rel, "field count", np.arange(len(bad)), lambda i: Problem(
        rel, f"line has {'more' if bad[i][1] > len(header) else 'fewer'} fields than the header: "
             f"{bad[i][1]} field{'' if bad[i][1] == 1 else 's'}, expected {len(header)} (a missing or extra "
             "separator would shift values into the wrong columns)", row=bad[i][0]), None,
        "lines with the wrong number of fields")
    if bad:
        return None
    return table.to_pandas()


def _check_columns(t: _Table, required, optional=(), *, probs: _Problems) -> bool:
    """Required columns present, nothing unexpected. False if a required column is missing."""
    expected = [*required, *optional]
    cols = list(t.df.columns)
    ok = True
    for name in required:
        if name not in cols:
            ok = False
            probs.add("missing column", Problem(
                t.file, f"missing required column {name!r} (expected columns: "
                        f"{', '.join(expected)})", row=t.header_row, column=name))
    for name in cols:
        if name not in expected:
            probs.add("unexpected column", Problem(
                t.file, f"unexpected column {name!r}{_suggest(name, expected)} "
                        f"(expected columns: {', '.join(expected)})",
                row=t.header_row, column=name))
    return ok


def _dates(t: _Table, probs: _Problems, col: str = "date") -> np.ndarray:
    """Parse a date column to datetime64[us]; NaT (reported) where it does not parse."""
    s = t.df[col]
    kind = pd.api.types.infer_dtype(s, skipna=True)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        d = pd.DatetimeIndex(s)
        timed = ~d.isna() & (d != d.normalize())
        probs.many(t.file, "date with time", np.flatnonzero(timed), lambda i: Problem(
            t.file, f"date {d[i]} has a time of day; expected a plain date", row=t.row(i),
            column=col), col, "date with a time of day")
        bad = d.isna()
        raw = None
    elif kind in ("string", "empty") or s.dtype == object and kind == "mixed":
        raw = s.astype("str").fillna("")
        iso = raw.str.fullmatch(ISO_DATE).fillna(False).to_numpy(dtype=bool)
        d = pd.DatetimeIndex(pd.to_datetime(raw.where(iso), format="%Y-%m-%d", errors="coerce"))
        bad = d.isna()
    else:  # e.g. Parquet date32 (python date objects)
        raw = s.astype("str").fillna("")
        d = pd.DatetimeIndex(pd.to_datetime(s, errors="coerce"))
        bad = d.isna()
    if raw is None:
        raw_vals = np.array([""] * len(s), dtype=object)
    else:
        raw_vals = raw.to_numpy(dtype=object)

    def bad_date(i: int) -> Problem:
        v = raw_vals[i]
        msg = "missing date" if v == "" else f"bad date {v!r}"
        return Problem(t.file, f"{msg}: expected an ISO date YYYY-MM-DD", row=t.row(i), column=col)

    probs.many(t.file, "bad date", np.flatnonzero(bad), bad_date, col, "bad date")
    return d.as_unit("us").to_numpy() if len(d) else np.array([], dtype=DATE_DTYPE)


def _numbers(t: _Table, col: str, probs: _Problems, *, label: str | None = None,
             symbols: np.ndarray | None = None, dates: np.ndarray | None = None,
             check: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse a numeric column to float64. Returns (values, bad); bad cells are reported and NaN."""
    s = t.df[col]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(v)
        raw = None
    else:
        raw = s.astype("str").str.strip()
        missing = (raw.isna() | raw.isin(MISSING_TOKENS)).to_numpy(dtype=bool)
        v = pd.to_numeric(raw.mask(missing), errors="coerce").to_numpy(dtype=np.float64,
                                                                        na_value=np.nan)
        bad = (np.isnan(v) & ~missing) | np.isinf(v)
    v = v.copy()
    v[bad] = np.nan

    def make(i: int) -> Problem:
        shown = raw.iloc[i] if raw is not None else s.iloc[i]
        return Problem(t.file, f"not a number: {shown!r} (expected a finite number)",
                       row=t.row(i), column=label or col,
                       symbol=None if symbols is None else symbols[i],
                       date=None if dates is None else _iso(dates[i]))

    probs.many(t.file, check or f"not a number {col}", np.flatnonzero(bad), make,
               None if check else col,
               "values that are not numbers" + ("" if check else f" in column {col!r}"))
    return v, bad


def _strings(t: _Table, col: str, probs: _Problems) -> np.ndarray:
    """A code column (symbol, ticker) as python strings, "" where missing."""
    s = t.df[col]
    if pd.api.types.is_numeric_dtype(s.dtype):
        probs.add("code type", Problem(
            t.file, f"column {col!r} holds numbers ({s.dtype}); store codes as strings so "
                    "leading zeros survive (e.g. '0700')", column=col))
    return s.astype("str").fillna("").to_numpy(dtype=object)


def _sorted_unique_dates(t: _Table, dates: np.ndarray, probs: _Problems) -> None:
    """Single-series and wide files: dates strictly increasing."""
    pos = np.flatnonzero(~np.isnat(dates))
    d = dates[pos]
    if len(d) < 2:
        return
    dup = pd.Index(d).duplicated(keep="first")
    if dup.any():
        first = pd.Series(pos).groupby(d).transform("first").to_numpy()
        idx = np.flatnonzero(dup)
        probs.many(t.file, "duplicate date", pos[idx], lambda i: Problem(
            t.file, f"duplicate date (first at row {t.row(first[np.searchsorted(pos, i)])})",
            row=t.row(i), column="date", date=_iso(dates[i])), "date", "duplicate dates")
    back = np.flatnonzero(d[1:] < d[:-1]) + 1
    probs.many(t.file, "unsorted date", pos[back], lambda i: Problem(
        t.file, f"date is earlier than the row before it "
                f"({_iso(d[np.searchsorted(pos, i) - 1])}); dates must be sorted ascending",
        row=t.row(i), column="date", date=_iso(dates[i])), "date", "dates out of order")


def _duplicate_keys(t: _Table, dates: np.ndarray, codes: np.ndarray, code_col: str,
                    probs: _Problems) -> None:
    """Long files: no repeated (date, code); names the second occurrence and the first."""
    ok = np.flatnonzero(~np.isnat(dates) & (codes != ""))
    if len(ok) < 2:
        return
    keys = pd.DataFrame({"d": dates[ok], "c": codes[ok]})
    dup = keys.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    first = pd.Series(ok).groupby([keys["d"], keys["c"]], sort=False).transform("first").to_numpy()
    idx = np.flatnonzero(dup)
    probs.many(t.file, "duplicate key", ok[idx], lambda i: Problem(
        t.file, f"duplicate (date, {code_col}) row; first at row "
                f"{t.row(first[np.searchsorted(ok, i)])}",
        row=t.row(i), symbol=codes[i], date=_iso(dates[i])), None,
        f"duplicate (date, {code_col}) rows")


# --------------------------------------------------------------------------------------------
# locating tables
# --------------------------------------------------------------------------------------------

def _locate(root: Path, probs: _Problems) -> dict[str, tuple[str, str] | None]:
    """stem -> (kind, relative path); kind is "csv", "parquet" or "wide"."""
    found: dict[str, tuple[str, str] | None] = {}
    for stem in TABLES:
        cands = [(ext[1:], stem + ext) for ext in EXTS if (root / (stem + ext)).is_file()]
        if stem in WIDE_TABLES and (root / stem).is_dir():
            cands.append(("wide", stem + "/"))
        if len(cands) > 1:
            probs.add("ambiguous table", Problem(
                cands[0][1], f"{' and '.join(c[1] for c in cands)} are all present; keep exactly "
                             f"one form of the {stem!r} table"))
        found[stem] = cands[0] if cands else None
    expected = {MANIFEST, *(s + e for s in TABLES for e in EXTS), *WIDE_TABLES}
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or p.name in expected:
            continue
        if p.is_dir() or p.suffix in (*EXTS, ".toml"):
            probs.add("unexpected file", Problem(
                p.name, f"unexpected {'directory' if p.is_dir() else 'file'} in the dataset"
                        f"{_suggest(p.name, sorted(expected))}"))
    return found


def _missing_table(stem: str, probs: _Problems, why: str = "") -> None:
    forms = f"{stem}.csv or {stem}.parquet" + (f" or a wide directory {stem}/"
                                                if stem in WIDE_TABLES else "")
    probs.add("missing file", Problem(f"{stem}.csv", f"missing required table: expected {forms}"
                                                     + why))


def _locate_wide(root: Path, stem: str, probs: _Problems) -> dict[str, str]:
    """Files of a wide directory: field -> relative path."""
    required, optional = WIDE_TABLES[stem]
    names = [*required, *optional]
    out: dict[str, str] = {}
    for p in sorted((root / stem).iterdir()):
        if p.name.startswith("."):
            continue
        rel = f"{stem}/{p.name}"
        if p.is_file() and p.suffix in EXTS and p.stem in names:
            if p.stem in out:
                probs.add("ambiguous table", Problem(
                    rel, f"{out[p.stem]} and {rel} are both present; keep one"))
                continue
            out[p.stem] = rel
        else:
            expected = [n + e for n in names for e in EXTS]
            probs.add("unexpected file", Problem(
                rel, f"unexpected file in {stem}/{_suggest(p.name, expected)} (expected one file "
                     f"per field: {', '.join(n + '.csv' for n in names)})"))
    for name in required:
        if name not in out:
            probs.add("missing file", Problem(
                f"{stem}/{name}.csv", f"missing required file: expected {stem}/{name}.csv or "
                                      f"{stem}/{name}.parquet"))
    return out


# --------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------

def _manifest(root: Path, hk_has_sb: bool, probs: _Problems) -> tuple[str, dict[str, float]]:
    path = root / MANIFEST
    factors = {k: 1.0 for k in (*UNITS, *OPTIONAL_UNITS)}
    if not path.is_file():
        probs.add("missing file", Problem(MANIFEST, "missing required file: the manifest states "
                                                    "the units and index_name (docs/data.md)"))
        return "", factors
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        probs.add("manifest", Problem(MANIFEST, f"not valid TOML: {exc}"))
        return "", factors
    for key in table:
        if key not in MANIFEST_KEYS:
            probs.add("manifest", Problem(MANIFEST, f"unknown key {key!r}"
                                                    f"{_suggest(key, MANIFEST_KEYS)}", column=key))
    index_name = table.get("index_name")
    if not isinstance(index_name, str) or not index_name.strip():
        probs.add("manifest", Problem(
            MANIFEST, "missing key index_name (a non-empty string, e.g. \"HSTECH\")"
            if index_name is None else f"index_name must be a non-empty string, got {index_name!r}",
            column="index_name"))
        index_name = ""
    units = table.get("units", {})
    if not isinstance(units, dict):
        probs.add("manifest", Problem(MANIFEST, "units must be a table [units]", column="units"))
        units = {}
    known = {**UNITS, **OPTIONAL_UNITS}
    for key in units:
        if key not in known:
            probs.add("manifest", Problem(MANIFEST, f"unknown unit key {key!r}"
                                                    f"{_suggest(key, list(known))}",
                                          column=f"units.{key}"))
    needed = [*UNITS, *(["sb_net_buy"] if hk_has_sb else [])]
    for key in known:
        accepted = known[key]
        if key not in units:
            if key in needed:
                why = (" (hk_daily has a sb_net_buy column)" if key == "sb_net_buy" else "")
                probs.add("manifest", Problem(
                    MANIFEST, f"missing unit [units] {key}{why}: state one of "
                              f"{', '.join(repr(a) for a in accepted)}", column=f"units.{key}"))
            continue
        value = units[key]
        if value not in accepted:
            probs.add("manifest", Problem(
                MANIFEST, f"unknown unit {value!r} for {key}: expected one of "
                          f"{', '.join(repr(a) for a in accepted)}{_suggest(str(value), accepted)}",
                column=f"units.{key}"))
            continue
        factors[key] = accepted[value]
    return index_name, factors


# --------------------------------------------------------------------------------------------
# symbols
# --------------------------------------------------------------------------------------------

@dataclass
class _Symbols:
    frame: pd.DataFrame | None  # validated table (None if unusable)
    known: list[str]            # symbols in file order (possibly with problems)
    tickers: dict[str, str]     # declared adr_ticker -> HK symbol
    ratios: dict[str, float]    # declared adr_ticker -> ratio
    file: str = ""


def _symbols(t: _Table, probs: _Problems) -> _Symbols:
    if not _check_columns(t, SYMBOLS_COLUMNS, probs=probs) and "symbol" not in t.df.columns:
        return _Symbols(None, [], {}, {}, t.file)
    n = len(t.df)
    sym = _strings(t, "symbol", probs)
    col = {c: c in t.df.columns for c in SYMBOLS_COLUMNS}
    name = (t.df["name"].astype("str").fillna("").to_numpy(dtype=object) if col["name"]
            else np.array([""] * n, dtype=object))
    ticker = _strings(t, "adr_ticker", probs) if col["adr_ticker"] else np.array([""] * n, object)
    lot, lot_bad = _numbers(t, "board_lot", probs) if col["board_lot"] else (np.ones(n), np.ones(n, bool))
    ratio, ratio_bad = (_numbers(t, "adr_ratio", probs) if col["adr_ratio"]
                        else (np.full(n, np.nan), np.ones(n, bool)))

    def rowp(check: str, mask, msg: Callable[[int], str], column: str, what: str) -> None:
        probs.many(t.file, check, np.flatnonzero(mask), lambda i: Problem(
            t.file, msg(i), row=t.row(i), column=column, symbol=sym[i] or None), column, what)

    rowp("missing symbol", sym == "", lambda i: "missing symbol code", "symbol", "missing symbols")
    has = np.flatnonzero(sym != "")
    dup = pd.Index(sym[has]).duplicated(keep="first")
    if dup.any():
        first = {s: i for i, s in zip(has[::-1], sym[has][::-1])}
        probs.many(t.file, "duplicate symbol", has[dup], lambda i: Problem(
            t.file, f"duplicate symbol {sym[i]!r} (first at row {t.row(first[sym[i]])})",
            row=t.row(i), column="symbol", symbol=sym[i]), "symbol", "duplicate symbols")
    if col["board_lot"]:
        rowp("board_lot", ~lot_bad & (np.isnan(lot) | (lot <= 0) | (lot != np.round(lot))
                                      | (lot > MAGNITUDE["board_lot"])),
             lambda i: ("missing board_lot" if np.isnan(lot[i]) else f"board_lot {_fmt(lot[i])}")
             + f": expected a positive integer <= {MAGNITUDE['board_lot']:.0e} (shares per lot)", "board_lot",
             "bad board lots")

    pairs = reference.adr_pairs()
    has_t = ticker != ""
    unknown = has_t & ~np.isin(ticker, pairs.index.to_numpy(dtype=object))
    rowp("unknown ADR pair", unknown, lambda i: (
        f"unknown ADR pair {ticker[i]!r}: not in the shipped pair table "
        f"(backtest/data/adr_pairs.csv){_suggest(ticker[i], pairs.index)}"),
         "adr_ticker", "unknown ADR pairs")
    known_t = has_t & ~unknown
    hk_of = pd.Series(ticker[known_t]).map(pairs["hk_symbol"]).to_numpy(dtype=object)
    want_ratio = pd.Series(ticker[known_t]).map(pairs["adr_ratio"]).to_numpy(dtype=np.float64)
    kt = np.flatnonzero(known_t)
    wrong_hk = np.zeros(n, bool)
    wrong_hk[kt] = hk_of != sym[kt]
    pair_hk = dict(zip(kt, hk_of))
    pair_ratio = dict(zip(kt, want_ratio))
    rowp("wrong HK symbol", wrong_hk, lambda i: (
        f"ADR {ticker[i]} pairs with HK {pair_hk[i]} in the shipped pair table, not {sym[i]}"),
         "adr_ticker", "ADR tickers on the wrong HK symbol")
    if col["adr_ratio"]:
        rowp("missing adr_ratio", has_t & np.isnan(ratio) & ~ratio_bad, lambda i: (
            f"missing adr_ratio for ADR {ticker[i]} (HK shares per ADR)"), "adr_ratio",
             "missing ADR ratios")
        mism = np.zeros(n, bool)
        mism[kt] = ~wrong_hk[kt] & ~np.isnan(ratio[kt]) & ~np.isclose(ratio[kt], want_ratio)
        rowp("ratio mismatch", mism, lambda i: (
            f"adr_ratio {_fmt(ratio[i])} does not match the shipped pair table "
            f"({_fmt(pair_ratio[i])} HK shares per {ticker[i]} ADR)"), "adr_ratio",
             "ADR ratios that differ from the pair table")
        rowp("ratio without ticker", ~has_t & ~np.isnan(ratio), lambda i: (
            "adr_ratio given but adr_ticker is empty"), "adr_ratio", "ratios without a ticker")

    tickers: dict[str, str] = {}
    ratios: dict[str, float] = {}
    for i in np.flatnonzero(has_t):  # one entry per declared ticker, first declaration wins
        tickers.setdefault(ticker[i], sym[i])
        ratios.setdefault(ticker[i], float(ratio[i]))
    known = list(dict.fromkeys(s for s in sym if s != ""))
    frame = None
    if all(col.values()):
        frame = pd.DataFrame({
            "name": pd.array(name, dtype="str"),
            "board_lot": np.nan_to_num(np.where(np.abs(lot) <= MAGNITUDE["board_lot"], lot, 0), nan=0).astype(np.int64),
            "adr_ticker": pd.array(ticker, dtype="str"),
            "adr_ratio": ratio.astype(np.float64),
        }, index=pd.Index(pd.array(sym, dtype="str"), name="symbol"))
    return _Symbols(frame, known, tickers, ratios, t.file)


# --------------------------------------------------------------------------------------------
# per-(date, code) records: long files directly, wide files cell by cell
# --------------------------------------------------------------------------------------------

@dataclass
class _Records:
    """One entry per (date, code) with data. `loc[field]` locates a field's cell for problems."""

    dates: np.ndarray                  # datetime64[us]; NaT where the date did not parse
    codes: np.ndarray                  # object array of str
    values: dict[str, np.ndarray]      # field -> float64 (NaN = empty or bad)
    bad: dict[str, np.ndarray]         # field -> already reported (unparseable / file missing)
    loc: dict[str, tuple[str, np.ndarray, bool]] = field(default_factory=dict)
    # field -> (file, row label per record (-1 = no row), column is the code (wide form))
    calendar: np.ndarray | None = None  # all dates of the table (wide: union of the files)
    files: list[str] = field(default_factory=list)

    def report(self, probs: _Problems, field_: str, mask: np.ndarray, check: str,
               msg: Callable[[int], str], what: str, code_is_symbol: bool = True) -> None:
        file, rows, code_col = self.loc[field_]

        def make(i: int) -> Problem:
            r = rows[i]
            return Problem(file, msg(i), row=None if r < 0 else int(r),
                           column=self.codes[i] if code_col else field_,
                           symbol=self.codes[i] or None, date=_iso(self.dates[i]))

        probs.many(file, check, np.flatnonzero(mask), make, None if code_col else field_, what)


def _long_records(t: _Table, code_col: str, fields: tuple[str, ...], probs: _Problems) -> _Records:
    n = len(t.df)
    dates = _dates(t, probs) if "date" in t.df.columns else np.full(n, np.datetime64("NaT"), "M8[us]")
    codes = _strings(t, code_col, probs) if code_col in t.df.columns else np.array([""] * n, object)
    rows = t.rows(np.arange(n))
    values, bad = {}, {}
    for f in fields:
        if f in t.df.columns:
            values[f], bad[f] = _numbers(t, f, probs, symbols=codes, dates=dates)
        else:
            values[f], bad[f] = np.full(n, np.nan), np.ones(n, bool)
    rec = _Records(dates, codes, values, bad, {f: (t.file, rows, False) for f in fields},
                   files=[t.file])
    if code_col in t.df.columns:
        missing = np.flatnonzero(codes == "")
        probs.many(t.file, f"missing {code_col}", missing, lambda i: Problem(
            t.file, f"missing {code_col}", row=t.row(i), column=code_col, date=_iso(dates[i])),
            code_col, f"rows without {code_col}")
        _duplicate_keys(t, dates, codes, code_col, probs)
    valid = dates[~np.isnat(dates)]
    rec.calendar = np.unique(valid)
    return rec


def _wide_records(root: Path, stem: str, known: list[str] | None, probs: _Problems,
                  allow_empty: bool = False) -> _Records | None:
    """Read a wide directory (one file per field: date + one column per code) into records."""
    files = _locate_wide(root, stem, probs)
    required, optional = WIDE_TABLES[stem]
    tables: dict[str, tuple[_Table, np.ndarray, list[str]]] = {}
    for f, rel in files.items():
        t = _read(root, rel, probs, allow_empty)
        if t is None:
            continue
        if "date" not in t.df.columns:
            probs.add("missing column", Problem(rel, "missing required column 'date'",
                                                row=t.header_row, column="date"))
            continue
        codes = [c for c in t.df.columns if c != "date"]
        if known is not None:
            for c in codes:
                if c not in known:
                    probs.add("unknown code", Problem(
                        rel, _unknown_code(stem, c) + _suggest(c, known),
                        row=t.header_row, column=c, symbol=c))
            codes = [c for c in codes if c in known]
        dates = _dates(t, probs)
        _sorted_unique_dates(t, dates, probs)
        tables[f] = (t, dates, codes)
    if not tables:
        return None
    all_dates = np.concatenate([d[~np.isnat(d)] for _, d, _ in tables.values()])
    cal = np.unique(all_dates)
    seen = {c for _, _, cs in tables.values() for c in cs}
    order = [c for c in known if c in seen] if known is not None else sorted(seen)
    col_of = {c: j for j, c in enumerate(order)}
    shape = (len(cal), len(order))
    arrays, bads, rowmaps = {}, {}, {}
    for f in (*required, *optional):
        if f not in tables:
            continue
        t, dates, codes = tables[f]
        arr = np.full(shape, np.nan)
        bad = np.zeros(shape, bool)
        rowmap = np.full(len(cal), -1, dtype=np.int64)
        ok = np.flatnonzero(~np.isnat(dates))
        first = ok[~pd.Index(dates[ok]).duplicated(keep="first")]  # repeated dates: reported
        ti = np.searchsorted(cal, dates[first])
        rowmap[ti] = t.rows(first)
        for c in codes:
            v, b = _numbers(t, c, probs, label=c, symbols=np.array([c] * len(t.df), object),
                            dates=dates, check="not a number")
            arr[ti, col_of[c]] = v[first]
            bad[ti, col_of[c]] = b[first]
        arrays[f], bads[f], rowmaps[f] = arr, bad, rowmap
    present = np.zeros(shape, bool)
    for f in arrays:
        present |= ~np.isnan(arrays[f]) | bads[f]
    ti, si = np.nonzero(present)
    codes_arr = np.array(order, dtype=object)[si] if order else np.array([], object)
    values, bad, loc = {}, {}, {}
    for f in (*required, *optional):
        rel = files.get(f, f"{stem}/{f}.csv")
        if f in arrays:
            values[f], bad[f] = arrays[f][ti, si], bads[f][ti, si]
            loc[f] = (rel, rowmaps[f][ti], True)
        elif f in required:  # missing file: reported once already
            values[f], bad[f] = np.full(len(ti), np.nan), np.ones(len(ti), bool)
            loc[f] = (rel, np.full(len(ti), -1), True)
    rec = _Records(cal[ti], codes_arr, values, bad, loc, calendar=cal,
                   files=[tables[f][0].file for f in tables])
    return rec


def _records_to_frames(rec: _Records, columns: list[str], fields) -> dict[str, pd.DataFrame]:
    """Records -> field -> (calendar x columns) DataFrame; cells without a record are NaN."""
    cal = rec.calendar
    index = pd.DatetimeIndex(cal.astype(DATE_DTYPE), name="date")
    ti = np.searchsorted(cal, rec.dates)
    col_of = {c: j for j, c in enumerate(columns)}
    si = np.array([col_of[c] for c in rec.codes], dtype=np.int64) if len(rec.codes) else \
        np.array([], np.int64)
    out = {}
    for f in fields:
        arr = np.full((len(cal), len(columns)), np.nan)
        arr[ti, si] = rec.values[f]
        out[f] = pd.DataFrame(arr, index=index, columns=pd.Index(columns, dtype="str"))
    return out


# --------------------------------------------------------------------------------------------
# checks per table
# --------------------------------------------------------------------------------------------

def _check_hk(rec: _Records, long_form: bool, probs: _Problems) -> None:
    v, bad = rec.values, rec.bad
    # traded = any of the six trading fields given; then all six are needed. A record with only
    # optional fields (board_lot, sb_net_buy) is a listed stock that did not trade that day
    # (suspension): CCASS holdings still change with trades settled from two days earlier.
    given = {f: ~np.isnan(v[f]) | bad[f] for f in HK_FIELDS if f in v}
    traded = np.logical_or.reduce([given[f] for f in HK_REQUIRED])
    for f in HK_REQUIRED:
        rec.report(probs, f, traded & np.isnan(v[f]) & ~bad[f], f"missing {f}", lambda i, f=f: (
            f"missing {f}: " + ("a traded row needs" if long_form else
                                "this (date, symbol) has trading data in another field file, so "
                                "it needs")
            + " open, high, low, close, volume and turnover (not traded: leave all six empty)"),
            f"missing {f} values")
    if long_form:
        empty = ~np.logical_or.reduce(list(given.values()))
        rec.report(probs, "close", empty, "empty row", lambda i: (
            "row has no values: omit it (no row = not traded)"), "rows without values")
    for f in PRICE_FIELDS:
        rec.report(probs, f, v[f] <= 0, f"{f} <= 0", lambda i, f=f: (
            f"{f} {_fmt(v[f][i])} must be > 0 (HK$)"), f"{f} not positive")
    for f in ("volume", "turnover"):
        rec.report(probs, f, v[f] < 0, f"{f} < 0", lambda i, f=f: (
            f"{f} {_fmt(v[f][i])} must be >= 0"), f"negative {f}")
    # relations only between valid (positive) prices, so one bad price is reported once
    # float noise (relative OHLC_RTOL) is not a violation; messages show shortest round-trip reprs
    o, h, lo, c = (np.where(v[f] > 0, v[f], np.nan) for f in PRICE_FIELDS)
    top = np.fmax(o, c)
    bot = np.fmin(o, c)
    hi_bad = h < top * (1 - OHLC_RTOL)
    rec.report(probs, "high", hi_bad, "high < max(open, close)", lambda i: (
        f"high {float(v['high'][i])!r} is below max(open, close) = {float(top[i])!r}; "
        "expected high >= max(open, close)"), "high below open or close")
    lo_bad = lo > bot * (1 + OHLC_RTOL)
    rec.report(probs, "low", lo_bad, "low > min(open, close)", lambda i: (
        f"low {float(v['low'][i])!r} is above min(open, close) = {float(bot[i])!r}; "
        "expected low <= min(open, close)"), "low above open or close")
    for f in HK_FIELDS:
        if f in v:
            rec.report(probs, f, _implausible(v[f], f), f"{f} magnitude", lambda i, f=f: (
                _implausible_text(v[f][i], f)), f"implausible {f} values")
    if "board_lot" in v:
        lot = v["board_lot"]
        rec.report(probs, "board_lot", (lot <= 0) | (lot != np.round(lot)) & ~np.isnan(lot),
                   "board_lot", lambda i: (
                       f"board_lot {_fmt(lot[i])}: expected a positive integer (or empty = the "
                       "lot in symbols.csv)"), "bad board lots")


def _implausible(v: np.ndarray, f: str) -> np.ndarray:
    """Finite values outside the plausible range of field `f` (NaN and sign errors are reported elsewhere)."""
    with np.errstate(invalid="ignore"):
        if f in PRICE_FIELDS or f == "adr_close":
            return (v > PRICE_RANGE[1]) | ((v > 0) & (v < PRICE_RANGE[0]))
        return np.abs(v) > MAGNITUDE[f]


def _implausible_text(x: float, f: str) -> str:
    if f in PRICE_FIELDS or f == "adr_close":
        rng = f"{_fmt(PRICE_RANGE[0])} .. {_fmt(PRICE_RANGE[1])} per share"
    else:
        rng = f"|value| <= {_fmt(MAGNITUDE[f])}"
    return f"{f.replace('adr_', 'ADR ')} {_fmt(x)} is outside the plausible range ({rng}; docs/data.md): wrong units or a corrupt value"


def _unknown_code(stem: str, code: str) -> str:
    if stem == "hk_daily":
        return f"symbol {code!r} is not in symbols.csv"
    return (f"unknown ADR pair: ticker {code!r} is not declared (adr_ticker) by any symbol in "
            "symbols.csv")


def _check_known(rec: _Records, known: list[str], stem: str, probs: _Problems,
                 field_: str) -> None:
    """Long files: every code must be declared; one problem per unknown code (its first row)."""
    codes = rec.codes
    unknown = (codes != "") & ~np.isin(codes, np.array(known, dtype=object))
    if not unknown.any():
        return
    idx = np.flatnonzero(unknown)
    uniq, first, counts = np.unique(codes[idx].astype(str), return_index=True, return_counts=True)
    order = np.argsort(first)
    file, rows, _ = rec.loc[field_]
    n_of = dict(zip(uniq, counts))
    probs.many(file, "unknown code", idx[first[order]], lambda i: Problem(
        file, f"{_unknown_code(stem, codes[i])} ({n_of[codes[i]]} rows, the first shown)"
              f"{_suggest(codes[i], known)}", row=None if rows[i] < 0 else int(rows[i]),
        column="symbol" if stem == "hk_daily" else "adr_ticker",
        symbol=codes[i], date=_iso(rec.dates[i])), None, "unknown codes")


def _series(t: _Table, columns: tuple[str, ...], probs: _Problems
            ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """A single-series file: date + value columns; dates sorted unique; values present."""
    if not _check_columns(t, ("date", *columns), probs=probs):
        return None
    dates = _dates(t, probs)
    _sorted_unique_dates(t, dates, probs)
    values, bads = {}, {}
    for c in columns:
        values[c], bads[c] = _numbers(t, c, probs, dates=dates)
        miss = np.flatnonzero(np.isnan(values[c]) & ~bads[c])
        probs.many(t.file, f"missing {c}", miss, lambda i, c=c: Problem(
            t.file, f"missing {c}: a row must have a value (leave the date out when there is "
                    "none)", row=t.row(i), column=c, date=_iso(dates[i])), c, f"missing {c}")
    return dates, values, bads


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------

def load_market(path: str | Path) -> MarketData:
    """Read and validate a dataset directory (docs/data.md).

    Raises DataError listing every problem found (at most MAX_PER_CHECK per file and check, plus
    a count of the rest). Nothing is filled or dropped.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError([Problem(str(root), "dataset directory not found" if not root.exists()
                                 else "not a directory: a dataset is a directory (docs/data.md)")])
    probs = _Problems()
    found = _locate(root, probs)

    # symbols first: the other tables are checked against it
    sym = None
    if found["symbols"] is None:
        _missing_table("symbols", probs)
    elif found["symbols"][0] != "wide":
        t = _read(root, found["symbols"][1], probs)
        sym = _symbols(t, probs) if t is not None else None
    known_syms = sym.known if sym is not None else None
    declared = list(sym.tickers) if sym is not None else None

    # hk_daily
    hk = None
    if found["hk_daily"] is None:
        _missing_table("hk_daily", probs)
    elif found["hk_daily"][0] == "wide":
        hk = _wide_records(root, "hk_daily", known_syms, probs)
        if hk is not None:
            _check_hk(hk, False, probs)
    else:
        t = _read(root, found["hk_daily"][1], probs)
        if t is not None:
            _check_columns(t, ("date", "symbol", *HK_REQUIRED), HK_OPTIONAL, probs=probs)
            fields = tuple(f for f in HK_FIELDS if f in HK_REQUIRED or f in t.df.columns)
            hk = _long_records(t, "symbol", fields, probs)
            _check_hk(hk, True, probs)
            if known_syms is not None and "symbol" in t.df.columns:
                _check_known(hk, known_syms, "hk_daily", probs, "close")
    # cross-file checks only against a usable calendar: an empty or dateless hk_daily is one problem, not many
    hk_dates = hk.calendar if hk is not None and len(hk.calendar) else None

    index_name, factors = _manifest(root, hk is not None and "sb_net_buy" in hk.values, probs)

    # southbound, index, fx: single series
    series: dict[str, tuple | None] = {}
    for stem, cols in (("southbound", SOUTHBOUND_LINKS), ("index", ("close",)), ("fx", ("usdhkd",))):
        series[stem] = None
        loc = found[stem]
        if loc is None:
            if stem == "fx" and declared == []:
                continue  # no dual-listed symbols: fx is optional
            _missing_table(stem, probs, " (symbols.csv declares ADR tickers)"
                           if stem == "fx" and declared else "")
            continue
        t = _read(root, loc[1], probs, allow_empty=stem == "fx" and not declared)
        if t is None:
            continue
        if stem == "southbound" and SOUTHBOUND_TOTAL in t.df.columns and \
                not set(SOUTHBOUND_LINKS) & set(t.df.columns):
            cols = (SOUTHBOUND_TOTAL,)  # only the two links' sum is published
        got = _series(t, cols, probs)
        if got is None:
            continue
        series[stem] = (t, *got)
        dates, values, _ = got
        if stem == "index":
            c = values["close"]
            probs.many(t.file, "index <= 0", np.flatnonzero(c <= 0), lambda i: Problem(
                t.file, f"index close {_fmt(c[i])} must be > 0", row=t.row(i), column="close",
                date=_iso(dates[i])), "close", "index closes not positive")
            probs.many(t.file, "index magnitude", np.flatnonzero(_implausible(c, "index")), lambda i: Problem(
                t.file, _implausible_text(c[i], "index"), row=t.row(i), column="close", date=_iso(dates[i])),
                "close", "implausible index closes")
        elif stem == "southbound":
            for col in cols:
                x = values[col]
                probs.many(t.file, f"{col} magnitude", np.flatnonzero(_implausible(x, col)),
                           lambda i, x=x, col=col: Problem(t.file, _implausible_text(x[i], col), row=t.row(i),
                                                           column=col, date=_iso(dates[i])),
                           col, f"implausible {col} values")
        elif stem == "fx":
            fx = values["usdhkd"]
            lo, hi = FX_BAND
            probs.many(t.file, "fx band", np.flatnonzero((fx < lo) | (fx > hi)), lambda i: Problem(
                t.file, (f"usdhkd {_fmt(fx[i])} must be positive; " if fx[i] <= 0 else
                         f"usdhkd {_fmt(fx[i])} is outside the plausible {lo}..{hi} HK$ per US$ "
                         "band: wrong units (inverted quote?); ")
                + "expected HK$ per US$ (about 7.8)",
                row=t.row(i), column="usdhkd", date=_iso(dates[i])), "usdhkd",
                "usdhkd outside the plausible band")
        if stem == "southbound" and hk_dates is not None:
            ok = ~np.isnat(dates)
            off = np.flatnonzero(ok & ~np.isin(dates, hk_dates))
            probs.many(t.file, "southbound on HK holiday", off, lambda i: Problem(
                t.file, "southbound cannot trade when HK is closed: this date is not a date of "
                        "hk_daily", row=t.row(i), column="date", date=_iso(dates[i])), "date",
                "southbound dates that are not HK trading days")

    # adr
    adr = None
    loc = found["adr"]
    if loc is None:
        if declared != []:
            _missing_table("adr", probs, " (symbols.csv declares ADR tickers)" if declared else "")
    elif loc[0] == "wide":
        adr = _wide_records(root, "adr", declared, probs, allow_empty=not declared)
    else:
        t = _read(root, loc[1], probs, allow_empty=not declared)
        if t is not None:
            _check_columns(t, ("date", "adr_ticker", "close"), probs=probs)
            adr = _long_records(t, "adr_ticker", ("close",), probs)
            c = adr.values["close"]
            adr.report(probs, "close", np.isnan(c) & ~adr.bad["close"], "missing close",
                       lambda i: "missing close: a row must have an ADR close (omit the row "
                                 "when there is none)", "missing ADR closes")
            if declared is not None and "adr_ticker" in t.df.columns:
                _check_known(adr, declared, "adr", probs, "close")
    if adr is not None:
        c = adr.values["close"]
        adr.report(probs, "close", c <= 0, "adr close <= 0", lambda i: (
            f"ADR close {_fmt(c[i])} must be > 0 (US$)"), "ADR closes not positive")
        adr.report(probs, "close", _implausible(c, "adr_close"), "adr close magnitude", lambda i: (
            _implausible_text(c[i], "adr_close")), "implausible ADR closes")

    # units cross-check: median ADR premium per dual-listed symbol
    if hk is not None and adr is not None and series.get("fx") and sym is not None:
        _check_premium(hk, adr, series["fx"], sym, probs)

    if probs:
        raise DataError(probs.result())
    return _build(sym, hk, adr, series, factors, index_name, root)


def _check_premium(hk: _Records, adr: _Records, fx_series, sym: _Symbols, probs: _Problems) -> None:
    _, fx_dates, fx_values, _ = fx_series
    fx = pd.Series(fx_values["usdhkd"], index=fx_dates)
    fx = fx[(fx >= FX_BAND[0]) & (fx <= FX_BAND[1]) & ~pd.isna(fx.index)]
    fx = fx[~fx.index.duplicated()]
    ok = ~np.isnat(hk.dates) & (hk.values["close"] > 0) & np.isin(hk.codes, list(sym.tickers.values()))
    hk_close = pd.Series(hk.values["close"][ok],
                         index=pd.MultiIndex.from_arrays([hk.codes[ok], hk.dates[ok]]))
    hk_close = hk_close[~hk_close.index.duplicated()]
    aok = ~np.isnat(adr.dates) & (adr.values["close"] > 0)
    adr_close = pd.Series(adr.values["close"][aok],
                          index=pd.MultiIndex.from_arrays([adr.codes[aok], adr.dates[aok]]))
    adr_close = adr_close[~adr_close.index.duplicated()]
    file = adr.loc["close"][0]
    wide = adr.loc["close"][2]
    for ticker, hk_sym in sym.tickers.items():
        ratio = sym.ratios.get(ticker, np.nan)
        if not np.isfinite(ratio) or ratio <= 0:
            continue
        try:
            a = adr_close.xs(ticker, level=0)
            h = hk_close.xs(hk_sym, level=0)
        except KeyError:
            continue
        common = a.index.intersection(h.index).intersection(fx.index)
        if len(common) == 0:
            continue
        prem = a[common].to_numpy() * fx[common].to_numpy() / ratio / h[common].to_numpy() - 1.0
        med = float(np.median(prem))
        if abs(med) > PREMIUM_LIMIT:
            probs.add("ADR premium", Problem(
                file, f"median ADR premium of {ticker} over HK {hk_sym} is {med:+.1%} on "
                      f"{len(common)} common dates; expected within +-{PREMIUM_LIMIT:.0%}: likely "
                      f"a wrong adr_ratio (symbols.csv says {_fmt(ratio)} HK shares per ADR) or "
                      "wrong units (ADR closes in US$, HK closes in HK$, fx in HK$ per US$)",
                column=ticker if wide else "close", symbol=ticker))


def _build(sym: _Symbols, hk: _Records, adr: _Records | None, series, factors,
           index_name: str, root: Path) -> MarketData:
    symbols = sym.frame
    cols = list(symbols.index)
    fields = [f for f in HK_FIELDS if f in hk.values]
    frames = _records_to_frames(hk, cols, fields)
    frames["turnover"] *= factors["turnover"]
    if "sb_net_buy" in frames:
        frames["sb_net_buy"] *= factors["sb_net_buy"]

    def idx(dates: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(dates.astype(DATE_DTYPE), name="date")

    _, d, v, _ = series["southbound"]
    southbound = pd.DataFrame({k: v[k] * factors["southbound"] for k in v}, index=idx(d))
    southbound.columns = pd.Index(list(v), dtype="str")
    _, d, v, _ = series["index"]
    index_close = pd.Series(v["close"], index=idx(d), name=index_name)
    if series.get("fx") is not None:
        _, d, v, _ = series["fx"]
        usdhkd = pd.Series(v["usdhkd"], index=idx(d), name="usdhkd")
    else:
        usdhkd = pd.Series([], index=idx(np.array([], DATE_DTYPE)), name="usdhkd", dtype=np.float64)
    tickers = [t for t in symbols["adr_ticker"] if t]
    if adr is not None:
        adr_close = _records_to_frames(adr, tickers, ("close",))["close"]
    else:
        adr_close = pd.DataFrame(np.empty((0, len(tickers))), index=idx(np.array([], DATE_DTYPE)),
                                 columns=pd.Index(tickers, dtype="str"))
    return MarketData(hk=frames, southbound=southbound, index_close=index_close,
                      adr_close=adr_close, usdhkd=usdhkd, symbols=symbols,
                      index_name=index_name, source=str(root))
