"""The simulation kernel: declarative rules evaluated inside one compiled loop (DESIGN §4-§5).

Arrays in, arrays out; no pandas. Arrays are symbol-major, x[j, t] with shape (N, T), so the
per-symbol loops read memory in order (a (T, N) panel stored in Fortran order is such an array
transposed, for free). Timing within a bar, in the order things happen in the market:
  1. open:      orders placed at the previous close for the open fill (exits before entries);
  2. open/intra: stops of positions entered on an earlier bar: stop loss or trailing stop (the
                higher level), then take profit; a bar that opens through a level fills at the open,
                otherwise at the level; the trailing peak then takes this bar's high;
  3. close:     orders for the close fill (next_close placed at the previous close; same_close
                placed now, only for features known at the close);
  4. close:     rules read row t; a time stop fires so that the exit fills `max_hold` bars after
                the entry fill; one fill per symbol per bar.
Within a fill phase exits go first, then entries in rank order (signal strength, then symbol).
A NaN row (suspension, not listed) trades nothing: pending exits wait, pending entries are skipped.

Modes: `max_positions == 0` gives each symbol its own account of `init_cash`, all-in on entry
(vectorbt's `from_signals` per column); `max_positions == K > 0` gives one account of `init_cash`
holding at most K names, each entry sized to 1/K of equity (capped by free cash).

Inputs come in NamedTuples (Market, Execution, the entry/exit `backtest.rules.CompiledRule`,
Track, Logs, Work): numba passes and caches them like the arrays they hold.

Functions that never allocate and are called per column, per bar or per fill (`column`,
`_queue`, `affordable_shares`, `costs.order_fees`, `kernels.rules.rule_value`) are compiled with
`_nrt=False`: numba otherwise adds an atomic reference-count increment and decrement per array
argument per call, on counters that parallel sweep threads share (~10-15 % of the sweep). Their
callers own every array meanwhile.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from backtest.costs import NFEE, order_fees
from backtest.kernels.rules import STACK, candidate_bars, rule_holds

# Order log columns (float64 matrix); side +1 buy, -1 sell.
O_BAR, O_COL, O_SIDE, O_SHARES, O_PRICE, O_VALUE, O_FEES, O_REASON, O_STATUS = range(9)
NORD = 9
# Trade list columns; *_ORDER index the order log (for fees by kind).
(T_COL, T_ENTRY_BAR, T_EXIT_BAR, T_SHARES, T_ENTRY_PRICE, T_EXIT_PRICE, T_ENTRY_FEES, T_EXIT_FEES, T_REASON,
 T_ENTRY_ORDER, T_EXIT_ORDER) = range(11)
NTRD = 11
# Reasons (exit reasons in their priority order when several are due on one bar).
R_STOP_LOSS, R_TRAILING, R_TAKE_PROFIT, R_TIME, R_SIGNAL, R_OPEN, R_ENTRY = range(7)
REASONS = ("stop_loss", "trailing_stop", "take_profit", "time_stop", "exit_signal", "open", "entry_signal")
# Order status.
S_FILLED, S_NO_CASH, S_NO_PRICE, S_NO_SLOT = range(4)
STATUSES = ("filled", "skipped_no_cash", "skipped_no_price", "skipped_no_slot")
# Fill timing.
FILL_NEXT_OPEN, FILL_NEXT_CLOSE, FILL_SAME_CLOSE = range(3)
# Running statistics of a column's equity (`column` fills them; metrics.stats_metrics reads them):
# sums of r, r^2 and min(r, 0)^2 over r_t = eq_t / eq_{t-1} - 1, the smallest and largest r, the
# deepest drawdown, the sum of invested / equity, equity at the first and last bar.
CS_S1, CS_S2, CS_D2, CS_RMIN, CS_RMAX, CS_MDD, CS_INVESTED, CS_EQ0, CS_EQ1 = range(9)
NCS = 9
# Position state columns, one row per symbol.
P_SHARES, P_ENTRY_BAR, P_ENTRY_PX, P_ENTRY_FEES, P_PEAK, P_ENTRY_ORDER = range(6)


class Market(NamedTuple):
    """The panel: prices and board lots (N, T), features (F, N, T), cost table (T, NCOST)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    lot: np.ndarray
    feats: np.ndarray
    costs: np.ndarray


class Execution(NamedTuple):
    """How orders fill and exit (backtest.simulate.execution builds one with exact types, so
    every run shares one compiled signature)."""

    fill: int  # FILL_*
    init_cash: float
    slippage: float  # fraction of price
    use_lots: bool
    max_positions: int  # 0: independent accounts
    stop_loss: float  # fractions; 0: off
    take_profit: float
    trailing_stop: float
    max_hold: int  # bars; 0: off


