"""A plain-Python reference simulator of docs/simulation.md and docs/costs.md (test oracle).

Written from the documents, not from the kernels: no numba, no import of `backtest` at all. Bar by
bar, symbol by symbol, dicts and floats. Inputs are (T, N) arrays indexed [t][j]; signals are
booleans already evaluated on row t (rules read row t; see docs/timing.md).

Within a bar (docs/simulation.md "Order of events within a bar"):
  1. open:  next_open orders placed at the previous close fill (exits, then entries by rank);
  2. stops: positions entered on an earlier bar; stop level = max(stop loss, trailing stop),
            a bar opening through a level fills at the open, else the stop level, then the take
            profit; the trailing peak takes the bar's high afterwards;
  3. close: next_close orders fill; same_close: rules of this row first, then fills;
  4. rules: row t queues exits (time stop before the exit rule) and entries for the next fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

REASONS = ("stop_loss", "trailing_stop", "take_profit", "time_stop", "exit_signal", "open", "entry_signal")
FEE_KINDS = ("stamp", "trading", "sfc", "afrc", "settlement", "commission", "flat")

# docs/costs.md, "The schedule": (effective from, value), percent rates per side.
_HK = {
    "stamp": (("2005-12-19", "0.1"), ("2021-08-01", "0.13"), ("2023-11-17", "0.1")),
    "trading": (("2005-12-19", "0.005"), ("2023-01-01", "0.00565")),
    "sfc": (("2005-12-19", "0.005"), ("2006-12-01", "0.004"), ("2010-10-01", "0.003"), ("2014-11-01", "0.0027")),
    "afrc": (("2005-12-19", "0"), ("2022-01-01", "0.00015")),
    "settle": (("2005-12-19", "0.002"), ("2025-06-30", "0.0042")),
}
_SETTLE_BOUNDS = (("2005-12-19", (Decimal(2), Decimal(100))), ("2025-06-30", (None, None)))


def _in_force(steps, day: str):
    value = None
    for start, v in steps:
        if day >= start:
            value = v
    return value


@dataclass(frozen=True)
class Costs:
    """kind "hk" (dated schedule + commission) or "flat" (flat_pct percent of value, unrounded)."""

    kind: str = "flat"
    flat_pct: float = 0.0
    commission_bps: float = 0.0
    commission_min: float = 0.0

    def fees(self, value: float, day: str) -> dict[str, float]:
        """Fee of each kind (FEE_KINDS) for one order of trade value `value` on ISO date `day`."""
        out = dict.fromkeys(FEE_KINDS, 0.0)
        if not value > 0:
            return out
        if self.kind == "flat":
            out["flat"] = value * (self.flat_pct / 100.0)
            return out
        v = Decimal(value)  # the float's exact value
        cent = Decimal("0.01")

        def pct(name):
            return v * Decimal(_in_force(_HK[name], day)) / 100

        out["stamp"] = float(pct("stamp").quantize(Decimal(1), rounding=ROUND_CEILING))
        for name in ("trading", "sfc", "afrc"):
            out[name] = float(pct(name).quantize(cent, rounding=ROUND_HALF_UP))
        settle = pct("settle")
        lo, hi = _in_force(_SETTLE_BOUNDS, day)
        if lo is not None:
            settle = min(max(settle, lo), hi)
        out["settlement"] = float(settle.quantize(cent, rounding=ROUND_HALF_UP))
        comm = max(v * Decimal(repr(self.commission_bps)) / 10_000, Decimal(repr(self.commission_min)))
        out["commission"] = float(comm.quantize(cent, rounding=ROUND_HALF_UP))
        return out


@dataclass
class Setup:
    """One run: prices (T, N) with NaN bars, signals (T, N) bool, optional rank (T, N) and lots."""

    open: list
    high: list
    low: list
    close: list
    entries: list
    exits: list
    days: list  # ISO dates of the bars
    lot: list | None = None  # (T, N) board lots, or None for fractional shares
    rank: list | None = None  # (T, N) strength; None: every entry ties (symbol order)
    rank_high_first: bool = True
    fill: str = "next_open"
    init_cash: float = 1e6
    slippage: float = 0.0
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing_stop: float = 0.0
    max_hold: int = 0
    costs: Costs = field(default_factory=Costs)
    max_positions: int = 0  # 0: independent accounts


@dataclass
class Position:
    shares: float
    entry_bar: int
    entry_px: float
    entry_fees: dict
    peak: float


@dataclass
class Out:
    cash: list  # (T, A)
    equity: list  # (T, A)
    shares: list  # (T, N)
    orders: list = field(default_factory=list)  # dicts, in the order they happened
    trades: list = field(default_factory=list)  # dicts


def _nan(x) -> bool:
    return x != x


def _total(fees: dict) -> float:
    t = 0.0
    for k in FEE_KINDS:
        t += fees[k]
    return t


def buy_quantity(budget: float, price: float, lot: float | None, costs: Costs, day: str):
    """Most shares (whole lots, or fractional) whose value plus fees fit the budget: (shares, fees)."""
    if not (price > 0 and budget > 0):
        return 0.0, dict.fromkeys(FEE_KINDS, 0.0)
    if lot:
        n = math.floor(budget / price / lot)
        while n > 0:
            fees = costs.fees(n * lot * price, day)
            if n * lot * price + _total(fees) <= budget:
                # docs: the MOST lots that fit, so one more lot must not fit
                return n * lot, fees
            n -= 1
        return 0.0, dict.fromkeys(FEE_KINDS, 0.0)
    rate = costs.flat_pct / 100.0 if costs.kind == "flat" else 0.0
    s = budget / (price * (1.0 + rate))
    for _ in range(200):
        fees = costs.fees(s * price, day)
        if s * price + _total(fees) <= budget:
            return s, fees
        s *= 1.0 - 1e-15 if costs.kind == "flat" else (budget - _total(fees)) / (s * price) * (1 - 1e-15)
    raise AssertionError("fractional sizing did not converge")


def simulate(s: Setup) -> Out:
    """Run the reference simulation; see the module docstring."""
    n_t, n_s = len(s.close), len(s.close[0])
    portfolio = s.max_positions > 0
    n_acc = 1 if portfolio else n_s
    out = Out([[0.0] * n_acc for _ in range(n_t)], [[0.0] * n_acc for _ in range(n_t)],
              [[0.0] * n_s for _ in range(n_t)])
    cash = [s.init_cash] * n_acc
    pos: dict[int, Position] = {}
    pend_entry: dict[int, int] = {}  # symbol -> bar it fills on
    pend_exit: dict[int, tuple[int, int]] = {}  # symbol -> (first bar it may fill, reason)
    strength: dict[int, float] = {}
    last_close = [math.nan] * n_s
    same_close = s.fill == "same_close"
    offset = 0 if same_close else 1
    acc = (lambda j: 0) if portfolio else (lambda j: j)

    def priced(j, t):
        return not _nan(s.close[t][j])

    def log(t, j, side, shares, price, fees, reason, status):
        out.orders.append(dict(bar=t, col=j, side=side, shares=shares, price=price, fees=_total(fees),
                               reason=reason, status=status, **{f"fee_{k}": fees[k] for k in FEE_KINDS}))
        return len(out.orders) - 1

    def sell(t, j, price, reason):
        p = pos.pop(j)
        fees = s.costs.fees(p.shares * price, s.days[t])
        cash[acc(j)] += p.shares * price - _total(fees)
        log(t, j, "sell", p.shares, price, fees, reason, "filled")
        out.trades.append(dict(col=j, entry_bar=p.entry_bar, exit_bar=t, shares=p.shares, entry_price=p.entry_px,
                               exit_price=price, entry_fees=_total(p.entry_fees), exit_fees=_total(fees),
                               reason=reason, **{f"fee_{k}": p.entry_fees[k] + fees[k] for k in FEE_KINDS}))
        pend_exit.pop(j, None)

    def buy(t, j, price, budget):
        buy_px = price * (1.0 + s.slippage)
        zero = dict.fromkeys(FEE_KINDS, 0.0)
        if not priced(j, t) or not buy_px > 0:
            log(t, j, "buy", 0.0, buy_px, zero, "entry_signal", "skipped_no_price")
            return False
        lot = s.lot[t][j] if s.lot is not None else None
        qty, fees = buy_quantity(budget, buy_px, lot, s.costs, s.days[t])
        if qty <= 0:
            log(t, j, "buy", 0.0, buy_px, zero, "entry_signal", "skipped_no_cash")
            return False
        cash[acc(j)] -= qty * buy_px + _total(fees)
        pos[j] = Position(qty, t, buy_px, fees, buy_px)
        log(t, j, "buy", qty, buy_px, fees, "entry_signal", "filled")
        return True

    def exit_reason(t, j):
        held = t - pos[j].entry_bar
        if s.max_hold > 0 and held + offset >= s.max_hold:  # the exit fills max_hold bars after the entry
            return "time_stop"
        if s.exits[t][j]:
            return "exit_signal"
        return None

    def read_rules(t, acted):
        """Row t: queue exits of held names and entries of flat ones for bar t + offset; in
        portfolio mode entries beyond the free slots (best-ranked first) are logged skipped."""
        fill_bar = t + offset
        new = []
        for j in range(n_s):
            if j in pos:
                if j not in pend_exit:
                    why = exit_reason(t, j)
                    if why:
                        pend_exit[j] = (fill_bar, why)
            elif j not in pend_entry and fill_bar < n_t and not (same_close and j in acted):
                if s.entries[t][j]:
                    pend_entry[j] = fill_bar
                    new.append(j)
                    v = s.rank[t][j] if s.rank is not None else 0.0
                    v = v if s.rank_high_first else -v
                    strength[j] = -math.inf if _nan(v) else v
        if not portfolio:
            return
        staying = sum(1 for j in pos if j not in pend_exit)
        free = s.max_positions - staying - (len(pend_entry) - len(new))
        if len(new) <= free:
            return
        for j in sorted(new, key=lambda j: -strength[j])[max(free, 0):]:  # sorted() is stable
            del pend_entry[j]
            log(fill_bar, j, "buy", 0.0, math.nan, dict.fromkeys(FEE_KINDS, 0.0), "entry_signal", "skipped_no_slot")

    def fill_phase(t, prices, acted):
        for j in range(n_s):
            if j in pos and j in pend_exit and pend_exit[j][0] <= t and j not in acted and priced(j, t):
                sell(t, j, prices[j] * (1.0 - s.slippage), pend_exit[j][1])
                acted.add(j)
        due = [j for j in range(n_s) if pend_entry.get(j) == t]
        if not due:
            return
        if not portfolio:
            for j in due:
                del pend_entry[j]
                if buy(t, j, prices[j], cash[j]):
                    acted.add(j)
            return
        # sizing: 1/K of equity marked at this fill's prices (last close where there is none)
        equity = cash[0]
        for j, p in pos.items():
            equity += p.shares * (last_close[j] if _nan(prices[j]) else prices[j])
        held = len(pos)
        for j in sorted(due, key=lambda j: -strength[j]):
            del pend_entry[j]
            if priced(j, t) and prices[j] * (1 + s.slippage) > 0 and held >= s.max_positions:
                log(t, j, "buy", 0.0, prices[j] * (1 + s.slippage), dict.fromkeys(FEE_KINDS, 0.0), "entry_signal",
                    "skipped_no_slot")
                continue
            if buy(t, j, prices[j], min(cash[0], equity / s.max_positions)):
                acted.add(j)
                held += 1

    for t in range(n_t):
        acted: set[int] = set()
        if not portfolio:
            for j in range(n_s):  # independent accounts mark at the close known so far
                if priced(j, t):
                    last_close[j] = s.close[t][j]
        if s.fill == "next_open":
            fill_phase(t, [s.open[t][j] for j in range(n_s)], acted)
        for j in list(pos):  # intrabar stops
            p = pos[j]
            if j in acted or p.entry_bar >= t or not priced(j, t):
                continue
            stop, why = -math.inf, None
            if s.stop_loss > 0:
                stop, why = p.entry_px * (1 - s.stop_loss), "stop_loss"
            if s.trailing_stop > 0 and p.peak * (1 - s.trailing_stop) > stop:
                stop, why = p.peak * (1 - s.trailing_stop), "trailing_stop"
            tp = p.entry_px * (1 + s.take_profit) if s.take_profit > 0 else math.inf
            o, h, lo = s.open[t][j], s.high[t][j], s.low[t][j]
            hit = None
            if why and o <= stop:
                hit = (o, why)
            elif o >= tp:
                hit = (o, "take_profit")
            elif why and lo <= stop:
                hit = (stop, why)
            elif h >= tp:
                hit = (tp, "take_profit")
            if hit:
                sell(t, j, hit[0] * (1 - s.slippage), hit[1])
                acted.add(j)
            else:
                p.peak = max(p.peak, h)
        if s.fill != "next_open":
            if same_close:
                read_rules(t, acted)
            fill_phase(t, [s.close[t][j] for j in range(n_s)], acted)
        if not same_close:
            read_rules(t, acted)
        if portfolio:
            for j in range(n_s):
                if priced(j, t):
                    last_close[j] = s.close[t][j]
        for a in range(n_acc):
            out.cash[t][a] = cash[a]
            out.equity[t][a] = cash[a]
        for j, p in pos.items():
            out.shares[t][j] = p.shares
            out.equity[t][acc(j)] += p.shares * last_close[j]
    for j in sorted(pos):
        p = pos[j]
        out.trades.append(dict(col=j, entry_bar=p.entry_bar, exit_bar=-1, shares=p.shares, entry_price=p.entry_px,
                               exit_price=last_close[j], entry_fees=_total(p.entry_fees), exit_fees=0.0,
                               reason="open", **{f"fee_{k}": p.entry_fees[k] for k in FEE_KINDS}))
    return out
