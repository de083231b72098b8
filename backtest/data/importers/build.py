"""Turn an import spec's source files into a validated dataset directory (docs/data.md).

Each rule that changes what the files say is counted in the import manifest (`import.json`):
placeholder and zero-volume bars become no-trade bars, float-noise highs/lows are clamped, bad
bars are refused (or dropped when the spec says `bad_bars = "drop"`), a 0.0 southbound value on a
day Stock Connect was closed is missing, sources are clipped to the HK bars' span.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.data import calendars, reference
from backtest.data.importers import readers
from backtest.data.importers.spec import FIXED_UNIT, Source, Spec, load_spec
from backtest.data.market import HK_REQUIRED, SOUTHBOUND_TOTAL, MarketData
from backtest.errors import DataError, Problem, UserError

OHLC_RTOL = 1e-9
IMPORT_MANIFEST = "import.json"  # not a table: load_market ignores it
PAD = pd.Timedelta(days=31)      # ADR and FX history kept before the first HK day (carry-forward)


@dataclass
class ImportReport:
    out: Path
    market: MarketData
    manifest: dict
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        hk = self.market.hk["close"]
        c = self.manifest["rules"]
        lines = [f"wrote {self.out}: {hk.shape[0]} HK days x {hk.shape[1]} symbols, "
                 f"{hk.index[0].date()} .. {hk.index[-1].date()}",
                 f"no-trade bars: {c['placeholder_bars']} placeholders, {c['zero_volume_bars']} other "
                 f"zero-volume; {c['noise_clamped']} float-noise highs/lows clamped; "
                 f"{len(c['bad_bars_dropped'])} bad bars dropped; {c['southbound_closed_zero']} "
                 f"closed-Connect zeros made missing"]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _hk_code(code: str) -> str:
    """'00700.HK' / '0700.HK' / '700' -> '0700'."""
    m = re.fullmatch(r"0*(\d{1,5})(?:\.HK)?", code.strip(), flags=re.IGNORECASE)
    return m[1].zfill(4) if m else code


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# reading sources
# --------------------------------------------------------------------------------------------

def _csv_opts(src: Source) -> dict:
    return dict(sep=src.get("sep", ","), decimal=src.get("decimal", "."),
                thousands=src.get("thousands", ""), date_format=src.get("date_format"),
                intraday=src.get("intraday", "refuse"), timezone=src.get("timezone"))


def _file_columns(src: Source) -> dict[str, str]:
    """Our field -> the source file's column, so problems name the column as the file spells it."""
    if src.kind in ("yfinance", "nasdaq"):
        return {f: f.capitalize() for f in ("date", "open", "high", "low", "close", "volume")}
    if src.kind in ("akshare", "tushare"):
        table = readers.AKSHARE if src.kind == "akshare" else readers.TUSHARE
        date_col, cols = table[src.get("function")]
        return {"date": date_col, **cols}
    return dict(src.get("columns") or {})


def _read(src: Source, notes: list[str]) -> dict[str, pd.DataFrame]:
    """code -> normalised frame ("" for a one-instrument file)."""
    market = "us" if src.feeds in ("adr", "fx") else "hk"
    if src.kind == "yfinance":
        frames = readers.read_yfinance(src.file, src.shown)
        out = {}
        for tic, df in frames.items():
            bars = readers.yfinance_bars(df, src.shown, market, src.get("prices", "raw"))
            out[tic] = bars if src.feeds in ("hk_bars", "adr") else \
                pd.DataFrame({"row": bars["row"], "date": bars["date"], "value": bars["close"]})
        return out
    if src.kind == "nasdaq":
        bars = readers.nasdaq_bars(src.file, src.shown)
        return {"": bars if src.feeds == "adr" else
                pd.DataFrame({"row": bars["row"], "date": bars["date"], "value": bars["close"]})}
    if src.kind in ("akshare", "tushare"):
        fn = src.get("function")
        turnover_col = "amount" if src.feeds == "hk_bars" and src.get("turnover") == "column" else None
        df = readers.library_frame(src.file, src.shown, src.kind, fn, market, turnover_col)
        if src.feeds == "southbound" and fn == "moneyflow_hsgt":
            if {"sh", "sz"} <= set(df.columns):
                return {"sh": df.assign(value=df["sh"]), "sz": df.assign(value=df["sz"])}
            return {"": df}
        if "code" in df.columns and src.feeds in ("hk_bars", "adr"):
            return {c: g.drop(columns="code") for c, g in df.groupby("code", sort=False)}
        return {"": df}
    cols = dict(src.get("columns"))
    df = readers.csv_frame(src.file, src.shown, cols, market=market, **_csv_opts(src),
                           currency_mark=src.get("currency_mark", ""))
    if df.attrs.get("dropped_intraday"):
        notes.append(f"{src.shown}: {df.attrs['dropped_intraday']} intraday snapshot rows dropped")
    if "code" in df.columns and src.feeds in ("hk_bars", "adr"):
        return {c: g.drop(columns="code") for c, g in df.groupby("code", sort=False)}
    return {"": df}


