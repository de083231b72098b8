"""One backtest, in the order data flows: load -> align -> features -> rules -> simulate -> stats."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd

from backtest.config import Config
from backtest.data.market import MarketData, Panel
from backtest.errors import ConfigError
from backtest.simulate import Result
from backtest.strategy import StrategyPlan, load_strategy, plan, resolve_params


def load_market(cfg: Config) -> MarketData:
    """The dataset at `data.path`, or the seeded synthetic sample market when no path is given."""
    if cfg.data.path is None:
        from backtest.data.synth import generate

        s = cfg.data.synthetic
        return generate(seed=s.seed, symbols=s.symbols, years=s.years)
    from backtest.data.load import load_market as load_dir

    return load_dir(cfg.data.path)


@dataclass(frozen=True)
class Prepared:
    """Everything checked and ready to simulate: `validate` stops here."""

    cfg: Config
    module: ModuleType
    params: SimpleNamespace
    plan: StrategyPlan
    panel: Panel


def prepare(cfg: Config, market: MarketData | None = None) -> Prepared:
    """Check the strategy against the config and align the data (`market` overrides the config's)."""
    from backtest.data.align import align

    where = cfg.source or "config"
    module = load_strategy(cfg.strategy.name, where)
    params = resolve_params(module, cfg.strategy.params, where)
    strategy_plan = plan(module, params, cfg.execution.fill, where)
    panel = align(market if market is not None else load_market(cfg), cfg.data.max_adr_staleness)
    if panel.shape[0] < 2:
        raise ConfigError(f"{where}: the data has {panel.shape[0]} trading day(s); a backtest needs at least 2")
    return Prepared(cfg, module, params, strategy_plan, panel)


@dataclass(frozen=True)
class RunOutput:
    prepared: Prepared
    features: np.ndarray  # (F, T, N) view of the kernel's (F, N, T) stack, in `prepared.plan.refs` order
    result: Result
    stats: dict  # the strategy's key metrics (backtest.metrics.summary), flat
    seconds: float
    benchmarks: pd.DataFrame | None = None  # daily returns: "index", "equal_weight" (NaN on row 0)
    benchmark_stats: dict | None = None  # name -> return_stats of that benchmark
    event_study: pd.DataFrame | None = None  # backtest.event_study.event_study of the entry rule
    started: str = ""  # local wall-clock time the run started, ISO 8601


def run(cfg: Config, market: MarketData | None = None) -> RunOutput:
    from datetime import datetime, timedelta

    from backtest.event_study import event_study
    from backtest.features import compute_features
    from backtest.metrics import equal_weight_returns, index_returns, return_stats, summary
    from backtest.simulate import simulate

    t0 = time.perf_counter()
    prep = prepare(cfg, market)
    feats = compute_features(prep.panel, prep.plan.refs)
    result = simulate(prep.panel, prep.plan, feats, cfg)
    started = (datetime.now() - timedelta(seconds=time.perf_counter() - t0)).astimezone().isoformat(timespec="seconds")
    panel, risk_free = prep.panel, cfg.report.risk_free  # annual rate; see backtest.metrics
    feats_tn = feats.transpose(0, 2, 1)  # (F, T, N) view of the kernel's (F, N, T) stack
    equity = result.total_equity
    invested = (result.equity - result.cash).sum(axis=1)
    bench = pd.DataFrame({"index": index_returns(panel.series["index_close"]),
                          "equal_weight": equal_weight_returns(panel.fields["close"])}, index=equity.index)
    stats = summary(equity, invested, result.trades, result.orders, bench, risk_free)
    stats["skipped_entries"] = int((result.orders["status"] != "filled").sum())
    bench_stats = {name: return_stats(bench[name].to_numpy()[1:], risk_free) for name in bench.columns}
    events = event_study(feats_tn, prep.plan.entry_rule, prep.plan.entry, panel.fields["open"], panel.fields["close"],
                         panel.symbols, cfg.execution.fill)
    return RunOutput(prep, feats_tn, result, stats, time.perf_counter() - t0, bench, bench_stats, events, started)
