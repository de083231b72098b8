"""DESIGN §3 on hand-worked calendars: ADR/FX as-of joins, staleness, southbound missing-not-zero."""

import numpy as np
import pandas as pd
import pytest

from backtest.data.align import align
from backtest.data.market import MarketData

D = pd.Timestamp


def _idx(days):
    return pd.DatetimeIndex([D(d) for d in days], name="date")


def _market(hk_days, us_days, sb_days, fx_days, adr_values=None, sym="9988"):
    hk = _idx(hk_days)
    n = len(hk)
    close = pd.DataFrame({sym: np.linspace(80.0, 80.0 + n - 1, n)}, index=hk)
    fields = {f: close.copy() for f in ("open", "high", "low", "close")}
    fields["volume"] = close * 0 + 1000.0
    fields["turnover"] = close * 1000.0
    fields["sb_net_buy"] = close * 0 + np.arange(1.0, n + 1)[:, None]
    us = _idx(us_days)
    adr = pd.DataFrame({"BABA": adr_values if adr_values is not None else np.arange(1.0, len(us) + 1) * 10}, index=us)
    sb = pd.DataFrame({"sh": np.arange(1.0, len(sb_days) + 1) * 1e9, "sz": 5e8}, index=_idx(sb_days))
    fx = pd.Series(np.linspace(7.80, 7.81, len(fx_days)), index=_idx(fx_days), name="usdhkd")
    symbols = pd.DataFrame({"name": ["Alibaba"], "board_lot": [100], "adr_ticker": ["BABA"], "adr_ratio": [8.0]},
                           index=pd.Index([sym], name="symbol"))
    return MarketData(hk=fields, southbound=sb, index_close=close[sym].rename("HSTECH"), adr_close=adr,
                      usdhkd=fx, symbols=symbols)


# 2024-01-15 is a US holiday (MLK day); 2024-01-18 an HK-only holiday here; 2024-01-16 HK open, Connect shut.
HK = ["2024-01-12", "2024-01-15", "2024-01-16", "2024-01-17", "2024-01-19", "2024-01-22"]
US = ["2024-01-11", "2024-01-12", "2024-01-16", "2024-01-17", "2024-01-18", "2024-01-19", "2024-01-22"]
SB = ["2024-01-12", "2024-01-15", "2024-01-17", "2024-01-19", "2024-01-22"]
FX = ["2024-01-11", "2024-01-12", "2024-01-15", "2024-01-16", "2024-01-17", "2024-01-18", "2024-01-19", "2024-01-22"]


def test_us_holiday_carries_the_previous_close_and_counts_staleness():
    p = align(_market(HK, US, SB, FX))
    adr = p.frame("adr_close")["9988"]
    stale = p.frame("adr_staleness")["9988"]
    # HK Mon 15 Jan: no US session that day, Friday 12 Jan's close (the 2nd US close) is the latest.
    assert adr[D("2024-01-15")] == 20.0
    assert stale[D("2024-01-15")] == 1.0
    # On an ordinary day the same-date US close (04:00/05:00 HKT the next morning) sits on the row.
    assert adr[D("2024-01-16")] == 30.0 and stale[D("2024-01-16")] == 0.0


def test_hk_holiday_keeps_only_the_latest_of_several_us_closes():
    p = align(_market(HK, US, SB, FX))
    adr = p.frame("adr_close")["9988"]
    # Between HK bars 17 Jan and 19 Jan the US closed on 17, 18 and 19 Jan: row 19 Jan uses 19 Jan only.
    assert adr[D("2024-01-17")] == 40.0
    assert adr[D("2024-01-19")] == 60.0


def test_southbound_closed_day_is_missing_not_zero():
    p = align(_market(HK, US, SB, FX))
    sb = pd.Series(p.series["sb_net_buy"], index=p.dates)
    assert np.isnan(sb[np.datetime64("2024-01-16")])
    assert sb[np.datetime64("2024-01-17")] == 3e9 + 5e8
    assert np.isnan(sb).sum() == 1


def test_premium_formula_and_fx_asof():
    md = _market(HK, US, SB, FX)
    p = align(md)
    t = list(p.dates).index(np.datetime64("2024-01-19"))
    fx = md.usdhkd[D("2024-01-19")]
    expected = 60.0 * fx / 8.0 / p.fields["close"][t, 0] - 1.0
    assert p.fields["adr_premium"][t, 0] == pytest.approx(expected, rel=1e-15)
    assert p.series["usdhkd"][t] == fx


def test_per_stock_flow_stays_on_its_record_date():
    p = align(_market(HK, US, SB, FX))
    assert list(p.fields["sb_net_buy"][:, 0]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_no_adr_before_the_first_us_close():
    p = align(_market(HK, US[2:], SB, FX))
    assert np.isnan(p.fields["adr_close"][:2, 0]).all()
    assert np.isnan(p.fields["adr_premium"][:2, 0]).all()
    assert np.isnan(p.fields["adr_staleness"][:2, 0]).all()


def test_changing_anything_after_bar_t_leaves_rows_up_to_t_unchanged():
    base = _market(HK, US, SB, FX)
    p0 = align(base)
    cut = D("2024-01-17")
    md = _market(HK, US, SB, FX)
    for name, df in md.hk.items():
        df.loc[df.index > cut] *= 1.7
    md.adr_close.loc[md.adr_close.index > cut] *= 0.5
    md.southbound.loc[md.southbound.index > cut] = -9e9
    md.usdhkd.loc[md.usdhkd.index > cut] = 7.75
    p1 = align(md)
    t = list(p0.dates).index(np.datetime64("2024-01-17"))
    for name in p0.fields:
        np.testing.assert_array_equal(p0.fields[name][: t + 1], p1.fields[name][: t + 1], err_msg=name)
    for name in p0.series:
        np.testing.assert_array_equal(p0.series[name][: t + 1], p1.series[name][: t + 1], err_msg=name)