def _no_duplicates(df: pd.DataFrame, shown: str) -> None:
    dup = df["date"].duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise readers.fail(shown, f"duplicate date {pd.Timestamp(df['date'].iloc[i]).date()}",
                           row=int(df["row"].iloc[i]), column="date")


# --------------------------------------------------------------------------------------------
# HK bars and their rules
# --------------------------------------------------------------------------------------------

def _clean_bars(df: pd.DataFrame, src: Source, symbol: str, bad_bars: str, rules: dict) -> pd.DataFrame:
    """Placeholder / zero-volume bars -> no-trade; float noise clamped; bad bars refused or dropped."""
    o, h, lo, c, v = (df[f].to_numpy(dtype=np.float64).copy() for f in ("open", "high", "low", "close", "volume"))
    flat = (o == h) & (h == lo) & (lo == c)
    zero = v == 0
    placeholder = zero & flat  # Yahoo's filler for half-days and glitches; not a traded price
    rules["placeholder_bars"] += int(placeholder.sum())
    rules["zero_volume_bars"] += int((zero & ~placeholder).sum())
    if placeholder.any():
        rules["placeholder_by_symbol"][symbol] = int(placeholder.sum())
    top, bot = np.fmax(o, c), np.fmin(o, c)
    hi_noise = (h < top) & (h >= top * (1 - OHLC_RTOL))
    lo_noise = (lo > bot) & (lo <= bot * (1 + OHLC_RTOL))
    rules["noise_clamped"] += int(hi_noise.sum() + lo_noise.sum())
    h = np.where(hi_noise, top, h)
    lo = np.where(lo_noise, bot, lo)
    prices = {"open": o, "high": h, "low": lo, "close": c}
    bad = {**{f"{f} missing or <= 0": ~(x > 0) for f, x in prices.items()},
           "high below max(open, close)": h < top, "low above min(open, close)": lo > bot,
           "volume missing or negative": ~(v >= 0)}
    keep = ~zero
    rows = df["row"].to_numpy()
    for why, mask in bad.items():
        mask = mask & ~zero & keep
        for i in np.flatnonzero(mask):
            col = why.split()[0]
            detail = (f"high {float(h[i])!r} < max(open, close) {float(top[i])!r}" if why.startswith("high below") else
                      f"low {float(lo[i])!r} > min(open, close) {float(bot[i])!r}" if why.startswith("low above") else why)
            if bad_bars == "refuse":
                raise readers.fail(src.shown, f"bad bar for {symbol} on {pd.Timestamp(df['date'].iloc[i]).date()}: "
                                              f"{detail}; fix the file or set bad_bars = \"drop\" in the spec "
                                              "(the bar becomes a no-trade bar)", row=int(rows[i]),
                                   column=_file_columns(src).get(col, col))
            rules["bad_bars_dropped"].append({"file": src.shown, "row": int(rows[i]), "symbol": symbol,
                                              "date": str(pd.Timestamp(df["date"].iloc[i]).date()),
                                              "problem": detail})
            keep[i] = False
    out = df.assign(open=o, high=h, low=lo, close=c, volume=v)
    return out[keep]


