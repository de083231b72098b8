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
A NaN row (suspension, not listed) trades nothing: pending exits wait, pending entries are skipped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtest.costs import NFEE, order_fees

# Order log columns (float64 matrix); side +1 buy, -1 sell.
O_BAR, O_COL, O_SIDE, O_SHARES, O_PRICE, O_VALUE, O_FEES, O_REASON, O_STATUS = range(9)
NORD = 9
# Trade list columns.
T_COL, T_ENTRY_BAR, T_EXIT_BAR, T_SHARES, T_ENTRY_PRICE, T_EXIT_PRICE, T_ENTRY_FEES, T_EXIT_FEES, T_REASON = range(9)
NTRD = 9
# Reasons (exit reasons in their priority order when several are due on one bar).
R_STOP_LOSS, R_TRAILING, R_TAKE_PROFIT, R_TIME, R_SIGNAL, R_OPEN, R_ENTRY = range(7)
REASONS = ("stop_loss", "trailing_stop", "take_profit", "time_stop", "exit_signal", "open", "entry_signal")
# Order status.
S_FILLED, S_NO_CASH, S_NO_PRICE = range(3)
STATUSES = ("filled", "skipped_no_cash", "skipped_no_price")
# Fill timing.
FILL_NEXT_OPEN, FILL_NEXT_CLOSE, FILL_SAME_CLOSE = range(3)


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
def _log_trade(trades, n, j, st, exit_bar, exit_px, exit_fees, reason):
    trades = _grow(trades, n)
    trades[n, T_COL] = j
    trades[n, T_ENTRY_BAR] = st[S_ENTRY_BAR]
    trades[n, T_EXIT_BAR] = exit_bar
    trades[n, T_SHARES] = st[S_SHARES]
    trades[n, T_ENTRY_PRICE] = st[S_ENTRY_PX]
    trades[n, T_EXIT_PRICE] = exit_px
    trades[n, T_ENTRY_FEES] = st[S_ENTRY_FEES]
    trades[n, T_EXIT_FEES] = exit_fees
    trades[n, T_REASON] = reason
    return trades, n + 1


# Per-account state slots.
S_CASH, S_SHARES, S_ENTRY_BAR, S_ENTRY_PX, S_ENTRY_FEES, S_PEAK = range(6)


@njit(cache=True, nogil=True)
def _sell(st, t, j, px, reason, slippage, cost_row, fee_buf, trades, n_tr, orders, ofees, n_or):
    """Close the whole position at `px` less slippage; log the order and the trade."""
    exit_px = px * (1.0 - slippage)
    fees = order_fees(st[S_SHARES] * exit_px, cost_row, fee_buf)
    st[S_CASH] += st[S_SHARES] * exit_px - fees
    orders, ofees, n_or = _log_order(orders, ofees, n_or, t, j, -1.0, st[S_SHARES], exit_px, fees,
                                     reason, S_FILLED, fee_buf)
    trades, n_tr = _log_trade(trades, n_tr, j, st, t, exit_px, fees, reason)
    st[S_SHARES] = 0.0
    return trades, n_tr, orders, ofees, n_or


