"""Read one source file of a known kind into a normalised frame (docs/data.md, "Bring your own data").

Every reader returns a DataFrame with a `row` column (the file's line number, header = 1, so a
problem can name it), a `date` column (tz-naive midnight, the market's local date) and the fields
the source feeds: bars `open high low close volume [turnover]`, series `value` (and `link`),
per-stock `code value`. Units and currencies of the known kinds are the libraries' documented ones;
where they are not documented unambiguously the spec must state them (`ImportSpecError`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.errors import DataError, Problem

MARKET_TZ = {"hk": "Asia/Hong_Kong", "us": "America/New_York"}
YF_FIELDS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adj_close",
             "Volume": "volume"}


def fail(file: str, message: str, row: int | None = None, column: str | None = None) -> DataError:
    return DataError([Problem(file, message, row=row, column=column)])


def _read_csv(path: Path, shown: str, **kw) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", **kw)
    except FileNotFoundError:
        raise fail(shown, "source file not found") from None
    except IsADirectoryError:
        raise fail(shown, "is a directory, not a file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise fail(shown, f"line has {m[3]} fields, expected {m[1]} as in the header",
                       row=int(m[2])) from None
        raise fail(shown, f"cannot parse CSV: {exc}") from None


def parse_numbers(s: pd.Series, shown: str, column: str, rows: np.ndarray, *, decimal: str = ".",
                  thousands: str = "", currency_mark: str = "") -> np.ndarray:
    """Strings to float64; empty -> NaN; anything else that is not a number is refused (file, row, column)."""
    raw = s.astype(str).str.strip()
    t = raw
    if currency_mark:
        t = t.str.replace(currency_mark, "", regex=False)
    if thousands:
        t = t.str.replace(thousands, "", regex=False)
    if decimal != ".":
        t = t.str.replace(decimal, ".", regex=False)
    missing = raw.isin(["", "nan", "NaN", "NA", "null", "None", "-"]).to_numpy()
    v = pd.to_numeric(t.mask(missing), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = (np.isnan(v) & ~missing) | np.isinf(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        raise fail(shown, f"not a number: {raw.iloc[i]!r} (expected a number"
                          + (f" with decimal mark {decimal!r}" if decimal != "." else "")
                          + (f" and thousands mark {thousands!r}" if thousands else "") + ")"
                          + (f"; {more} more like it" if more > 0 else ""),
                   row=int(rows[i]), column=column)
    return v


def parse_dates(s: pd.Series, shown: str, column: str, rows: np.ndarray, fmt: str | None,
                market: str, intraday: str = "refuse", timezone: str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Dates to tz-naive market-local midnights. Returns (dates, keep); keep is False for intraday
    snapshot rows when intraday = "drop". A time of day is refused unless intraday = "drop".
    `timezone`: naive timestamps are in this zone (e.g. "UTC") and are converted to the market's."""
    raw = s.astype(str).str.strip()
    try:
        has_tz = raw.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True)
        if timezone is not None and not has_tz.any():
            d = pd.to_datetime(raw, format=fmt, errors="coerce").dt.tz_localize(timezone)
            d = d.dt.tz_convert(MARKET_TZ[market]).dt.tz_localize(None)
            has_tz = pd.Series(True, index=raw.index)
        elif has_tz.any():
            d = pd.to_datetime(raw, format=fmt, errors="coerce", utc=True).dt.tz_convert(MARKET_TZ[market])
            d = d.dt.tz_localize(None)
        else:
            d = pd.to_datetime(raw, format=fmt, errors="coerce")
    except (ValueError, TypeError, KeyError) as exc:  # includes an unknown timezone name
        raise fail(shown, f"cannot parse dates: {exc}", column=column) from None
    bad = d.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise fail(shown, f"bad date {raw.iloc[i]!r}: expected the format "
                          f"{fmt or 'YYYY-MM-DD'}", row=int(rows[i]), column=column)
    idx = pd.DatetimeIndex(d)
    timed = (idx != idx.normalize()) & ~has_tz.to_numpy()
    keep = np.ones(len(idx), bool)
    if timed.any():
        if intraday != "drop":
            i = int(np.flatnonzero(timed)[0])
            raise fail(shown, f"date {raw.iloc[i]!r} has a time of day (an intraday snapshot?): "
                              "set intraday = \"drop\" in the spec to drop such rows",
                       row=int(rows[i]), column=column)
        keep = ~timed
    return idx.normalize().as_unit("us").to_numpy(), keep


