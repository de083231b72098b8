"""DESIGN §3: put every source on the HK trading calendar without look-ahead.

Convention: row t of the panel holds what is known by the HK open of bar t+1.
- HK prices of day D: known at the close of D.
- Aggregate southbound net buy of D: final after the HK close of D. Days without southbound
  trading (Connect closed while HK is open) stay NaN: missing, not zero.
- Per-stock southbound (CCASS record date D, reflecting trades of about D-2): published after D,
  so it sits on row D; never shifted to look fresher.
- ADR close of US date D (04:00/05:00 HKT on D+1) and the USDHKD close of D: the latest close at
  or before the HK date. Several US closes inside an HK holiday collapse to the latest one; on a
  US holiday the previous close is carried and `adr_staleness` counts the weekdays it is old.
- `adr_overnight_hkd` on row t: the ADR close of the US session between the HK close of t-1 and the
  HK open of t, in HK$ per HK share (known before the open of t; NaN if the US did not trade).
  A close older than `max_adr_staleness` weekdays (an ADR series that ended or stopped) is not
  carried: ADR close and premium are NaN there, so every ADR feature sees "unknown".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backtest.data.market import HK_REQUIRED, SOUTHBOUND_TOTAL, MarketData, Panel


def _asof(src_dates: np.ndarray, values: np.ndarray, dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latest valid value at or before each date, and the source date it came from (NaT if none)."""
    ok = ~np.isnan(values)
    src_dates, values = src_dates[ok], values[ok]
    pos = np.searchsorted(src_dates, dates, side="right") - 1
    found = pos >= 0
    out = np.full(len(dates), np.nan)
    used = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[D]")
    out[found] = values[pos[found]]
    used[found] = src_dates[pos[found]]
    return out, used


def _days(index: pd.Index) -> np.ndarray:
    return np.asarray(index.values, dtype="datetime64[D]")


def _overnight_hkd(md: MarketData, meta: pd.DataFrame, dates: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Row t: the ADR close of the latest US date D with d[t-1] <= D < d[t] (the US session after the
    previous HK close, known before the HK open of t) x the latest USDHKD close before d[t] / ratio:
    HK$ per HK share. NaN on row 0 and where the US did not trade between the two HK bars."""
    out = np.full((len(dates), len(meta)), np.nan)
    before = dates - np.timedelta64(1, "D")
    fx, _ = _asof(_days(md.usdhkd.index), md.usdhkd.to_numpy(dtype=np.float64), before)
    prev = np.concatenate([[np.datetime64("NaT", "D")], dates[:-1]])
    us_dates = _days(md.adr_close.index)
    for j, ticker in enumerate(meta["adr_ticker"]):
        if not ticker or ticker not in md.adr_close.columns:
            continue
        px, used = _asof(us_dates, md.adr_close[ticker].to_numpy(dtype=np.float64), before)
        fresh = ~np.isnat(used) & ~np.isnat(prev)
        fresh[fresh] = used[fresh] >= prev[fresh]
        out[fresh, j] = px[fresh] * fx[fresh] / ratio[j]
    return out


MAX_ADR_STALENESS = 5  # weekdays; default of the config key data.max_adr_staleness


def align(md: MarketData, max_adr_staleness: int = MAX_ADR_STALENESS) -> Panel:
    """Build the HK-calendar panel from raw inputs (see module docstring for the timing rules)."""
    close_df = md.hk["close"]
    dates = _days(close_df.index)
    symbols = tuple(str(s) for s in close_df.columns)
    n_t, n_s = len(dates), len(symbols)

    def hk_field(name: str) -> np.ndarray:
        df = md.hk[name].reindex(index=close_df.index, columns=close_df.columns)
        return df.to_numpy(dtype=np.float64)

    fields = {name: hk_field(name) for name in HK_REQUIRED}
    meta = md.symbols.reindex(list(symbols))
    static_lot = meta["board_lot"].to_numpy(dtype=np.float64)
    lot = hk_field("board_lot") if "board_lot" in md.hk else np.full((n_t, n_s), np.nan)
    fields["board_lot"] = np.where(np.isnan(lot), static_lot[None, :], lot)
    fields["sb_net_buy"] = hk_field("sb_net_buy") if "sb_net_buy" in md.hk else np.full((n_t, n_s), np.nan)

    sb = md.southbound.reindex(close_df.index)
    nan = np.full(n_t, np.nan)
    series = {link: sb[k].to_numpy(dtype=np.float64) if k in sb else nan.copy()
              for link, k in (("sb_net_buy_sh", "sh"), ("sb_net_buy_sz", "sz"))}
    if SOUTHBOUND_TOTAL in sb:  # only the two links' sum is published
        series["sb_net_buy"] = sb[SOUTHBOUND_TOTAL].to_numpy(dtype=np.float64)
    else:
        series["sb_net_buy"] = series["sb_net_buy_sh"] + series["sb_net_buy_sz"]
    series["index_close"] = md.index_close.reindex(close_df.index).to_numpy(dtype=np.float64)
    fx, _ = _asof(_days(md.usdhkd.index), md.usdhkd.to_numpy(dtype=np.float64), dates)
    series["usdhkd"] = fx

    adr_close = np.full((n_t, n_s), np.nan)
    staleness = np.full((n_t, n_s), np.nan)
    ratio = meta["adr_ratio"].to_numpy(dtype=np.float64)
    us_dates = _days(md.adr_close.index)
    for j, ticker in enumerate(meta["adr_ticker"]):
        if not ticker or ticker not in md.adr_close.columns:
            continue
        px, used = _asof(us_dates, md.adr_close[ticker].to_numpy(dtype=np.float64), dates)
        found = ~np.isnat(used)
        staleness[found, j] = np.busday_count(used[found], dates[found])
        adr_close[:, j] = np.where(staleness[:, j] <= max_adr_staleness, px, np.nan)
    fields["adr_close"] = adr_close
    fields["adr_overnight_hkd"] = _overnight_hkd(md, meta, dates, ratio)
    fields["adr_staleness"] = staleness
    with np.errstate(invalid="ignore", divide="ignore"):
        fields["adr_premium"] = adr_close * fx[:, None] / ratio[None, :] / fields["close"] - 1.0

    return Panel(
        dates=dates,
        symbols=symbols,
        fields={k: np.asfortranarray(v) for k, v in fields.items()},
        series=series,
        meta=meta,
        index_name=md.index_name,
        fingerprint=md.fingerprint(),
        source=md.source,
    )