class Logs(NamedTuple):
    """Trade and order logs (rows NTRD / NORD columns) and each order's fees by kind (NFEE)."""

    trades: np.ndarray
    orders: np.ndarray
    ofees: np.ndarray


class Track(NamedTuple):
    """A column's per-bar cash, shares and equity (T,) and its running statistics (NCS,)."""

    cash: np.ndarray
    shares: np.ndarray
    equity: np.ndarray
    stats: np.ndarray


class Work(NamedTuple):
    """Scratch owned by one thread: fee components (NFEE,) and the rule evaluator's stack."""

    fee: np.ndarray
    stack: np.ndarray


@njit(cache=True, nogil=True)
def _reserve(a, n, extra):
    """`a` with room for rows n .. n + extra (grown outside hot loops: reassigning arrays inside
    them costs numba a reference-count update per iteration)."""
    if n + extra <= a.shape[0]:
        return a
    b = np.empty((max(2 * a.shape[0], n + extra), a.shape[1]), dtype=a.dtype)
    _copy_rows(b, 0, a, n)
    return b


@njit(cache=True, nogil=True, inline="always")
def _copy_rows(dst, at, src, n):
    """dst[at:at + n] = src[:n] as a loop: numba compiles a slice assignment's shape-mismatch error
    message (string formatting, ~2-3 s of every cold start) for each array type it copies."""
    for i in range(n):
        for k in range(src.shape[1]):
            dst[at + i, k] = src[i, k]


@njit(cache=True, nogil=True, _nrt=False)
def affordable_shares(cash, price, lot, cost_row, fee_buf):
    """(shares, fees): the most shares (a multiple of `lot`, or fractional if lot <= 0) whose value
    plus fees fit in cash, and those fees (their components in fee_buf); (0, 0) if none do."""
    if price <= 0.0 or cash <= 0.0:
        return 0.0, 0.0
    if lot <= 0.0:
        shares = cash / price
        while shares > 0.0:
            value = shares * price
            fees = order_fees(value, cost_row, fee_buf)
            if value + fees <= cash:
                return shares, fees
            shares = cash / (price * (1.0 + fees / value)) * (1.0 - 1e-15)
        return 0.0, 0.0
    # Value plus fees grows with the number of lots, so the answer is the largest lot count that
    # fits. First guess: the lots that fit with fees at the rate of the largest order (exact for
    # proportional fees). From there, gallop (1, 2, 4, ... lots) up while counts fit, or down until
    # one fits, then bisect: the usual answer (the guess, or a lot or two off: minimums and
    # rounding) costs two or three pricings, and any gap, even of 10**12 counts beyond 2**53 (an
    # account compounded to 1e20) where a float step is many lots, about a hundred.
    most = np.floor(cash / price / lot)
    if most <= 0.0:
        return 0.0, 0.0
    value = most * lot * price
    fees = order_fees(value, cost_row, fee_buf)
    if value + fees <= cash:
        return most * lot, fees
    n = min(np.floor(cash / (price * lot * (1.0 + fees / value))), most - 1.0)
    lo = 0.0  # a count that fits (0: none known)
    hi = most  # a count that does not fit
    fees_lo = 0.0
    at_lo = False  # fee_buf holds the components of lo's order
    up = n + 1.0 < hi
    c = n + 1.0 if up else n
    step = 1.0
    while lo < c < hi:
        value = c * lot * price
        fees = order_fees(value, cost_row, fee_buf)
        if value + fees <= cash:
            lo, fees_lo, at_lo = c, fees, True
            if not up:
                break
            c = lo + step
            step *= 2.0
        else:
            hi, at_lo = c, False
            if up and lo > 0.0:
                break
            if up:
                up = False
                step = 1.0
            c = hi - step
            step *= 2.0
    while True:
        c = np.floor(0.5 * (lo + hi))
        if not lo < c < hi:
            break
        value = c * lot * price
        fees = order_fees(value, cost_row, fee_buf)
        if value + fees <= cash:
            lo, fees_lo, at_lo = c, fees, True
        else:
            hi, at_lo = c, False
    if lo <= 0.0:
        return 0.0, 0.0
    if not at_lo:
        fees_lo = order_fees(lo * lot * price, cost_row, fee_buf)
    return lo * lot, fees_lo


@njit(cache=True, nogil=True, inline="always")
def _entry_fill(px, px_ok, budget, lot, cost_row, slippage, fee_buf):
    """(shares, price, fees, status) of an entry at `px` plus slippage spending at most `budget`;
    fee_buf holds the fee components of a filled order."""
    buy_px = px * (1.0 + slippage)
    if not px_ok or not buy_px > 0.0:
        return 0.0, buy_px, 0.0, S_NO_PRICE
    qty, fees = affordable_shares(budget, buy_px, lot, cost_row, fee_buf)
    if qty <= 0.0:
        return 0.0, buy_px, 0.0, S_NO_CASH
    return qty, buy_px, fees, S_FILLED