def _require(df: pd.DataFrame, cols, shown: str, kind: str) -> None:
    for c in cols:
        if c not in df.columns:
            raise fail(shown, f"missing column {c!r} for kind {kind!r} (found: "
                              f"{', '.join(map(str, df.columns))})", row=1, column=c)


# --------------------------------------------------------------------------------------------
# yfinance: Ticker.history exports, yf.download flat and multi-level headers
# --------------------------------------------------------------------------------------------

def read_yfinance(path: Path, shown: str) -> dict[str, pd.DataFrame]:
    """ticker -> frame of Date + Yahoo fields. Flat files give one frame under the key ""."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            head = [r for _, r in zip(range(3), csv.reader(fh))]
    except FileNotFoundError:
        raise fail(shown, "source file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise fail(shown, f"cannot read the file: {exc}") from None
    if not head:
        raise fail(shown, "empty file: expected a yfinance header", row=1)
    multi = len(head) >= 3 and head[1][:1] in (["Ticker"], [""]) and head[2][:1] in (["Date"], ["Datetime"])
    if not multi:
        df = _read_csv(path, shown)
        date_col = "Date" if "Date" in df.columns else "Datetime"
        _require(df, (date_col, "Open", "High", "Low", "Close", "Volume"), shown, "yfinance")
        df = df.rename(columns={date_col: "Date"})
        df["row"] = np.arange(len(df)) + 2
        return {"": df}
    raw = _read_csv(path, shown, header=None, skiprows=3)
    l0, l1 = head[0], head[1]
    out: dict[str, pd.DataFrame] = {}
    # level order: (field, ticker) from yf.download default, (ticker, field) with group_by="ticker"
    field_first = any(x in YF_FIELDS for x in l0[1:])
    for j in range(1, len(l0)):
        fld, tic = (l0[j], l1[j]) if field_first else (l1[j], l0[j])
        if fld not in YF_FIELDS:
            continue
        f = out.setdefault(tic, pd.DataFrame({"Date": raw[0], "row": np.arange(len(raw)) + 4}))
        f[fld] = raw[j]
    if not out:
        raise fail(shown, "multi-level yfinance header without Open/High/Low/Close/Volume fields", row=1)
    return out


def yfinance_bars(df: pd.DataFrame, shown: str, market: str, prices: str) -> pd.DataFrame:
    rows = df["row"].to_numpy()
    dates, _ = parse_dates(df["Date"], shown, "Date", rows, None, market)
    cols = {}
    for yf_name in ("Open", "High", "Low", "Close", "Volume"):
        if yf_name not in df.columns:
            raise fail(shown, f"missing field {yf_name!r}", row=1, column=yf_name)
        cols[YF_FIELDS[yf_name]] = parse_numbers(df[yf_name], shown, yf_name, rows)
    out = pd.DataFrame({"row": rows, "date": dates, **cols})
    if "Adj Close" in df.columns and prices == "adjusted":
        # Close is the raw close here (auto_adjust=False); scale the bar by Adj Close / Close
        adj = parse_numbers(df["Adj Close"], shown, "Adj Close", rows)
        k = adj / out["close"].to_numpy()
        for f in ("open", "high", "low", "close"):
            out[f] = out[f].to_numpy() * k
    return out


# --------------------------------------------------------------------------------------------
# nasdaq.com history: Date (MM/DD/YYYY), Close or Close/Last, Volume, Open, High, Low; $ and commas
# --------------------------------------------------------------------------------------------

def nasdaq_bars(path: Path, shown: str) -> pd.DataFrame:
    df = _read_csv(path, shown)
    close = "Close/Last" if "Close/Last" in df.columns else "Close"
    _require(df, ("Date", close, "Volume", "Open", "High", "Low"), shown, "nasdaq")
    rows = np.arange(len(df)) + 2
    dates, _ = parse_dates(df["Date"], shown, "Date", rows, "%m/%d/%Y", "us")
    out = {"row": rows, "date": dates}
    for src, f in (("Open", "open"), ("High", "high"), ("Low", "low"), (close, "close")):
        out[f] = parse_numbers(df[src], shown, src, rows, thousands=",", currency_mark="$")
    out["volume"] = parse_numbers(df["Volume"], shown, "Volume", rows, thousands=",")
    return pd.DataFrame(out).sort_values("date", kind="stable").reset_index(drop=True)  # newest first on disk


# --------------------------------------------------------------------------------------------
# akshare and tushare: the functions' documented column names
# --------------------------------------------------------------------------------------------

AKSHARE = {
    # function -> (date column, {our field: column})
    "stock_hsgt_hist_em": ("日期", {"value": "当日成交净买额"}),
    "stock_hk_daily": ("date", {"open": "open", "high": "high", "low": "low", "close": "close",
                                "volume": "volume"}),
    "stock_us_daily": ("date", {"open": "open", "high": "high", "low": "low", "close": "close",
                                "volume": "volume"}),
}
TUSHARE = {
    "moneyflow_hsgt": ("trade_date", {"sh": "ggt_ss", "sz": "ggt_sz", "value": "south_money"}),
    "ggt_top10": ("trade_date", {"code": "ts_code", "value": "net_amount"}),
    "hk_daily": ("trade_date", {"code": "ts_code", "open": "open", "high": "high", "low": "low",
                                "close": "close", "volume": "vol"}),
    "us_daily": ("trade_date", {"code": "ts_code", "open": "open", "high": "high", "low": "low",
                                "close": "close", "volume": "vol"}),
}
TUSHARE_DATE = "%Y%m%d"


def library_frame(path: Path, shown: str, kind: str, function: str, market: str,
                  turnover_column: str | None) -> pd.DataFrame:
    table = AKSHARE if kind == "akshare" else TUSHARE
    date_col, cols = table[function]
    df = _read_csv(path, shown)
    need = [date_col, *(c for k, c in cols.items() if not (function == "moneyflow_hsgt" and k != "value"))]
    _require(df, need, shown, f"{kind} {function}")
    rows = np.arange(len(df)) + 2
    raw_dates = df[date_col].astype(str).str.strip()
    fmt = TUSHARE_DATE if kind == "tushare" and raw_dates.str.fullmatch(r"\d{8}").all() else None
    dates, _ = parse_dates(raw_dates, shown, date_col, rows, fmt, market)
    out = pd.DataFrame({"row": rows, "date": dates})
    for k, c in cols.items():
        if c not in df.columns:
            continue
        out[k] = df[c].astype(str).to_numpy() if k == "code" else parse_numbers(df[c], shown, c, rows)
    if turnover_column:
        _require(df, (turnover_column,), shown, f"{kind} {function}")
        out["turnover"] = parse_numbers(df[turnover_column], shown, turnover_column, rows)
    return out.sort_values("date", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# plain CSV with an explicit column map
# --------------------------------------------------------------------------------------------

def csv_frame(path: Path, shown: str, columns: dict[str, str], *, sep: str, decimal: str,
              thousands: str, date_format: str | None, market: str, intraday: str,
              timezone: str | None = None, currency_mark: str = "") -> pd.DataFrame:
    df = _read_csv(path, shown, sep=sep)
    _require(df, list(columns.values()), shown, "csv")
    rows = np.arange(len(df)) + 2
    dates, keep = parse_dates(df[columns["date"]], shown, columns["date"], rows, date_format, market,
                              intraday, timezone)
    out = pd.DataFrame({"row": rows, "date": dates})
    for k, c in columns.items():
        if k == "date":
            continue
        if k == "code":
            out[k] = df[c].astype(str).to_numpy()
        else:
            out[k] = parse_numbers(df[c], shown, c, rows, decimal=decimal, thousands=thousands,
                                   currency_mark=currency_mark)
    out = out[keep]
    out.attrs["dropped_intraday"] = int((~keep).sum())
    return out.sort_values("date", kind="stable").reset_index(drop=True)
