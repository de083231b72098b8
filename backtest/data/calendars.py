"""Exchange calendars (the kept `exchange_calendars` library) and the Stock Connect southbound days.

    sessions("XHKG", start, end)    trading days of one exchange (XHKG, XNYS, XSHG, XSHE), less the
                                     severe-weather closures the library lacks (closures.csv)
    early_closes("XHKG", start, end) half-day sessions
    southbound_days(start, end)      days southbound Stock Connect trades (docs/data.md, "Calendars")

`exchange_calendars` takes ~0.6 s to import and ~0.2 s per calendar, so it is imported on first use
and each calendar is built once per process. XSHE has no calendar of its own in the library: the
Shenzhen and Shanghai exchanges share the mainland holiday schedule, so XSHE uses XSHG.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from backtest.errors import UserError

__all__ = ["sessions", "unscheduled_closures", "early_closes", "southbound_days", "CONNECT_START", "SETTLEMENT_DAYS",
           "HOLIDAY_ENHANCEMENT_FROM"]

_ALIASES = {"XSHE": "XSHG"}
_START = "1991-01-02"  # earliest date any of the four calendars is built from
# Southbound Stock Connect opened with the Shanghai link on 2014-11-17.
CONNECT_START = pd.Timestamp("2014-11-17")
# HK money settlement is T+2: before the enhancement a southbound day also needed its settlement
# days (the next two HK trading days) to be mainland trading days.
SETTLEMENT_DAYS = 2
# The Stock Connect holiday trading enhancement dropped the settlement-day condition: southbound
# trades on every day both markets are open. Measured against the published Eastmoney southbound
# history (tests/test_calendars.py): the last settlement-day closure is 2023-04-21 (before the
# Labour Day holiday the first days traded under the new rule are 2023-04-27 and 28).
HOLIDAY_ENHANCEMENT_FROM = pd.Timestamp("2023-04-24")


@cache
def _calendar(name: str):
    import warnings

    import exchange_calendars as xc  # slow import: only when a calendar is first needed

    with warnings.catch_warnings():  # the library's own pandas deprecations, not ours to act on
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return xc.get_calendar(_ALIASES.get(name, name), start=_START)


def _check(name: str) -> None:
    if name not in ("XHKG", "XNYS", "XSHG", "XSHE"):
        raise ValueError(f"unknown exchange calendar {name!r}: expected XHKG, XNYS, XSHG or XSHE")


def _bounds(cal, name: str, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    s, e = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if e > cal.last_session + pd.Timedelta(days=7) or s < cal.first_session - pd.Timedelta(days=7):
        raise UserError(f"the {name} calendar of exchange_calendars covers "
                        f"{cal.first_session.date()} .. {cal.last_session.date()}; "
                        f"{s.date()} .. {e.date()} was asked for (upgrade exchange_calendars)")
    return max(s, cal.first_session), min(e, cal.last_session)


@cache
def unscheduled_closures(name: str) -> pd.DatetimeIndex:
    """Whole-day closures the library does not record (severe weather): backtest/data/closures.csv."""
    from backtest.data.reference import closures

    c = closures()
    return pd.DatetimeIndex(pd.to_datetime(c.loc[c["exchange"] == _ALIASES.get(name, name), "date"]),
                            name="date")


@cache
def _sessions(name: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    cal = _calendar(name)
    s, e = _bounds(cal, name, start, end)
    if s > e:
        return pd.DatetimeIndex([], name="date")
    days = pd.DatetimeIndex(cal.sessions_in_range(s, e).tz_localize(None), name="date")
    return days[~days.isin(unscheduled_closures(name))]


def sessions(name: str, start, end) -> pd.DatetimeIndex:
    """Trading days of exchange `name` from `start` to `end` inclusive (tz-naive midnights)."""
    _check(name)
    return _sessions(name, pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize())


def early_closes(name: str, start, end) -> pd.DatetimeIndex:
    """Half-day sessions of exchange `name` in [start, end]."""
    _check(name)
    cal = _calendar(name)
    s, e = _bounds(cal, name, start, end)
    ec = pd.DatetimeIndex(cal.early_closes).tz_localize(None) if len(cal.early_closes) else \
        pd.DatetimeIndex([])
    return pd.DatetimeIndex(ec[(ec >= s) & (ec <= e)], name="date")


@cache
def _southbound(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    pad = pd.Timedelta(days=20)  # settlement days of the last dates lie after `end`
    hk = sessions("XHKG", start, end + pad)
    cn = sessions("XSHG", start, end + pad)
    both = hk.isin(cn)
    hk_v = hk.values
    settle_ok = np.ones(len(hk), dtype=bool)
    for k in range(1, SETTLEMENT_DAYS + 1):
        nxt = np.zeros(len(hk), dtype=bool)
        nxt[:-k] = both[k:]  # the k-th next HK trading day is also a mainland trading day
        settle_ok &= nxt
    enhanced = hk_v >= HOLIDAY_ENHANCEMENT_FROM.to_datetime64()
    open_ = both & (settle_ok | enhanced) & (hk_v >= CONNECT_START.to_datetime64())
    out = hk[open_]
    return pd.DatetimeIndex(out[out <= end], name="date")


def southbound_days(start, end) -> pd.DatetimeIndex:
    """Days southbound Stock Connect trades in [start, end] by the published rules.

    A day is a southbound day when HK (XHKG) and the mainland (XSHG/XSHE) both trade on it and,
    before the holiday enhancement (HOLIDAY_ENHANCEMENT_FROM), the next SETTLEMENT_DAYS HK trading
    days (money settlement) are mainland trading days too. Nothing before CONNECT_START.
    """
    return _southbound(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize())