def _hk_bars(spec: Spec, tables: list[tuple[Source, dict]], rules: dict) -> tuple[dict, dict, pd.DatetimeIndex]:
    bars: dict[str, tuple[Source, pd.DataFrame]] = {}
    for src, frames in tables:
        mapping = src.get("symbols") or {}
        for code, df in frames.items():
            sym = src.get("symbol") if code == "" else mapping.get(code, _hk_code(code))
            if not sym:
                raise UserError(f"{src.where}: the file holds several instruments; give symbol or symbols")
            sym = str(sym)
            if sym in bars:
                raise UserError(f"{src.where}: HK symbol {sym} is fed by two sources "
                                f"({bars[sym][0].shown} and {src.shown})")
            df = df.sort_values("date", kind="stable").reset_index(drop=True)
            if df.empty:
                raise readers.fail(src.shown, f"no bars for {sym}: the file has a header and no rows", row=1)
            _no_duplicates(df, src.shown)
            bars[sym] = (src, df)
    first = min(df["date"].iloc[0] for _, df in bars.values())
    last = max(df["date"].iloc[-1] for _, df in bars.values())
    start = pd.Timestamp(spec.start) if spec.start else pd.Timestamp(first)
    end = pd.Timestamp(spec.end) if spec.end else pd.Timestamp(last)
    xhkg = calendars.sessions("XHKG", start, end)
    cleaned = {}
    for sym, (src, df) in bars.items():
        df = df[(df["date"] >= start.to_datetime64()) & (df["date"] <= end.to_datetime64())]
        off = ~pd.DatetimeIndex(df["date"]).isin(xhkg)
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise readers.fail(src.shown, f"bar on {pd.Timestamp(df['date'].iloc[i]).date()}, which is not an "
                                          "HK trading day (XHKG calendar): wrong timezone or date format?",
                               row=int(df["row"].iloc[i]), column=_file_columns(src).get("date", "date"))
        df = _clean_bars(df, src, sym, spec.bad_bars, rules)
        if src.get("turnover") == "close_x_volume":
            df = df.assign(turnover=df["close"] * df["volume"])
        elif "turnover" not in df.columns:
            hint = ("map it in columns (turnover = \"...\")" if src.kind == "csv" else
                    "this kind has no turnover column: use turnover = \"close_x_volume\"")
            raise readers.fail(src.shown, f"turnover = \"column\" but the file gives no turnover: {hint}", row=1)
        else:
            df = df.assign(turnover=df["turnover"] * float(src.get("turnover_scale")))
        cleaned[sym] = (src, df)
    bar_dates = pd.DatetimeIndex(np.unique(np.concatenate([df["date"].to_numpy() for _, df in cleaned.values()])))
    cal = pd.DatetimeIndex(xhkg.union(bar_dates), name="date").as_unit("us")
    rules["hk_sessions_without_a_traded_bar"] = [str(d.date()) for d in cal.difference(bar_dates)]
    return cleaned, {"start": start, "end": end}, cal


