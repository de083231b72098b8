"""Seeded synthetic market: the embedded default data set (DESIGN §2), documented in docs/synthetic.md.

`generate(seed, symbols, years, end)` returns a `MarketData` for the first `symbols` names of
`reference.default_symbols()`, on the real exchange calendars of `backtest.data.calendars` (XHKG,
XNYS, XSHG and the Stock Connect southbound days) plus a few random extra HK severe-weather
closures.

How it is built (all numpy, one pass, no global RNG state):

1. A weekday grid over [end - years, end] and a 3-state Markov volatility regime on it
   (calm / stressed / crisis).
2. One *latent* log-price path per name, calendar-free: every weekday has three segments — HK
   pre-open (after the US close), the HK session and the US session. Each segment's move is
   beta x market shock + idiosyncratic shock, both Student-t (unit variance), scaled by the regime.
   The world keeps moving on holidays; each market only *observes* the path when it is open:
   HK open = latent after the pre-open, HK close = latent after the HK session, ADR close of US
   date D = latent after the US session of D (times the ADR premium). So gaps after HK holidays
   are larger, and the ADR close of D already contains most of the next HK gap — mechanically,
   the way real ADRs do, and it is all in the next HK open, before any t+1 fill.
3. Observed prices are rounded to the HK tick table; highs/lows come from an exact Brownian-bridge
   draw of the intraday extremes; volume is a whole number of board lots.
4. Flows, premia and FX are functions of the *past and present* path plus their own noise; no
   future return depends on them (no planted edge, see docs/synthetic.md).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backtest.data import calendars
from backtest.data.market import MarketData
from backtest.data.reference import default_symbols

__all__ = ["SynthParams", "SynthState", "generate", "generate_detailed", "stylised_facts",
           "hk_tick", "round_to_tick"]

REGIMES = ("calm", "stressed", "crisis")

# HKEX spread table (Part A): upper bound of each price band (inclusive) -> tick.
_TICK_BOUNDS = np.array([0.25, 0.50, 10.0, 20.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0])
_TICKS = np.array([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0])


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the generator. Defaults reproduce the figures in docs/synthetic.md.

    Rates are per weekday unless stated; money in HK$; vols are daily standard deviations of log
    returns in the calm regime (other regimes multiply them by `regime_vol`).
    """

    # --- returns -------------------------------------------------------------------------------
    t_df: float = 4.0                                  # Student-t degrees of freedom of all shocks
    stock_vol: tuple[float, float] = (0.018, 0.025)    # calm daily vol per name, uniform range
    market_vol: float = 0.013                          # calm daily vol of the common factor
    beta: tuple[float, float] = (0.8, 1.3)             # factor loading per name, uniform range
    min_idio_share: float = 0.4                        # idio vol >= this x total vol
    regime_vol: tuple[float, float, float] = (1.0, 1.6, 3.0)  # vol multiplier per regime
    regime_drift: tuple[float, float, float] = (0.0008, -0.0003, -0.0015)  # factor mean, per day
    # Markov transition matrix (rows: from calm/stressed/crisis; per weekday).
    regime_transition: tuple[tuple[float, float, float], ...] = (
        (0.986, 0.012, 0.002),
        (0.040, 0.940, 0.020),
        (0.010, 0.070, 0.920),
    )
    # Variance share of a weekday's move in: HK pre-open, HK session, US session; for the common
    # factor (US hours carry much of it) and for the idiosyncratic part (mostly HK hours).
    market_segment_share: tuple[float, float, float] = (0.10, 0.70, 0.20)
    idio_segment_share: tuple[float, float, float] = (0.05, 0.90, 0.05)
    lot_value: tuple[float, float] = (5_000.0, 40_000.0)  # HK$ per lot at first listing, log-uniform

    # --- turnover ------------------------------------------------------------------------------
    turnover_top: float = 8e9           # HK$/day of the largest name (row 0 of the symbol table)
    turnover_decay: float = 0.9         # base turnover of row k = top x (k + 1) ** -decay
    turnover_noise: float = 0.35        # sd of the AR(1) log-turnover noise
    turnover_persistence: float = 0.7
    turnover_move_weight: float = 0.4   # turnover x (1 - w + w x |return| / calm vol)

    # --- calendar events -----------------------------------------------------------------------
    extra_closures_per_year: float = 0.25   # random HK severe-weather closures added on top of
    closure_months: tuple[int, ...] = (6, 7, 8, 9, 10)  # the ones XHKG already records
    severe_weather_trading_from: str = "2024-09-23"     # HKEX trades through typhoons since then
    suspensions_per_year: float = 0.5
    suspension_days: tuple[int, int] = (3, 25)          # HK trading days, uniform integer range
    # First HK trading date of names listed after ~2015 (others: listed before any sample start).
    hk_listing: tuple[tuple[str, str], ...] = (
        ("0772", "2017-11-08"), ("1810", "2018-07-09"), ("3690", "2018-09-20"),
        ("0780", "2018-11-26"), ("9988", "2019-11-26"), ("9999", "2020-06-11"),
        ("9618", "2020-06-18"), ("9987", "2020-09-10"), ("1179", "2020-09-22"),
        ("2057", "2020-09-29"), ("6618", "2020-12-08"), ("1024", "2021-02-05"),
        ("9888", "2021-03-23"), ("9626", "2021-03-29"), ("9961", "2021-04-19"),
        ("9868", "2021-07-07"), ("2015", "2021-08-12"), ("9898", "2021-12-08"),
        ("0020", "2021-12-30"), ("9866", "2022-03-10"), ("2423", "2022-05-11"),
        ("1698", "2022-09-21"),
    )
    # First US trading date of each ADR (most traded in New York before their HK listing).
    adr_listing: tuple[tuple[str, str], ...] = (
        ("BABA", "2014-09-19"), ("JD", "2014-05-22"), ("BIDU", "2005-08-05"),
        ("NTES", "2000-06-30"), ("BILI", "2018-03-28"), ("NIO", "2018-09-12"),
        ("XPEV", "2020-08-27"), ("LI", "2020-07-30"), ("TCOM", "2003-12-09"),
        ("ZTO", "2016-10-27"), ("YUMC", "2016-11-01"), ("BEKE", "2020-08-13"),
        ("TME", "2018-12-12"), ("WB", "2014-04-17"), ("HTHT", "2010-03-26"),
    )
    # Illustrative (not historical) lot changes: (symbol, first date of the table lot, lot before).
    lot_changes: tuple[tuple[str, str, int], ...] = (
        ("9866", "2023-03-13", 100),
        ("9626", "2023-05-15", 10),
    )

    # --- southbound (Stock Connect) --------------------------------------------------------------
    sb_base: float = 2.6e9              # mean baseline aggregate net buy, HK$/day
    sb_growth: float = 1.0              # baseline ramps linearly from (1 - g/2) to (1 + g/2) x base
    sb_noise: float = 0.8               # noise sd as a multiple of the baseline (Student-t)
    sb_noise_clip: float = 4.0          # ... truncated at this many sds
    sb_dip_scale: float = 1.6e9         # net buy added per (fall in calm-factor sd) ** power
    sb_dip_power: float = 1.6
    sb_dip_lag_weight: float = 0.6      # response to yesterday's fall, relative to today's
    sb_dip_cap: float = 31e9            # saturation of the dip response, HK$
    sb_sh_share: float = 0.55           # Shanghai link's mean share of the total
    sb_universe_share: float = 0.45     # share of the aggregate bought in the 30-name universe
    sb_stock_noise: float = 0.03        # per-stock flow noise sd, as a fraction of its turnover
    sb_late_join_share: float = 0.3     # share of names that join Connect late
    sb_late_join_days: tuple[int, int] = (120, 300)  # HK trading days after listing/sample start
    sb_settlement_lag: int = 2          # per-stock values sit on the CCASS record date (T+2)

    # --- ADR premium ---------------------------------------------------------------------------
    adr_premium_mean: float = 0.0020    # long-run mean of the AR(1) premium component
    adr_premium_sd: float = 0.0030      # its stationary sd
    adr_premium_half_life: float = 3.0  # US trading days
    adr_crisis_jump_prob: float = 0.06  # per US day in the crisis regime: ADRs gap to a discount
    adr_crisis_jump: tuple[float, float] = (-0.08, -0.05)  # premium level after a jump, uniform
    adr_jump_dispersion: float = 0.005  # per-ADR scatter around the common jump level

    # --- FX and index --------------------------------------------------------------------------
    usdhkd_band: tuple[float, float] = (7.75, 7.85)
    usdhkd_persistence: float = 0.9995  # AR(1) of the latent driver (daily)
    index_start: float = 5000.0


