"""The synthetic market (backtest/data/synth.py, docs/synthetic.md): API, determinism, calendars,
price consistency, stylised facts, and the absence of a planted edge."""

from __future__ import annotations


import holidays
import numpy as np
import pandas as pd
import pytest

from backtest.data.calendars import southbound_days
from backtest.data.market import MarketData
from backtest.data.reference import default_symbols
from backtest.data.synth import (
    SynthParams,
    adr_premium,
    generate,
    generate_detailed,
    hk_tick,
    stylised_facts,
)

HK_FIELDS = ("open", "high", "low", "close", "volume", "turnover", "sb_net_buy", "board_lot")


@pytest.fixture(scope="module")
def market() -> tuple[MarketData, object]:
    return generate_detailed()


@pytest.fixture(scope="module")
def facts(market) -> dict[str, float]:
    md, st = market
    return stylised_facts(md, st)


def _weekdays(md: MarketData) -> pd.DatetimeIndex:
    return pd.bdate_range(md.usdhkd.index[0], md.usdhkd.index[-1])


def _financial_weekdays(md: MarketData, market: str) -> pd.DatetimeIndex:
    wd = _weekdays(md)
    closed = holidays.financial_holidays(market, years=range(wd[0].year, wd[-1].year + 1))
    return wd[~wd.isin(pd.DatetimeIndex([pd.Timestamp(d) for d in closed]))]


# ------------------------------------------------------------------------------------ API
def test_shapes_types_and_labels(market):
    md, _ = market
    syms = default_symbols().iloc[:25]
    assert set(md.hk) == set(HK_FIELDS)
    frames = [*md.hk.values(), md.southbound, md.adr_close]
    for obj in [*frames, md.index_close, md.usdhkd]:
        idx = obj.index
        assert isinstance(idx, pd.DatetimeIndex) and idx.name == "date"
        assert idx.tz is None and idx.is_monotonic_increasing and idx.is_unique
        assert (idx == idx.normalize()).all()
        assert (idx.day_of_week < 5).all()
    for df in frames:
        assert (df.dtypes == np.float64).all()
    for df in md.hk.values():
        assert list(df.columns) == list(syms.index)
        assert df.index.equals(md.hk["close"].index)
    assert list(md.southbound.columns) == ["sh", "sz"]
    assert md.index_close.dtype == np.float64 and md.usdhkd.dtype == np.float64
    # the reference table, every name marked as synthetic (its prices are invented)
    pd.testing.assert_frame_equal(md.symbols, syms.assign(name=syms["name"] + " (synthetic)"))
    dual = [t for t in syms["adr_ticker"] if t]
    assert list(md.adr_close.columns) == dual
    assert md.index_name == "HSTECH" and md.index_close.name == "HSTECH"
    assert md.source == "synthetic(seed=7, symbols=25, years=10.0)"
    assert md.hk["close"].index[-1] <= pd.Timestamp("2025-12-31")
    assert md.hk["close"].index[0] >= pd.Timestamp("2016-01-01")


@pytest.mark.parametrize("bad", [0, 31, -3])
def test_symbol_count_is_validated(bad):
    with pytest.raises(ValueError):
        generate(symbols=bad)


def test_other_arguments():
    md = generate(seed=3, symbols=1, years=0.5, end="2020-06-30")
    assert list(md.hk["close"].columns) == ["0700"]
    assert md.adr_close.shape[1] == 0 and len(md.adr_close.index) > 100
    assert md.hk["close"].index[-1] <= pd.Timestamp("2020-06-30")
    assert 110 <= len(md.hk["close"]) <= 130
    md30 = generate(symbols=30, years=2)
    assert md30.hk["close"].shape[1] == 30 and md30.adr_close.shape[1] == 15
    with pytest.raises(ValueError):
        generate(years=0)


# ------------------------------------------------------------------------------------ determinism
def _assert_same(a: MarketData, b: MarketData) -> None:
    for k in a.hk:
        pd.testing.assert_frame_equal(a.hk[k], b.hk[k], check_exact=True)
    pd.testing.assert_frame_equal(a.southbound, b.southbound, check_exact=True)
    pd.testing.assert_frame_equal(a.adr_close, b.adr_close, check_exact=True)
    pd.testing.assert_series_equal(a.index_close, b.index_close, check_exact=True)
    pd.testing.assert_series_equal(a.usdhkd, b.usdhkd, check_exact=True)
    assert a.fingerprint() == b.fingerprint()


def test_deterministic_bit_for_bit(market):
    md, _ = market
    _assert_same(md, generate())
    _assert_same(generate(seed=5, symbols=8, years=3), generate(seed=5, symbols=8, years=3))


def test_no_global_rng_state():
    np.random.seed(1)
    a = generate(seed=2, symbols=5, years=2)
    np.random.seed(99)
    np.random.random(1000)
    _assert_same(a, generate(seed=2, symbols=5, years=2))


