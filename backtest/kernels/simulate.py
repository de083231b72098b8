"""The simulation kernel: declarative rules evaluated inside one compiled loop (DESIGN §4-§5).

Arrays in, arrays out; no pandas. Timing within a bar, in the order things happen in the market:
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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtest.costs import NFEE, order_fees

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
# Position state columns, one row per symbol.
P_SHARES, P_ENTRY_BAR, P_ENTRY_PX, P_ENTRY_FEES, P_PEAK, P_ENTRY_ORDER = range(6)


@njit(cache=True, nogil=True)
def rule_holds(feats, feat, op, thr, k, t, j):
    """At least k conditions hold on row t of column j; NaN never holds; k = 0 is 'no rule'."""
    if k == 0:
        return False
    n = 0
    for c in range(feat.shape[0]):
        x = feats[feat[c], t, j]
        if x != x:
            continue
        o = op[c]
        if (o == 0 and x <= thr[c]) or (o == 1 and x >= thr[c]) or (o == 2 and x < thr[c]) or (o == 3 and x > thr[c]):
            n += 1
    return n >= k


@njit(cache=True, nogil=True)
def _grow(a, n):
    if n < a.shape[0]:
        return a
    b = np.empty((a.shape[0] * 2, a.shape[1]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def affordable_shares(cash, price, lot, cost_row, fee_buf):
    """Most shares (a multiple of `lot`, or fractional if lot <= 0) whose value plus fees fit in cash."""
    if price <= 0.0 or cash <= 0.0:
        return 0.0
    shares = cash / price
    if lot > 0.0:
        shares = np.floor(shares / lot) * lot
    while shares > 0.0:
        value = shares * price
        fees = order_fees(value, cost_row, fee_buf)
        if value + fees <= cash:
            return shares
        if lot > 0.0:
            # Shrink by the fee overshoot (at least one lot) so this loop runs a few times at most.
            over = np.ceil((value + fees - cash) / (price * lot))
            shares -= max(over, 1.0) * lot
        else:
            shares = cash / (price * (1.0 + fees / value)) * (1.0 - 1e-15)
    return 0.0


@njit(cache=True, nogil=True)
def _log_order(orders, ofees, n, t, j, side, shares, price, fees, reason, status, fee_buf):
    orders = _grow(orders, n)
    ofees = _grow(ofees, n)
    orders[n, O_BAR] = t
    orders[n, O_COL] = j
    orders[n, O_SIDE] = side
    orders[n, O_SHARES] = shares
    orders[n, O_PRICE] = price
    orders[n, O_VALUE] = shares * price
    orders[n, O_FEES] = fees
    orders[n, O_REASON] = reason
    orders[n, O_STATUS] = status
    if status == S_FILLED:
        ofees[n] = fee_buf
    else:
        ofees[n] = 0.0
    return orders, ofees, n + 1


@njit(cache=True, nogil=True)
def _log_trade(trades, n, j, pos, exit_bar, exit_px, exit_fees, reason, exit_order):
    trades = _grow(trades, n)
    trades[n, T_COL] = j
    trades[n, T_ENTRY_BAR] = pos[j, P_ENTRY_BAR]
    trades[n, T_EXIT_BAR] = exit_bar
    trades[n, T_SHARES] = pos[j, P_SHARES]
    trades[n, T_ENTRY_PRICE] = pos[j, P_ENTRY_PX]
    trades[n, T_EXIT_PRICE] = exit_px
    trades[n, T_ENTRY_FEES] = pos[j, P_ENTRY_FEES]
    trades[n, T_EXIT_FEES] = exit_fees
    trades[n, T_REASON] = reason
    trades[n, T_ENTRY_ORDER] = pos[j, P_ENTRY_ORDER]
    trades[n, T_EXIT_ORDER] = exit_order
    return trades, n + 1


@njit(cache=True, nogil=True)
def stop_fill(o, h, lo, entry_px, peak, stop_loss, trailing_stop, take_profit):
    """(price, reason) of the stop that fills on this bar, or (nan, -1). Levels of 0 are off."""
    level = -np.inf
    reason = -1
    if stop_loss > 0.0:
        level = entry_px * (1.0 - stop_loss)
        reason = R_STOP_LOSS
    if trailing_stop > 0.0 and peak * (1.0 - trailing_stop) > level:
        level = peak * (1.0 - trailing_stop)
        reason = R_TRAILING
    tp_level = entry_px * (1.0 + take_profit) if take_profit > 0.0 else np.inf
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
def simulate(open_, high, low, close, lot, feats,
             e_feat, e_op, e_thr, e_k, x_feat, x_op, x_thr, x_k, r_feat, r_sign,
             fill, init_cash, slippage, stop_loss, take_profit, trailing_stop, max_hold,
             costs, use_lots, max_positions):
    """Long-only simulation of one parameter set over a (T, N) panel.

    Entries are ranked by r_sign * feats[r_feat] (r_feat < 0: no ranking), then by symbol.
    Returns cash and equity (T, A) with A = N accounts (independent) or 1 (portfolio), shares
    (T, N), trades (M, NTRD), orders (K, NORD) and their fees by kind (K, NFEE).
    """
    n_t, n_s = close.shape
    portfolio = max_positions > 0
    n_acct = 1 if portfolio else n_s
    cash_out = np.empty((n_t, n_acct))
    equity_out = np.empty((n_t, n_acct))
    shares_out = np.empty((n_t, n_s))
    trades = np.empty((max(16, n_s * 4), NTRD))
    orders = np.empty((max(16, n_s * 8), NORD))
    ofees = np.empty((orders.shape[0], NFEE))
    fee_buf = np.zeros(NFEE)
    cash = np.full(n_acct, init_cash)
    pos = np.zeros((n_s, 6))
    pend_entry = np.full(n_s, -1, dtype=np.int64)  # bar on which the entry fills
    pend_exit = np.full(n_s, -1, dtype=np.int64)  # first bar the exit may fill (waits through NaN bars)
    pend_reason = np.zeros(n_s, dtype=np.int64)
    strength = np.zeros(n_s)
    acted = np.zeros(n_s, dtype=np.bool_)
    last_close = np.full(n_s, np.nan)
    n_tr = 0
    n_or = 0
    offset = 0 if fill == FILL_SAME_CLOSE else 1
    fill_close = fill != FILL_NEXT_OPEN

    for t in range(n_t):
        acted[:] = False
        for phase in range(3):
            # phase 0: open fills; 1: stops; 2: close fills (next_close, or same_close after the rules).
            if phase == 1:
                for j in range(n_s):
                    if pos[j, P_SHARES] == 0.0 or acted[j] or pos[j, P_ENTRY_BAR] >= t or close[t, j] != close[t, j]:
                        continue
                    stop_px, reason = stop_fill(open_[t, j], high[t, j], low[t, j], pos[j, P_ENTRY_PX],
                                                pos[j, P_PEAK], stop_loss, trailing_stop, take_profit)
                    if reason >= 0:
                        a = 0 if portfolio else j
                        exit_px = stop_px * (1.0 - slippage)
                        fees = order_fees(pos[j, P_SHARES] * exit_px, costs[t], fee_buf)
                        cash[a] += pos[j, P_SHARES] * exit_px - fees
                        orders, ofees, n_or = _log_order(orders, ofees, n_or, t, j, -1.0, pos[j, P_SHARES], exit_px,
                                                         fees, reason, S_FILLED, fee_buf)
                        trades, n_tr = _log_trade(trades, n_tr, j, pos, t, exit_px, fees, reason, n_or - 1)
                        pos[j, P_SHARES] = 0.0
                        pend_exit[j] = -1
                        acted[j] = True
                    elif high[t, j] > pos[j, P_PEAK]:
                        pos[j, P_PEAK] = high[t, j]
                continue
            if (phase == 0) == fill_close:
                continue
            if fill == FILL_SAME_CLOSE:
                # Rules read row t and same_close orders fill right after, at this close.
                n_or, orders, ofees = _queue(t, n_t, offset, feats, e_feat, e_op, e_thr, e_k, x_feat, x_op, x_thr,
                                             x_k, r_feat, r_sign, max_hold, max_positions, pos, pend_entry, pend_exit,
                                             pend_reason, strength, acted, orders, ofees, n_or, fee_buf)
            px = close[t] if phase == 2 else open_[t]
            for j in range(n_s):
                if pos[j, P_SHARES] > 0.0 and 0 <= pend_exit[j] <= t and not acted[j] and close[t, j] == close[t, j]:
                    a = 0 if portfolio else j
                    exit_px = px[j] * (1.0 - slippage)
                    fees = order_fees(pos[j, P_SHARES] * exit_px, costs[t], fee_buf)
                    cash[a] += pos[j, P_SHARES] * exit_px - fees
                    orders, ofees, n_or = _log_order(orders, ofees, n_or, t, j, -1.0, pos[j, P_SHARES], exit_px,
                                                     fees, pend_reason[j], S_FILLED, fee_buf)
                    trades, n_tr = _log_trade(trades, n_tr, j, pos, t, exit_px, fees, pend_reason[j], n_or - 1)
                    pos[j, P_SHARES] = 0.0
                    pend_exit[j] = -1
                    acted[j] = True
            n_due = 0
            for j in range(n_s):
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
            due = due[np.argsort(key, kind="mergesort")]  # stable: ties keep symbol order
            held = 0
            equity_ref = cash[0]
            if portfolio:
                for j in range(n_s):
                    if pos[j, P_SHARES] > 0.0:
                        held += 1
                        mark = px[j] if px[j] == px[j] else last_close[j]
                        equity_ref += pos[j, P_SHARES] * mark
            for j in due:
                pend_entry[j] = -1
                a = 0 if portfolio else j
                buy_px = px[j] * (1.0 + slippage)
                qty = 0.0
                fees = 0.0
                status = S_FILLED
                if close[t, j] != close[t, j] or not buy_px > 0.0:
                    status = S_NO_PRICE
                elif portfolio and held >= max_positions:
                    status = S_NO_SLOT
                else:
                    budget = min(cash[a], equity_ref / max_positions) if portfolio else cash[a]
                    qty = affordable_shares(budget, buy_px, lot[t, j] if use_lots else 0.0, costs[t], fee_buf)
                    if qty <= 0.0:
                        status = S_NO_CASH
                if status == S_FILLED:
                    fees = order_fees(qty * buy_px, costs[t], fee_buf)
                    cash[a] -= qty * buy_px + fees
                    pos[j, P_SHARES] = qty
                    pos[j, P_ENTRY_BAR] = t
                    pos[j, P_ENTRY_PX] = buy_px
                    pos[j, P_ENTRY_FEES] = fees
                    pos[j, P_PEAK] = buy_px
                    pos[j, P_ENTRY_ORDER] = n_or
                    acted[j] = True
                    held += 1
                orders, ofees, n_or = _log_order(orders, ofees, n_or, t, j, 1.0, qty, buy_px, fees, R_ENTRY, status,
                                                 fee_buf)
        if fill != FILL_SAME_CLOSE:
            n_or, orders, ofees = _queue(t, n_t, offset, feats, e_feat, e_op, e_thr, e_k, x_feat, x_op, x_thr, x_k,
                                         r_feat, r_sign, max_hold, max_positions, pos, pend_entry, pend_exit,
                                         pend_reason, strength, acted, orders, ofees, n_or, fee_buf)
        for j in range(n_s):
            if close[t, j] == close[t, j]:
                last_close[j] = close[t, j]
            shares_out[t, j] = pos[j, P_SHARES]
        for a in range(n_acct):
            cash_out[t, a] = cash[a]
            equity_out[t, a] = cash[a]
        for j in range(n_s):
            if pos[j, P_SHARES] > 0.0:
                equity_out[t, 0 if portfolio else j] += pos[j, P_SHARES] * last_close[j]
    for j in range(n_s):
        if pos[j, P_SHARES] > 0.0:
            trades, n_tr = _log_trade(trades, n_tr, j, pos, -1, last_close[j], 0.0, R_OPEN, -1)
    return cash_out, shares_out, equity_out, trades[:n_tr], orders[:n_or], ofees[:n_or]


@njit(cache=True, nogil=True)
def _queue(t, n_t, offset, feats, e_feat, e_op, e_thr, e_k, x_feat, x_op, x_thr, x_k, r_feat, r_sign,
           max_hold, max_positions, pos, pend_entry, pend_exit, pend_reason, strength, acted,
           orders, ofees, n_or, fee_buf):
    """Read the rules on row t and queue orders for bar t + offset; portfolio mode queues entries
    only into free slots (best ranked first) and logs the rest as skipped."""
    n_s = pos.shape[0]
    held = 0
    leaving = 0
    queued = 0
    n_cand = 0
    for j in range(n_s):
        if pos[j, P_SHARES] > 0.0:
            held += 1
            if pend_exit[j] < 0:
                if max_hold > 0 and t - pos[j, P_ENTRY_BAR] >= max_hold - offset:
                    pend_exit[j] = t + offset
                    pend_reason[j] = R_TIME
                elif rule_holds(feats, x_feat, x_op, x_thr, x_k, t, j):
                    pend_exit[j] = t + offset
                    pend_reason[j] = R_SIGNAL
            if pend_exit[j] >= 0:
                leaving += 1
        elif pend_entry[j] >= 0:
            queued += 1
        elif t + offset < n_t and not (acted[j] and offset == 0):
            if rule_holds(feats, e_feat, e_op, e_thr, e_k, t, j):
                s = r_sign * feats[r_feat, t, j] if r_feat >= 0 else 0.0
                strength[j] = s if s == s else -np.inf
                pend_entry[j] = t + offset
                n_cand += 1
    if max_positions <= 0 or n_cand == 0:
        return n_or, orders, ofees
    free = max_positions - (held - leaving) - queued
    if n_cand <= free:
        return n_or, orders, ofees
    cand = np.empty(n_cand, dtype=np.int64)
    key = np.empty(n_cand)
    k = 0
    for j in range(n_s):
        if pend_entry[j] == t + offset and pos[j, P_SHARES] == 0.0:
            cand[k] = j
            key[k] = -strength[j]
            k += 1
    cand = cand[np.argsort(key[:k], kind="mergesort")]
    for i in range(max(free, 0), k):
        j = cand[i]
        pend_entry[j] = -1
        orders, ofees, n_or = _log_order(orders, ofees, n_or, t + offset, j, 1.0, 0.0, np.nan, 0.0, R_ENTRY,
                                         S_NO_SLOT, fee_buf)
    return n_or, orders, ofees