@njit(cache=True, nogil=True, inline="always")
def _log_order(orders, ofees, n, t, j, side, shares, price, fees, reason, status, fee_buf):
    orders[n, O_BAR] = t
    orders[n, O_COL] = j
    orders[n, O_SIDE] = side
    orders[n, O_SHARES] = shares
    orders[n, O_PRICE] = price
    orders[n, O_VALUE] = shares * price
    orders[n, O_FEES] = fees
    orders[n, O_REASON] = reason
    orders[n, O_STATUS] = status
    for i in range(NFEE):
        ofees[n, i] = fee_buf[i] if status == S_FILLED else 0.0


@njit(cache=True, nogil=True, inline="always")
def _log_trade(trades, n, j, entry_bar, exit_bar, shares, entry_px, exit_px, entry_fees, exit_fees, reason,
               entry_order, exit_order):
    trades[n, T_COL] = j
    trades[n, T_ENTRY_BAR] = entry_bar
    trades[n, T_EXIT_BAR] = exit_bar
    trades[n, T_SHARES] = shares
    trades[n, T_ENTRY_PRICE] = entry_px
    trades[n, T_EXIT_PRICE] = exit_px
    trades[n, T_ENTRY_FEES] = entry_fees
    trades[n, T_EXIT_FEES] = exit_fees
    trades[n, T_REASON] = reason
    trades[n, T_ENTRY_ORDER] = entry_order
    trades[n, T_EXIT_ORDER] = exit_order


@njit(cache=True, nogil=True, inline="always")
def stop_fill(o, h, lo, entry_px, peak, stop_loss, trailing_stop, take_profit):
    """(price, reason) of the stop that fills on this bar, or (nan, -1). Levels of 0 are off."""
    level, reason = _low_stop(entry_px, peak, stop_loss, trailing_stop)
    return _stop_hit(o, h, lo, level, reason, entry_px * (1.0 + take_profit) if take_profit > 0.0 else np.inf)


@njit(cache=True, nogil=True, inline="always")
def _low_stop(entry_px, peak, stop_loss, trailing_stop):
    """(level, reason) of the stop below the price: the higher of stop loss and trailing stop, or (-inf, -1)."""
    level = -np.inf
    reason = -1
    if stop_loss > 0.0:
        level = entry_px * (1.0 - stop_loss)
        reason = R_STOP_LOSS
    if trailing_stop > 0.0 and peak * (1.0 - trailing_stop) > level:
        level = peak * (1.0 - trailing_stop)
        reason = R_TRAILING
    return level, reason


@njit(cache=True, nogil=True, inline="always")
def _stop_hit(o, h, lo, level, reason, tp_level):
    """(price, reason) of the stop that fills on a bar (open o, high h, low lo), given the stop
    below (`_low_stop`) and the take-profit level: at the open if it gaps through, else at the level."""
    if reason >= 0 and o <= level:
        return o, reason
    if o >= tp_level:
        return o, R_TAKE_PROFIT
    if reason >= 0 and lo <= level:
        return level, reason
    if h >= tp_level:
        return tp_level, R_TAKE_PROFIT
    return np.nan, -1


@njit(cache=True, nogil=True)
def new_logs(rows):
    """Empty trade and order logs with `rows` rows each."""
    rows = max(rows, 16)
    return np.empty((rows, NTRD)), np.empty((rows, NORD)), np.empty((rows, NFEE))


@njit(cache=True, nogil=True, _nrt=False, error_model="numpy")
def column(j, m, entry, exit_, ex, cand, track, logs, work):
    """Symbol j of Market m trading its own account (independent mode) by the entry and exit rules
    (CompiledRule) and Execution ex: per-bar cash, shares and equity into the (T,) buffers of
    `track`, trades and orders into `logs` (at least T rows each: one order per bar at most).
    Returns how many trades and orders it wrote. `cand` (sorted bars, a superset of those where the
    entry rule holds: `candidate_bars`) lets a flat account skip the others. The equity's running
    statistics go to `track.stats` (CS_*)."""
    return _column(j, m, entry, exit_, ex, cand, False, track, logs, work, False)


