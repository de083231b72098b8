"""`python -m backtest data import` (backtest/data/importers): every source kind, every rule, every
refusal. Oracles: hand-written vendor files whose values are known, read back through load_market."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.data.calendars import sessions, southbound_days
from backtest.data.importers import import_dataset
from backtest.data.load import load_market
from backtest.errors import ConfigError, DataError, UserError
from tests.helpers import run_cli

DAYS = sessions("XHKG", "2024-01-02", "2024-02-29")
US = sessions("XNYS", "2023-12-01", "2024-02-29")


def _px(i: int, base: float = 100.0) -> float:
    return base + i


def _history(code_base: float, days=DAYS) -> str:
    """yfinance Ticker.history export (tz-aware dates, Dividends, Stock Splits)."""
    lines = ["Date,Open,High,Low,Close,Volume,Dividends,Stock Splits"]
    for i, d in enumerate(days):
        c = _px(i, code_base)
        lines.append(f"{d.date()} 00:00:00+08:00,{c - 0.5},{c + 1},{c - 1},{c},{1000 + i},0.0,0.0")
    return "\n".join(lines) + "\n"


def _southbound_csv() -> str:
    lines = ["timestamp,value"]
    connect = southbound_days(DAYS[0], DAYS[-1])
    for i, d in enumerate(DAYS):
        if d in connect:
            lines.append(f"{d.date()} 00:00,{(i % 7) - 3.0}")
    return "\n".join(lines) + "\n"


def _index_csv() -> str:
    return "date,close\n" + "".join(f"{d.date()},{16000 + i}\n" for i, d in enumerate(DAYS))


BASE_SPEC = """
index_name = "HSI"
[[source]]
file = "0700.csv"
kind = "yfinance"
feeds = "hk_bars"
symbol = "0700"
prices = "adjusted"
turnover = "close_x_volume"
[[source]]
file = "9988.csv"
kind = "yfinance"
feeds = "hk_bars"
symbol = "9988"
prices = "raw"
turnover = "close_x_volume"
[[source]]
file = "sb.csv"
kind = "csv"
feeds = "southbound"
columns = {{ date = "timestamp", value = "value" }}
date_format = "%Y-%m-%d %H:%M"
unit = 1e8
currency = "HKD"
[[source]]
file = "index.csv"
kind = "csv"
feeds = "index"
columns = {{ date = "date", value = "close" }}
date_format = "%Y-%m-%d"
{extra}
"""


def _setup(tmp_path: Path, extra: str = "", files: dict[str, str] | None = None) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    base = {"0700.csv": _history(300.0), "9988.csv": _history(70.0), "sb.csv": _southbound_csv(),
            "index.csv": _index_csv()}
    for name, text in {**base, **(files or {})}.items():
        (src / name).write_text(text, encoding="utf-8")
    spec = src / "spec.toml"
    spec.write_text(BASE_SPEC.format(extra=extra), encoding="utf-8")
    return spec


def _import(tmp_path: Path, extra: str = "", files=None):
    spec = _setup(tmp_path, extra, files)
    return import_dataset(spec, tmp_path / "out")


def _problem(exc: DataError):
    assert len(exc.problems) == 1
    return exc.problems[0]


# ---------------------------------------------------------------------------------- basics

def test_minimal_import_round_trips(tmp_path):
    rep = _import(tmp_path)
    md = load_market(rep.out)
    assert md.fingerprint() == rep.market.fingerprint()
    assert list(md.hk["close"].columns) == ["0700", "9988"]
    assert md.hk["close"].loc["2024-01-02", "0700"] == 300.0
    assert md.hk["turnover"].loc["2024-01-03", "9988"] == 71.0 * 1001  # close x volume, stated
    assert list(md.southbound.columns) == ["total"]
    # 1e8 HK$ units -> HK$; days the Connect calendar says closed hold no value
    assert md.southbound.loc["2024-01-02", "total"] == -3.0 * 1e8
    assert md.southbound.index.equals(southbound_days(DAYS[0], DAYS[-1]))
    assert rep.warnings == []
    man = json.loads((rep.out / "import.json").read_text())
    assert {s["file"] for s in man["sources"]} == {"0700.csv", "9988.csv", "sb.csv", "index.csv"}
    assert man["units"]["southbound"] == "HKD" and man["imported_at"]
    assert [s["scale_to_hkd"] for s in man["sources"] if s["feeds"] == "southbound"] == [1e8]


def test_closed_connect_zero_is_missing_not_zero(tmp_path):
    # 2024-02-09 .. 02-16: mainland Lunar New Year; HK trades 02-09 (half day) and 02-14..16
    closed = [d for d in DAYS if d not in southbound_days(DAYS[0], DAYS[-1])]
    assert pd.Timestamp("2024-02-14") in closed
    lines = ["timestamp,value"] + [f"{d.date()} 00:00,{0.0 if d in closed else 1.5}" for d in DAYS]
    rep = _import(tmp_path, files={"sb.csv": "\n".join(lines) + "\n"})
    assert pd.Timestamp("2024-02-14") not in rep.market.southbound.index
    assert rep.manifest["rules"]["southbound_closed_zero"] == len(closed)


def test_flow_on_a_day_the_rule_calls_closed_is_kept_and_warned(tmp_path):
    lines = ["timestamp,value"] + [f"{d.date()} 00:00,1.5" for d in DAYS]
    rep = _import(tmp_path, files={"sb.csv": "\n".join(lines) + "\n"})
    assert pd.Timestamp("2024-02-14") in rep.market.southbound.index
    assert "2024-02-14" in rep.manifest["rules"]["southbound_on_rule_closed_days"]
    assert any("Connect calendar says closed" in w for w in rep.warnings)


def test_placeholder_and_zero_volume_bars_are_no_trade(tmp_path):
    text = _history(300.0).splitlines()
    d5 = DAYS[5].date()
    text[6] = f"{d5} 00:00:00+08:00,304.0,304.0,304.0,304.0,0,0.0,0.0"       # placeholder
    text[7] = f"{DAYS[6].date()} 00:00:00+08:00,305.5,307,305,306,0,0.0,0.0"   # zero volume, not flat
    rep = _import(tmp_path, files={"0700.csv": "\n".join(text) + "\n"})
    md = rep.market
    assert np.isnan(md.hk["close"].loc[str(d5), "0700"]) and np.isnan(md.hk["open"].loc[str(DAYS[6].date()), "0700"])
    assert DAYS[5] in md.hk["close"].index  # the day stays on the HK calendar
    r = rep.manifest["rules"]
    assert (r["placeholder_bars"], r["zero_volume_bars"]) == (1, 1)


def test_float_noise_is_clamped_and_a_bad_bar_is_refused_with_file_row_column(tmp_path):
    text = _history(300.0).splitlines()
    text[3] = f"{DAYS[2].date()} 00:00:00+08:00,301.5,303,301.50000000000006,302,1000,0.0,0.0"
    rep = _import(tmp_path, files={"0700.csv": "\n".join(text) + "\n"})
    assert rep.manifest["rules"]["noise_clamped"] == 1
    assert rep.market.hk["low"].loc[str(DAYS[2].date()), "0700"] == 301.5

    text[4] = f"{DAYS[3].date()} 00:00:00+08:00,22.84,23.5,22.93,23.0,1000,0.0,0.0"
    (tmp_path / "b").mkdir()
    spec = _setup(tmp_path / "b", files={"0700.csv": "\n".join(text) + "\n"})
    with pytest.raises(DataError) as e:
        import_dataset(spec, tmp_path / "b" / "out")
    p = _problem(e.value)
    assert (p.file, p.row, p.column) == ("0700.csv", 5, "Low")
    assert "22.93" in p.message and "22.84" in p.message and "bad_bars" in p.message


def test_bad_bar_dropped_when_the_spec_says_so(tmp_path):
    text = _history(300.0).splitlines()
    text[4] = f"{DAYS[3].date()} 00:00:00+08:00,22.84,23.5,22.93,23.0,1000,0.0,0.0"
    spec = _setup(tmp_path, files={"0700.csv": "\n".join(text) + "\n"})
    spec.write_text('bad_bars = "drop"\n' + spec.read_text())
    rep = import_dataset(spec, tmp_path / "out")
    assert np.isnan(rep.market.hk["close"].loc[str(DAYS[3].date()), "0700"])
    assert rep.manifest["rules"]["bad_bars_dropped"][0]["row"] == 5


def test_bad_number_names_file_row_column(tmp_path):
    text = _history(300.0).splitlines()
    text[9] = text[9].replace(",1008,", ",12x,")
    with pytest.raises(DataError) as e:
        _import(tmp_path, files={"0700.csv": "\n".join(text) + "\n"})
    p = _problem(e.value)
    assert (p.file, p.row, p.column) == ("0700.csv", 10, "Volume") and "'12x'" in p.message


def test_bar_on_a_non_trading_day_is_refused(tmp_path):
    text = _history(300.0).splitlines()
    text.append("2024-03-02 00:00:00+08:00,1,1,1,1,1,0.0,0.0")  # a Saturday
    with pytest.raises(DataError) as e:
        _import(tmp_path, files={"0700.csv": "\n".join(text) + "\n"})
    p = _problem(e.value)
    assert (p.file, p.row, p.column) == ("0700.csv", len(text), "Date") and "XHKG" in p.message


def test_intraday_rows_refused_unless_dropped(tmp_path):
    sb = _southbound_csv() + "2024-02-29 14:44,5.0\n"
    n = len(sb.splitlines())
    with pytest.raises(DataError) as e:
        _import(tmp_path, files={"sb.csv": sb})
    p = _problem(e.value)
    assert p.file == "sb.csv" and p.row == n and "intraday" in p.message


# ---------------------------------------------------------------------------------- kinds

def _nasdaq(days, base=9.0) -> str:
    lines = ["Date,Close/Last,Volume,Open,High,Low"]
    for i, d in reversed(list(enumerate(days))):
        c = base + i / 100
        lines.append(f'{d.strftime("%m/%d/%Y")},${c:.2f},"1,234,567",${c:.2f},${c + 0.1:.2f},${c - 0.1:.2f}')
    return "\n".join(lines) + "\n"


def test_nasdaq_adr_and_semicolon_decimal_comma_fx(tmp_path):
    fx = "Date;Close\n" + "".join(f"{d.date()};7,8{i % 10}\n" for i, d in enumerate(US))
    extra = """