def test_different_seeds_differ(market):
    md, _ = market
    other = generate(seed=8)
    assert md.fingerprint() != other.fingerprint()
    a, b = md.hk["close"]["0700"].align(other.hk["close"]["0700"], join="inner")
    assert not np.allclose(a.to_numpy(), b.to_numpy(), equal_nan=True)
    assert not md.southbound.equals(other.southbound)


def test_a_name_does_not_depend_on_how_many_names_are_drawn(market):
    md, st = market
    small = generate(symbols=5)
    for s in small.hk["close"].columns:
        a, b = md.hk["close"][s], small.hk["close"][s]
        both = a.notna() & b.notna()
        assert both.sum() > 500 and (a.notna() != b.notna()).sum() <= 100   # only suspensions differ
        np.testing.assert_array_equal(a[both].to_numpy(), b[both].to_numpy())


# ------------------------------------------------------------------------------------ calendars
def test_calendars_match_the_exchanges(market):
    md, st = market
    hk_days = md.hk["close"].index
    us_days = md.adr_close.index
    xhkg = _financial_weekdays(md, "XHKG")
    assert hk_days.equals(xhkg.difference(st.extra_closures).rename("date"))
    assert us_days.equals(_financial_weekdays(md, "XNYS").rename("date"))
    assert md.usdhkd.index.equals(_weekdays(md).rename("date"))
    assert md.index_close.index.equals(hk_days)


def test_hk_and_us_holidays_differ(market):
    md, _ = market
    hk_days, us_days = md.hk["close"].index, md.adr_close.index
    wd = _weekdays(md)
    hk_only_closed = wd.difference(hk_days).intersection(us_days)   # e.g. Lunar New Year
    us_only_closed = wd.difference(us_days).intersection(hk_days)   # e.g. Thanksgiving
    assert len(hk_only_closed) > 50 and len(us_only_closed) > 30
    assert pd.Timestamp("2025-11-27") in us_only_closed          # Thanksgiving
    assert pd.Timestamp("2025-01-29") in hk_only_closed          # Lunar New Year


def test_stock_connect_days(market):
    md, st = market
    hk_days, sb_days = md.hk["close"].index, md.southbound.index
    assert sb_days.isin(hk_days).all()
    # both markets open and, before the 2023 enhancement, the settlement days too (test_calendars)
    assert sb_days.equals(hk_days.intersection(southbound_days(hk_days[0], hk_days[-1])))
    assert sb_days.isin(st.mainland_days).all()
    without = hk_days.difference(sb_days)
    assert len(without) > 50                                   # e.g. Golden Week, HK open
    assert pd.Timestamp("2025-10-03") in without               # mainland National Day holiday
    assert not md.southbound.isna().any().any()                # closed days absent, not NaN/zero


def test_extra_severe_weather_closures():
    closures = []
    for seed in (1, 2, 3, 4):
        md, st = generate_detailed(seed=seed, symbols=2)
        for d in st.extra_closures:
            assert d not in md.hk["close"].index and d not in md.southbound.index
            assert d.month in SynthParams().closure_months
            assert d < pd.Timestamp(SynthParams().severe_weather_trading_from)
            assert d.day_of_week < 5
        closures.extend(st.extra_closures)
    assert 2 <= len(closures) <= 30
    none = generate_detailed(seed=1, symbols=2, params=SynthParams(extra_closures_per_year=0.0))[1]
    assert len(none.extra_closures) == 0


# ------------------------------------------------------------------------------------ prices
def test_ohlc_consistent_positive_and_on_tick(market):
    md, _ = market
    o, h, l, c = (md.hk[k].to_numpy() for k in ("open", "high", "low", "close"))
    ok = ~np.isnan(c)
    assert ok.mean() > 0.5
    for a in (o, h, l):
        assert np.array_equal(np.isnan(a), ~ok)
    o, h, l, c = o[ok], h[ok], l[ok], c[ok]
    assert (l > 0).all()
    assert (h >= np.maximum(o, c)).all() and (np.minimum(o, c) >= l).all()
    for a in (o, h, l, c):
        ticks = a / hk_tick(a)
        assert np.allclose(ticks, np.round(ticks), atol=1e-6)
    gaps = o[1:] != c[:-1]
    assert gaps.mean() > 0.5                                   # opens gap from prior closes
    assert ((h - l) / c).mean() > 0.01                         # intraday ranges exist