@njit(cache=True, nogil=True, _nrt=False, error_model="numpy")
def sweep_column(j, m, entry, exit_, ex, cand, exact, track, logs, work):
    """`column` for a sweep, the same body compiled without logs: adds each bar's change of cash
    and equity into track.cash and track.equity (the totals over symbols of one combination: flat
    bars then cost nothing; track.shares and `logs` are not touched) and returns (closed trades,
    winning closed trades: proceeds after fees above cost, as metrics.trade_counts counts them).
    `exact`: the entry rule holds on every bar of `cand` (its own signals), so it is not read again."""
    return _column(j, m, entry, exit_, ex, cand, exact, track, logs, work, True)


@njit(cache=True, nogil=True, inline="always")
def _column(j, m, entry, exit_, ex, cand, exact, track, logs, work, sweep):
    """The body of `column` and `sweep_column`. `sweep` is a constant of each caller, so numba
    compiles two specialised loops from one source: the sweep's keeps no logs and no per-bar
    state, only the running statistics and the totals' changes. Both callers use numpy's error
    model: a division by zero gives inf or NaN instead of a check before every division (none
    happens on valid inputs).

    Shaped around positions: while flat, the entry rule is read only on candidate bars, and the
    bars up to the entry change nothing (a flat bar returns exactly 0: it adds nothing to the
    running statistics, nor to the sweep's totals); once an entry fills, a loop over the held
    bars with the exit levels fixed at entry (the trailing stop's moves with the peak) runs until
    the position closes."""
    open_, high, low, close, lot, feats, costs = m
    o_j, h_j, l_j, c_j, lot_j = open_[j], high[j], low[j], close[j], lot[j]  # symbol j's rows (views)
    fill, init_cash, slippage, use_lots, _, stop_loss, take_profit, trailing_stop, max_hold = ex
    cash_buf, shares_buf, eq_buf, stats = track
    trades, orders, ofees = logs
    fee_buf, stack = work
    n_t = close.shape[1]
    n_c = cand.shape[0]
    offset = 0 if fill == FILL_SAME_CLOSE else 1  # bars from the rule's row to its order's fill
    at_open = fill == FILL_NEXT_OPEN
    stops = stop_loss > 0.0 or take_profit > 0.0 or trailing_stop > 0.0
    n_tr = 0  # trades logged (sweep: closed trades)
    n_or = 0  # orders logged (sweep: winning closed trades)
    cash = init_cash
    shares = 0.0
    entry_bar = -1
    entry_px = 0.0
    entry_fees = 0.0
    entry_order = -1
    last_close = np.nan
    s1 = 0.0
    s2 = 0.0
    d2 = 0.0
    rmin = np.inf
    rmax = -np.inf
    mdd = 0.0
    invested = 0.0
    eq_peak = cash
    prev_eq = cash
    prev_cash = cash
    eq0 = cash
    ci = 0
    scan = 0  # the first row on which the entry rule may act
    t = 0  # the first bar not yet accounted for
    while t < n_t:
        # Flat: the entry rule acts on its first candidate row from `scan` where it holds; its order
        # fills on bar te, and the bars before it change nothing.
        while ci < n_c and cand[ci] < scan:
            ci += 1
        sig = n_t
        while ci < n_c:
            if exact or rule_holds(feats, entry, cand[ci], j, stack):
                sig = cand[ci]
                break
            ci += 1
        te = min(sig + offset, n_t)
        if te > t:
            if not sweep:
                cash_buf[t:te] = cash
                shares_buf[t:te] = 0.0
                eq_buf[t:te] = cash
            if te > 1:  # these bars return 0: equity is the cash it was at the bar before
                rmin = min(rmin, 0.0)
                rmax = max(rmax, 0.0)
        if te >= n_t:
            break
        t = te
        px_ok = c_j[t] == c_j[t]
        qty, buy_px, fees, status = _entry_fill(o_j[t] if at_open else c_j[t], px_ok, cash,
                                                lot_j[t] if use_lots else 0.0, costs[t], slippage, fee_buf)
        if not sweep:
            _log_order(orders, ofees, n_or, t, j, 1.0, qty, buy_px, fees, R_ENTRY, status, fee_buf)
            n_or += 1
        if status != S_FILLED:  # bar t stays flat; the rule is read again from its close (next_*) or the next bar
            scan = t + 1 - offset
            continue
        cash -= qty * buy_px + fees
        shares = qty
        entry_bar = t
        entry_px = buy_px
        entry_fees = fees
        entry_order = n_or - 1
        last_close = c_j[t]
        peak = buy_px
        lo_level, lo_reason = _low_stop(entry_px, peak, stop_loss, trailing_stop)
        tp_level = entry_px * (1.0 + take_profit) if take_profit > 0.0 else np.inf
        pend = -1  # the reason of the queued exit, which fills at the first bar with a price
        while True:  # bar t's close, held
            if offset == 1 and pend < 0:
                pend = _exit_reason(feats, exit_, t, j, t - entry_bar, max_hold, offset, stack)
            eq = cash + shares * last_close
            prev_cash = _book(sweep, track, t, cash, shares, eq, prev_eq, prev_cash)
            eq_peak, eq0, s1, s2, d2, rmin, rmax, mdd, invested = _bar_stats(
                t, eq, cash, prev_eq, eq_peak, eq0, s1, s2, d2, rmin, rmax, mdd, invested)
            prev_eq = eq
            t += 1
            if t >= n_t:
                break
            # Bar t: a queued exit at the open, else the stops, else a queued exit at the close.
            why = -1
            exit_px = np.nan
            if c_j[t] == c_j[t]:
                last_close = c_j[t]
                if at_open and pend >= 0:
                    why = pend
                    exit_px = o_j[t]
                elif stops:
                    exit_px, why = _stop_hit(o_j[t], h_j[t], l_j[t], lo_level, lo_reason, tp_level)
                    if why < 0 and h_j[t] > peak:
                        peak = h_j[t]
                        if trailing_stop > 0.0:
                            lo_level, lo_reason = _low_stop(entry_px, peak, stop_loss, trailing_stop)
                if why < 0 and not at_open:
                    if offset == 0 and pend < 0:
                        pend = _exit_reason(feats, exit_, t, j, t - entry_bar, max_hold, offset, stack)
                    if pend >= 0:
                        why = pend
                        exit_px = c_j[t]
            elif offset == 0 and pend < 0:
                pend = _exit_reason(feats, exit_, t, j, t - entry_bar, max_hold, offset, stack)
            if why < 0:
                continue
            exit_px *= 1.0 - slippage
            fees = order_fees(shares * exit_px, costs[t], fee_buf)
            if sweep:
                n_tr += 1
                if shares * exit_px - fees > shares * entry_px + entry_fees:
                    n_or += 1
            else:
                _log_order(orders, ofees, n_or, t, j, -1.0, shares, exit_px, fees, why, S_FILLED, fee_buf)
                _log_trade(trades, n_tr, j, entry_bar, t, shares, entry_px, exit_px, entry_fees, fees, why,
                           entry_order, n_or)
                n_or += 1
                n_tr += 1
            cash = cash + (shares * exit_px - fees)
            shares = 0.0
            prev_cash = _book(sweep, track, t, cash, shares, cash, prev_eq, prev_cash)
            eq_peak, eq0, s1, s2, d2, rmin, rmax, mdd, invested = _bar_stats(
                t, cash, cash, prev_eq, eq_peak, eq0, s1, s2, d2, rmin, rmax, mdd, invested)
            prev_eq = cash
            t += 1
            scan = t - offset  # the exit bar's close (next_*) or the next bar
            break
    stats[CS_S1] = s1
    stats[CS_S2] = s2
    stats[CS_D2] = d2
    stats[CS_RMIN] = rmin
    stats[CS_RMAX] = rmax
    stats[CS_MDD] = mdd
    stats[CS_INVESTED] = invested
    stats[CS_EQ0] = eq0
    stats[CS_EQ1] = prev_eq
    if shares > 0.0 and not sweep:
        _log_trade(trades, n_tr, j, entry_bar, -1, shares, entry_px, last_close, entry_fees, 0.0, R_OPEN,
                   entry_order, -1)
        n_tr += 1
    return n_tr, n_or