@dataclass
class SynthState:
    """Hidden state behind a generated market, for tests and docs (not part of MarketData)."""

    regime: pd.Series                  # weekdays -> 0 calm / 1 stressed / 2 crisis
    extra_closures: pd.DatetimeIndex   # random HK closures added to the XHKG calendar
    suspensions: pd.DataFrame          # symbol, first, last (HK dates, inclusive)
    listing: pd.Series                 # symbol -> first HK trading day in the sample
    connect_join: pd.Series            # symbol -> first Connect trade day it is eligible
    mainland_days: pd.DatetimeIndex
    params: SynthParams = field(default_factory=SynthParams)


def hk_tick(price: np.ndarray) -> np.ndarray:
    """HKEX tick size for each price (spread table, Part A)."""
    return _TICKS[np.searchsorted(_TICK_BOUNDS, price, side="left")]


def round_to_tick(price: np.ndarray) -> np.ndarray:
    """Round to the nearest HK tick (NaN stays NaN); never below HK$0.01."""
    with np.errstate(invalid="ignore"):
        p = np.asarray(price, dtype=np.float64)
        safe = np.where(np.isnan(p), 1.0, p)
        tick = hk_tick(safe)
        out = np.round(np.round(safe / tick) * tick, 3)
        out = np.maximum(out, 0.01)
    return np.where(np.isnan(p), np.nan, out)


