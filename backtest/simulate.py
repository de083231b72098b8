"""Pandas-facing side of the simulation: build kernel inputs from a Panel and a plan, label outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from backtest.config import Config
from backtest.costs import CostModel, cost_table
from backtest.data.market import Panel
from backtest.errors import ConfigError
from backtest.strategy import StrategyPlan

FILLS = {"next_open": 0, "next_close": 1, "same_close": 2}
FEE_KINDS = ("stamp", "trading", "sfc", "afrc", "settlement", "commission", "flat")


@dataclass(frozen=True)
class Result:
    """Per-bar cash, shares, equity (dates x symbols), the trade list and the order log."""

    cash: pd.DataFrame
    shares: pd.DataFrame
    equity: pd.DataFrame
    trades: pd.DataFrame
    orders: pd.DataFrame
    init_cash: float

    @property
    def total_equity(self) -> pd.Series:
        """All accounts together (independent mode: one account per symbol)."""
        return self.equity.sum(axis=1).rename("equity")


def cost_model(cfg: Config) -> CostModel:
    c = cfg.costs
    try:
        return CostModel(kind=c.model, flat_pct=c.flat_pct, commission_bps=c.commission_bps,
                         commission_min=c.commission_min)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.source}: [costs] {exc}") from None


def simulate(panel: Panel, plan: StrategyPlan, feats: np.ndarray, cfg: Config) -> Result:
    """Run the compiled kernel for one parameter set (features already stacked by `plan.refs`)."""
    from backtest.kernels import simulate as nb  # compiles or loads the cached kernel

    f = panel.fields
    ex, xc = cfg.execution, cfg.exits
    costs = cost_table(cost_model(cfg), panel.dates)
    cash, shares, equity, trades, orders, ofees = nb.simulate_independent(
        f["open"], f["high"], f["low"], f["close"], f["board_lot"], feats,
        plan.entry.feat, plan.entry.op, plan.entry.thr, plan.entry.k,
        plan.exit.feat, plan.exit.op, plan.exit.thr, plan.exit.k,
        FILLS[ex.fill], ex.init_cash, ex.slippage_bps / 1e4,
        xc.stop_loss, xc.take_profit, xc.trailing_stop, xc.max_hold, costs, ex.board_lots)
    idx = pd.DatetimeIndex(panel.dates, name="date")
    cols = list(panel.symbols)
    frame = lambda a: pd.DataFrame(a, index=idx, columns=cols)  # noqa: E731
    return Result(frame(cash), frame(shares), frame(equity), _trades(trades, panel),
                  _orders(orders, ofees, panel), ex.init_cash)


def _trades(tr: np.ndarray, panel: Panel) -> pd.DataFrame:
    from backtest.kernels import simulate as nb

    dates = pd.DatetimeIndex(panel.dates)
    exit_bar = tr[:, nb.T_EXIT_BAR].astype(np.int64)
    closed = exit_bar >= 0
    shares = tr[:, nb.T_SHARES]
    cost = shares * tr[:, nb.T_ENTRY_PRICE] + tr[:, nb.T_ENTRY_FEES]
    proceeds = shares * tr[:, nb.T_EXIT_PRICE] - tr[:, nb.T_EXIT_FEES]
    df = pd.DataFrame({
        "symbol": np.asarray(panel.symbols, dtype=object)[tr[:, nb.T_COL].astype(np.int64)],
        "entry_date": dates[tr[:, nb.T_ENTRY_BAR].astype(np.int64)],
        "exit_date": pd.DatetimeIndex(np.where(closed, dates.values[np.maximum(exit_bar, 0)], np.datetime64("NaT"))),
        "shares": shares,
        "entry_price": tr[:, nb.T_ENTRY_PRICE],
        "exit_price": tr[:, nb.T_EXIT_PRICE],
        "entry_fees": tr[:, nb.T_ENTRY_FEES],
        "exit_fees": tr[:, nb.T_EXIT_FEES],
        "pnl": proceeds - cost,
        "return": proceeds / cost - 1.0,
        "bars": np.where(closed, exit_bar - tr[:, nb.T_ENTRY_BAR], len(dates) - 1 - tr[:, nb.T_ENTRY_BAR]),
        "reason": np.asarray(nb.REASONS, dtype=object)[tr[:, nb.T_REASON].astype(np.int64)],
    })
    return df.sort_values(["entry_date", "symbol"], kind="stable").reset_index(drop=True)


def _orders(od: np.ndarray, fees: np.ndarray, panel: Panel) -> pd.DataFrame:
    from backtest.kernels import simulate as nb

    df = pd.DataFrame({
        "date": pd.DatetimeIndex(panel.dates)[od[:, nb.O_BAR].astype(np.int64)],
        "symbol": np.asarray(panel.symbols, dtype=object)[od[:, nb.O_COL].astype(np.int64)],
        "side": np.where(od[:, nb.O_SIDE] > 0, "buy", "sell"),
        "shares": od[:, nb.O_SHARES],
        "price": od[:, nb.O_PRICE],
        "value": od[:, nb.O_VALUE],
        "fees": od[:, nb.O_FEES],
        "reason": np.asarray(nb.REASONS, dtype=object)[od[:, nb.O_REASON].astype(np.int64)],
        "status": np.asarray(nb.STATUSES, dtype=object)[od[:, nb.O_STATUS].astype(np.int64)],
    })
    for i, kind in enumerate(FEE_KINDS):
        df[f"fee_{kind}"] = fees[:, i]
    return df.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