def _symbols(cleaned: dict, adr_tickers: dict[str, Source], span: dict, warnings: list[str]) -> pd.DataFrame:
    known = reference.default_symbols()
    pairs = reference.adr_pair_history()
    rows = []
    hk_of_ticker = {}
    for ticker, src in adr_tickers.items():
        hist = pairs[pairs["adr_ticker"] == ticker]
        if hist.empty:
            raise UserError(f"{src.where}: unknown ADR pair {ticker!r}: not in backtest/data/adr_pairs.csv "
                            "(add the ticker, its HK symbol and HK shares per ADR there)")
        in_span = hist[hist["valid_from"] <= span["end"]]
        cur = in_span.iloc[-1] if len(in_span) else hist.iloc[0]
        changed = hist[(hist["valid_from"] > span["start"]) & (hist["valid_from"] <= span["end"])]
        for _, ch in changed.iterrows():
            warnings.append(f"ADR ratio of {ticker} changes on {ch['valid_from'].date()} to {ch['adr_ratio']:g} "
                            f"HK shares per ADR; the premium uses {cur['adr_ratio']:g} (the ratio at the end, "
                            "which split-adjusted ADR histories are expressed in)")
        if cur["hk_symbol"] not in cleaned:
            raise UserError(f"{src.where}: ADR {ticker} pairs with HK {cur['hk_symbol']}, which no hk_bars "
                            "source imports")
        hk_of_ticker[cur["hk_symbol"]] = (ticker, float(cur["adr_ratio"]))
    for sym, (src, _) in cleaned.items():
        name = src.get("name") or (known.loc[sym, "name"] if sym in known.index else "")
        lot = src.get("board_lot") or (int(known.loc[sym, "board_lot"]) if sym in known.index else None)
        if lot is None:
            raise UserError(f"{src.where}: symbol {sym} is not in backtest/data/symbols.csv: state its "
                            "board_lot (and name) in the source")
        ticker, ratio = hk_of_ticker.get(sym, ("", np.nan))
        rows.append((sym, str(name), int(lot), ticker, ratio))
    df = pd.DataFrame(rows, columns=["symbol", "name", "board_lot", "adr_ticker", "adr_ratio"])
    df = df.set_index(pd.Index(pd.array(df["symbol"], dtype="str"), name="symbol")).drop(columns="symbol")
    df["name"] = pd.array(df["name"], dtype="str")
    df["adr_ticker"] = pd.array(df["adr_ticker"], dtype="str")
    return df


