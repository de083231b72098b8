"""On-disk dataset format (docs/data.md): loading, validation problems, and write/load round trips.

Error-case datasets are written by hand as CSV text, so these tests do not depend on write_market.
Row numbers in CSV problems are file line numbers with the header on line 1.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.data import reference
from backtest.data.load import MAX_PER_CHECK, load_market
from backtest.data.write import write_market
from backtest.data.market import MarketData
from tests.helpers import ROOT
from backtest.errors import DataError, Problem

MANIFEST = """\
index_name = "HSTECH"
[units]
hk_prices = "HKD"
adr_prices = "USD"
turnover = "HKD"
southbound = "HKD_millions"
volume = "shares"
fx = "HKD_per_USD"
"""

SYMBOLS = """\
symbol,name,board_lot,adr_ticker,adr_ratio
0700,Tencent Holdings,100,,
9988,Alibaba Group,100,BABA,8
"""

# line 2..7; 9988 did not trade on 2024-01-04 (no row = NaN)
HK_DAILY = """\
date,symbol,open,high,low,close,volume,turnover
2024-01-02,0700,298.0,303.0,297.0,300.0,1000000,300000000
2024-01-02,9988,72.0,73.0,71.5,72.5,2000000,145000000
2024-01-03,0700,300.0,304.0,299.0,302.0,1100000,332200000
2024-01-03,9988,72.5,73.5,72.0,73.0,2100000,153300000
2024-01-04,0700,302.0,302.5,296.0,298.0,1200000,357600000
2024-01-05,9988,73.0,73.2,71.0,71.8,2200000,157960000
2024-01-05,0700,298.0,299.0,295.0,296.0,900000,266400000
"""

# HK$ millions; Connect closed on 2024-01-03 (no row)
SOUTHBOUND = """\
date,sh,sz
2024-01-02,1500.5,-200
2024-01-04,800,300
2024-01-05,0,25.25
"""

INDEX = """\
date,close
2024-01-02,3500.5
2024-01-03,3510.0
2024-01-04,3490.25
2024-01-05,3480.0
"""

# US calendar: 2024-01-04 and 2024-01-05 traded in the US as well; ADR = HK close * 8 / fx
ADR = """\
date,adr_ticker,close
2024-01-02,BABA,74.36
2024-01-03,BABA,74.87
2024-01-05,BABA,73.64
"""

FX = """\
date,usdhkd
2024-01-02,7.8
2024-01-03,7.801
2024-01-04,7.8105
2024-01-05,7.8093
"""

BASE = {
    "dataset.toml": MANIFEST,
    "symbols.csv": SYMBOLS,
    "hk_daily.csv": HK_DAILY,
    "southbound.csv": SOUTHBOUND,
    "index.csv": INDEX,
    "adr.csv": ADR,
    "fx.csv": FX,
}


def write_files(root: Path, files: dict[str, str | None]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if text is None:
            continue
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def dataset(tmp_path: Path, **changes: str | None) -> Path:
    """The base dataset with some files replaced (new text) or removed (None); "__" means "."."""
    files = dict(BASE)
    for key, text in changes.items():
        files[key.replace("__", ".")] = text
    return write_files(tmp_path / "ds", files)


def sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(DataError) as info:
        load_market(path)
    return info.value.problems


def find(problems: list[Problem], file: str, text: str = "", **where) -> Problem:
    """The one problem in `file` whose message contains `text` and whose fields match `where`."""
    hits = [p for p in problems if p.file == file and text in p.message
            and all(getattr(p, k) == v for k, v in where.items())]
    assert len(hits) == 1, f"expected one {file} {text!r} {where}, got {hits}\nall: {problems}"
    return hits[0]


def assert_market_equal(a: MarketData, b: MarketData) -> None:
    assert sorted(a.hk) == sorted(b.hk)
    for k in a.hk:
        pd.testing.assert_frame_equal(a.hk[k], b.hk[k], check_freq=False, obj=f"hk[{k}]")
    pd.testing.assert_frame_equal(a.southbound, b.southbound, check_freq=False)
    pd.testing.assert_frame_equal(a.adr_close, b.adr_close, check_freq=False)
    pd.testing.assert_frame_equal(a.symbols, b.symbols)
    pd.testing.assert_series_equal(a.index_close, b.index_close, check_freq=False)
    pd.testing.assert_series_equal(a.usdhkd, b.usdhkd, check_freq=False)
    assert a.index_name == b.index_name
    assert a.fingerprint() == b.fingerprint()


# ---------------------------------------------------------------------------------------------
# valid data
# ---------------------------------------------------------------------------------------------

def test_load_long_csv(tmp_path):
    md = load_market(dataset(tmp_path))
    close = md.hk["close"]
    assert list(close.columns) == ["0700", "9988"]  # symbols.csv order, leading zeros kept
    assert [str(d.date()) for d in close.index] == ["2024-01-02", "2024-01-03", "2024-01-04",
                                                    "2024-01-05"]
    assert close.index.dtype == "datetime64[us]"
    assert close.loc["2024-01-03", "9988"] == 73.0
    assert np.isnan(close.loc["2024-01-04", "9988"])  # no row: not traded, left NaN
    assert sorted(md.hk) == ["close", "high", "low", "open", "turnover", "volume"]
    assert md.hk["turnover"].loc["2024-01-02", "0700"] == 300_000_000
    # southbound: HK$ millions scaled to HK$; the closed day is absent, not zero
    assert md.southbound.loc["2024-01-02", "sh"] == 1500.5e6
    assert md.southbound.loc["2024-01-05", "sz"] == 25.25e6
    assert pd.Timestamp("2024-01-03") not in md.southbound.index
    assert md.index_close.name == "HSTECH" and md.index_name == "HSTECH"
    assert list(md.adr_close.columns) == ["BABA"]
    assert md.adr_close["BABA"].iloc[-1] == 73.64
    assert md.usdhkd.loc["2024-01-04"] == 7.8105
    assert md.symbols.loc["9988", "adr_ticker"] == "BABA"
    assert md.symbols.loc["0700", "adr_ticker"] == ""
    assert np.isnan(md.symbols.loc["0700", "adr_ratio"])
    assert md.symbols["board_lot"].dtype == np.int64


def test_unit_scaling(tmp_path):
    manifest = sub(sub(MANIFEST, 'turnover = "HKD"', 'turnover = "HKD_thousands"'),
                   'southbound = "HKD_millions"', 'southbound = "HKD_billions"')
    md = load_market(dataset(tmp_path, **{"dataset__toml": manifest}))
    assert md.hk["turnover"].loc["2024-01-02", "0700"] == 300_000_000 * 1e3
    assert md.southbound.loc["2024-01-02", "sh"] == 1500.5e9


def test_optional_sb_net_buy_and_board_lot(tmp_path):
    hk = HK_DAILY.replace("turnover\n", "turnover,sb_net_buy,board_lot\n", 1)
    lines = hk.splitlines()
    lines[1] += ",12.5,100"
    lines[2] += ",,"  # unknown that day: empty is NaN (and the static lot applies)
    for i in range(3, len(lines)):
        lines[i] += ",-3,200"
    manifest = MANIFEST + 'sb_net_buy = "HKD_millions"\n'
    md = load_market(dataset(tmp_path, hk_daily__csv="\n".join(lines) + "\n",
                             dataset__toml=manifest))
    assert md.hk["sb_net_buy"].loc["2024-01-02", "0700"] == 12.5e6
    assert np.isnan(md.hk["sb_net_buy"].loc["2024-01-02", "9988"])
    assert md.hk["board_lot"].loc["2024-01-03", "0700"] == 200


def test_sb_net_buy_needs_its_unit(tmp_path):
    hk = "\n".join(line + (",sb_net_buy" if i == 0 else ",1") for i, line in
                   enumerate(HK_DAILY.splitlines())) + "\n"
    p = find(problems_of(dataset(tmp_path, hk_daily__csv=hk)), "dataset.toml", "missing unit")
    assert p.column == "units.sb_net_buy"


def test_fx_and_adr_optional_without_dual_listings(tmp_path):
    symbols = sub(SYMBOLS, "9988,Alibaba Group,100,BABA,8", "9988,Alibaba Group,100,,")
    md = load_market(dataset(tmp_path, symbols__csv=symbols, adr__csv=None, fx__csv=None))
    assert md.adr_close.shape[1] == 0 and len(md.usdhkd) == 0


def _wide_files(md_long: MarketData) -> dict[str, str]:
    """Hand-made wide CSV text for the base dataset (from the loaded long one)."""
    files = {k: v for k, v in BASE.items() if k not in ("hk_daily.csv", "adr.csv")}
    for f, df in md_long.hk.items():
        out = df.copy()
        out.index = out.index.strftime("%Y-%m-%d")
        files[f"hk_daily/{f}.csv"] = out.to_csv(index_label="date")
    files["adr/close.csv"] = "date,BABA\n2024-01-02,74.36\n2024-01-03,74.87\n2024-01-05,73.64\n"
    return files


def test_long_wide_csv_parquet_load_equal(tmp_path):
    long_md = load_market(dataset(tmp_path))
    wide_md = load_market(write_files(tmp_path / "wide", _wide_files(long_md)))
    assert_market_equal(long_md, wide_md)
    assert wide_md.hk["close"].loc["2024-01-05", "9988"] == 71.8

    # Parquet written by hand with pandas (strings for codes, real dates or ISO strings)
    pq = tmp_path / "pq"
    pq.mkdir()
    (pq / "dataset.toml").write_text(MANIFEST)
    for name in ("symbols", "hk_daily", "southbound", "index", "adr", "fx"):
        df = pd.read_csv(tmp_path / "ds" / f"{name}.csv", dtype={"symbol": str, "adr_ticker": str})
        if "date" in df and name != "index":
            df["date"] = pd.to_datetime(df["date"])  # index keeps ISO strings
        df.to_parquet(pq / f"{name}.parquet", index=False)
    assert_market_equal(long_md, load_market(pq))

    # wide Parquet
    wpq = tmp_path / "wpq"
    write_files(wpq, {k: v for k, v in BASE.items() if k not in ("hk_daily.csv", "adr.csv")})
    (wpq / "hk_daily").mkdir()
    for f, df in long_md.hk.items():
        df.reset_index().to_parquet(wpq / "hk_daily" / f"{f}.parquet", index=False)
    (wpq / "adr").mkdir()
    long_md.adr_close.reset_index().to_parquet(wpq / "adr" / "close.parquet", index=False)
    assert_market_equal(long_md, load_market(wpq))


def test_empty_hk_row_allowed_as_no_row(tmp_path):
    # rows in any order, and a (date, symbol) without a row is simply NaN
    lines = HK_DAILY.splitlines()
    shuffled = "\n".join([lines[0], *reversed(lines[1:])]) + "\n"
    md = load_market(dataset(tmp_path, hk_daily__csv=shuffled))
    assert md.hk["close"].loc["2024-01-02", "0700"] == 300.0


# ---------------------------------------------------------------------------------------------
# files, columns, manifest
# ---------------------------------------------------------------------------------------------

def test_missing_required_file(tmp_path):
    probs = problems_of(dataset(tmp_path, index__csv=None))
    find(probs, "index.csv", "missing required table")


def test_missing_manifest(tmp_path):
    probs = problems_of(dataset(tmp_path, dataset__toml=None))
    find(probs, "dataset.toml", "missing required file")


def test_missing_adr_when_declared(tmp_path):
    probs = problems_of(dataset(tmp_path, adr__csv=None, fx__csv=None))
    find(probs, "adr.csv", "declares ADR tickers")
    find(probs, "fx.csv", "declares ADR tickers")


def test_both_csv_and_parquet_present(tmp_path):
    root = dataset(tmp_path)
    pd.read_csv(root / "index.csv").to_parquet(root / "index.parquet", index=False)
    find(problems_of(root), "index.csv", "index.parquet")


def test_missing_and_extra_columns(tmp_path):
    hk = HK_DAILY.replace("volume,turnover", "turnover,closee", 1)
    probs = problems_of(dataset(tmp_path, hk_daily__csv=hk))
    find(probs, "hk_daily.csv", "missing required column", column="volume", row=1)
    p = find(probs, "hk_daily.csv", "unexpected column", column="closee", row=1)
    assert "did you mean 'close'" in p.message


def test_duplicate_column(tmp_path):
    fx = "date,usdhkd,usdhkd\n2024-01-02,7.8,7.8\n"
    find(problems_of(dataset(tmp_path, fx__csv=fx)), "fx.csv", "duplicate column", column="usdhkd")


def test_manifest_units(tmp_path):
    manifest = sub(sub(MANIFEST, 'volume = "shares"\n', ""), 'fx = "HKD_per_USD"', 'fx = "USDHKD"')
    manifest = sub(manifest, 'southbound = "HKD_millions"', 'southbound = "HKD_mn"')
    probs = problems_of(dataset(tmp_path, dataset__toml=manifest))
    find(probs, "dataset.toml", "missing unit", column="units.volume")
    find(probs, "dataset.toml", "unknown unit 'USDHKD'", column="units.fx")
    p = find(probs, "dataset.toml", "unknown unit 'HKD_mn'", column="units.southbound")
    assert "HKD_millions" in p.message


def test_manifest_bad_prices_unit_and_index_name(tmp_path):
    manifest = sub(sub(MANIFEST, 'hk_prices = "HKD"', 'hk_prices = "CNY"'),
                   'index_name = "HSTECH"\n', "")
    probs = problems_of(dataset(tmp_path, dataset__toml=manifest))
    find(probs, "dataset.toml", "unknown unit 'CNY'", column="units.hk_prices")
    find(probs, "dataset.toml", "index_name", column="index_name")


def test_manifest_not_toml(tmp_path):
    find(problems_of(dataset(tmp_path, dataset__toml="units = [\n")), "dataset.toml", "not valid TOML")


# ---------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------

def test_bad_date_rows(tmp_path):
    hk = sub(HK_DAILY, "2024-01-03,0700", "2024/01/03,0700")
    probs = problems_of(dataset(tmp_path, hk_daily__csv=hk))
    p = find(probs, "hk_daily.csv", "bad date", row=4, column="date")
    assert "'2024/01/03'" in p.message and "YYYY-MM-DD" in p.message


def test_unsorted_and_duplicate_dates(tmp_path):
    index = "date,close\n2024-01-02,1\n2024-01-04,2\n2024-01-03,3\n2024-01-05,4\n"
    fx = "date,usdhkd\n2024-01-02,7.8\n2024-01-03,7.8\n2024-01-03,7.81\n2024-01-05,7.8\n"
    probs = problems_of(dataset(tmp_path, index__csv=index, fx__csv=fx))
    find(probs, "index.csv", "sorted ascending", row=4, date="2024-01-03")
    p = find(probs, "fx.csv", "duplicate date", row=4, date="2024-01-03")
    assert "first at row 3" in p.message


def test_duplicate_date_symbol_in_long_file(tmp_path):
    hk = HK_DAILY + "2024-01-03,9988,72.5,73.5,72.0,73.0,2100000,153300000\n"
    p = find(problems_of(dataset(tmp_path, hk_daily__csv=hk)), "hk_daily.csv", "duplicate",
             row=9, symbol="9988", date="2024-01-03")
    assert "first at row 5" in p.message


def test_southbound_on_hk_holiday(tmp_path):
    sb = SOUTHBOUND + "2024-01-06,10,10\n"  # a Saturday: not in hk_daily
    find(problems_of(dataset(tmp_path, southbound__csv=sb)), "southbound.csv",
         "HK is closed", row=5, date="2024-01-06")


def test_southbound_missing_value(tmp_path):
    sb = sub(SOUTHBOUND, "2024-01-04,800,300", "2024-01-04,800,")
    find(problems_of(dataset(tmp_path, southbound__csv=sb)), "southbound.csv", "missing sz",
         row=3, column="sz")


# ---------------------------------------------------------------------------------------------
# HK prices
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("old,new,row,column,text", [
    ("2024-01-03,0700,300.0,", "2024-01-03,0700,0,", 4, "open", "must be > 0"),
    ("72.0,73.0,71.5,72.5,2000000", "72.0,73.0,71.5,,2000000", 3, "close", "missing close"),
    ("72.0,73.0,71.5,72.5,2000000", "72.0,73.0,71.5,abc,2000000", 3, "close", "not a number"),
    ("298.0,303.0,297.0,300.0", "298.0,299.0,297.0,300.0", 2, "high", "below max(open, close)"),
    ("302.0,302.5,296.0,298.0", "302.0,302.5,299.0,298.0", 6, "low", "above min(open, close)"),
    ("1100000,332200000", "-5,332200000", 4, "volume", "must be >= 0"),
    ("1100000,332200000", "1100000,", 4, "turnover", "missing turnover"),
])
def test_hk_price_checks(tmp_path, old, new, row, column, text):
    probs = problems_of(dataset(tmp_path, hk_daily__csv=sub(HK_DAILY, old, new)))
    p = find(probs, "hk_daily.csv", text, row=row, column=column)
    assert p.symbol in ("0700", "9988") and p.date is not None
    assert len(probs) == 1, probs


def test_suspended_row_with_only_optional_fields(tmp_path):
    # a listed stock that did not trade: no prices, but its lot and CCASS change are known
    hk = HK_DAILY.replace("turnover\n", "turnover,sb_net_buy,board_lot\n", 1)
    lines = [hk.splitlines()[0]] + [line + ",," for line in hk.splitlines()[1:]]
    lines.append("2024-01-04,9988,,,,,,,-1.5,100")
    manifest = MANIFEST + 'sb_net_buy = "HKD_millions"\n'
    md = load_market(dataset(tmp_path, hk_daily__csv="\n".join(lines) + "\n",
                             dataset__toml=manifest))
    assert np.isnan(md.hk["close"].loc["2024-01-04", "9988"])
    assert md.hk["sb_net_buy"].loc["2024-01-04", "9988"] == -1.5e6
    assert md.hk["board_lot"].loc["2024-01-04", "9988"] == 100


def test_row_without_values(tmp_path):
    hk = HK_DAILY + "2024-01-04,9988,,,,,,\n"
    probs = problems_of(dataset(tmp_path, hk_daily__csv=hk))
    find(probs, "hk_daily.csv", "no values", row=9, symbol="9988")
    assert len(probs) == 1, probs


@pytest.mark.parametrize("text,row,msg", [
    ("date,close\n2024-01-02,1,5\n2024-01-03,2\n", 2, "more fields than the header"),
    ("date,close\n2024-01-02,1\n2024-01-03,2,5\n", 3, "3 fields, expected 2"),
    ("", 1, "empty file"),
])
def test_malformed_csv(tmp_path, text, row, msg):
    find(problems_of(dataset(tmp_path, index__csv=text)), "index.csv", msg, row=row)


def test_unknown_symbol_in_hk_daily(tmp_path):
    hk = HK_DAILY + "2024-01-05,700,1,1,1,1,1,1\n2024-01-04,700,1,1,1,1,1,1\n"
    p = find(problems_of(dataset(tmp_path, hk_daily__csv=hk)), "hk_daily.csv", "not in symbols.csv",
             symbol="700", row=9)
    assert "2 rows" in p.message and "did you mean '0700'" in p.message


def _wide_base(tmp_path: Path) -> dict[str, str]:
    return _wide_files(load_market(dataset(tmp_path)))


def test_wide_cell_with_close_but_no_open(tmp_path):
    files = _wide_base(tmp_path)
    files["hk_daily/open.csv"] = sub(files["hk_daily/open.csv"], "2024-01-03,300.0,72.5",
                                     "2024-01-03,300.0,")
    # and the reverse: an open without a close
    files["hk_daily/open.csv"] = sub(files["hk_daily/open.csv"], "2024-01-04,302.0,",
                                     "2024-01-04,302.0,70.0")
    probs = problems_of(write_files(tmp_path / "w", files))
    find(probs, "hk_daily/open.csv", "missing open", row=3, column="9988", symbol="9988",
         date="2024-01-03")
    for f in ("high", "low", "close", "volume", "turnover"):
        find(probs, f"hk_daily/{f}.csv", f"missing {f}", row=4, column="9988", date="2024-01-04")


def test_wide_unknown_symbol_column_and_unsorted_dates(tmp_path):
    files = _wide_base(tmp_path)
    close = files["hk_daily/close.csv"].replace("date,0700,9988", "date,0700,9988,3690", 1)
    lines = close.splitlines()
    lines = [lines[0]] + [line + ",1.0" for line in lines[1:]]
    lines[2], lines[3] = lines[3], lines[2]
    files["hk_daily/close.csv"] = "\n".join(lines) + "\n"
    files["adr/close.csv"] = "date,BABA,JD\n2024-01-02,74.36,\n"
    files["hk_daily/closes.csv"] = "date\n"
    probs = problems_of(write_files(tmp_path / "w", files))
    find(probs, "hk_daily/close.csv", "not in symbols.csv", column="3690", row=1)
    find(probs, "hk_daily/close.csv", "sorted ascending", row=4, date="2024-01-03")
    find(probs, "adr/close.csv", "unknown ADR pair", column="JD")
    p = find(probs, "hk_daily/closes.csv", "unexpected file")
    assert "did you mean 'close.csv'" in p.message


def test_wide_missing_field_file(tmp_path):
    files = _wide_base(tmp_path)
    del files["hk_daily/volume.csv"]
    probs = problems_of(write_files(tmp_path / "w", files))
    find(probs, "hk_daily/volume.csv", "missing required file")
    assert not [p for p in probs if "missing volume" in p.message]  # reported once, not per cell


# ---------------------------------------------------------------------------------------------
# index, fx, adr
# ---------------------------------------------------------------------------------------------

def test_index_close_positive(tmp_path):
    index = sub(INDEX, "2024-01-03,3510.0", "2024-01-03,-1")
    find(problems_of(dataset(tmp_path, index__csv=index)), "index.csv", "must be > 0", row=3,
         column="close")


def test_fx_inverted_quote(tmp_path):
    fx = sub(sub(FX, "2024-01-03,7.801", "2024-01-03,0.128"), "2024-01-04,7.8105", "2024-01-04,")
    probs = problems_of(dataset(tmp_path, fx__csv=fx))
    p = find(probs, "fx.csv", "inverted quote", row=3, column="usdhkd", date="2024-01-03")
    assert "7.0..8.5" in p.message
    find(probs, "fx.csv", "missing usdhkd", row=4)


def test_adr_close_positive_and_missing(tmp_path):
    adr = sub(sub(ADR, "2024-01-03,BABA,74.87", "2024-01-03,BABA,0"), "2024-01-05,BABA,73.64",
              "2024-01-05,BABA,")
    probs = problems_of(dataset(tmp_path, adr__csv=adr))
    find(probs, "adr.csv", "must be > 0", row=3, column="close", symbol="BABA")
    find(probs, "adr.csv", "missing close", row=4, column="close", symbol="BABA")


def test_undeclared_adr_ticker(tmp_path):
    adr = ADR + "2024-01-02,JD,30\n"
    p = find(problems_of(dataset(tmp_path, adr__csv=adr)), "adr.csv", "unknown ADR pair",
             symbol="JD", row=5)
    assert "'JD'" in p.message


def test_adr_premium_wrong_units(tmp_path):
    # ADR closes given in HK$ instead of US$: premium about +680 %
    adr = "date,adr_ticker,close\n2024-01-02,BABA,580\n2024-01-03,BABA,584\n"
    p = find(problems_of(dataset(tmp_path, adr__csv=adr)), "adr.csv", "median ADR premium",
             symbol="BABA")
    assert "BABA" in p.message and "9988" in p.message


def test_adr_premium_within_band_is_fine(tmp_path):
    adr = "date,adr_ticker,close\n2024-01-02,BABA,71.0\n2024-01-03,BABA,78.0\n"  # -2 % .. +7 %
    load_market(dataset(tmp_path, adr__csv=adr))


# ---------------------------------------------------------------------------------------------
# symbols
# ---------------------------------------------------------------------------------------------

def test_symbol_table_checks(tmp_path):
    symbols = SYMBOLS + (
        "0700,Tencent again,100,,\n"          # line 4: duplicate
        "3690,Meituan,0,,\n"                  # line 5: board lot not positive
        "1810,Xiaomi,1.5,,\n"                 # line 6: board lot not an integer
        "1024,Kuaishou,100,KSHU,1\n"          # line 7: unknown pair
        "9618,JD.com,50,BIDU,8\n"             # line 8: pair belongs to 9888
        "9999,NetEase,100,NTES,1\n"           # line 9: ratio mismatch (shipped: 5)
        "9626,Bilibili,20,BILI,\n"            # line 10: ratio missing
    )
    probs = problems_of(dataset(tmp_path, symbols__csv=symbols))
    assert find(probs, "symbols.csv", "duplicate symbol", row=4, symbol="0700").message.endswith(
        "(first at row 2)")
    find(probs, "symbols.csv", "positive integer", row=5, column="board_lot")
    find(probs, "symbols.csv", "positive integer", row=6, column="board_lot")
    find(probs, "symbols.csv", "unknown ADR pair 'KSHU'", row=7, column="adr_ticker")
    find(probs, "symbols.csv", "pairs with HK 9888", row=8, column="adr_ticker", symbol="9618")
    p = find(probs, "symbols.csv", "does not match", row=9, column="adr_ratio", symbol="9999")
    assert "5 HK shares per NTES" in p.message
    find(probs, "symbols.csv", "missing adr_ratio", row=10)
    assert len(probs) == 7, probs


def test_symbols_default_table_round_trips(tmp_path):
    # the shipped default table loads to the same frame as reference.default_symbols()
    text = (Path(reference.__file__).parent / "symbols.csv").read_text()
    md = load_market(dataset(tmp_path, symbols__csv=text))
    pd.testing.assert_frame_equal(md.symbols, reference.default_symbols())


# ---------------------------------------------------------------------------------------------
# many problems, caps, Parquet rows
# ---------------------------------------------------------------------------------------------

def test_all_problems_reported_together(tmp_path):
    root = dataset(
        tmp_path,
        hk_daily__csv=sub(HK_DAILY, "298.0,303.0,297.0,300.0", "298.0,303.0,297.0,-300.0"),
        index__csv=sub(INDEX, "2024-01-04", "2024-13-04"),
        fx__csv=sub(FX, "7.801", "0.128"),
        symbols__csv=sub(SYMBOLS, "9988,Alibaba Group,100,BABA,8", "9988,Alibaba Group,100,BABA,4"),
    )
    (root / "southbound.csv").unlink()
    with pytest.raises(DataError) as info:
        load_market(root)
    probs = info.value.problems
    find(probs, "hk_daily.csv", "must be > 0", row=2, column="close")
    find(probs, "index.csv", "bad date", row=4)
    find(probs, "fx.csv", "inverted quote", row=3)
    find(probs, "symbols.csv", "does not match", row=3)
    find(probs, "southbound.csv", "missing required table")
    text = str(info.value)
    assert "hk_daily.csv, row 2, date 2024-01-02, symbol 0700, column 'close'" in text


def test_problem_cap_per_check(tmp_path):
    n = MAX_PER_CHECK + 15
    days = pd.bdate_range("2023-01-02", periods=n).strftime("%Y-%m-%d")
    hk = "date,symbol,open,high,low,close,volume,turnover\n" + "".join(
        f"{d},0700,-1,2,1,1.5,10,10\n" for d in days)
    index = "date,close\n" + "".join(f"{d},1\n" for d in days)
    root = dataset(tmp_path, hk_daily__csv=hk, index__csv=index, southbound__csv="date,sh,sz\n",
                   adr__csv="date,adr_ticker,close\n")
    probs = problems_of(root)
    opens = [p for p in probs if p.file == "hk_daily.csv" and p.column == "open"]
    assert len(opens) == MAX_PER_CHECK + 1
    assert "15 more" in opens[-1].message
    assert [p.row for p in opens[:3]] == [2, 3, 4]


def test_parquet_rows_are_zero_based(tmp_path):
    root = dataset(tmp_path, hk_daily__csv=None)
    df = pd.read_csv(io.StringIO(HK_DAILY), dtype={"symbol": str})
    df.loc[2, "close"] = 0.0  # third record (0-based row 2): 2024-01-03, 0700
    df.to_parquet(root / "hk_daily.parquet", index=False)
    find(problems_of(root), "hk_daily.parquet", "must be > 0", row=2, column="close", symbol="0700",
         date="2024-01-03")


def test_parquet_numeric_symbol_codes(tmp_path):
    root = dataset(tmp_path, symbols__csv=None)
    df = pd.read_csv(io.StringIO(SYMBOLS))  # symbol read as int: 700
    df.to_parquet(root / "symbols.parquet", index=False)
    probs = problems_of(root)
    find(probs, "symbols.parquet", "leading zeros", column="symbol")


def test_not_a_directory(tmp_path):
    with pytest.raises(DataError) as info:
        load_market(tmp_path / "nope")
    assert "not found" in str(info.value)


# ---------------------------------------------------------------------------------------------
# write_market round trips
# ---------------------------------------------------------------------------------------------

def hand_built() -> MarketData:
    d = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="date").as_unit("us")
    symbols = reference.default_symbols().loc[["0700", "9988", "9618"]]
    cols = pd.Index(["0700", "9988", "9618"])
    close = pd.DataFrame([[300.0, 72.5, 110.2], [301.2, 73.0, np.nan], [299.8, np.nan, 111.0]],
                         index=d, columns=cols)
    hk = {"open": close * 0.995, "high": close * 1.013, "low": close * 0.981, "close": close,
          "volume": (close * 0 + 1e6).round(), "turnover": close * 1e6 + 0.125,
          "sb_net_buy": pd.DataFrame([[1.5e7, np.nan, -2e6], [np.nan] * 3, [3e6, np.nan, 1.0]],
                                     index=d, columns=cols),
          "board_lot": pd.DataFrame([[100.0, 100, 50], [100, 100, np.nan], [100, np.nan, 100]],
                                    index=d, columns=cols)}
    hk["board_lot"] = hk["board_lot"].where(close.notna())
    sb = pd.DataFrame({"sh": [1.23456789e9, -2e8], "sz": [5.5e8, 0.0]}, index=d[[0, 2]])
    us = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-05"], name="date").as_unit("us")
    adr = pd.DataFrame({"BABA": [74.36, 74.87, np.nan], "JD": [28.2, np.nan, 28.43]}, index=us)
    fx = pd.Series([7.8123, 7.8101, 7.8099], index=us, name="usdhkd")
    index = pd.Series([3500.25, 3510.0, 3490.5], index=d, name="HSTECH")
    return MarketData(hk=hk, southbound=sb, index_close=index, adr_close=adr, usdhkd=fx,
                      symbols=symbols, index_name="HSTECH", source="hand-built")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("wide", [False, True])
def test_write_load_round_trip(tmp_path, fmt, wide):
    md = hand_built()
    write_market(md, tmp_path / "out", fmt=fmt, wide=wide)
    back = load_market(tmp_path / "out")
    assert_market_equal(md, back)
    assert back.source == str(tmp_path / "out")
    suffixes = {p.suffix for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert suffixes == {".toml", "." + fmt}


def test_write_refuses_mixed_forms(tmp_path):
    md = hand_built()
    write_market(md, tmp_path / "out")
    write_market(md, tmp_path / "out")  # same form again: overwrite is fine
    with pytest.raises(FileExistsError):
        write_market(md, tmp_path / "out", fmt="parquet")
    with pytest.raises(FileExistsError):
        write_market(md, tmp_path / "out", wide=True)
    with pytest.raises(ValueError):
        write_market(md, tmp_path / "x", fmt="xlsx")
    # a stale field file from an earlier wide write would be read back: refuse
    write_market(md, tmp_path / "w", wide=True)
    del md.hk["sb_net_buy"]
    with pytest.raises(FileExistsError, match="sb_net_buy.csv"):
        write_market(md, tmp_path / "w", wide=True)


def test_write_long_refuses_date_without_rows(tmp_path):
    md = hand_built()
    for f in md.hk:
        md.hk[f].iloc[1] = np.nan
    with pytest.raises(ValueError, match="2024-01-03"):
        write_market(md, tmp_path / "out")
    write_market(md, tmp_path / "wide", wide=True)  # the wide form keeps the date
    assert_market_equal(md, load_market(tmp_path / "wide"))


def test_synth_round_trip(tmp_path):
    from backtest.data import synth

    md = synth.generate(seed=1, symbols=5, years=1)
    for fmt, wide in (("csv", False), ("parquet", True)):
        out = tmp_path / f"{fmt}{wide}"
        write_market(md, out, fmt=fmt, wide=wide)
        assert_market_equal(md, load_market(out))


def test_docs_example_is_a_valid_dataset(tmp_path):
    """The literal example in docs/data.md loads as written."""
    import re

    doc = (ROOT / "docs" / "data.md").read_text()
    for name, text in re.findall(r"### `(\w+)\.csv`.*?```\n(.*?)```", doc, re.S):
        (tmp_path / f"{name}.csv").write_text(text)
    (tmp_path / "dataset.toml").write_text(re.search(r"```toml\n(.*?)```", doc, re.S)[1])
    md = load_market(tmp_path)
    assert md.southbound.loc["2024-01-02", "sh"] == 1500.5e6
    assert np.isnan(md.hk["close"].loc["2024-01-04", "9988"])


def test_a_long_synthetic_span_before_any_adr_listed_round_trips(tmp_path):
    """30 years reach back before every ADR listed: dates on which no ADR has a close are not
    data, so the long-form writer leaves them out and the aligned panel is unchanged."""
    from backtest.data.align import align
    from backtest.data.synth import generate

    md = generate(seed=7, symbols=3, years=30)
    assert md.adr_close.isna().all(axis=1).any()  # the case: dates with no ADR close at all
    write_market(md, tmp_path / "m")
    a, b = align(load_market(tmp_path / "m")), align(md)
    for k in ("close", "adr_premium", "adr_staleness"):
        np.testing.assert_array_equal(a.fields[k], b.fields[k], err_msg=k)