def test_volume_in_board_lots_and_turnover_consistent(market):
    md, _ = market
    v, lot = md.hk["volume"].to_numpy(), md.hk["board_lot"].to_numpy()
    t = md.hk["turnover"].to_numpy()
    ok = ~np.isnan(v)
    assert np.array_equal(ok, ~np.isnan(md.hk["close"].to_numpy()))
    assert not np.isnan(lot[ok]).any()
    assert (v[ok] > 0).all() and (np.mod(v[ok], lot[ok]) == 0).all()
    vwap = t[ok] / v[ok]
    assert (vwap >= md.hk["low"].to_numpy()[ok] - 1e-6).all()
    assert (vwap <= md.hk["high"].to_numpy()[ok] + 1e-6).all()
    assert np.nanmedian(md.hk["turnover"]["0700"]) > 1e9


def test_board_lot_changes_once():
    md = generate()
    lot = md.hk["board_lot"]["9866"].dropna()
    assert set(lot.unique()) == {100.0, 10.0}
    assert (lot[lot.index < "2023-03-13"] == 100).all() and (lot[lot.index >= "2023-03-13"] == 10).all()
    vol = md.hk["volume"]["9866"].dropna()
    assert (np.mod(vol, lot.reindex(vol.index)) == 0).all()


def test_listing_dates_respected(market):
    md, st = market
    listing = dict(SynthParams().hk_listing)
    close = md.hk["close"]
    for s in close.columns:
        first = close[s].first_valid_index()
        if s in listing:
            day = pd.Timestamp(listing[s])
            assert first >= day and first == close.index[close.index >= day][0], s
            before = close.index < first
            for f in HK_FIELDS:
                assert md.hk[f].loc[before, s].isna().all(), (s, f)
        else:
            assert first == close.index[0] or s in set(st.suspensions["symbol"]), s


def test_suspensions_are_multi_day_nan_gaps(market):
    md, st = market
    assert len(st.suspensions) >= 3
    for _, row in st.suspensions.iterrows():
        span = md.hk["close"].loc[row["first"]:row["last"], row["symbol"]]
        assert len(span) >= 3 and span.isna().all()
        assert md.hk["board_lot"].loc[row["first"]:row["last"], row["symbol"]].notna().all()
        assert md.hk["sb_net_buy"].loc[row["first"]:row["last"], row["symbol"]].isna().all()


def test_index_and_fx(market):
    md, _ = market
    assert md.index_close.notna().all() and (md.index_close > 0).all()
    assert md.index_close.iloc[0] == pytest.approx(5000.0)
    fx = md.usdhkd
    assert fx.between(7.75, 7.85).all()
    assert fx.diff().abs().max() < 0.005                       # slowly moving


# ------------------------------------------------------------------------------------ flows
def test_per_stock_southbound_sits_on_the_ccass_record_date(market):
    md, st = market
    sb = md.hk["sb_net_buy"]
    hk_days = sb.index
    lag = SynthParams().sb_settlement_lag
    traded = pd.Series(hk_days.isin(md.southbound.index), index=hk_days)
    trade_day_open = traded.shift(lag, fill_value=False)
    # Record dates whose trade day (T-2) had no southbound trading carry no value.
    assert sb[~trade_day_open.to_numpy()].isna().all().all()
    assert (~trade_day_open).sum() > 20
    # The universe's per-stock flow tracks the aggregate of the trade day.
    agg = md.southbound.sum(axis=1).reindex(hk_days).shift(lag)
    total = sb.sum(axis=1, min_count=1)
    both = agg.notna() & total.notna()
    assert np.corrcoef(agg[both], total[both])[0, 1] > 0.8
    assert sb.stack().abs().median() > 1e6


def test_some_names_join_connect_late(market):
    md, st = market
    sb = md.hk["sb_net_buy"]
    late = [s for s in sb.columns
            if sb[s].first_valid_index() - md.hk["close"][s].first_valid_index() > pd.Timedelta(days=150)]
    assert 1 <= len(late) < len(sb.columns)


def test_southbound_stylised_facts(facts, market):
    md, _ = market
    assert 2.0 <= facts["sb_mean_bn"] <= 8.0
    assert 20.0 <= facts["sb_max_bn"] <= 45.0
    assert 0.0 < facts["sb_net_sell_share"] < 0.15              # occasional net selling
    assert facts["sb_corr_same_day_index_return"] < -0.2        # buying into falls
    assert (md.southbound["sh"] != 0).all()


# ------------------------------------------------------------------------------------ returns
def test_return_stylised_facts(facts):
    assert facts["kurtosis_median"] > 3.0
    assert facts["index_kurtosis"] > 3.0
    assert 0.017 <= facts["daily_vol_calm_median"] <= 0.026
    assert facts["daily_vol_crisis_median"] > 1.8 * facts["daily_vol_calm_median"]
    assert 0.2 < facts["pairwise_corr_mean"] < 0.7
    assert facts["regime_share_calm"] > 0.45
    assert 0.01 < facts["regime_share_crisis"] < 0.2