@njit(cache=True, nogil=True, inline="always")
def _book(sweep, track, t, cash, shares, eq, prev_eq, prev_cash):
    """Bar t into track: its cash, shares and equity (a single run), or the changes of cash and
    equity added to the combination's totals (a sweep). Returns the cash the totals last saw."""
    if sweep:
        if eq != prev_eq:
            track.equity[t] += eq - prev_eq
        if cash != prev_cash:
            track.cash[t] += cash - prev_cash
            prev_cash = cash
    else:
        track.cash[t] = cash
        track.shares[t] = shares
        track.equity[t] = eq
    return prev_cash


@njit(cache=True, nogil=True, inline="always")
def _bar_stats(t, eq, cash, prev_eq, eq_peak, eq0, s1, s2, d2, rmin, rmax, mdd, invested):
    """The running statistics (CS_*) after bar t, of equity eq and cash `cash` (prev_eq: bar t - 1's)."""
    if t == 0:
        eq0 = eq
        eq_peak = eq
    else:
        r = eq / prev_eq - 1.0 if eq != prev_eq else 0.0
        s1 += r
        s2 += r * r
        d2 += min(r, 0.0) ** 2
        rmin = min(rmin, r)
        rmax = max(rmax, r)
    if eq >= eq_peak:
        eq_peak = eq
    else:
        mdd = min(mdd, eq / eq_peak - 1.0)
    if eq != cash:
        invested += (eq - cash) / eq
    return eq_peak, eq0, s1, s2, d2, rmin, rmax, mdd, invested


