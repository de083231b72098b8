"""The benchmarks' inputs: a seeded random market of any size, the §8 reference sweep on it, signal panels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SEED = 20261122

# §8 reference sweep: bars x symbols x combinations, and the flat cost standing in for HK costs in
# the like-for-like comparison with vectorbt (which has no stamp-duty rounding or board lots).
REF_T, REF_N, REF_P = 2520, 50, 500
FLAT_PCT = 0.15  # percent per order, about the HK schedule's 0.143 % (stamp 0.10, levies, 3 bps commission)

_F = f"{REF_T}x{REF_N}"
_S8 = f"{REF_T}x{REF_N}x{REF_P}"


def bench_panel(n_t: int = REF_T, n_s: int = REF_N, seed: int = SEED):
    """A seeded random market as an aligned Panel (any number of symbols, unlike the sample
    market's 30): a common factor with calm and stressed regimes, Student-t returns, and an
    aggregate southbound flow that spikes after market sell-offs, so dip-and-flow rules trade.
    No missing values (so vectorbt, which drops exits on missing bars, does the same work)."""
    import pandas as pd

    from backtest.data.market import Panel

    rng = np.random.default_rng(seed)
    dates = np.busday_offset(np.datetime64("2016-01-04", "D"), np.arange(n_t), roll="forward")
    regime = np.ones(n_t)
    stressed = False
    for t in range(n_t):
        if rng.random() < (0.04 if stressed else 0.01):
            stressed = not stressed
        regime[t] = 2.2 if stressed else 1.0
    mkt = rng.standard_t(4, n_t) / np.sqrt(2) * 0.012 * regime
    beta = rng.uniform(0.8, 1.3, n_s)
    idio = rng.standard_t(4, (n_t, n_s)) / np.sqrt(2) * rng.uniform(0.015, 0.022, n_s) * regime[:, None]
    close = 50 * np.exp(np.cumsum(mkt[:, None] * beta + idio + 0.0002, axis=0))
    open_ = close * np.exp(rng.normal(0, 0.008, (n_t, n_s)) * regime[:, None])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, (n_t, n_s))) * regime[:, None])
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, (n_t, n_s))) * regime[:, None])
    m5 = np.convolve(mkt, np.ones(5))[:n_t]
    sb = 4e9 + 2e9 * rng.standard_normal(n_t) + 2.5e11 * np.maximum(-m5, 0.0)
    f = np.asfortranarray
    nan = np.full((n_t, n_s), np.nan)
    fields = {"open": f(open_), "high": f(high), "low": f(low), "close": f(close),
              "volume": f(np.full((n_t, n_s), 1e6)), "turnover": f(close * 1e6),
              "board_lot": f(np.full((n_t, n_s), 100.0)), "sb_net_buy": f(nan), "adr_close": f(nan),
              "adr_premium": f(nan), "adr_staleness": f(nan)}
    series = {"sb_net_buy": sb, "sb_net_buy_sh": sb / 2, "sb_net_buy_sz": sb / 2,
              "index_close": 100 * np.exp(np.cumsum(mkt)), "usdhkd": np.full(n_t, 7.8)}
    syms = tuple(f"B{j:03d}" for j in range(n_s))
    meta = pd.DataFrame({"name": syms, "board_lot": 100, "adr_ticker": "", "adr_ratio": np.nan}, index=list(syms))
    return Panel(dates, syms, fields, series, meta, "BENCH", f"bench-{n_t}x{n_s}-{seed}", "bench_panel")


def sweep_case(n_t: int = REF_T, n_s: int = REF_N, n_p: int = REF_P, costs: str = "hk"):
    """The §8 reference sweep (configs/dip_sweep.toml: 10 dips x 10 flow z-scores x 5 holding
    periods, stop loss 10 %, take profit 20 %) on `bench_panel(n_t, n_s)`, through the production
    path (compile_sweep, make_inputs). n_p < 500 takes evenly spaced combinations of the grid,
    n_p > 500 repeats the grid in order (each copy the same work as the first).
    costs "hk": the config's HK schedule and board lots; "flat": FLAT_PCT per order, no lots
    (exactly what vectorbt models). Returns (Inputs, SweepPlan)."""
    from backtest.config import load_config
    from backtest.grid import build_grid
    from backtest.pipeline import Prepared
    from backtest.strategy import load_strategy, plan, resolve_params
    from backtest.sweep import compile_sweep, make_inputs

    cfg = load_config(CONFIGS / "dip_sweep.toml")
    # §8 defines the reference sweep in independent mode (the config ships in portfolio mode, §5)
    cfg = dataclasses.replace(cfg, execution=dataclasses.replace(cfg.execution, mode="independent"))
    if costs == "flat":
        cfg = dataclasses.replace(
            cfg, costs=dataclasses.replace(cfg.costs, model="flat", flat_pct=FLAT_PCT, commission_bps=0.0,
                                           commission_min=0.0),
            execution=dataclasses.replace(cfg.execution, board_lots=False))
    module = load_strategy(cfg.strategy.name)
    params = resolve_params(module, cfg.strategy.params)
    prep = Prepared(cfg, module, params, plan(module, params, cfg.execution.fill), bench_panel(n_t, n_s))
    sp = compile_sweep(prep, build_grid(cfg, module))
    n = sp.exits.shape[0]
    if n_p > n:  # the grid again and again, in order (np.unique below would keep one copy)
        sp = sp.take(np.arange(n_p) % n)
    elif n_p < n:
        sp = sp.take(np.unique(np.linspace(0, n - 1, n_p).round().astype(np.int64)))
    return make_inputs(prep, sp), sp


def _signal_panel(n_t: int, n_s: int, seed: int = SEED):
    """OHLC and boolean entry/exit signals (T, N) for single-run engine benchmarks, as in
    tests/test_vectorbt_agreement.py: no bar has both signals."""
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, size=(n_t, n_s)) * 0.025
    c = 100 * np.exp(np.cumsum(r, 0))
    o = c * np.exp(rng.normal(0, 0.012, (n_t, n_s)))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.012, (n_t, n_s))))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.012, (n_t, n_s))))
    en = rng.random((n_t, n_s)) < 0.05
    ex = (rng.random((n_t, n_s)) < 0.05) & ~en
    return o, h, lo, c, en, ex