@njit(cache=True, nogil=True)
def _buy(st, t, j, px, px_ok, lot, slippage, cost_row, fee_buf, orders, ofees, n_or):
    """Spend the account's cash on whole lots at `px` plus slippage, or log why the entry was skipped."""
    buy_px = px * (1.0 + slippage)
    qty = 0.0
    fees = 0.0
    status = S_FILLED
    if not px_ok or not buy_px > 0.0:
        status = S_NO_PRICE
    else:
        qty = affordable_shares(st[S_CASH], buy_px, lot, cost_row, fee_buf)
        if qty <= 0.0:
            status = S_NO_CASH
    if status == S_FILLED:
        fees = order_fees(qty * buy_px, cost_row, fee_buf)
        st[S_CASH] -= qty * buy_px + fees
        st[S_SHARES] = qty
        st[S_ENTRY_BAR] = t
        st[S_ENTRY_PX] = buy_px
        st[S_ENTRY_FEES] = fees
        st[S_PEAK] = buy_px
    return _log_order(orders, ofees, n_or, t, j, 1.0, qty, buy_px, fees, R_ENTRY, status, fee_buf)


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
def simulate_independent(open_, high, low, close, lot, feats,
                         e_feat, e_op, e_thr, e_k, x_feat, x_op, x_thr, x_k,
                         fill, init_cash, slippage, stop_loss, take_profit, trailing_stop, max_hold,
                         costs, use_lots):
    """Each column trades its own account of `init_cash`, all-in on entry, long only.

    Returns cash, shares, equity (T, N); trades (M, NTRD); orders (K, NORD); order fees (K, NFEE).
    """
    n_t, n_s = close.shape
    cash_out = np.empty((n_t, n_s))
    shares_out = np.empty((n_t, n_s))
    equity_out = np.empty((n_t, n_s))
    trades = np.empty((max(16, n_s * 4), NTRD))
    orders = np.empty((max(16, n_s * 8), NORD))
    ofees = np.empty((orders.shape[0], NFEE))
    fee_buf = np.zeros(NFEE)
    st = np.zeros(6)
    n_tr = 0
    n_or = 0
    offset = 0 if fill == FILL_SAME_CLOSE else 1

    for j in range(n_s):
        st[:] = 0.0
        st[S_CASH] = init_cash
        pend_entry = -1  # bar on which the pending entry fills
        pend_exit = -1  # first bar on which the pending exit may fill (it waits through NaN bars)
        pend_reason = 0
        last_close = np.nan
        for t in range(n_t):
            px_ok = close[t, j] == close[t, j]
            acted = False
            lot_t = lot[t, j] if use_lots else 0.0
            for at_close in (False, True):
                # Orders placed at an earlier close fill at this open (next_open) or close (next_close).
                if acted or (at_close != (fill == FILL_NEXT_CLOSE)) or fill == FILL_SAME_CLOSE:
                    pass
                else:
                    px = close[t, j] if at_close else open_[t, j]
                    if st[S_SHARES] > 0.0 and 0 <= pend_exit <= t and px_ok:
                        trades, n_tr, orders, ofees, n_or = _sell(st, t, j, px, pend_reason, slippage, costs[t],
                                                                  fee_buf, trades, n_tr, orders, ofees, n_or)
                        pend_exit = -1
                        acted = True
                    elif pend_entry == t:
                        pend_entry = -1
                        orders, ofees, n_or = _buy(st, t, j, px, px_ok, lot_t, slippage, costs[t], fee_buf,
                                                   orders, ofees, n_or)
                        acted = st[S_SHARES] > 0.0
                if at_close or acted or not px_ok or st[S_SHARES] == 0.0 or st[S_ENTRY_BAR] >= t:
                    continue
                # Stops, between the open and the close, from the bar after the entry fill.
                stop_px, reason = stop_fill(open_[t, j], high[t, j], low[t, j], st[S_ENTRY_PX], st[S_PEAK],
                                            stop_loss, trailing_stop, take_profit)
                if reason >= 0:
                    trades, n_tr, orders, ofees, n_or = _sell(st, t, j, stop_px, reason, slippage, costs[t],
                                                              fee_buf, trades, n_tr, orders, ofees, n_or)
                    pend_exit = -1
                    acted = True
                elif high[t, j] > st[S_PEAK]:
                    st[S_PEAK] = high[t, j]
            # Rules read row t (known by this close or the next open).
            if st[S_SHARES] > 0.0 and pend_exit < 0:
                if max_hold > 0 and t - st[S_ENTRY_BAR] >= max_hold - offset:
                    pend_exit, pend_reason = t + offset, R_TIME
                elif rule_holds(feats, x_feat, x_op, x_thr, x_k, t, j):
                    pend_exit, pend_reason = t + offset, R_SIGNAL
            elif st[S_SHARES] == 0.0 and pend_entry < 0 and not (acted and offset == 0) and t + offset < n_t:
                if rule_holds(feats, e_feat, e_op, e_thr, e_k, t, j):
                    pend_entry = t + offset
            if offset == 0 and not acted:
                # same_close: orders fill at this close.
                if st[S_SHARES] > 0.0 and pend_exit == t and px_ok:
                    trades, n_tr, orders, ofees, n_or = _sell(st, t, j, close[t, j], pend_reason, slippage,
                                                              costs[t], fee_buf, trades, n_tr, orders, ofees, n_or)
                    pend_exit = -1
                elif pend_entry == t:
                    pend_entry = -1
                    orders, ofees, n_or = _buy(st, t, j, close[t, j], px_ok, lot_t, slippage, costs[t], fee_buf,
                                               orders, ofees, n_or)
            if px_ok:
                last_close = close[t, j]
            cash_out[t, j] = st[S_CASH]
            shares_out[t, j] = st[S_SHARES]
            equity_out[t, j] = st[S_CASH] + (st[S_SHARES] * last_close if st[S_SHARES] > 0.0 else 0.0)
        if st[S_SHARES] > 0.0:
            trades, n_tr = _log_trade(trades, n_tr, j, st, -1, last_close, 0.0, R_OPEN)
    return cash_out, shares_out, equity_out, trades[:n_tr], orders[:n_or], ofees[:n_or]