def _t(rng: np.random.Generator, df: float, size) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size=size) * math.sqrt((df - 2.0) / df)


def _weekdays_open(grid: pd.DatetimeIndex, market: str) -> np.ndarray:
    return grid.isin(calendars.sessions(market, grid[0], grid[-1]))


def _markov(rng: np.random.Generator, trans: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(trans, axis=1)
    u = rng.random(n)
    out = np.empty(n, dtype=np.int8)
    s = 0
    for i in range(n):
        out[i] = s
        s = int(np.searchsorted(cum[s], u[i] * cum[s, -1], side="right"))
        s = min(s, len(trans) - 1)
    return out


def _date_index(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(values, name="date")


SYNTHETIC_SUFFIX = " (synthetic)"


def generate(seed: int = 7, symbols: int = 25, years: float = 10.0, end: str = "2025-12-31",
             params: SynthParams | None = None) -> MarketData:
    """A deterministic synthetic market of the first `symbols` default names over `years` to `end`."""
    return generate_detailed(seed, symbols, years, end, params)[0]


def generate_detailed(seed: int = 7, symbols: int = 25, years: float = 10.0,
                      end: str = "2025-12-31", params: SynthParams | None = None
                      ) -> tuple[MarketData, SynthState]:
    """`generate`, plus the hidden state (regimes, closures, suspensions, join dates)."""
    p = params if params is not None else SynthParams()
    if isinstance(symbols, bool) or int(symbols) != symbols:
        raise ValueError(f"symbols must be an integer, got {symbols!r}")
    universe = default_symbols()
    if not 1 <= symbols <= len(universe):
        raise ValueError(f"symbols must be between 1 and {len(universe)}, got {symbols}")
    if not (isinstance(years, numbers.Real) and math.isfinite(years) and years > 0):
        raise ValueError(f"years must be a positive number, got {years!r}")
    k = int(symbols)
    meta = universe.iloc[:k].copy()
    meta["name"] = meta["name"].astype(str) + SYNTHETIC_SUFFIX  # invented prices: never mistaken for history
    syms = [str(s) for s in meta.index]
    end_ts = pd.Timestamp(end).normalize()
    start_ts = end_ts - pd.Timedelta(days=int(round(years * 365.25))) + pd.Timedelta(days=1)

    # Independent streams per component: changing one part's parameters never reshuffles another.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(12)]
    (rng_reg, rng_ret, rng_xs, rng_cal, rng_hl, rng_vol, rng_sb, rng_sbs,
     rng_adr, rng_fx, rng_join, _spare) = streams   # _spare: reserved for future components

    # ---------------------------------------------------------------- calendars
    grid = pd.bdate_range(start_ts, end_ts)
    if len(grid) < 5:
        raise ValueError("the requested span holds fewer than 5 weekdays")
    cal_years = range(grid[0].year, grid[-1].year + 1)
    hk_open = _weekdays_open(grid, "XHKG")
    us_open = _weekdays_open(grid, "XNYS")
    cn_open = _weekdays_open(grid, "XSHG")

    # Random extra severe-weather closures (HK only; none once HKEX trades through typhoons).
    swt = pd.Timestamp(p.severe_weather_trading_from)
    extra = []
    for yr in cal_years:
        cand = np.flatnonzero(hk_open & (grid.year == yr) & grid.month.isin(p.closure_months)
                              & (grid < swt))
        n = rng_cal.poisson(p.extra_closures_per_year)
        if n and len(cand):
            extra.extend(rng_cal.choice(cand, size=min(n, len(cand)), replace=False).tolist())
    extra = np.sort(np.array(extra, dtype=np.int64))
    hk_open[extra] = False
    if hk_open.sum() < 3:
        raise ValueError("the requested span holds fewer than 3 HK trading days")

    hk_pos = np.flatnonzero(hk_open)            # weekday positions of HK trading days
    us_pos = np.flatnonzero(us_open)
    hk_dates = _date_index(grid[hk_pos])
    us_dates = _date_index(grid[us_pos])
    connect = hk_dates.isin(calendars.southbound_days(grid[0], grid[-1]))  # southbound traded
    n_w, n_t = len(grid), len(hk_pos)

    # ---------------------------------------------------------------- regimes and latent paths
    trans = np.asarray(p.regime_transition, dtype=np.float64)
    regime = _markov(rng_reg, trans, n_w)
    vol_mult = np.asarray(p.regime_vol)[regime]              # (W,)
    drift = np.asarray(p.regime_drift)[regime]               # (W,)

    # Name parameters are drawn for all 30 names, so name i is the same whatever K is.
    n_all = len(universe)
    sig = rng_xs.uniform(*p.stock_vol, size=n_all)[:k]
    beta = rng_xs.uniform(*p.beta, size=n_all)[:k]
    lot_value = np.exp(rng_xs.uniform(*np.log(p.lot_value), size=n_all))[:k]
    idio = np.sqrt(np.maximum(sig**2 - (beta * p.market_vol) ** 2, (p.min_idio_share * sig) ** 2))
    total_sig = np.sqrt((beta * p.market_vol) ** 2 + idio**2)

    msh = np.asarray(p.market_segment_share, dtype=np.float64)
    msh = msh / msh.sum()
    ish = np.asarray(p.idio_segment_share, dtype=np.float64)
    ish = ish / ish.sum()
    m_shock = _t(rng_ret, p.t_df, (n_w, 3)) * (p.market_vol * np.sqrt(msh))[None, :]
    e_shock = _t(rng_ret, p.t_df, (n_w, 3, n_all))[:, :, :k] * (
        np.sqrt(ish)[None, :, None] * idio[None, None, :])
    seg_sd2 = msh[:, None] * ((beta * p.market_vol) ** 2)[None, :] + ish[:, None] * (idio**2)[None, :]
    seg_var = seg_sd2[None, :, :] * (vol_mult**2)[:, None, None]          # (W, 3, K)
    inc = (beta[None, None, :] * (m_shock * vol_mult[:, None])[:, :, None]
           + e_shock * vol_mult[:, None, None]
           + msh[None, :, None] * (beta[None, None, :] * drift[:, None, None])
           - 0.5 * seg_var)
    latent = np.cumsum(inc.reshape(n_w * 3, k), axis=0).reshape(n_w, 3, k)
    l_open, l_close, l_us = latent[:, 0, :], latent[:, 1, :], latent[:, 2, :]

    # ---------------------------------------------------------------- listings, lots, scaling
    first_hk = pd.Series(hk_dates[0], index=syms, dtype="datetime64[ns]")
    listing_map = dict(p.hk_listing)
    listed = np.ones((n_t, k), dtype=bool)
    first_row = np.zeros(k, dtype=np.int64)
    for j, s in enumerate(syms):
        if s in listing_map:
            r = int(np.searchsorted(hk_dates.values, np.datetime64(pd.Timestamp(listing_map[s]))))
            r = min(r, n_t)  # listed after the sample: never observed
            first_row[j] = r
            listed[:r, j] = False
            if r < n_t:
                first_hk[s] = hk_dates[r]
            else:
                first_hk[s] = pd.NaT

    lot = np.tile(meta["board_lot"].to_numpy(dtype=np.float64), (n_t, 1))
    for s, d, before in p.lot_changes:
        if s in syms:
            j = syms.index(s)
            lot[hk_dates < pd.Timestamp(d), j] = float(before)

    # Latent path -> HK$: the first observed open is lot_value / lot (the "IPO" price).
    fr = np.minimum(first_row, n_t - 1)
    p0 = lot_value / lot[fr, np.arange(k)]
    scale = p0 / np.exp(l_open[hk_pos[fr], np.arange(k)])

    # ---------------------------------------------------------------- suspensions
    susp_rows = []
    tradable = listed.copy()
    n_susp = int(round(p.suspensions_per_year * years))
    for _ in range(n_susp):
        j = int(rng_cal.integers(k))
        lo = first_row[j] + 1
        if lo >= n_t - 2:
            continue
        a = int(rng_cal.integers(lo, n_t - 1))
        length = int(rng_cal.integers(p.suspension_days[0], p.suspension_days[1] + 1))
        b = min(a + length, n_t - 1)          # resumes by the last day at the latest
        tradable[a:b, j] = False
        susp_rows.append((syms[j], hk_dates[a], hk_dates[b - 1]))
    suspensions = pd.DataFrame(susp_rows, columns=["symbol", "first", "last"])

    # ---------------------------------------------------------------- HK OHLC
    lo_ = l_open[hk_pos] + np.log(scale)[None, :]
    lc_ = l_close[hk_pos] + np.log(scale)[None, :]
    x = lc_ - lo_
    s_day = np.sqrt(seg_sd2[1])[None, :] * vol_mult[hk_pos][:, None]
    u_hi = rng_hl.random((n_t, n_all))[:, :k]
    u_lo = rng_hl.random((n_t, n_all))[:, :k]
    # Exact extremes of a Brownian bridge from 0 to x with variance s^2 over the session.
    hi_ = lo_ + 0.5 * (x + np.sqrt(x**2 - 2.0 * s_day**2 * np.log(u_hi)))
    lw_ = lo_ + 0.5 * (x - np.sqrt(x**2 - 2.0 * s_day**2 * np.log(u_lo)))
    nan = ~tradable
    o = round_to_tick(np.exp(lo_))
    c = round_to_tick(np.exp(lc_))
    h = np.maximum(round_to_tick(np.exp(hi_)), np.maximum(o, c))
    lw = np.minimum(round_to_tick(np.exp(lw_)), np.minimum(o, c))
    for a in (o, h, lw, c):
        a[nan] = np.nan

    # ---------------------------------------------------------------- volume and turnover
    base_turn_all = p.turnover_top * (np.arange(n_all) + 1.0) ** (-p.turnover_decay)
    base_turn = base_turn_all[:k]
    eps = rng_vol.standard_normal((n_t, n_all))[:, :k]
    ar = np.empty_like(eps)
    ar[0] = eps[0]
    rho = p.turnover_persistence
    for t in range(1, n_t):
        ar[t] = rho * ar[t - 1] + math.sqrt(1 - rho**2) * eps[t]
    prev_lc = np.vstack([lc_[:1] - x[:1], lc_[:-1]])
    move = np.abs(lc_ - prev_lc) / total_sig[None, :]
    w = p.turnover_move_weight
    turn_target = base_turn[None, :] * np.exp(p.turnover_noise * ar - 0.5 * p.turnover_noise**2) \
        * (1.0 - w + w * move)
    vwap = (o + h + lw + c) / 4.0
    with np.errstate(invalid="ignore"):
        lots = np.maximum(np.round(turn_target / (vwap * lot)), 1.0)
        volume = lots * lot
        turnover = np.round(volume * vwap)
    volume[nan] = np.nan
    turnover[nan] = np.nan

    # ---------------------------------------------------------------- index
    caps = base_turn / p0                     # shares outstanding proxy (cap ~ turnover)
    close_df = pd.DataFrame(c, index=hk_dates, columns=syms)
    last = close_df.ffill().shift(1).to_numpy()
    ok = ~np.isnan(c) & ~np.isnan(last)
    wts = np.where(ok, caps[None, :] * np.where(ok, last, 0.0), 0.0)
    rets = np.where(ok, c / np.where(ok, last, 1.0) - 1.0, 0.0)
    wsum = wts.sum(axis=1)
    idx_ret = np.divide((wts * rets).sum(axis=1), wsum, out=np.zeros(n_t), where=wsum > 0)
    idx_level = p.index_start * np.cumprod(1.0 + idx_ret)
    index_close = pd.Series(np.round(idx_level, 2), index=hk_dates, name="HSTECH")

    # ---------------------------------------------------------------- southbound aggregate
    z = np.maximum(-idx_ret / p.market_vol, 0.0)
    z_lag = np.concatenate([[0.0], z[:-1]])
    raw = p.sb_dip_scale * (z**p.sb_dip_power + p.sb_dip_lag_weight * z_lag**p.sb_dip_power)
    dip = p.sb_dip_cap * (1.0 - np.exp(-raw / p.sb_dip_cap))
    frac = np.linspace(0.0, 1.0, n_t)
    base = p.sb_base * (1.0 - p.sb_growth / 2.0 + p.sb_growth * frac)
    noise = base * p.sb_noise * np.clip(_t(rng_sb, p.t_df, n_t), -p.sb_noise_clip, p.sb_noise_clip)
    total = np.round(base + dip + noise)
    sh_w = np.clip(p.sb_sh_share + 0.08 * rng_sb.standard_normal(n_t), 0.2, 0.8)
    sh = np.round(total * sh_w)
    sz = total - sh
    southbound = pd.DataFrame({"sh": sh[connect], "sz": sz[connect]},
                              index=_date_index(hk_dates[connect]))

    # ---------------------------------------------------------------- southbound per stock
    late = rng_join.random(n_all)[:k] < p.sb_late_join_share
    delay = rng_join.integers(p.sb_late_join_days[0], p.sb_late_join_days[1] + 1, size=n_all)[:k]
    join_row = first_row + np.where(late, delay, 0)
    eligible = (np.arange(n_t)[:, None] >= join_row[None, :]) & tradable & connect[:, None]
    univ = p.sb_universe_share * base_turn.sum() / base_turn_all.sum()
    t_el = np.where(eligible, turnover, 0.0)
    t_sum = t_el.sum(axis=1)
    wshare = np.divide(t_el, t_sum[:, None], out=np.zeros_like(t_el), where=t_sum[:, None] > 0)
    flow = univ * total[:, None] * wshare \
        + p.sb_stock_noise * t_el * _t(rng_sbs, p.t_df, (n_t, n_all))[:, :k]
    flow = np.where(eligible, np.round(flow), np.nan)
    lag = int(p.sb_settlement_lag)
    sb_stock = np.full((n_t, k), np.nan)
    if lag < n_t:
        sb_stock[lag:] = flow[: n_t - lag]
    sb_stock[~tradable] = np.nan
    connect_join = pd.Series(
        [hk_dates[r] if r < n_t else pd.NaT for r in join_row], index=syms, dtype="datetime64[ns]")

    # ---------------------------------------------------------------- USDHKD
    lo_b, hi_b = p.usdhkd_band
    mid, half = (lo_b + hi_b) / 2.0, (hi_b - lo_b) / 2.0
    rho_fx = p.usdhkd_persistence
    e_fx = rng_fx.standard_normal(n_w)
    y = np.empty(n_w)
    y[0] = e_fx[0]
    for t in range(1, n_w):
        y[t] = rho_fx * y[t - 1] + math.sqrt(1 - rho_fx**2) * e_fx[t]
    fx = np.round(mid + half * np.tanh(0.9 * y), 4)
    usdhkd = pd.Series(fx, index=_date_index(grid), name="usdhkd")

    # ---------------------------------------------------------------- ADR closes
    adr_mask = meta["adr_ticker"].astype(str) != ""
    adr_cols = [j for j in range(k) if adr_mask.iloc[j]]
    tickers = [str(meta["adr_ticker"].iloc[j]) for j in adr_cols]
    ratios = meta["adr_ratio"].to_numpy(dtype=np.float64)
    n_u, n_a = len(us_pos), len(adr_cols)
    rho_p = 0.5 ** (1.0 / p.adr_premium_half_life)
    s_p = p.adr_premium_sd * math.sqrt(1.0 - rho_p**2)
    eps_p = rng_adr.standard_normal((n_u, n_all))
    jump_u = rng_adr.random(n_u)
    jump_lvl = rng_adr.uniform(*p.adr_crisis_jump, size=n_u)
    jump_disp = rng_adr.standard_normal((n_u, n_all))
    all_adr = [j for j in range(n_all) if universe["adr_ticker"].iloc[j] != ""]
    pos_in_all = [all_adr.index(j) for j in adr_cols]  # same draws for an ADR whatever K is
    prem = np.empty((n_u, n_a))
    cur = np.full(n_a, p.adr_premium_mean)
    crisis_u = regime[us_pos] == 2
    for t in range(n_u):
        cur = p.adr_premium_mean + rho_p * (cur - p.adr_premium_mean) + s_p * eps_p[t, pos_in_all]
        if crisis_u[t] and jump_u[t] < p.adr_crisis_jump_prob:
            cur = np.minimum(cur, jump_lvl[t] + p.adr_jump_dispersion * jump_disp[t, pos_in_all])
        prem[t] = cur
    adr_vals = np.empty((n_u, n_a))
    adr_listing = {a: pd.Timestamp(d) for a, d in p.adr_listing}
    for i, j in enumerate(adr_cols):
        fair_hkd = np.exp(l_us[us_pos, j]) * scale[j]
        px = fair_hkd * ratios[j] * (1.0 + prem[:, i]) / fx[us_pos]
        px = np.where(px >= 1.0, np.round(px, 2), np.round(px, 4))
        start_adr = adr_listing.get(tickers[i])
        if start_adr is not None:
            px[us_dates < start_adr] = np.nan
        adr_vals[:, i] = px
    adr_close = pd.DataFrame(adr_vals, index=us_dates, columns=tickers)

    # ---------------------------------------------------------------- assemble
    def frame(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(np.ascontiguousarray(a, dtype=np.float64), index=hk_dates, columns=syms)

    lot_out = np.where(listed, lot, np.nan)
    hk = {
        "open": frame(o), "high": frame(h), "low": frame(lw), "close": frame(c),
        "volume": frame(volume), "turnover": frame(turnover),
        "sb_net_buy": frame(sb_stock), "board_lot": frame(lot_out),
    }
    md = MarketData(
        hk=hk,
        southbound=southbound.astype(np.float64),
        index_close=index_close.astype(np.float64),
        adr_close=adr_close.astype(np.float64),
        usdhkd=usdhkd.astype(np.float64),
        symbols=meta,
        index_name="HSTECH",
        source=f"synthetic(seed={seed}, symbols={symbols}, years={years})",
    )
    state = SynthState(
        regime=pd.Series(regime, index=_date_index(grid), name="regime"),
        extra_closures=_date_index(grid[extra]),
        suspensions=suspensions,
        listing=first_hk,
        connect_join=connect_join,
        mainland_days=_date_index(grid[cn_open]),
        params=p,
    )
    return md, state


def adr_premium(md: MarketData) -> pd.DataFrame:
    """DESIGN §3 premium on US dates: adr x usdhkd / ratio / (HK close at or before D) - 1."""
    out = {}
    sym_by_ticker = {t: s for s, t in md.symbols["adr_ticker"].items() if t}
    for tic in md.adr_close.columns:
        s = sym_by_ticker[tic]
        ratio = float(md.symbols.loc[s, "adr_ratio"])
        hk = md.hk["close"][s]
        # The HK close of the latest HK trading day at or before D (NaN while suspended).
        pos = np.searchsorted(hk.index.values, md.adr_close.index.values, side="right") - 1
        hk_on = np.where(pos >= 0, hk.to_numpy()[np.maximum(pos, 0)], np.nan)
        fx = md.usdhkd.reindex(md.adr_close.index).to_numpy()
        out[tic] = md.adr_close[tic].to_numpy() * fx / ratio / hk_on - 1.0
    return pd.DataFrame(out, index=md.adr_close.index)


def stylised_facts(md: MarketData, state: SynthState | None = None) -> dict[str, float]:
    """The figures docs/synthetic.md reports, measured on one generated (or real) market."""
    close = md.hk["close"]
    r = close / close.ffill().shift(1) - 1.0
    r = r.where(close.notna())
    out: dict[str, float] = {}
    vols = r.std()
    out["daily_vol_median"] = float(vols.median())
    out["daily_vol_min"] = float(vols.min())
    out["daily_vol_max"] = float(vols.max())
    kurt = r.kurt() + 3.0                     # Pearson kurtosis (normal = 3)
    out["kurtosis_median"] = float(kurt.median())
    prev = close.ffill().shift(1)
    out["open_gap_abs_mean"] = float(np.nanmean(np.abs(md.hk["open"] / prev - 1.0).to_numpy()))
    out["intraday_range_mean"] = float(np.nanmean(((md.hk["high"] - md.hk["low"]) / close).to_numpy()))
    idx_r = md.index_close.pct_change().dropna()
    out["index_daily_vol"] = float(idx_r.std())
    out["index_kurtosis"] = float(idx_r.kurt() + 3.0)
    out["index_total_return"] = float(md.index_close.iloc[-1] / md.index_close.iloc[0] - 1.0)
    corr = r.corr().to_numpy()
    out["pairwise_corr_mean"] = float(np.nanmean(corr[np.triu_indices_from(corr, 1)])) \
        if corr.shape[0] > 1 else float("nan")
    if state is not None:
        for i, name in enumerate(REGIMES):
            out[f"regime_share_{name}"] = float((state.regime == i).mean())
        calm_days = state.regime.reindex(close.index) == 0
        out["daily_vol_calm_median"] = float(r[calm_days.to_numpy()].std().median())
        crisis_days = state.regime.reindex(close.index) == 2
        out["daily_vol_crisis_median"] = float(r[crisis_days.to_numpy()].std().median())
    sb = md.southbound.sum(axis=1)
    out["sb_mean_bn"] = float(sb.mean() / 1e9)
    out["sb_median_bn"] = float(sb.median() / 1e9)
    out["sb_max_bn"] = float(sb.max() / 1e9)
    out["sb_min_bn"] = float(sb.min() / 1e9)
    out["sb_net_sell_share"] = float((sb < 0).mean())
    idx_on_sb = idx_r.reindex(sb.index)
    out["sb_corr_same_day_index_return"] = float(sb.corr(idx_on_sb))
    prem = adr_premium(md)
    if prem.shape[1]:
        last5 = prem[prem.index > prem.index[-1] - pd.DateOffset(years=5)]
        v = prem.stack().dropna().to_numpy()
        v5 = last5.stack().dropna().to_numpy()
        out["premium_mean_5y"] = float(v5.mean())
        out["premium_median"] = float(np.median(v))
        out["premium_std"] = float(v.std())
        out["premium_p5"] = float(np.percentile(v, 5))
        out["premium_min"] = float(v.min())
        same = prem[prem.index.isin(md.hk["close"].index)].stack().dropna().to_numpy()
        out["premium_min_hk_open_same_day"] = float(same.min())
        out["premium_std_hk_open_same_day"] = float(same.std())
        out["premium_within_1pct"] = float((np.abs(v) <= 0.01).mean())
    hk_days = close.index
    wd = pd.bdate_range(hk_days[0], hk_days[-1])
    n_years = len(wd) / 261.0
    us_days = md.adr_close.index if len(md.adr_close.index) else md.usdhkd.index
    hk_closed = wd.difference(hk_days)
    us_closed = wd.difference(us_days)
    out["hk_weekday_holidays_per_year"] = len(hk_closed) / n_years
    out["us_weekday_holidays_per_year"] = len(us_closed) / n_years
    out["hk_only_closed_per_year"] = len(hk_closed.difference(us_closed)) / n_years
    out["us_only_closed_per_year"] = len(us_closed.difference(hk_closed)) / n_years
    out["hk_days_without_southbound_per_year"] = len(hk_days.difference(md.southbound.index)) / n_years
    out["hk_days_per_year"] = len(hk_days) / n_years
    return out
