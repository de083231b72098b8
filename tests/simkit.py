"""Drive the engine from plain (T, N) arrays through its stable Python layer.

Entry and exit signals (and an optional rank) become features of a tiny strategy whose rules are
`feature >= 0.5`; `backtest.strategy.plan` compiles them and `backtest.simulate.simulate` runs
them with the given feature values. No kernel is called directly, so kernel calling conventions
may change freely underneath."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from backtest.config import Config, CostConfig, ExecutionConfig, ExitConfig, StrategyConfig
from backtest.costs import CostModel
from backtest.data.market import Panel
from backtest.rules import feature
from backtest.simulate import Result, simulate
from backtest.strategy import plan

# Three price features (known at the close, so every fill is allowed) stand for the signal arrays.
ENTRY, EXIT, RANK = feature("ret", window=1), feature("ret", window=2), feature("ret", window=3)


def dates(n, start="2024-01-02"):
    return np.busday_offset(np.datetime64(start, "D"), np.arange(n), roll="forward")


def strategy(rank: str | None = None) -> SimpleNamespace:
    """A strategy module: enter when ENTRY >= 0.5, exit when EXIT >= 0.5, rank by RANK if `rank`
    is "high_first"/"low_first" (else the default: the entry condition's feature, high first)."""
    mod = SimpleNamespace(NAME="arrays", HELP="signals given as arrays", PARAMS=(),
                          entry=lambda p: ENTRY >= 0.5, exit=lambda p: EXIT >= 0.5)
    if rank is not None:
        mod.rank = lambda p: (RANK, rank)
    return mod


def panel(o, h, l, c, lot=None, start="2024-01-02") -> Panel:
    n_t, n_s = c.shape
    lot = np.ones(c.shape) if lot is None else np.asarray(lot, dtype=np.float64)
    lot = np.broadcast_to(lot.reshape(-1, 1) if lot.ndim == 1 else lot, c.shape)
    fields = {k: np.asfortranarray(np.asarray(a, dtype=np.float64)) for k, a in
              (("open", o), ("high", h), ("low", l), ("close", c), ("board_lot", lot))}
    return Panel(dates=dates(n_t, start).astype("datetime64[ns]"), symbols=tuple(f"S{j:02d}" for j in range(n_s)),
                 fields=fields, series={}, meta=pd.DataFrame())


def config(*, fill="next_open", cash=1e6, slippage=0.0, stop_loss=0.0, take_profit=0.0, trailing_stop=0.0,
           max_hold=0, costs: CostModel | None = None, max_positions=0, board_lots=False) -> Config:
    costs = costs or CostModel(kind="flat")
    return Config(
        strategy=StrategyConfig(name="arrays"),
        execution=ExecutionConfig(mode="portfolio" if max_positions else "independent",
                                  max_positions=max_positions or 10, fill=fill, init_cash=float(cash),
                                  slippage_bps=slippage * 1e4, board_lots=board_lots),
        exits=ExitConfig(stop_loss=stop_loss, take_profit=take_profit, trailing_stop=trailing_stop, max_hold=max_hold),
        costs=CostConfig(model=costs.kind, flat_pct=costs.flat_pct, commission_bps=costs.commission_bps,
                         commission_min=costs.commission_min),
        source="<tests.simkit>")


def run(o, h, l, c, entries, exits=None, *, lot=None, rank=None, rank_order="high_first", fill="next_open",
        cash=1e6, slippage=0.0, stop_loss=0.0, take_profit=0.0, trailing_stop=0.0, max_hold=0, costs=None,
        max_positions=0, start="2024-01-02") -> Result:
    """Simulate (T, N) (or (T,)) prices with boolean entry/exit signals read on row t."""
    o, h, l, c = (np.asarray(a, dtype=np.float64) for a in (o, h, l, c))
    if c.ndim == 1:
        o, h, l, c = (a[:, None] for a in (o, h, l, c))
    entries = np.asarray(entries, dtype=bool).reshape(c.shape)
    exits = np.zeros(c.shape, bool) if exits is None else np.asarray(exits, dtype=bool).reshape(c.shape)
    mod = strategy(rank_order if rank is not None else None)
    sp = plan(mod, SimpleNamespace(), fill, "tests.simkit")
    values = {ENTRY: entries.astype(np.float64), EXIT: exits.astype(np.float64)}
    if rank is not None:
        values[RANK] = np.asarray(rank, dtype=np.float64).reshape(c.shape)
    feats = np.ascontiguousarray(np.stack([values[ref].T for ref in sp.refs]))
    cfg = config(fill=fill, cash=cash, slippage=slippage, stop_loss=stop_loss, take_profit=take_profit,
                 trailing_stop=trailing_stop, max_hold=max_hold, costs=costs, max_positions=max_positions,
                 board_lots=lot is not None)
    return simulate(panel(o, h, l, c, lot, start), sp, feats, cfg)