@njit(cache=True, nogil=True, inline="always")
def _exit_reason(feats, exit_, t, j, held, max_hold, offset, stack):
    """Why a held position exits after row t (time stop before the exit rule), or -1."""
    if max_hold > 0 and held >= max_hold - offset:
        return R_TIME
    if rule_holds(feats, exit_, t, j, stack):
        return R_SIGNAL
    return -1


def simulate(m, entry, exit_, rank_slot, rank_sign, ex):
    """Long-only simulation of one parameter set over Market m (an (N, T) panel; feats (F, N, T)):
    entry and exit rules (CompiledRule), the feature slot and sign ranking same-bar entries
    (portfolio mode; -1: none), Execution ex.

    Returns cash and equity (A, T) with A = N accounts (independent, max_positions == 0) or 1
    (portfolio), shares (N, T), trades (M, NTRD), orders (K, NORD) and their fees by kind (K, NFEE).
    Dispatches in Python, so a run compiles only the mode it uses.
    """
    if ex.max_positions > 0:
        return simulate_portfolio(m, entry, exit_, rank_slot, rank_sign, ex)
    return simulate_independent(m, entry, exit_, ex)


@njit(cache=True, nogil=True)
def simulate_independent(m, entry, exit_, ex):
    """Every symbol its own account (see `column`)."""
    n_s, n_t = m.close.shape
    cash_out = np.empty((n_s, n_t))
    shares_out = np.empty((n_s, n_t))
    equity_out = np.empty((n_s, n_t))
    col = Logs(*new_logs(n_t))
    trades, orders, ofees = new_logs(n_s)
    work = Work(np.zeros(NFEE), np.empty(STACK, dtype=np.int64))
    n_tr = 0
    n_or = 0
    ptr, cand = candidate_bars(m.feats, entry)
    stats = np.empty(NCS)
    for j in range(n_s):
        c_tr, c_or = column(j, m, entry, exit_, ex, cand[ptr[j]:ptr[j + 1]],
                            Track(cash_out[j], shares_out[j], equity_out[j], stats), col, work)
        trades = _reserve(trades, n_tr, c_tr)
        orders = _reserve(orders, n_or, c_or)
        ofees = _reserve(ofees, n_or, c_or)
        _copy_rows(trades, n_tr, col.trades, c_tr)
        for i in range(n_tr, n_tr + c_tr):  # column-local order numbers -> global (no slice `+=`: numba
            trades[i, T_ENTRY_ORDER] += n_or  # compiles a shape-mismatch error message for it, ~2 s)
            if trades[i, T_EXIT_ORDER] >= 0:
                trades[i, T_EXIT_ORDER] += n_or
        _copy_rows(orders, n_or, col.orders, c_or)
        _copy_rows(ofees, n_or, col.ofees, c_or)
        n_tr += c_tr
        n_or += c_or
    return cash_out, shares_out, equity_out, trades[:n_tr], orders[:n_or], ofees[:n_or]