def test_adr_premium_stylised_facts(facts, market):
    md, _ = market
    assert abs(facts["premium_median"]) < 0.005
    assert abs(facts["premium_mean_5y"]) < 0.005
    assert facts["premium_p5"] < -0.01
    assert facts["premium_min"] < -0.04
    assert facts["premium_within_1pct"] > 0.6
    # Deep discounts mean-revert: a month later the premium is back near its usual range.
    prem = adr_premium(md)
    back = []
    for tic in prem.columns:
        p = prem[tic]
        deep = p.index[(p < -0.04).to_numpy()]
        for d in deep:
            later = p[p.index > d].iloc[20:25]
            if len(later):
                back.append(later.median())
    assert len(back) > 5 and np.median(back) > -0.02


# ------------------------------------------------------------------------------------ no planted edge
H = 5
T_BOUND = 2.5      # per seed
T_POOLED = 2.0     # Stouffer-combined over SEEDS


def _welch_t(events: np.ndarray, everything: np.ndarray) -> float:
    """Event mean minus unconditional mean over a standard error that treats every H overlapping
    H-day windows as one observation (a loose, honest bound)."""
    se = np.sqrt(events.var(ddof=1) / (len(events) / H) + everything.var(ddof=1) / (len(everything) / H))
    return float((events.mean() - everything.mean()) / se)


def _ew_forward(md: MarketData) -> pd.Series:
    c = md.hk["close"]
    r = (c / c.ffill().shift(1) - 1.0).where(c.notna())
    ew = r.mean(axis=1).fillna(0.0)
    return sum(ew.shift(-i) for i in range(1, H + 1)).iloc[:-H]


def _southbound_t(md: MarketData, plant: float = 0.0) -> float:
    fwd = _ew_forward(md)
    sb = md.southbound.sum(axis=1)
    days = sb.index[(sb >= sb.quantile(0.95)).to_numpy()].intersection(fwd.index)
    if plant:
        fwd = fwd.copy()
        fwd[days] += plant
    return _welch_t(fwd[days].to_numpy(), fwd.to_numpy())


def _hk_day_premium(md: MarketData) -> pd.DataFrame:
    """Premium known by the next HK open: latest ADR close at or before D vs the HK close of D."""
    close = md.hk["close"]
    out = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    fx = md.usdhkd.reindex(close.index)
    for s, tic in md.symbols["adr_ticker"].items():
        if tic:
            adr = md.adr_close[tic].dropna()
            asof = adr.reindex(adr.index.union(close.index)).ffill().reindex(close.index)
            out[s] = asof * fx / md.symbols.loc[s, "adr_ratio"] / close[s] - 1.0
    return out


def _adr_t(md: MarketData, plant: float = 0.0) -> float:
    prem = _hk_day_premium(md)
    o, c = md.hk["open"], md.hk["close"]
    fwd = c.shift(-H) / o.shift(-1) - 1.0                      # fill at the next open, hold H days
    p, f = prem.stack(), fwd.stack().reindex(prem.stack().index)
    ok = f.notna().to_numpy()
    p, f = p[ok], f[ok]
    hit = (p <= p.quantile(0.05)).to_numpy()
    if plant:
        f = f.copy()
        f[hit] += plant
    events = f[hit].groupby(level=0).mean()                    # one observation per date
    return _welch_t(events.to_numpy(), f.groupby(level=0).mean().to_numpy())


SEEDS = (7, 1, 2, 3)


@pytest.fixture(scope="module")
def seeds_markets(market) -> list[MarketData]:
    return [market[0] if seed == 7 else generate(seed=seed) for seed in SEEDS]


def _stouffer(ts: list[float]) -> float:
    return float(np.sum(ts) / np.sqrt(len(ts)))


def test_no_planted_edge(seeds_markets):
    """Forward returns after southbound spikes and deep ADR discounts are not significantly better
    than unconditional ones: per seed (loose bound) and pooled over seeds (Stouffer)."""
    t_sb = [_southbound_t(md) for md in seeds_markets]
    t_adr = [_adr_t(md) for md in seeds_markets]
    assert max(t_sb) < T_BOUND and max(t_adr) < T_BOUND, (t_sb, t_adr)
    assert _stouffer(t_sb) < T_POOLED and _stouffer(t_adr) < T_POOLED, (t_sb, t_adr)


def test_the_edge_test_can_fail(seeds_markets):
    """The statistic above is not vacuous: a planted 3 % five-day edge after the same events
    (about one crisis-regime day's move) is flagged on the same data."""
    t_sb = [_southbound_t(md, plant=0.03) for md in seeds_markets]
    t_adr = [_adr_t(md, plant=0.03) for md in seeds_markets]
    assert _stouffer(t_sb) > T_POOLED and _stouffer(t_adr) > T_POOLED, (t_sb, t_adr)