def _adr(src: Source, frames: dict[str, pd.DataFrame], lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
    """One ticker's US$ closes in [lo, hi], every date an XNYS session."""
    ticker = src.get("ticker")
    if "" in frames or len(frames) == 1:
        df = next(iter(frames.values()))
    elif ticker in frames:
        df = frames[ticker]
    else:
        raise UserError(f"{src.where}: the file holds several tickers ({', '.join(list(frames)[:5])}) "
                        f"and none is {ticker!r}: one ADR source per ticker")
    df = df.sort_values("date", kind="stable")
    _no_duplicates(df, src.shown)
    d = pd.DatetimeIndex(df["date"])
    df = df[(d >= lo) & (d <= hi)]
    d = pd.DatetimeIndex(df["date"])
    off = ~d.isin(calendars.sessions("XNYS", lo, hi))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise readers.fail(src.shown, f"ADR close on {d[i].date()}, which is not a US trading day (XNYS)",
                           row=int(df["row"].iloc[i]), column=_file_columns(src).get("date", "date"))
    return pd.Series(df["close"].to_numpy(dtype=np.float64), index=d)


def _dated_lots(symbols: pd.DataFrame, cal: pd.DatetimeIndex, warnings: list[str]) -> pd.DataFrame | None:
    """Board lots from the dated table (backtest/data/board_lots.csv) where one changes in the span."""
    hist = reference.board_lot_history()
    out = pd.DataFrame(np.nan, index=cal, columns=pd.Index(list(symbols.index), dtype="str"))
    used = False
    for sym, h in hist.groupby("symbol", sort=False):
        if sym not in out.columns:
            continue
        pos = np.searchsorted(h["valid_from"].to_numpy(), cal.to_numpy(), side="right") - 1
        if (pos < 0).any() or len(np.unique(pos)) < 2:
            continue  # no change inside the span: the static lot of symbols.csv holds
        out[sym] = h["board_lot"].to_numpy(dtype=np.float64)[pos]
        used = True
        for _, ch in h[(h["valid_from"] > cal[0]) & (h["valid_from"] <= cal[-1])].iterrows():
            warnings.append(f"board lot of {sym} changes on {ch['valid_from'].date()} to {ch['board_lot']}; "
                            "written as dated lots (hk_daily/board_lot)")
    return out if used else None


# --------------------------------------------------------------------------------------------
# series
# --------------------------------------------------------------------------------------------

def _unit(src: Source) -> float:
    return FIXED_UNIT.get((src.kind, src.get("function")), float(src.get("unit", 1.0)))


def _southbound(tables, cal: pd.DatetimeIndex, rules: dict, warnings: list[str]) -> pd.DataFrame:
    links: dict[str, pd.Series] = {}
    sb_days = calendars.southbound_days(cal[0], cal[-1])
    for src, frames in tables:
        for code, df in frames.items():
            link = code if code in ("sh", "sz") else src.get("link", "total")
            link = SOUTHBOUND_TOTAL if link == "total" else link
            if link in links:
                raise UserError(f"{src.where}: southbound {link} is fed twice")
            df = df.sort_values("date", kind="stable")
            _no_duplicates(df, src.shown)
            d = pd.DatetimeIndex(df["date"])
            inside = (d >= cal[0]) & (d <= cal[-1])
            df, d = df[inside], d[inside]
            val = df["value"].to_numpy(dtype=np.float64) * _unit(src)
            closed = ~d.isin(sb_days)
            zero_closed = closed & (val == 0)
            rules["southbound_closed_zero"] += int(zero_closed.sum())
            traded_closed = closed & (val != 0) & ~np.isnan(val)
            if traded_closed.any():
                rules["southbound_on_rule_closed_days"] += [str(x.date()) for x in d[traded_closed]]
            not_hk = ~d.isin(cal) & ~zero_closed
            if not_hk.any():
                i = int(np.flatnonzero(not_hk)[0])
                raise readers.fail(src.shown, f"southbound on {d[i].date()}, which is not an HK trading day",
                                   row=int(df["row"].iloc[i]), column=_file_columns(src).get("date", "date"))
            keep = ~zero_closed & ~np.isnan(val)
            links[link] = pd.Series(val[keep], index=d[keep])
    if SOUTHBOUND_TOTAL in links and ({"sh", "sz"} & set(links)):
        raise UserError("southbound: give either the total or both links (sh and sz), not both")
    if set(links) == {"sh"} or set(links) == {"sz"}:
        raise UserError("southbound: only one link given; give both sh and sz, or the total")
    if rules["southbound_on_rule_closed_days"]:
        warnings.append(f"southbound traded on {len(rules['southbound_on_rule_closed_days'])} day(s) the "
                        "Connect calendar says closed (kept: the data says it traded): "
                        + ", ".join(rules["southbound_on_rule_closed_days"][:5]))
    df = pd.DataFrame(links).sort_index()
    if list(df.columns) != [SOUTHBOUND_TOTAL]:
        one_link = df[["sh", "sz"]].isna().any(axis=1)
        if one_link.any():  # a day with one link's figure only has no aggregate: missing
            warnings.append(f"southbound: {int(one_link.sum())} day(s) have one link's figure only and are "
                            f"missing (first {df.index[one_link][0].date()})")
        df = df.loc[~one_link, ["sh", "sz"]]
    df.index = pd.DatetimeIndex(df.index, name="date").as_unit("us")
    df.columns = pd.Index(list(df.columns), dtype="str")
    return df


def _series(tables, lo: pd.Timestamp, hi: pd.Timestamp, on: pd.DatetimeIndex | None, rules: dict,
            key: str, scale=lambda s, v: v) -> pd.Series:
    """First source wins; later sources fill dates the earlier ones lack (counted)."""
    out = pd.Series(dtype=np.float64)
    for src, frames in tables:
        for _, df in frames.items():
            df = df.sort_values("date", kind="stable")
            _no_duplicates(df, src.shown)
            s = pd.Series(scale(src, df["value"].to_numpy(dtype=np.float64)), index=pd.DatetimeIndex(df["date"]))
            s = s[(s.index >= lo) & (s.index <= hi)].dropna()
            if on is not None:
                s = s[s.index.isin(on)]
            new = s[~s.index.isin(out.index)]
            if len(out):
                rules[f"{key}_filled_from"][src.shown] = len(new)
            out = pd.concat([out, new]).sort_index()
    out.index = pd.DatetimeIndex(out.index, name="date").as_unit("us")
    return out


def _fx_scale(src: Source, v: np.ndarray) -> np.ndarray:
    return 1.0 / v if src.get("quote") == "USD_per_HKD" else v


def _sb_stock(tables, cleaned: dict, cal: pd.DatetimeIndex, rules: dict) -> pd.DataFrame | None:
    if not tables:
        return None
    out = pd.DataFrame(np.nan, index=cal, columns=pd.Index(list(cleaned), dtype="str"))
    ignored = 0
    for src, frames in tables:
        mapping = src.get("symbols") or {}
        for _, df in frames.items():
            codes = df["code"].map(lambda c: mapping.get(c, _hk_code(c)))
            val = df["value"].to_numpy(dtype=np.float64) * _unit(src)
            g = pd.DataFrame({"date": df["date"].to_numpy(), "code": codes.to_numpy(), "v": val})
            g = g[g["code"].isin(out.columns) & g["date"].isin(cal)]
            ignored += len(df) - len(g)
            # several rows per (date, stock): one per link (market_type); absent names stay missing
            s = g.groupby(["date", "code"])["v"].sum(min_count=1).unstack()
            out.loc[s.index, s.columns] = s.to_numpy()
    rules["southbound_stock_rows_ignored"] = ignored
    return out


# --------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------

def _fetch(src: Source) -> None:
    """Call the library and cache its raw download at `file` (kept when it already exists)."""
    if src.file.exists():
        return
    import importlib.util

    lib = {"yfinance": "yfinance", "akshare": "akshare", "tushare": "tushare"}.get(src.kind)
    if lib is None:
        raise UserError(f"{src.where}: --fetch: kind {src.kind!r} has no library to call; save the file first")
    if importlib.util.find_spec(lib) is None:
        raise UserError(f"{src.where}: --fetch needs the {lib} package, which is not installed "
                        f"(pip install {lib}), or save the file {src.file} yourself")
    args = src.get("fetch")
    if not isinstance(args, dict):
        raise UserError(f"{src.where}: --fetch needs a fetch table with the library call's arguments")
    try:
        if lib == "yfinance":
            import yfinance as yf

            args = dict(args)
            df = yf.Ticker(args.pop("ticker")).history(**args)
        elif lib == "akshare":
            import akshare as ak

            df = getattr(ak, src.get("function"))(**args)
        else:
            import os

            import tushare as ts

            df = getattr(ts.pro_api(os.environ.get("TUSHARE_TOKEN", "")), src.get("function"))(**args)
    except Exception as exc:  # network, quota, token: the library's own error, named
        raise UserError(f"{src.where}: --fetch: {lib} failed ({type(exc).__name__}: {exc}); the network may "
                        "be unreachable: save the file yourself and import without --fetch") from None
    src.file.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(src.file, index=lib == "yfinance")


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

def import_dataset(spec_path: str | Path, out: str | Path, fetch: bool = False) -> ImportReport:
    """Read every source of the spec, apply the documented rules, write and re-validate `out`."""
    from backtest.data.align import align
    from backtest.data.load import load_market
    from backtest.data.write import write_market

    spec = load_spec(spec_path)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: output exists and is not an empty directory; import into a new directory")
    if fetch:
        for src in spec.sources:
            _fetch(src)
    notes: list[str] = []
    warnings: list[str] = []
    rules = {"placeholder_bars": 0, "placeholder_by_symbol": {}, "zero_volume_bars": 0, "noise_clamped": 0,
             "bad_bars_dropped": [], "southbound_closed_zero": 0, "southbound_on_rule_closed_days": [],
             "index_filled_from": {}, "fx_filled_from": {}, "notes": notes}
    by_feed: dict[str, list] = {}
    for src in spec.sources:
        by_feed.setdefault(src.feeds, []).append((src, _read(src, notes)))
    cleaned, span, cal = _hk_bars(spec, by_feed["hk_bars"], rules)
    adr_src = {src.get("ticker"): src for src, _ in by_feed.get("adr", [])}
    symbols = _symbols(cleaned, adr_src, span, warnings)
    cols = pd.Index(list(symbols.index), dtype="str")
    hk = {}
    for f in HK_REQUIRED:
        frame = pd.DataFrame(np.nan, index=cal, columns=cols)
        for sym, (_, df) in cleaned.items():
            frame.loc[pd.DatetimeIndex(df["date"]), sym] = df[f].to_numpy(dtype=np.float64)
        hk[f] = frame
    lots = _dated_lots(symbols, cal, warnings)
    if lots is not None:
        hk["board_lot"] = lots
    sbs = _sb_stock(by_feed.get("southbound_stock", []), cleaned, cal, rules)
    if sbs is not None:
        hk["sb_net_buy"] = sbs
    southbound = _southbound(by_feed["southbound"], cal, rules, warnings)
    index = _series(by_feed["index"], cal[0], cal[-1], cal, rules, "index").rename(spec.index_name)
    lo = cal[0] - PAD
    fx = _series(by_feed.get("fx", []), lo, cal[-1], None, rules, "fx", _fx_scale).rename("usdhkd")
    tickers = [t for t in symbols["adr_ticker"] if t]
    adr = {src.get("ticker"): _adr(src, frames, lo, cal[-1]) for src, frames in by_feed.get("adr", [])}
    adr_close = pd.DataFrame(adr, columns=pd.Index(tickers, dtype="str")).sort_index()
    adr_close.index = pd.DatetimeIndex(adr_close.index, name="date").as_unit("us")
    md = MarketData(hk=hk, southbound=southbound, index_close=index, adr_close=adr_close, usdhkd=fx,
                    symbols=symbols, index_name=spec.index_name, source=f"import of {spec.path.name}")
    # premium bias: adjusted HK prices against raw ADR closes (or a wrong ratio) move the median
    prices = {src.get("ticker"): src.get("prices") for src, _ in by_feed.get("adr", [])}
    hk_prices = {sym: src.get("prices") for sym, (src, _) in cleaned.items()}
    premiums = {}
    if tickers:
        panel = align(md)
        prem = panel.frame("adr_premium")
        for sym, t in zip(symbols.index, symbols["adr_ticker"]):
            if t and prem[sym].notna().any():
                med = float(prem[sym].median())
                premiums[t] = med
                if abs(med) > spec.premium_warning:
                    warnings.append(
                        f"median ADR premium of {t} over HK {sym} is {med:+.1%} (beyond +-{spec.premium_warning:.0%}): "
                        f"HK prices are {hk_prices[sym]}, ADR closes {prices[t]}; dividend-adjusted HK prices "
                        "against raw ADR closes bias the premium (docs/data.md, raw vs adjusted)")
    write_market(md, out, wide=True)
    try:
        load_market(out)  # the written dataset must pass the loader's validation
    except DataError as exc:
        import shutil

        shutil.rmtree(out)  # never leave a dataset behind that does not load
        raise DataError([Problem(str(out), "the imported dataset does not validate (not written); see below")]
                        + exc.problems) from None
    manifest = {
        "spec": str(spec.path), "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "index_name": spec.index_name, "span": [str(cal[0].date()), str(cal[-1].date())],
        "units": {"hk_prices": "HKD", "volume": "shares", "turnover": "HKD", "southbound": "HKD",
                  "adr_prices": "USD", "fx": "HKD_per_USD"},
        "sources": [{"file": src.shown, "sha256_16": _sha(src.file), "kind": src.kind, "feeds": src.feeds,
                     **{k: src.get(k) for k in ("function", "symbol", "ticker", "prices", "currency", "link",
                                                "turnover", "quote") if src.get(k) is not None},
                     "scale_to_hkd": _unit(src) if src.feeds in ("southbound", "southbound_stock") else None}
                    for src in spec.sources],
        "southbound_columns": list(southbound.columns),
        "rules": rules, "adr_median_premium": premiums, "warnings": warnings,
    }
    (out / IMPORT_MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n", encoding="utf-8")
    return ImportReport(out, md, manifest, warnings)