@njit(cache=True, nogil=True)
def simulate_portfolio(m, entry, exit_, r_feat, r_sign, ex):
    """One account holding at most `ex.max_positions` names; bars outer, symbols inner."""
    open_, high, low, close, lot, feats, costs = m
    fill, init_cash, slippage, use_lots, max_positions, stop_loss, take_profit, trailing_stop, max_hold = ex
    stack = np.empty(STACK, dtype=np.int64)
    n_s, n_t = close.shape
    order = np.empty(n_s, dtype=np.int64)
    cash_out = np.empty((1, n_t))
    equity_out = np.empty((1, n_t))
    shares_out = np.empty((n_s, n_t))
    trades, orders, ofees = new_logs(n_s)
    fee_buf = np.zeros(NFEE)
    cash = init_cash
    pos = np.zeros((n_s, 6))
    pend_entry = np.full(n_s, -1, dtype=np.int64)
    pend_exit = np.full(n_s, -1, dtype=np.int64)
    pend_reason = np.zeros(n_s, dtype=np.int64)
    strength = np.zeros(n_s)
    acted = np.zeros(n_s, dtype=np.bool_)
    last_close = np.full(n_s, np.nan)
    n_tr = 0
    n_or = 0
    offset = 0 if fill == FILL_SAME_CLOSE else 1
    for t in range(n_t):
        acted[:] = False
        # At most one fill and one logged skip per symbol per bar, plus the open trades at the end.
        trades = _reserve(trades, n_tr, 2 * n_s)
        orders = _reserve(orders, n_or, 2 * n_s)
        ofees = _reserve(ofees, n_or, 2 * n_s)
        for phase in range(3):
            if phase == 1:
                for j in range(n_s):
                    if pos[j, P_SHARES] == 0.0 or acted[j] or pos[j, P_ENTRY_BAR] >= t or close[j, t] != close[j, t]:
                        continue
                    stop_px, reason = stop_fill(open_[j, t], high[j, t], low[j, t], pos[j, P_ENTRY_PX],
                                                pos[j, P_PEAK], stop_loss, trailing_stop, take_profit)
                    if reason >= 0:
                        cash = _sell(j, t, stop_px * (1.0 - slippage), reason, cash, pos, costs, fee_buf, trades, n_tr,
                                     orders, ofees, n_or)
                        n_tr += 1
                        n_or += 1
                        pend_exit[j] = -1
                        acted[j] = True
                    elif high[j, t] > pos[j, P_PEAK]:
                        pos[j, P_PEAK] = high[j, t]
                continue
            if (phase == 0) == (fill != FILL_NEXT_OPEN):
                continue
            if fill == FILL_SAME_CLOSE:
                n_or = _queue(t, n_t, offset, feats, entry, exit_, r_feat, r_sign, max_hold, max_positions, pos,
                              pend_entry, pend_exit, pend_reason, strength, acted, orders, ofees, n_or, fee_buf, stack,
                              order)
            px = close[:, t] if phase == 2 else open_[:, t]
            held = 0
            for j in range(n_s):
                if pos[j, P_SHARES] > 0.0 and 0 <= pend_exit[j] <= t and not acted[j] and close[j, t] == close[j, t]:
                    cash = _sell(j, t, px[j] * (1.0 - slippage), pend_reason[j], cash, pos, costs, fee_buf, trades,
                                 n_tr, orders, ofees, n_or)
                    n_tr += 1
                    n_or += 1
                    pend_exit[j] = -1
                    acted[j] = True
            equity_ref = cash
            n_due = 0
            for j in range(n_s):
                if pos[j, P_SHARES] > 0.0:
                    held += 1
                    equity_ref += pos[j, P_SHARES] * (px[j] if px[j] == px[j] else last_close[j])
                if pend_entry[j] == t:
                    n_due += 1
            if n_due == 0:
                continue
            due = np.empty(n_due, dtype=np.int64)
            key = np.empty(n_due)
            k = 0
            for j in range(n_s):
                if pend_entry[j] == t:
                    due[k] = j
                    key[k] = -strength[j]
                    k += 1
            for j in due[np.argsort(key, kind="mergesort")]:  # stable: ties keep symbol order
                pend_entry[j] = -1
                px_ok = close[j, t] == close[j, t]
                if px_ok and px[j] * (1.0 + slippage) > 0.0 and held >= max_positions:
                    qty, buy_px, fees, status = 0.0, px[j] * (1.0 + slippage), 0.0, S_NO_SLOT
                else:
                    qty, buy_px, fees, status = _entry_fill(px[j], px_ok, min(cash, equity_ref / max_positions),
                                                            lot[j, t] if use_lots else 0.0, costs[t], slippage, fee_buf)
                if status == S_FILLED:
                    cash -= qty * buy_px + fees
                    pos[j, P_SHARES] = qty
                    pos[j, P_ENTRY_BAR] = t
                    pos[j, P_ENTRY_PX] = buy_px
                    pos[j, P_ENTRY_FEES] = fees
                    pos[j, P_PEAK] = buy_px
                    pos[j, P_ENTRY_ORDER] = n_or
                    acted[j] = True
                    held += 1
                _log_order(orders, ofees, n_or, t, j, 1.0, qty, buy_px, fees, R_ENTRY, status, fee_buf)
                n_or += 1
        if fill != FILL_SAME_CLOSE:
            n_or = _queue(t, n_t, offset, feats, entry, exit_, r_feat, r_sign, max_hold, max_positions, pos,
                          pend_entry, pend_exit, pend_reason, strength, acted, orders, ofees, n_or, fee_buf, stack,
                          order)
        equity = cash
        for j in range(n_s):
            if close[j, t] == close[j, t]:
                last_close[j] = close[j, t]
            shares_out[j, t] = pos[j, P_SHARES]
            if pos[j, P_SHARES] > 0.0:
                equity += pos[j, P_SHARES] * last_close[j]
        cash_out[0, t] = cash
        equity_out[0, t] = equity
    trades = _reserve(trades, n_tr, n_s)
    for j in range(n_s):
        if pos[j, P_SHARES] > 0.0:
            _log_trade(trades, n_tr, j, pos[j, P_ENTRY_BAR], -1, pos[j, P_SHARES], pos[j, P_ENTRY_PX], last_close[j],
                       pos[j, P_ENTRY_FEES], 0.0, R_OPEN, pos[j, P_ENTRY_ORDER], -1)
            n_tr += 1
    return cash_out, shares_out, equity_out, trades[:n_tr], orders[:n_or], ofees[:n_or]


