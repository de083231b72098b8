"""The fused sweep kernel: many parameter sets per pass, parallel over them (DESIGN §7-§8).

Each combination runs the same `column` / `simulate_portfolio` code as a single backtest and keeps only
its metrics, so memory is O(N x T x F + P x metrics), never O(N x T x P). Results per
combination do not depend on the thread that ran them: serial and parallel runs are identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from backtest.costs import NFEE
from backtest.kernels.metrics import (M_TRADES, M_WIN_RATE, NMET, NSUM, block_sums, equity_metrics, stats_metrics,
                                      trade_counts)
from backtest.kernels.simulate import NCS, candidate_bars, column, new_logs, simulate_portfolio

X_STOP_LOSS, X_TAKE_PROFIT, X_TRAILING_STOP, X_MAX_HOLD = range(4)


@njit(cache=True, nogil=True, parallel=True)
def sweep(open_, high, low, close, lot, feats, e_feat, e_sign, e_bound, e_k, x_feat, x_sign, x_bound, x_k, r_feat,
          r_sign, fill, init_cash, slippage, exits, costs, use_lots, max_positions, edges, group, n_groups, lanes):
    """P parameter sets over one (N, T) panel: rows p of e_feat/e_bound/e_k, x_feat/x_bound/x_k, r_feat
    and exits (stop loss, take profit, trailing stop, max hold) give set p; ops are shared.

    `group` (P,) numbers the distinct rows of e_feat (n_groups of them): combinations of a group
    share the candidate bars of their loosest entry rule.

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
    per_symbol = np.full((n_p, n_s, NMET), np.nan)
    combo = np.empty((n_p, NMET))
    sums = np.empty((n_p, edges.shape[0] - 1, NSUM))
    n_lanes = max(min(lanes, n_p), 1)
    for lane in prange(n_lanes):
        # One lane per thread, its buffers reused by every combination it runs; neighbouring
        # combinations cost alike, so the lanes deal them out in turn.
        trades, orders, ofees = new_logs(n_t)
        fee_buf = np.zeros(NFEE)
        stats = np.empty(NCS)
        no_shares = np.empty(0)
        for p in range(lane, n_p, n_lanes):
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
