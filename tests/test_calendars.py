"""Exchange calendars and Stock Connect southbound days (backtest/data/calendars.py).

Oracles: the `holidays` package's financial calendars (an independent holiday table), known dates
from exchange notices, and the published Eastmoney southbound history in ../shared/realdata.
"""

from __future__ import annotations

from pathlib import Path

import holidays
import pandas as pd
import pytest

from backtest.data import calendars as cal

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.mark.parametrize("market", ["XHKG", "XNYS", "XSHG"])
def test_sessions_agree_with_the_holidays_package(market):
    grid = pd.bdate_range("2016-01-01", "2025-12-31")
    closed = holidays.financial_holidays(market, years=range(2016, 2026))
    expected = grid[~grid.isin(pd.DatetimeIndex([pd.Timestamp(d) for d in closed]))]
    got = cal.sessions(market, "2016-01-01", "2025-12-31")
    assert list(got) == list(expected)


def test_xshe_is_the_mainland_calendar():
    assert cal.sessions("XSHE", "2020-01-01", "2020-12-31").equals(
        cal.sessions("XSHG", "2020-01-01", "2020-12-31"))


def test_unknown_calendar_is_refused():
    with pytest.raises(ValueError, match="XNAS"):
        cal.sessions("XNAS", "2020-01-01", "2020-02-01")


def test_severe_weather_closures_are_not_sessions():
    days = cal.sessions("XHKG", "2023-08-28", "2023-09-12")
    assert pd.Timestamp("2023-09-01") not in days and pd.Timestamp("2023-09-08") not in days
    assert pd.Timestamp("2023-09-04") in days


def test_half_days():
    ec = cal.early_closes("XHKG", "2020-01-01", "2020-12-31")
    assert {d.strftime("%m-%d") for d in ec} == {"01-24", "12-24", "12-31"}


def test_lunar_new_year_2020_southbound_shut_22_jan_to_2_feb():
    sb = cal.southbound_days("2020-01-15", "2020-02-10")
    hk = cal.sessions("XHKG", "2020-01-15", "2020-02-10")
    shut = hk.difference(sb)
    # HK traded on 22, 23, 24 (half day), 29, 30 and 31 January; southbound did not: the mainland
    # was closed 24 Jan - 2 Feb and 22-23 Jan fell under the settlement-day rule.
    assert [d.strftime("%m-%d") for d in shut] == ["01-22", "01-23", "01-24", "01-29", "01-30", "01-31"]
    assert pd.Timestamp("2020-01-21") in sb and pd.Timestamp("2020-02-03") in sb


def test_2025_02_04_hk_open_connect_closed():
    d = pd.Timestamp("2025-02-04")
    assert d in cal.sessions("XHKG", "2025-01-01", "2025-03-01")
    assert d not in cal.southbound_days("2025-01-01", "2025-03-01")


def test_holiday_enhancement_keeps_days_before_mainland_holidays_open():
    # Labour Day 2023: the mainland closed 29 Apr - 3 May. Before 24 Apr 2023 the settlement-day
    # rule would have shut 27-28 Apr; after the enhancement southbound traded them.
    sb = cal.southbound_days("2023-04-20", "2023-05-10")
    assert pd.Timestamp("2023-04-27") in sb and pd.Timestamp("2023-04-28") in sb
    assert pd.Timestamp("2023-05-02") not in sb  # HK open, mainland closed


def test_no_southbound_before_connect_opened():
    assert len(cal.southbound_days("2014-01-01", "2014-11-14")) == 0
    assert cal.southbound_days("2014-11-01", "2014-11-30")[0] == pd.Timestamp("2014-11-17")


def test_southbound_days_match_the_published_history():
    f = REAL / "globallink_Southbound.csv"
    if not f.is_file():
        pytest.skip(f"{f} absent: the real southbound history is not available here")
    s = pd.read_csv(f)
    s = s[s["timestamp"].str[11:] == "00:00"]
    s.index = pd.to_datetime(s["timestamp"].str[:10])
    s = s.loc["2016-12-05":"2025-12-31", "value"]
    traded = set(s.index[s != 0])
    rule = set(cal.southbound_days("2016-12-05", "2025-12-31"))
    # the one difference: the file has no row for 2021-12-29 (HK and mainland open, settlement
    # days open); every other day of nine years agrees
    assert sorted(d.date().isoformat() for d in traded ^ rule) == ["2021-12-29"]


def test_calendars_are_cached():
    a = cal.sessions("XHKG", "2020-01-01", "2020-12-31")
    assert cal.sessions("XHKG", "2020-01-01", "2020-12-31") is a