@njit(cache=True, nogil=True, inline="always")
def _exit(t, j, exit_px, reason, cash, shares, entry_bar, entry_px, entry_fees, entry_order, costs, fee_buf,
          trades, n_tr, orders, ofees, n_or):
    """Sell the whole position at `exit_px` (slippage applied): log order n_or and trade n_tr; new cash."""
    fees = order_fees(shares * exit_px, costs[t], fee_buf)
    _log_order(orders, ofees, n_or, t, j, -1.0, shares, exit_px, fees, reason, S_FILLED, fee_buf)
    _log_trade(trades, n_tr, j, entry_bar, t, shares, entry_px, exit_px, entry_fees, fees, reason, entry_order, n_or)
    return cash + (shares * exit_px - fees)


@njit(cache=True, nogil=True)
def _sell(j, t, exit_px, reason, cash, pos, costs, fee_buf, trades, n_tr, orders, ofees, n_or):
    """Portfolio mode: close position j (see `_exit`); returns the new cash."""
    cash = _exit(t, j, exit_px, reason, cash, pos[j, P_SHARES], pos[j, P_ENTRY_BAR], pos[j, P_ENTRY_PX],
                 pos[j, P_ENTRY_FEES], pos[j, P_ENTRY_ORDER], costs, fee_buf, trades, n_tr, orders, ofees, n_or)
    pos[j, P_SHARES] = 0.0
    return cash


@njit(cache=True, nogil=True, _nrt=False)
def _queue(t, n_t, offset, feats, entry, exit_, r_feat, r_sign, max_hold, max_positions, pos, pend_entry, pend_exit,
           pend_reason, strength, acted, orders, ofees, n_or, fee_buf, stack, order):
    """Portfolio mode: read the rules on row t and queue orders for bar t + offset; entries go
    into free slots best-ranked first, the rest are logged as skipped. Returns the order count.
    Never allocates (`order`: an (N,) int64 buffer), so it runs without reference counting."""
    n_s = pos.shape[0]
    held, leaving, queued, n_cand = _read_rules(t, n_t, offset, feats, entry, exit_, r_feat, r_sign, max_hold, pos,
                                                pend_entry, pend_exit, pend_reason, strength, acted, stack)
    free = max_positions - (held - leaving) - queued
    if n_cand <= free:
        return n_or
    k = 0
    for j in range(n_s):  # insertion sort, strongest first; ties keep symbol order
        if pend_entry[j] == t + offset and pos[j, P_SHARES] == 0.0:
            i = k
            while i > 0 and strength[order[i - 1]] < strength[j]:
                order[i] = order[i - 1]
                i -= 1
            order[i] = j
            k += 1
    for i in range(max(free, 0), k):
        j = order[i]
        pend_entry[j] = -1
        _log_order(orders, ofees, n_or, t + offset, j, 1.0, 0.0, np.nan, 0.0, R_ENTRY, S_NO_SLOT, fee_buf)
        n_or += 1
    return n_or


@njit(cache=True, nogil=True, _nrt=False)
def _read_rules(t, n_t, offset, feats, entry, exit_, r_feat, r_sign, max_hold, pos, pend_entry, pend_exit, pend_reason,
                strength, acted, stack):
    """Portfolio mode, row t: queue exits and entries (without the slot limit); returns the
    positions held, leaving and queued, and the new entry candidates. Never allocates (_nrt=False:
    no reference counting per call, see the module docstring)."""
    n_s = pos.shape[0]
    held = 0
    leaving = 0
    queued = 0
    n_cand = 0
    for j in range(n_s):
        if pos[j, P_SHARES] > 0.0:
            held += 1
            if pend_exit[j] < 0:
                reason = _exit_reason(feats, exit_, t, j, t - pos[j, P_ENTRY_BAR], max_hold, offset, stack)
                if reason >= 0:
                    pend_exit[j] = t + offset
                    pend_reason[j] = reason
            if pend_exit[j] >= 0:
                leaving += 1
        elif pend_entry[j] >= 0:
            queued += 1
        elif t + offset < n_t and not (acted[j] and offset == 0):
            if rule_holds(feats, entry, t, j, stack):
                s = r_sign * feats[r_feat, j, t] if r_feat >= 0 else 0.0
                strength[j] = s if s == s else -np.inf
                pend_entry[j] = t + offset
                n_cand += 1
    return held, leaving, queued, n_cand
