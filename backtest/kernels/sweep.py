"""The fused sweep kernel: many parameter sets per pass, parallel over them (DESIGN §7-§8).

Each combination runs the same `column` / `simulate_portfolio` code as a single backtest and keeps
only its metrics, so memory is O(N x T x F + P x metrics), never O(N x T x P). Results per
combination do not depend on the thread that ran them: serial and parallel runs are identical.

Work shared between combinations: the candidate bars of the loosest entry rule of each group of
combinations on the same features (a flat account only looks at those), narrowed to one rule's
own signals when consecutive combinations differ only in their exits; the totals over symbols
are accumulated from per-bar changes, so flat bars cost nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from backtest.costs import NFEE
from backtest.kernels.metrics import (M_TRADES, M_WIN_RATE, NMET, NSUM, block_sums, equity_metrics, stats_metrics,
                                      trade_counts)
from backtest.kernels.simulate import NCS, candidate_bars, column, new_logs, rule_holds, simulate_portfolio

X_STOP_LOSS, X_TAKE_PROFIT, X_TRAILING_STOP, X_MAX_HOLD = range(4)
DEAL = 8  # consecutive combinations a lane takes at a time (fewer in a small chunk)


@njit(cache=True, nogil=True, _nrt=False)
def _same_entry(e_feat, e_bound, e_k, p, q):
    """Combinations p and q have the same entry rule."""
    if e_k[p] != e_k[q]:
        return False
    for c in range(e_bound.shape[1]):
        if e_feat[p, c] != e_feat[q, c] or e_bound[p, c] != e_bound[q, c]:
            return False
    return True


@njit(cache=True, nogil=True, _nrt=False)
def _narrow(feats, feat, sign, bound, k, cand, ptr, sig, sig_ptr):
    """The candidate bars (CSR cand, ptr) where the rule holds, into CSR (sig, sig_ptr)."""
    n = 0
    for j in range(ptr.shape[0] - 1):
        for i in range(ptr[j], ptr[j + 1]):
            if rule_holds(feats, feat, sign, bound, k, cand[i], j):
                sig[n] = cand[i]
                n += 1
        sig_ptr[j + 1] = n


@njit(cache=True, nogil=True, parallel=True)
def sweep(open_, high, low, close, lot, feats, e_feat, e_sign, e_bound, e_k, x_feat, x_sign, x_bound, x_k, r_feat,
          r_sign, fill, init_cash, slippage, exits, costs, use_lots, max_positions, edges, group, n_groups, lanes):
    """P parameter sets over one (N, T) panel: rows p of e_feat/e_bound/e_k, x_feat/x_bound/x_k,
    r_feat and exits (stop loss, take profit, trailing stop, max hold) give set p; the condition
    signs are shared.

    `group` (P,) numbers the distinct rows of e_feat (n_groups of them): combinations of a group
    share the candidate bars of their loosest entry rule. `lanes`: how many threads split the
    combinations (numba.get_num_threads(); the results do not depend on it).

    Returns per-symbol metrics (P, N, NMET) (NaN in portfolio mode), per-combination metrics of
    total equity (P, NMET), and power sums of its daily returns per time block (P, S, NSUM).
    """
    n_p = e_bound.shape[0]
    n_s, n_t = close.shape
    n_c = e_sign.shape[0]
    cand_ptr = np.zeros((n_groups, n_s + 1), dtype=np.int64)
    cand_list = []
    for g in range(n_groups):
        loosest = np.empty(n_c)
        k = n_c + 1
        first = -1
        for p in range(n_p):
            if group[p] != g:
                continue
            if first < 0:
                first = p
                loosest[:] = e_bound[p]
            for c in range(n_c):
                if e_bound[p, c] < loosest[c] or loosest[c] != loosest[c]:  # the lowest bound admits most; NaN none
                    loosest[c] = e_bound[p, c]
            k = min(k, e_k[p])
        ptr, idx = candidate_bars(feats, e_feat[first], e_sign, loosest, k)
        cand_ptr[g] = ptr
        cand_list.append(idx)
    most = max([c.shape[0] for c in cand_list])
    per_symbol = np.full((n_p, n_s, NMET), np.nan)
    combo = np.empty((n_p, NMET))
    sums = np.empty((n_p, edges.shape[0] - 1, NSUM))
    n_lanes = max(min(lanes, n_p), 1)
    deal = max(1, min(DEAL, n_p // (4 * n_lanes)))  # at least ~4 turns per lane, for balance
    for lane in prange(n_lanes):
        # One lane per thread, its buffers reused by every combination it runs. Neighbouring
        # combinations cost alike, so the lanes deal them out in turn, `deal` at a time (which
        # also keeps together combinations that share an entry rule).
        trades, orders, ofees = new_logs(n_t)
        fee_buf = np.zeros(NFEE)
        stats = np.empty(NCS)
        no_shares = np.empty(0)
        sig_ptr = np.zeros(n_s + 1, dtype=np.int64)
        sig = np.empty(most, dtype=np.int64)
        sig_of = -1  # the combination whose entry signals `sig` holds
        for first in range(lane * deal, n_p, n_lanes * deal):
            end = min(first + deal, n_p)
            for p in range(first, end):
                ef, eb, xf, xb = e_feat[p], e_bound[p], x_feat[p], x_bound[p]
                sl = exits[p, X_STOP_LOSS]
                tp = exits[p, X_TAKE_PROFIT]
                tsl = exits[p, X_TRAILING_STOP]
                hold = int(exits[p, X_MAX_HOLD])
                if max_positions > 0:
                    cash, _, eq, book, _, _ = simulate_portfolio(
                        open_, high, low, close, lot, feats, ef, e_sign, eb, e_k[p], xf, x_sign, xb, x_k[p], r_feat[p],
                        r_sign[p], fill, init_cash, slippage, sl, tp, tsl, hold, costs, use_lots, max_positions)
                    equity_metrics(eq[0], cash[0], combo[p])
                    closed, wins = trade_counts(book, book.shape[0])
                    block_sums(eq[0], edges, sums[p])
                else:
                    total_eq = np.zeros(n_t)  # changes per bar summed over symbols, then their running sum
                    total_cash = np.zeros(n_t)
                    closed = 0
                    wins = 0
                    cand = cand_list[group[p]]
                    ptr = cand_ptr[group[p]]
                    if sig_of >= 0 and _same_entry(e_feat, e_bound, e_k, sig_of, p):
                        cand, ptr = sig, sig_ptr
                    elif p + 1 < end and _same_entry(e_feat, e_bound, e_k, p, p + 1):
                        # The next combination enters alike (only exits differ): narrow the group's
                        # candidates to this rule's own signals, once for both.
                        _narrow(feats, ef, e_sign, eb, e_k[p], cand, ptr, sig, sig_ptr)
                        sig_of = p
                        cand, ptr = sig, sig_ptr
                    for j in range(n_s):
                        n_tr, _ = column(j, open_, high, low, close, lot, feats, ef, e_sign, eb, e_k[p], xf, x_sign, xb,
                                         x_k[p], fill, init_cash, slippage, sl, tp, tsl, hold, costs, use_lots,
                                         cand[ptr[j]:ptr[j + 1]], True, total_cash, no_shares, total_eq, stats, trades,
                                         orders, ofees, fee_buf)
                        row = per_symbol[p, j]
                        stats_metrics(stats, n_t, row)
                        c, w = trade_counts(trades, n_tr)
                        row[M_TRADES] = c
                        row[M_WIN_RATE] = w / c if c > 0 else np.nan
                        closed += c
                        wins += w
                    total_eq[0] += n_s * init_cash
                    total_cash[0] += n_s * init_cash
                    total_eq = np.cumsum(total_eq)
                    total_cash = np.cumsum(total_cash)
                    equity_metrics(total_eq, total_cash, combo[p])
                    block_sums(total_eq, edges, sums[p])
                combo[p, M_TRADES] = closed
                combo[p, M_WIN_RATE] = wins / closed if closed > 0 else np.nan
    return per_symbol, combo, sums