[[source]]
file = "baba.csv"
kind = "nasdaq"
feeds = "adr"
ticker = "BABA"
prices = "raw"
[[source]]
file = "fx.csv"
kind = "csv"
feeds = "fx"
sep = ";"
decimal = ","
columns = { date = "Date", value = "Close" }
date_format = "%Y-%m-%d"
quote = "HKD_per_USD"
"""
    rep = _import(tmp_path, extra, {"baba.csv": _nasdaq(US, 72.0), "fx.csv": fx})
    md = rep.market
    assert md.symbols.loc["9988", "adr_ticker"] == "BABA" and md.symbols.loc["9988", "adr_ratio"] == 8
    assert md.adr_close.index.is_monotonic_increasing  # newest first on disk
    i = list(US).index(pd.Timestamp("2024-01-02"))
    assert md.adr_close.loc["2024-01-02", "BABA"] == pytest.approx(round(72.0 + i / 100, 2))
    assert md.usdhkd.loc["2024-01-02"] == pytest.approx(7.8 + (i % 10) / 100)
    assert "BABA" in rep.manifest["adr_median_premium"]


def test_yfinance_download_multi_level_and_flat_headers(tmp_path):
    flat = "Date,Open,High,Low,Close,Adj Close,Volume\n" + "".join(
        f"{d.date()},{10 + i},{11 + i},{9 + i},{10.5 + i},{(10.5 + i) / 2},{100 + i}\n" for i, d in enumerate(DAYS))
    l0 = "Price,Close,Close,High,High,Low,Low,Open,Open,Volume,Volume"
    l1 = "Ticker,0700.HK,9988.HK,0700.HK,9988.HK,0700.HK,9988.HK,0700.HK,9988.HK,0700.HK,9988.HK"
    body = "".join(f"{d.date()},{300 + i},{70 + i},{301 + i},{71 + i},{299 + i},{69 + i},{300 + i},{70 + i},{5 + i},{6 + i}\n"
                   for i, d in enumerate(DAYS))
    multi = f"{l0}\n{l1}\nDate,,,,,,,,,,\n{body}"
    spec = _setup(tmp_path, files={"multi.csv": multi, "flat.csv": flat})
    text = spec.read_text().replace('file = "0700.csv"', 'file = "multi.csv"').replace(
        'symbol = "0700"', 'symbols = { "0700.HK" = "0700", "9988.HK" = "9988" }')
    # drop the separate 9988 source: the multi-level file feeds both names
    text = text.replace('[[source]]\nfile = "9988.csv"\nkind = "yfinance"\nfeeds = "hk_bars"\nsymbol = "9988"\n'
                        'prices = "raw"\nturnover = "close_x_volume"\n', "")
    text += '[[source]]\nfile = "flat.csv"\nkind = "yfinance"\nfeeds = "hk_bars"\nsymbol = "0981"\nprices = "adjusted"\nturnover = "close_x_volume"\n'
    spec.write_text(text)
    rep = import_dataset(spec, tmp_path / "out")
    md = rep.market
    assert md.hk["close"].loc["2024-01-03", "9988"] == 71 and md.hk["volume"].loc["2024-01-03", "0700"] == 6
    # flat download with Adj Close, prices = "adjusted": the bar is scaled by Adj Close / Close
    assert md.hk["close"].loc["2024-01-02", "0981"] == pytest.approx(5.25)
    assert md.hk["open"].loc["2024-01-02", "0981"] == pytest.approx(10 * 5.25 / 10.5)


def test_akshare_and_tushare_files(tmp_path):
    ak_sb = "日期,当日成交净买额,买入成交额\n" + "".join(f"{d.date()},{1.5 + i},{9}\n" for i, d in enumerate(DAYS))
    ts_hk = "ts_code,trade_date,open,high,low,close,vol,amount\n" + "".join(
        f"00981.HK,{d.strftime('%Y%m%d')},{20 + i},{21 + i},{19 + i},{20.5 + i},{1000 + i},{20000 + i}\n"
        for i, d in enumerate(DAYS))
    top = "trade_date,ts_code,name,net_amount,market_type\n" + \
        f"{DAYS[1].strftime('%Y%m%d')},00700.HK,Tencent,1000,2\n" + \
        f"{DAYS[1].strftime('%Y%m%d')},00700.HK,Tencent,500,4\n" + \
        f"{DAYS[2].strftime('%Y%m%d')},09988.HK,Alibaba,-300,2\n" + \
        f"{DAYS[2].strftime('%Y%m%d')},01299.HK,AIA,77,2\n"
    spec = _setup(tmp_path, files={"ak_sb.csv": ak_sb, "ts_hk.csv": ts_hk, "top.csv": top})
    text = spec.read_text()
    start = text.index('[[source]]\nfile = "sb.csv"')
    end = text.index('[[source]]\nfile = "index.csv"')
    text = text[:start] + text[end:] + """
