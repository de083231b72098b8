"""The declarative import spec (TOML): which files, of which kind, feed what (docs/data.md).

Every key is checked here, so a wrong spec fails with one message naming the spec file and the
key before any source file is read.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from backtest.errors import ConfigError

KINDS = ("yfinance", "akshare", "tushare", "nasdaq", "csv")
FEEDS = ("hk_bars", "southbound", "southbound_stock", "index", "adr", "fx")
FUNCTIONS = {
    "akshare": {"stock_hsgt_hist_em": ("southbound",), "stock_hk_daily": ("hk_bars",),
                "stock_us_daily": ("adr",)},
    "tushare": {"moneyflow_hsgt": ("southbound",), "ggt_top10": ("southbound_stock",),
                "hk_daily": ("hk_bars",), "us_daily": ("adr",)},
}
# Unit scales fixed by the library's own code or documentation (to one currency unit):
# akshare stock_hsgt_hist_em divides Eastmoney's NET_DEAL_AMT (millions) by 100 -> 1e8 (亿);
# tushare documents moneyflow_hsgt in 百万元 (millions).
FIXED_UNIT = {("akshare", "stock_hsgt_hist_em"): 1e8, ("tushare", "moneyflow_hsgt"): 1e6}
CURRENCY_OF = {"hk_bars": "HKD", "southbound": "HKD", "southbound_stock": "HKD", "index": None,
               "adr": "USD", "fx": None}
TOP_KEYS = ("root", "index_name", "start", "end", "description", "bad_bars", "premium_warning",
            "source")
SOURCE_KEYS = ("file", "kind", "feeds", "function", "symbol", "symbols", "ticker", "prices",
               "turnover", "turnover_scale", "currency", "unit", "link", "columns", "sep",
               "decimal", "thousands", "currency_mark", "date_format", "intraday", "timezone", "quote", "name", "board_lot",
               "fetch")
CSV_FIELDS = {"hk_bars": ("date", "open", "high", "low", "close", "volume"),
              "southbound": ("date",), "southbound_stock": ("date", "code", "value"),
              "index": ("date", "value"), "adr": ("date", "close"), "fx": ("date", "value")}


@dataclass
class Source:
    file: Path
    shown: str          # the file as written in the spec (for messages)
    kind: str
    feeds: str
    where: str          # "spec.toml, source 3" for messages
    opts: dict = field(default_factory=dict)

    def get(self, key: str, default=None):
        return self.opts.get(key, default)


@dataclass
class Spec:
    path: Path
    root: Path
    index_name: str
    start: str | None
    end: str | None
    description: str
    bad_bars: str
    premium_warning: float
    sources: list[Source]


def _unknown(key: str, valid, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def _choice(value, valid, where: str, key: str):
    if value not in valid:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: import spec not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read import spec ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for k in table:
        if k not in TOP_KEYS:
            raise _unknown(k, TOP_KEYS, str(path))
    name = table.get("index_name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: index_name is required (a non-empty string, e.g. \"HSI\")")
    root = (path.parent / table.get("root", ".")).resolve()
    bad_bars = _choice(table.get("bad_bars", "refuse"), ("refuse", "drop"), str(path), "bad_bars")
    warn = table.get("premium_warning", 0.03)
    if not isinstance(warn, (int, float)) or not 0 < warn < 1:
        raise ConfigError(f"{path}: premium_warning must be a fraction in (0, 1), got {warn!r}")
    raw = table.get("source", [])
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: no [[source]] tables: name at least the HK bars, southbound and index files")
    sources = [_source(s, i + 1, path, root) for i, s in enumerate(raw)]
    for feed in ("hk_bars", "southbound", "index"):
        if not any(s.feeds == feed for s in sources):
            raise ConfigError(f"{path}: no source feeds {feed!r}; a dataset needs HK bars, southbound and an index")
    return Spec(path, root, name, _date(table, "start", path), _date(table, "end", path),
                str(table.get("description", "")), bad_bars, float(warn), sources)


def _date(table: dict, key: str, path: Path) -> str | None:
    v = table.get(key)
    if v is None:
        return None
    import datetime as dt

    if isinstance(v, dt.date):
        return v.isoformat()
    raise ConfigError(f"{path}: {key} must be a TOML date (e.g. {key} = 2020-01-02), got {v!r}")


TYPES = {"file": str, "kind": str, "feeds": str, "function": str, "symbol": str, "ticker": str, "prices": str,
         "turnover": str, "currency": str, "link": str, "sep": str, "decimal": str, "thousands": str,
         "currency_mark": str, "date_format": str, "intraday": str, "timezone": str, "quote": str, "name": str,
         "symbols": dict, "columns": dict, "fetch": dict, "unit": (int, float), "turnover_scale": (int, float),
         "board_lot": int}
COLUMN_FIELDS = ("date", "open", "high", "low", "close", "volume", "turnover", "code", "value")


def _types(s: dict, where: str) -> None:
    for k, v in s.items():
        want = TYPES[k]
        if not isinstance(v, want) or isinstance(v, bool):
            what = {str: "a string", dict: "a table", int: "an integer"}.get(want, "a number")
            raise ConfigError(f"{where}: {k} must be {what}, got {v!r}")
    for k in ("symbols", "columns"):
        for kk, vv in s.get(k, {}).items():
            if not isinstance(vv, str):
                raise ConfigError(f"{where}: {k}.{kk} must be a string, got {vv!r}")
    for kk in s.get("columns", {}):
        if kk not in COLUMN_FIELDS:
            raise _unknown(kk, COLUMN_FIELDS, f"{where}: columns")
    for k in ("sep", "decimal"):
        if k in s and len(s[k]) != 1:
            raise ConfigError(f"{where}: {k} must be one character, got {s[k]!r}")
    if s.get("decimal", ".") == s.get("thousands"):
        raise ConfigError(f"{where}: decimal and thousands marks are both {s['thousands']!r}: ambiguous")
    if "intraday" in s and s["intraday"] not in ("refuse", "drop"):
        raise ConfigError(f"{where}: intraday must be 'refuse' or 'drop', got {s['intraday']!r}")
    if "board_lot" in s and s["board_lot"] <= 0:
        raise ConfigError(f"{where}: board_lot must be a positive integer, got {s['board_lot']!r}")


def _source(s: dict, n: int, path: Path, root: Path) -> Source:
    where = f"{path}, source {n}"
    if not isinstance(s, dict):
        raise ConfigError(f"{where}: a [[source]] must be a table")
    for k in s:
        if k not in SOURCE_KEYS:
            raise _unknown(k, SOURCE_KEYS, where)
    for k in ("file", "kind", "feeds"):
        if k not in s:
            raise ConfigError(f"{where}: missing key {k!r}")
    _types(s, where)
    kind = _choice(s["kind"], KINDS, where, "kind")
    feeds = _choice(s["feeds"], FEEDS, where, "feeds")
    src = Source(root / s["file"], str(s["file"]), kind, feeds, f"{where} ({s['file']})", dict(s))
    w = src.where
    if kind in FUNCTIONS:
        fn = _choice(s.get("function"), tuple(FUNCTIONS[kind]), w, "function")
        if feeds not in FUNCTIONS[kind][fn]:
            raise ConfigError(f"{w}: {kind} {fn} feeds {FUNCTIONS[kind][fn][0]!r}, not {feeds!r}")
    if kind == "nasdaq" and feeds not in ("adr", "index"):
        raise ConfigError(f"{w}: nasdaq files are US histories: feeds must be 'adr' or 'index'")
    if feeds in ("hk_bars", "adr"):
        _choice(s.get("prices"), ("adjusted", "raw"), w,
                "prices (state whether the file's prices are dividend-adjusted or raw)")
    if feeds == "adr" and not isinstance(s.get("ticker"), str):
        raise ConfigError(f"{w}: an ADR source needs ticker = \"BABA\" (the US ADR ticker)")
    if feeds in ("hk_bars",) and "symbol" not in s and "symbols" not in s:
        raise ConfigError(f"{w}: HK bars need symbol = \"0700\" (one-instrument file) or a symbols "
                          "table mapping the file's codes to HK symbols")
    if feeds == "hk_bars":
        t = s.get("turnover")
        if t not in ("close_x_volume", "column"):
            raise ConfigError(f"{w}: turnover must be stated: \"column\" (the file has one; give "
                              "turnover_scale, HK$ per unit) or \"close_x_volume\" (estimate it)")
        if t == "column" and not isinstance(s.get("turnover_scale"), (int, float)):
            raise ConfigError(f"{w}: turnover = \"column\" needs turnover_scale (HK$ per unit of the "
                              "file's turnover column, e.g. 1 or 1000): the unit is not guessed")
    if feeds == "southbound":
        _choice(s.get("link", "total"), ("total", "sh", "sz"), w, "link")
    # currency and unit: fixed by the kind, or stated
    needs_currency = kind == "csv" and CURRENCY_OF[feeds] or \
        (kind, s.get("function")) in {("akshare", "stock_hsgt_hist_em"), ("tushare", "moneyflow_hsgt"),
                                      ("tushare", "ggt_top10"), ("tushare", "hk_daily")}
    if needs_currency:
        cur = s.get("currency")
        if cur is None:
            raise ConfigError(f"{w}: currency is ambiguous for this source: state currency = "
                              f"\"{CURRENCY_OF[feeds]}\" (the unit is never guessed)")
        if cur != CURRENCY_OF[feeds]:
            raise ConfigError(f"{w}: currency {cur!r}: {feeds} must be in {CURRENCY_OF[feeds]}; "
                              "convert the file first (no CNY conversion is built in)")
    if feeds in ("southbound", "southbound_stock") and (kind, s.get("function")) not in FIXED_UNIT:
        if not isinstance(s.get("unit"), (int, float)) or s["unit"] <= 0:
            raise ConfigError(f"{w}: unit must be stated: the size of one unit of the file's values "
                              "in HK$ (e.g. 1e8 for 亿港元, 1e6 for millions)")
    if feeds == "fx" and kind == "csv":
        _choice(s.get("quote"), ("HKD_per_USD", "USD_per_HKD"), w, "quote")
    if kind == "csv":
        cols = s.get("columns")
        if not isinstance(cols, dict):
            raise ConfigError(f"{w}: kind \"csv\" needs a columns table mapping our fields to the "
                              f"file's columns, e.g. columns = {{ date = \"Date\", ... }}")
        need = list(CSV_FIELDS[feeds])
        if feeds == "southbound":
            need.append("value")
        for k in need:
            if k not in cols:
                raise ConfigError(f"{w}: columns needs {k!r} for feeds {feeds!r} (needs "
                                  f"{', '.join(need)})")
        if "date_format" not in s:
            raise ConfigError(f"{w}: kind \"csv\" needs date_format (e.g. \"%Y-%m-%d\" or \"%m/%d/%Y\")")
    return src
