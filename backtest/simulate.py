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
    """Per-bar cash and equity (dates x accounts), shares (dates x symbols), trades and orders.

    Accounts are the symbols in independent mode and one column "portfolio" in portfolio mode.
    """

    cash: pd.DataFrame
    shares: pd.DataFrame
    equity: pd.DataFrame
    trades: pd.DataFrame
    orders: pd.DataFrame
    init_cash: float
    close: pd.DataFrame  # the prices positions are marked at

    def to_vectorbt(self, freq: str = "1D"):
        """A vectorbt Portfolio replaying our exact fills, sizes and fees (`from_orders`), so
        vectorbt's analytics apply; its value equals `equity`."""
        import vectorbt as vbt

        filled = self.orders[self.orders["status"] == "filled"]
        rows = self.close.index.get_indexer(filled["date"])
        cols = self.close.columns.get_indexer(filled["symbol"])
        size = np.full(self.close.shape, np.nan)
        price = np.full(self.close.shape, np.nan)
        fixed_fees = np.zeros(self.close.shape)
        sign = np.where(filled["side"] == "buy", 1.0, -1.0)
        size[rows, cols] = sign * filled["shares"].to_numpy()
        price[rows, cols] = filled["price"].to_numpy()
        fixed_fees[rows, cols] = filled["fees"].to_numpy()
        like = lambda a: pd.DataFrame(a, index=self.close.index, columns=self.close.columns)  # noqa: E731
        shared = list(self.equity.columns) == ["portfolio"]
        return vbt.Portfolio.from_orders(
            self.close, like(size), price=like(price), fixed_fees=like(fixed_fees), init_cash=self.init_cash,
            group_by=True if shared else None, cash_sharing=shared, call_seq="auto" if shared else None, freq=freq)

    @property
    def total_equity(self) -> pd.Series:
        """All accounts together (independent mode: one account per symbol)."""
        return self.equity.sum(axis=1).rename("equity")

    @property
    def total_cash(self) -> pd.Series:
        return self.cash.sum(axis=1).rename("cash")


def cost_model(cfg: Config) -> CostModel:
    c = cfg.costs
    try:
        return CostModel(kind=c.model, flat_pct=c.flat_pct, commission_bps=c.commission_bps,
                         commission_min=c.commission_min)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.source}: [costs] {exc}") from None


def _frozen(a: np.ndarray) -> np.ndarray:
    """`a` as a read-only C-contiguous float64 array: one array type for every kernel input, whoever
    made it (numba compiles a kernel again for a writable, Fortran-order or other-typed argument)."""
    v = np.ascontiguousarray(a, dtype=np.float64).view()
    v.flags.writeable = False
    return v


def kernel_inputs(panel: Panel) -> tuple[np.ndarray, ...]:
    """open, high, low, close, board_lot as symbol-major (N, T) arrays (free views of the panel)."""
    return tuple(_frozen(panel.fields[k].T) for k in ("open", "high", "low", "close", "board_lot"))


def market(panel: Panel, feats: np.ndarray, cfg: Config):
    """The kernel's `Market`: the panel's prices and lots, the (F, N, T) features, the cost table."""
    from backtest.kernels.simulate import Market

    return Market(*kernel_inputs(panel), _frozen(feats), _frozen(cost_table(cost_model(cfg), panel.dates)))


def execution(cfg: Config, stop_loss: float | None = None, take_profit: float | None = None,
              trailing_stop: float | None = None, max_hold: int | None = None):
    """The kernel's `Execution` of a config, with exact types (one compiled signature for every run)."""
    from backtest.kernels.simulate import Execution

    ex, xc = cfg.execution, cfg.exits
    pick = lambda given, default: default if given is None else given  # noqa: E731
    return Execution(int(FILLS[ex.fill]), float(ex.init_cash), float(ex.slippage_bps / 1e4), bool(ex.board_lots),
                     int(ex.max_positions if ex.mode == "portfolio" else 0),
                     float(pick(stop_loss, xc.stop_loss)), float(pick(take_profit, xc.take_profit)),
                     float(pick(trailing_stop, xc.trailing_stop)), int(pick(max_hold, xc.max_hold)))


def simulate(panel: Panel, plan: StrategyPlan, feats: np.ndarray, cfg: Config) -> Result:
    """Run the compiled kernel for one parameter set (feats: (F, N, T), stacked by `plan.refs`)."""
    from backtest.kernels import simulate as nb  # compiles or loads the cached kernel

    f = panel.fields
    ex = cfg.execution
    portfolio = ex.mode == "portfolio"
    cash, shares, equity, trades, orders, ofees = nb.simulate(
        market(panel, feats, cfg), plan.entry, plan.exit, int(plan.rank_slot), float(plan.rank_sign), execution(cfg))
    idx = pd.DatetimeIndex(panel.dates, name="date")
    accounts = ["portfolio"] if portfolio else list(panel.symbols)
    order_log = _orders(orders, ofees, panel)
    return Result(pd.DataFrame(cash.T, index=idx, columns=accounts),
                  pd.DataFrame(shares.T, index=idx, columns=list(panel.symbols)),
                  pd.DataFrame(equity.T, index=idx, columns=accounts),
                  _trades(trades, ofees, panel), order_log, ex.init_cash,
                  pd.DataFrame(f["close"], index=idx, columns=list(panel.symbols), copy=False))


def _trades(tr: np.ndarray, ofees: np.ndarray, panel: Panel) -> pd.DataFrame:
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
    entry_o = tr[:, nb.T_ENTRY_ORDER].astype(np.int64)
    exit_o = tr[:, nb.T_EXIT_ORDER].astype(np.int64)
    for i, kind in enumerate(FEE_KINDS):
        df[f"fee_{kind}"] = ofees[entry_o, i] + np.where(exit_o >= 0, ofees[np.maximum(exit_o, 0), i], 0.0)
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
    df = df.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    df.insert(0, "order_id", np.arange(len(df)))  # chronological: an order's id never depends on later ones
    return df