[[source]]
file = "ak_sb.csv"
kind = "akshare"
function = "stock_hsgt_hist_em"
feeds = "southbound"
currency = "HKD"
[[source]]
file = "ts_hk.csv"
kind = "tushare"
function = "hk_daily"
feeds = "hk_bars"
prices = "raw"
currency = "HKD"
turnover = "column"
turnover_scale = 1
symbols = { "00981.HK" = "0981" }
[[source]]
file = "top.csv"
kind = "tushare"
function = "ggt_top10"
feeds = "southbound_stock"
currency = "HKD"
unit = 1
"""
    spec.write_text(text)
    rep = import_dataset(spec, tmp_path / "out")
    md = rep.market
    assert md.southbound.loc["2024-01-02", "total"] == 1.5e8  # akshare: 亿 (the function divides by 100)
    assert md.hk["turnover"].loc["2024-01-02", "0981"] == 20000 and md.hk["close"].loc["2024-01-03", "0981"] == 21.5
    sb = md.hk["sb_net_buy"]
    assert sb.loc[DAYS[1], "0700"] == 1500 and sb.loc[DAYS[2], "9988"] == -300
    # names absent from the day's top 10 are missing, not zero
    assert np.isnan(sb.loc[DAYS[1], "9988"]) and np.isnan(sb.loc[DAYS[0], "0700"])
    assert rep.manifest["rules"]["southbound_stock_rows_ignored"] == 1  # 1299 not imported


def test_tushare_moneyflow_hsgt_links(tmp_path):
    mf = "trade_date,ggt_ss,ggt_sz,south_money\n" + "".join(
        f"{d.strftime('%Y%m%d')},{1.0 + i},{2.0},{3.0 + i}\n" for i, d in enumerate(DAYS))
    spec = _setup(tmp_path, files={"mf.csv": mf})
    text = spec.read_text()
    start = text.index('[[source]]\nfile = "sb.csv"')
    end = text.index('[[source]]\nfile = "index.csv"')
    spec.write_text(text[:start] + text[end:] + '[[source]]\nfile = "mf.csv"\nkind = "tushare"\n'
                    'function = "moneyflow_hsgt"\nfeeds = "southbound"\ncurrency = "HKD"\n')
    md = import_dataset(spec, tmp_path / "out").market
    assert list(md.southbound.columns) == ["sh", "sz"]
    assert md.southbound.loc["2024-01-02", "sh"] == 1e6 and md.southbound.loc["2024-01-02", "sz"] == 2e6


# ---------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("edit, match", [
    (('currency = "HKD"\n', ''), "currency is ambiguous"),
    (('unit = 1e8\n', ''), "unit must be stated"),
    (('prices = "raw"\n', ''), "prices"),
    (('turnover = "close_x_volume"\n', '', 1), "turnover must be stated"),
    (('kind = "yfinance"', 'kind = "yahoo"', 1), "kind must be one of"),
    (('feeds = "index"', 'feed = "index"'), "unknown key 'feed'"),
    (('date_format = "%Y-%m-%d"\n', ''), "date_format"),
    (('currency = "HKD"', 'currency = "CNY"'), "convert the file first"),
    (('unit = 1e8', 'unit = "1e8"'), "unit must be a number"),
    (('symbol = "0700"', 'symbol = 700'), "symbol must be a string"),
    (('value = "value" }', 'value = "value", vlaue = "x" }'), "did you mean 'value'"),
    (('unit = 1e8', 'unit = 1e8\ndecimal = ","\nthousands = ","'), "ambiguous"),
])
def test_ambiguous_or_wrong_specs_are_refused(tmp_path, edit, match):
    spec = _setup(tmp_path)
    text = spec.read_text()
    old, new, *count = edit
    assert old in text
    spec.write_text(text.replace(old, new, *count))
    with pytest.raises(ConfigError, match=match) as e:
        import_dataset(spec, tmp_path / "out")
    assert str(spec) in str(e.value)


def test_unknown_adr_pair_is_reported(tmp_path):
    extra = '[[source]]\nfile = "x.csv"\nkind = "nasdaq"\nfeeds = "adr"\nticker = "XYZ"\nprices = "raw"\n'
    with pytest.raises(UserError, match="unknown ADR pair 'XYZ'"):
        _import(tmp_path, extra, {"x.csv": _nasdaq(US)})


def test_ratio_change_is_reported(tmp_path, monkeypatch):
    from backtest.data import reference

    hist = reference.adr_pair_history().copy()
    row = hist[hist["adr_ticker"] == "BABA"].iloc[0].copy()
    row["adr_ratio"], row["valid_from"] = 8.0, pd.Timestamp("2024-02-01")
    early = hist.index[hist["adr_ticker"] == "BABA"][0]
    hist.loc[early, "adr_ratio"] = 1.0
    hist = pd.concat([hist, row.to_frame().T]).sort_values(["adr_ticker", "valid_from"]).reset_index(drop=True)
    hist["adr_ratio"] = hist["adr_ratio"].astype(float)
    monkeypatch.setattr(reference, "adr_pair_history", lambda: hist)
    fx = "date,usdhkd\n" + "".join(f"{d.date()},7.8\n" for d in US)
    extra = ('[[source]]\nfile = "baba.csv"\nkind = "nasdaq"\nfeeds = "adr"\nticker = "BABA"\nprices = "raw"\n'
             '[[source]]\nfile = "fx.csv"\nkind = "csv"\nfeeds = "fx"\ncolumns = { date = "date", value = "usdhkd" }\n'
             'date_format = "%Y-%m-%d"\nquote = "HKD_per_USD"\n')
    rep = _import(tmp_path, extra, {"baba.csv": _nasdaq(US, 72.0), "fx.csv": fx})
    assert any("ADR ratio of BABA changes on 2024-02-01" in w for w in rep.warnings)


def test_premium_far_from_zero_warns(tmp_path):
    fx = "date,usdhkd\n" + "".join(f"{d.date()},7.8\n" for d in US)
    extra = ('[[source]]\nfile = "baba.csv"\nkind = "nasdaq"\nfeeds = "adr"\nticker = "BABA"\nprices = "raw"\n'
             '[[source]]\nfile = "fx.csv"\nkind = "csv"\nfeeds = "fx"\ncolumns = { date = "date", value = "usdhkd" }\n'
             'date_format = "%Y-%m-%d"\nquote = "HKD_per_USD"\n')
    # 9988 closes ~70-110 HK$; ADR 72 US$ x 7.8 / 8 = ~70 HK$: premium falls from 0 to about -30 %
    rep = _import(tmp_path, extra, {"baba.csv": _nasdaq(US, 72.0), "fx.csv": fx})
    assert any("median ADR premium of BABA" in w and "adjusted" in w for w in rep.warnings)


def test_fetch_refused_without_library_or_for_plain_files(tmp_path):
    spec = _setup(tmp_path)
    (tmp_path / "src" / "0700.csv").unlink()
    with pytest.raises(UserError, match="--fetch"):
        import_dataset(spec, tmp_path / "out", fetch=True)


def test_output_must_be_new(tmp_path):
    spec = _setup(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(UserError, match="not an empty directory"):
        import_dataset(spec, tmp_path / "out")


def test_cli_import_and_error_exit_2(tmp_path):
    spec = _setup(tmp_path)
    ok = run_cli("data", "import", str(spec), "--out", str(tmp_path / "o"))
    assert ok.returncode == 0, ok.stderr
    assert "wrote" in ok.stdout and (tmp_path / "o" / "import.json").is_file()
    (tmp_path / "src" / "sb.csv").write_text("timestamp,value\n2024-01-02 00:00,abc\n")
    bad = run_cli("data", "import", str(spec), "--out", str(tmp_path / "p"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "sb.csv, row 2, column 'value'" in bad.stderr


def test_missing_price_cell_names_its_column(tmp_path):
    text = _history(300.0).splitlines()
    parts = text[3].split(",")
    parts[2] = ""  # High
    text[3] = ",".join(parts)
    with pytest.raises(DataError) as e:
        _import(tmp_path, files={"0700.csv": "\n".join(text) + "\n"})
    p = _problem(e.value)
    assert (p.file, p.row, p.column) == ("0700.csv", 4, "High") and "high missing" in p.message


def test_header_only_file_is_refused(tmp_path):
    with pytest.raises(DataError) as e:
        _import(tmp_path, files={"0700.csv": "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"})
    assert _problem(e.value).file == "0700.csv"


def test_csv_timezone_converts_utc_timestamps_to_the_hk_date(tmp_path):
    # 2024-01-02 20:00 UTC is 2024-01-03 04:00 in Hong Kong
    lines = ["ts,close"] + [f"{(d - pd.Timedelta(hours=4)).strftime('%Y-%m-%d %H:%M')},{16000 + i}"
                            for i, d in enumerate(DAYS)]
    spec = _setup(tmp_path, files={"index.csv": "\n".join(lines) + "\n"})
    spec.write_text(spec.read_text().replace('columns = { date = "date", value = "close" }\ndate_format = "%Y-%m-%d"',
                                             'columns = { date = "ts", value = "close" }\ndate_format = "%Y-%m-%d %H:%M"\n'
                                             'timezone = "UTC"'))
    md = import_dataset(spec, tmp_path / "out").market
    assert md.index_close.loc["2024-01-02"] == 16000


def test_dollar_marks_and_thousands_in_plain_csv(tmp_path):
    lines = ["Date,Close"] + [f'{d.date()},"$1,{600 + i}.5"' for i, d in enumerate(DAYS)]
    spec = _setup(tmp_path, files={"index.csv": "\n".join(lines) + "\n"})
    spec.write_text(spec.read_text().replace('columns = { date = "date", value = "close" }',
                                             'columns = { date = "Date", value = "Close" }\nthousands = ","\n'
                                             'currency_mark = "$"'))
    md = import_dataset(spec, tmp_path / "out").market
    assert md.index_close.loc["2024-01-02"] == 1600.5


def test_dataset_failing_the_loader_is_not_left_behind(tmp_path):
    fx = "date,usdhkd\n" + "".join(f"{d.date()},7.8\n" for d in US)
    extra = ('[[source]]\nfile = "baba.csv"\nkind = "nasdaq"\nfeeds = "adr"\nticker = "BABA"\nprices = "raw"\n'
             '[[source]]\nfile = "fx.csv"\nkind = "csv"\nfeeds = "fx"\ncolumns = { date = "date", value = "usdhkd" }\n'
             'date_format = "%Y-%m-%d"\nquote = "HKD_per_USD"\n')
    # ADR quoted in HK$ by mistake: the premium is about +600 %, beyond the loader's 25 % limit
    with pytest.raises(DataError) as e:
        _import(tmp_path, extra, {"baba.csv": _nasdaq(US, 560.0), "fx.csv": fx})
    assert "does not validate" in str(e.value) and "median ADR premium of BABA" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_shipped_board_lot_history_ends_at_the_symbols_table():
    from backtest.data import reference

    hist, sym = reference.board_lot_history(), reference.default_symbols()
    for s, h in hist.groupby("symbol"):
        assert h["board_lot"].iloc[-1] == sym.loc[s, "board_lot"]
        assert h["valid_from"].iloc[0] == pd.Timestamp("1900-01-01")


def test_board_lot_change_is_written_as_dated_lots(tmp_path, monkeypatch):
    from backtest.data import reference

    hist = pd.DataFrame({"symbol": ["0700", "0700"], "valid_from": pd.to_datetime(["1900-01-01", "2024-02-01"]),
                         "board_lot": [500, 100]})
    monkeypatch.setattr(reference, "board_lot_history", lambda: hist)
    rep = _import(tmp_path)
    md = load_market(rep.out)
    lot = md.hk["board_lot"]["0700"]
    assert (lot.loc[:"2024-01-31"] == 500).all() and (lot.loc["2024-02-01":] == 100).all()
    assert lot.index.equals(md.hk["close"].index)
    assert md.hk["board_lot"]["9988"].isna().all()  # no change: symbols.csv's lot applies
    assert any("board lot of 0700 changes on 2024-02-01" in w for w in rep.warnings)


def test_adr_close_on_a_us_holiday_is_refused(tmp_path):
    days = US.union(pd.DatetimeIndex(["2024-01-15"]))  # Martin Luther King Jr. Day
    extra = '[[source]]\nfile = "baba.csv"\nkind = "nasdaq"\nfeeds = "adr"\nticker = "BABA"\nprices = "raw"\n'
    text = _nasdaq(days, 72.0)
    with pytest.raises(DataError) as e:
        _import(tmp_path, extra, {"baba.csv": text})
    p = _problem(e.value)
    row = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("01/15/2024"))
    assert (p.file, p.row, p.column) == ("baba.csv", row, "Date") and "XNYS" in p.message


def test_southbound_on_an_hk_holiday_is_refused(tmp_path):
    sb = "timestamp,value\n2024-02-12 00:00,5.0\n" + _southbound_csv().split("\n", 1)[1]  # HK: Lunar New Year
    with pytest.raises(DataError) as e:
        _import(tmp_path, files={"sb.csv": sb})
    p = _problem(e.value)
    assert (p.file, p.row, p.column) == ("sb.csv", 2, "timestamp") and "not an HK trading day" in p.message


def test_akshare_hk_and_us_daily_and_yfinance_us_offsets(tmp_path):
    ak_hk = "date,open,high,low,close,volume\n" + "".join(
        f"{d.date()},{50 + i / 10},{51 + i / 10},{49 + i / 10},{50.5 + i / 10},{300 + i}\n" for i, d in enumerate(DAYS))
    ak_us = "date,open,high,low,close,volume\n" + "".join(
        f"{d.date()},{13 + i / 100},{13.1 + i / 100},{12.9 + i / 100},{13.05 + i / 100},{1000}\n" for i, d in enumerate(US))
    # yfinance history of an ADR: New York offsets (-05:00) stay on their US date
    yf_us = "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n" + "".join(
        f"{d.date()} 00:00:00-05:00,{70 + i / 10},{71 + i / 10},{69 + i / 10},{70.5 + i / 10},{10},0.0,0.0\n"
        for i, d in enumerate(US))
    fx = "date,usdhkd\n" + "".join(f"{d.date()},7.8\n" for d in US)
    extra = """
