"""Write a MarketData in the on-disk format of docs/data.md; `backtest.data.load.load_market`
reads it back equal (same fingerprint)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.data.load import DATE_DTYPE, HK_FIELDS, MANIFEST, TABLES, WIDE_TABLES, _iso
from backtest.data.market import MarketData

WRITE_UNITS = {"hk_prices": "HKD", "adr_prices": "USD", "turnover": "HKD", "southbound": "HKD",
               "volume": "shares", "fx": "HKD_per_USD", "sb_net_buy": "HKD"}


def _date_col(index: pd.Index, fmt: str):
    d = pd.DatetimeIndex(index)
    return d.strftime("%Y-%m-%d").to_numpy(dtype=object) if fmt == "csv" else \
        d.as_unit("us").to_numpy()


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        df = df.copy()
        for c in df.columns:  # whole-number columns (volume, lots) without a trailing ".0"
            v = df[c].to_numpy()
            if v.dtype.kind == "f":
                ok = v[~np.isnan(v)]
                neg_zero = (ok == 0) & np.signbit(ok)  # -0.0 must stay a float to round-trip
                if np.all((ok == np.round(ok)) & (np.abs(ok) < 2.0**53) & ~neg_zero):
                    df[c] = pd.array(np.where(np.isnan(v), 0, v).astype(np.int64),
                                     dtype="Int64")
                    df.loc[np.isnan(v), c] = pd.NA
        df.to_csv(path, index=False, na_rep="", lineterminator="\n")
    else:
        df.to_parquet(path, index=False)


def _long_frame(frames: dict[str, pd.DataFrame], fields: list[str], code_col: str, fmt: str,
                table: str) -> pd.DataFrame:
    first = frames[fields[0]]
    index, columns = first.index, first.columns
    arrs = {f: frames[f].reindex(index=index, columns=columns).to_numpy(dtype=np.float64)
            for f in fields}
    has = np.zeros(first.shape, bool)
    for a in arrs.values():
        has |= ~np.isnan(a)
    empty = np.flatnonzero(~has.any(axis=1))
    if len(empty):
        raise ValueError(
            f"write_market: {table} has {len(empty)} date(s) with no data at all (first "
            f"{_iso(index[empty[0]])}); the long form cannot represent a date without rows, "
            "use wide=True or drop those dates")
    ti, si = np.nonzero(has)
    out = {"date": _date_col(index[ti], fmt),
           code_col: np.asarray(columns, dtype=object)[si]}
    for f in fields:
        out[f] = arrs[f][ti, si]
    return pd.DataFrame(out)


def _wide_frame(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
    out = pd.DataFrame(df.to_numpy(dtype=np.float64), columns=[str(c) for c in df.columns])
    out.insert(0, "date", _date_col(df.index, fmt))
    return out


def write_market(md: MarketData, path: str | Path, fmt: str = "csv", wide: bool = False) -> None:
    """Write `md` in the documented format (units HKD, USD, HKD, HKD, shares, HKD_per_USD).

    `fmt` is "csv" or "parquet"; `wide=True` writes hk_daily/ and adr/ as one file per field.
    The directory is created if needed; a table already present in another form (which would
    make the dataset ambiguous) raises FileExistsError. `load_market` reads the result back equal.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"write_market: fmt must be 'csv' or 'parquet', got {fmt!r}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    ext = "." + fmt
    hk_fields = [f for f in HK_FIELDS if f in md.hk]
    wide_files = {"hk_daily": {f + ext for f in hk_fields}, "adr": {"close" + ext}}
    clash = []  # anything load_market would also read, or find ambiguous
    for stem in TABLES:
        ours = stem + "/" if wide and stem in WIDE_TABLES else stem + ext
        for form in (stem + ".csv", stem + ".parquet", stem + "/"):
            p = root / form.rstrip("/")
            if form != ours and p.exists():
                clash.append(form)
            elif form == ours and form.endswith("/") and p.is_dir():
                clash += [f"{form}{q.name}" for q in p.iterdir()
                          if not q.name.startswith(".") and q.name not in wide_files[stem]]
    if clash:
        raise FileExistsError(f"write_market: {root} already holds {', '.join(sorted(clash))}, "
                              "which would mix with the new files; write to an empty directory")

    lines = [f"# dipflow dataset (docs/data.md){' from ' + md.source if md.source else ''}",
             f"index_name = {json.dumps(md.index_name)}", "", "[units]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in WRITE_UNITS.items()]
    (root / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")

    s = md.symbols
    symbols = pd.DataFrame({
        "symbol": np.asarray([str(x) for x in s.index], dtype=object),
        "name": s["name"].astype("str").fillna("").to_numpy(dtype=object),
        "board_lot": s["board_lot"].to_numpy(dtype=np.int64),
        "adr_ticker": s["adr_ticker"].astype("str").fillna("").to_numpy(dtype=object),
        "adr_ratio": s["adr_ratio"].to_numpy(dtype=np.float64),
    })
    _write(symbols, root / ("symbols" + ext), fmt)

    if wide:
        (root / "hk_daily").mkdir(exist_ok=True)
        for f in hk_fields:
            _write(_wide_frame(md.hk[f], fmt), root / "hk_daily" / (f + ext), fmt)
        (root / "adr").mkdir(exist_ok=True)
        _write(_wide_frame(md.adr_close, fmt), root / "adr" / ("close" + ext), fmt)
    else:
        _write(_long_frame(md.hk, hk_fields, "symbol", fmt, "hk"), root / ("hk_daily" + ext), fmt)
        if md.adr_close.shape[1] and len(md.adr_close):
            adr = _long_frame({"close": md.adr_close.dropna(how="all")}, ["close"], "adr_ticker", fmt, "adr_close")
        else:
            adr = pd.DataFrame({"date": pd.Series([], dtype=object if fmt == "csv" else DATE_DTYPE),
                                "adr_ticker": pd.Series([], dtype=object),
                                "close": pd.Series([], dtype=np.float64)})
        _write(adr, root / ("adr" + ext), fmt)

    sb = pd.DataFrame({"date": _date_col(md.southbound.index, fmt)})
    for k in md.southbound.columns:  # ("sh", "sz") or ("total",)
        sb[k] = md.southbound[k].to_numpy(dtype=np.float64)
    _write(sb, root / ("southbound" + ext), fmt)
    _write(pd.DataFrame({"date": _date_col(md.index_close.index, fmt),
                         "close": md.index_close.to_numpy(dtype=np.float64)}),
           root / ("index" + ext), fmt)
    _write(pd.DataFrame({"date": _date_col(md.usdhkd.index, fmt),
                         "usdhkd": md.usdhkd.to_numpy(dtype=np.float64)}),
           root / ("fx" + ext), fmt)
