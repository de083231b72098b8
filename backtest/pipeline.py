"""One backtest, in the order data flows: load -> align -> features -> rules -> simulate -> stats."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd

from backtest.config import Config
from backtest.data.market import MarketData, Panel
from backtest.errors import ConfigError, UserError
from backtest.metrics import first_tradable, live_accounts
from backtest.simulate import Result
from backtest.strategy import StrategyPlan, load_strategy, plan, resolve_params


def load_market(cfg: Config) -> MarketData:
    """The dataset at `data.path`, or the seeded synthetic sample market when no path is given."""
    if cfg.data.path is None:
        from backtest.data.synth_cache import generate_cached

        s = cfg.data.synthetic
        return generate_cached(seed=s.seed, symbols=s.symbols, years=s.years)
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


def prepare(cfg: Config, market: MarketData | None = None, panel: Panel | None = None) -> Prepared:
    """Check the strategy against the config and align the data (`market` overrides the config's;
    `panel`: that data already aligned for the same [data] settings, e.g. by an earlier prepare)."""
    from backtest.data.align import align

    where = cfg.source or "config"
    module = load_strategy(cfg.strategy.name, where)
    params = resolve_params(module, cfg.strategy.params, where)
    strategy_plan = plan(module, params, cfg.execution.fill, where)
    if panel is None:
        panel = align(market if market is not None else load_market(cfg), cfg.data.max_adr_staleness)
    if panel.shape[0] < 2:
        raise ConfigError(f"{where}: the data has {panel.shape[0]} trading day(s); a backtest needs at least 2")
    _check_run(cfg, module, panel, where)
    return Prepared(cfg, module, params, strategy_plan, panel)


def _check_run(cfg: Config, module: ModuleType, panel: Panel, where: str) -> None:
    """What the simulation and the sweep would refuse, checked before any work (one path for every command)."""
    from backtest.costs import cost_table
    from backtest.grid import build_grid
    from backtest.simulate import cost_model

    try:
        cost_table(cost_model(cfg), panel.dates)
    except ConfigError:
        raise
    except UserError as exc:
        raise ConfigError(f"{where}: costs.model = {cfg.costs.model!r}: {exc} (data: {panel.source or 'sample market'})") from None
    if cfg.sweep.grid:
        build_grid(cfg, module)


@dataclass(frozen=True)
class RunOutput:
    prepared: Prepared
    features: np.ndarray  # (F, T, N) view of the kernel's (F, N, T) stack, in `prepared.plan.refs` order
    result: Result
    stats: dict  # the strategy's key metrics (backtest.metrics.summary), flat
    seconds: float
    benchmarks: pd.DataFrame | None = None  # daily returns: "index", "equal_weight", "index_at_exposure" (NaN on row 0)
    benchmark_stats: dict | None = None  # name -> return_stats of that benchmark
    event_study: pd.DataFrame | None = None  # backtest.event_study.event_study of the entry rule
    started: str = ""  # local wall-clock time the run started, ISO 8601
    accounts: pd.DataFrame | None = None  # backtest.metrics.live_accounts: the capital that exists, per bar
    per_symbol: pd.DataFrame | None = None  # independent mode: backtest.metrics.symbol_results
    warnings: tuple[str, ...] = ()  # what the reader of the figures must know (e.g. a feature with no data)


def run(cfg: Config, market: MarketData | None = None, prepared: Prepared | None = None,
        features: np.ndarray | None = None) -> RunOutput:
    """One backtest; `prepared` and `features` (F, N, T), when given, skip `prepare` and
    `compute_features` (backtest.api.simulate_signals brings its own)."""
    from datetime import datetime, timedelta

    from backtest.event_study import event_study
    from backtest.features import compute_features
    from backtest.metrics import (equal_weight_returns, index_returns, return_stats, summary, symbol_distribution,
                                  symbol_results)
    from backtest.simulate import simulate

    t0 = time.perf_counter()
    prep = prepared or prepare(cfg, market)
    feats = compute_features(prep.panel, prep.plan.refs) if features is None else features
    result = simulate(prep.panel, prep.plan, feats, cfg)
    started = (datetime.now() - timedelta(seconds=time.perf_counter() - t0)).astimezone().isoformat(timespec="seconds")
    panel, risk_free = prep.panel, cfg.report.risk_free  # annual rate; see backtest.metrics
    feats_tn = feats.transpose(0, 2, 1)  # (F, T, N) view of the kernel's (F, N, T) stack
    live = accounts(result, panel)
    bench = pd.DataFrame({"index": index_returns(panel.series["index_close"]),
                          "equal_weight": equal_weight_returns(panel.fields["close"])}, index=live.index)
    # The index held at the strategy's average exposure (the rest in cash at 0): what the same
    # capital at work would have earned in the market, rebalanced daily.
    bench["index_at_exposure"] = float(np.nanmean(live["exposure"].to_numpy())) * bench["index"]
    capital = result.init_cash * int((first_bars(result, panel) < len(panel.dates)).sum())
    stats = summary(live["equity"], live["invested"], result.trades, result.orders, bench, risk_free,
                    returns=live["return"].to_numpy(), capital=capital)
    stats["skipped_entries"] = int((result.orders["status"] != "filled").sum())
    per_symbol = None
    if cfg.execution.mode == "independent":
        per_symbol = symbol_results(result.equity, result.cash, result.trades, first_bars(result, panel), risk_free)
        stats.update(symbol_distribution(per_symbol))
    years = stats["years"]
    bench_stats = {name: return_stats(bench[name].to_numpy()[1:], risk_free, years=years) for name in bench.columns}
    events = event_study(feats_tn, prep.plan.entry_rule, prep.plan.entry, panel.fields["open"], panel.fields["close"],
                         panel.symbols, cfg.execution.fill)
    return RunOutput(prep, feats_tn, result, stats, time.perf_counter() - t0, bench, bench_stats, events, started,
                     live, per_symbol, empty_features(prep.plan.refs, feats))


def empty_features(refs: list, feats: np.ndarray) -> tuple[str, ...]:
    """One warning per feature of the rules that has no value anywhere in the data (e.g. per-stock
    southbound flows in a dataset that publishes only the aggregate): its conditions never hold,
    so a run with few or no trades says why."""
    return tuple(f"feature {ref} has no value on any bar or symbol of this dataset: conditions on it never hold"
                 for ref, x in zip(refs, feats) if not np.isfinite(x).any())


def first_bars(result: Result, panel: Panel) -> np.ndarray:
    """Per account, the bar it exists from: its symbol's first tradable bar (independent mode) or
    bar 0 (the portfolio's one account)."""
    if list(result.equity.columns) == ["portfolio"]:
        return np.zeros(1, dtype=np.int64)
    return first_tradable(panel.fields["close"])


def accounts(result: Result, panel: Panel) -> pd.DataFrame:
    """`backtest.metrics.live_accounts` of a run: the capital that exists, bar by bar."""
    return live_accounts(result.equity, result.cash, first_bars(result, panel))


def whole_numbers(frame: pd.DataFrame, board_lots: bool) -> pd.DataFrame:
    """A trade list or order log with its whole numbers as integers, for the CSV files: `bars`
    always, `shares` when they are board lots (fractional shares stay floats)."""
    out = frame.copy()
    if "bars" in out:
        out["bars"] = out["bars"].astype(np.int64)
    if board_lots:
        out["shares"] = np.round(out["shares"].to_numpy()).astype(np.int64)
    return out