[[source]]
file = "ak_hk.csv"
kind = "akshare"
function = "stock_hk_daily"
feeds = "hk_bars"
symbol = "9618"
prices = "raw"
turnover = "close_x_volume"
[[source]]
file = "ak_us.csv"
kind = "akshare"
function = "stock_us_daily"
feeds = "adr"
ticker = "JD"
prices = "raw"
[[source]]
file = "yf_us.csv"
kind = "yfinance"
feeds = "adr"
ticker = "BABA"
prices = "adjusted"
[[source]]
file = "fx.csv"
kind = "csv"
feeds = "fx"
columns = { date = "date", value = "usdhkd" }
date_format = "%Y-%m-%d"
quote = "HKD_per_USD"
"""
    rep = _import(tmp_path, extra, {"ak_hk.csv": ak_hk, "ak_us.csv": ak_us, "yf_us.csv": yf_us, "fx.csv": fx})
    md = rep.market
    i = list(US).index(pd.Timestamp("2024-01-02"))
    assert md.hk["close"].loc["2024-01-02", "9618"] == 50.5
    assert md.adr_close.loc["2024-01-02", "JD"] == pytest.approx(13.05 + i / 100)
    assert md.adr_close.loc["2024-01-02", "BABA"] == pytest.approx(70.5 + i / 10)
    assert md.symbols.loc["9618", "adr_ticker"] == "JD" and md.symbols.loc["9618", "adr_ratio"] == 2
    man = {s["file"]: s for s in rep.manifest["sources"]}
    assert man["yf_us.csv"]["prices"] == "adjusted" and man["ak_us.csv"]["prices"] == "raw"


def test_unreadable_source_file_is_one_message(tmp_path):
    with pytest.raises(DataError) as e:
        _import(tmp_path, files={"0700.csv": "Date,Open\n"})
    assert _problem(e.value).file == "0700.csv"
    (tmp_path / "src" / "0700.csv").write_text(_history(300.0))
    (tmp_path / "src" / "sb.csv").write_bytes(b"timestamp,value\n2024-01-02 00:00,\xff\xfe1\n")
    with pytest.raises(DataError) as e:
        import_dataset(tmp_path / "src" / "spec.toml", tmp_path / "out2")
    assert _problem(e.value).file == "sb.csv"


def test_turnover_column_that_does_not_exist_is_refused(tmp_path):
    spec = _setup(tmp_path)
    spec.write_text(spec.read_text().replace('turnover = "close_x_volume"', 'turnover = "column"\nturnover_scale = 1', 1))
    with pytest.raises(DataError) as e:
        import_dataset(spec, tmp_path / "out")
    p = _problem(e.value)
    assert p.file == "0700.csv" and "close_x_volume" in p.message


def test_fetch_keeps_a_cached_file(tmp_path):
    # every file is already saved: --fetch calls no library and imports the cache
    rep = import_dataset(_setup(tmp_path), tmp_path / "out", fetch=True)
    assert rep.market.hk["close"].shape == (len(DAYS), 2)


def test_fetch_without_arguments_or_for_nasdaq_is_refused(tmp_path):
    extra = '[[source]]\nfile = "missing.csv"\nkind = "nasdaq"\nfeeds = "adr"\nticker = "BABA"\nprices = "raw"\n'
    spec = _setup(tmp_path, extra)
    with pytest.raises(UserError, match="kind 'nasdaq' has no library"):
        import_dataset(spec, tmp_path / "out", fetch=True)
