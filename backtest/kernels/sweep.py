"""The fused sweep kernels: many parameter sets per pass, parallel over them (DESIGN §7-§8).

One kernel per execution mode (`sweep_independent`, `sweep_portfolio`; backtest.sweep.run_chunk
picks), so a sweep compiles only the mode it runs: each deals the combinations out to lanes, one
lane per thread, a lane being a plain compiled function (`independent_lane`, `portfolio_lane`)
that releases the GIL. Each combination runs the same column body (`simulate._column`, compiled
without logs as `sweep_column`) / `simulate_portfolio` as a single backtest and keeps only its
metrics, so memory is O(N x T x F + P x metrics), never O(N x T x P). Results per combination do
not depend on the thread that ran them, nor on how the work is tiled: serial and parallel runs
are identical.

Independent mode is tiled for the caches: a lane (thread) takes a few consecutive combinations at
a time and runs them block of symbols by block of symbols, a block small enough (TILE_BYTES of
prices, lots and features) that it stays in the core's cache while every combination of the
lane's turn walks it; the combinations' totals over symbols are kept meanwhile (TILE_COMBOS x T).
Each combination still adds its symbols in order 0..N-1, so its totals are summed in the same
order as untiled.

Work shared between combinations: the candidate bars of the loose entry rule of each group of
combinations on the same features (backtest.rules.loosest; a flat account only looks at those),
narrowed to one rule's own signals when the next combination differs only in its exits or has a
tighter rule (from the last narrowed rule's signals when the rule is tighter than that one); the
totals over symbols are accumulated from per-bar changes, so flat bars cost nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, NamedTuple

import numpy as np
from numba import njit

from backtest.costs import NFEE
from backtest.kernels.metrics import M_TRADES, M_WIN_RATE, NMET, NSUM, stats_metrics, total_metrics, trade_counts
from backtest.kernels.rules import STACK, candidate_bars, rule_holds
from backtest.kernels.simulate import NCS, Execution, Logs, Track, Work, new_logs, simulate_portfolio, sweep_column
from backtest.rules import CompiledRule

X_STOP_LOSS, X_TAKE_PROFIT, X_TRAILING_STOP, X_MAX_HOLD = range(4)
DEAL = 8  # portfolio mode: consecutive combinations a lane takes at a time (fewer in a small chunk)
TILE_COMBOS = 32  # independent mode: combinations a lane runs over one block of symbols (fewer in a small chunk)
TILE_BYTES = 1 << 20  # independent mode: prices, lots and features of a block of symbols (about half an L2)


@njit(cache=True, nogil=True)
def _row(g, p):
    """Row p of a RuleGrid as a CompiledRule (views, no copy)."""
    return CompiledRule(g.code, g.arg, g.sign, g.feat[p], g.bound[p], g.count[p], g.flat)


@njit(cache=True, nogil=True, _nrt=False)
def _same_entry(g, p, q):
    """Rows p and q of RuleGrid g are the same rule."""
    for c in range(g.count.shape[1]):
        if g.count[p, c] != g.count[q, c]:
            return False
    for c in range(g.bound.shape[1]):
        if g.feat[p, c] != g.feat[q, c] or g.bound[p, c] != g.bound[q, c]:
            return False
    return True


@njit(cache=True, nogil=True, _nrt=False)
def _implies(g, p, q):
    """Row p of RuleGrid g holds only where row q does: flat rules on the same conditions, none of
    p's bounds nor its count looser than q's. Then q's signals are candidates for p."""
    if not g.flat:
        return False
    for c in range(g.count.shape[1]):
        if g.count[p, c] < g.count[q, c]:
            return False
    for c in range(g.bound.shape[1]):
        if g.feat[p, c] != g.feat[q, c] or not g.bound[p, c] >= g.bound[q, c]:
            return False
    return True


@njit(cache=True, nogil=True, _nrt=False)
def _narrow(feats, r, cand, ptr, j0, j1, sig, sig_ptr, stack):
    """The candidate bars (CSR cand, ptr) of columns j0..j1-1 where the rule holds, into CSR
    (sig, sig_ptr) indexed like ptr (sig_ptr[j0] = 0). (sig, sig_ptr) may be (cand, ptr) itself."""
    n = 0
    i = ptr[j0]
    sig_ptr[j0] = 0
    for j in range(j0, j1):
        end = ptr[j + 1]  # read before sig_ptr[j + 1] is written: it may be the same array
        while i < end:
            sig[n] = cand[i]  # kept only if the rule holds: no branch to mispredict
            n += 1 if rule_holds(feats, r, cand[i], j, stack) else 0
            i += 1
        sig_ptr[j + 1] = n


@njit(cache=True, nogil=True, inline="always")
def _execution(ex, exits, p):
    """Execution ex with combination p's exits."""
    return Execution(ex.fill, ex.init_cash, ex.slippage, ex.use_lots, ex.max_positions, exits[p, X_STOP_LOSS],
                     exits[p, X_TAKE_PROFIT], exits[p, X_TRAILING_STOP], int(exits[p, X_MAX_HOLD]))


def block_symbols(n_t: int, n_f: int) -> int:
    """Symbols per tile: their open, high, low, close, lot and n_f features fit TILE_BYTES."""
    return max(1, TILE_BYTES // (8 * (5 + n_f) * max(n_t, 1)))


class Candidates(NamedTuple):
    """Candidate bars of every group g (a row of the loose RuleGrid), one group after another:
    group g's bars of column j are bars[at[g] + ptr[g, j] : at[g] + ptr[g, j + 1]]."""

    ptr: np.ndarray  # (G, N + 1) int64
    bars: np.ndarray  # (at[G],) int64
    at: np.ndarray  # (G + 1,) int64


class Results(NamedTuple):
    """A sweep kernel's outputs, filled in place by its lanes (returned as a plain tuple)."""

    per_symbol: np.ndarray  # (P, N, NMET)
    combo: np.ndarray  # (P, NMET)
    sums: np.ndarray  # (P, S, NSUM)


def _results(n_p: int, n_s: int, edges: np.ndarray) -> Results:
    return Results(np.full((n_p, n_s, NMET), np.nan), np.empty((n_p, NMET)), np.empty((n_p, edges.shape[0] - 1, NSUM)))


def _on_threads(n_lanes: int, lane: Callable[[int], None]) -> None:
    """lane(0), ..., lane(n_lanes - 1), each on its own thread (the lane kernels release the GIL).

    Each lane is a plain (serial) kernel rather than one iteration of a `prange`: numba's parallel
    lowering of the lane loop cost seconds of compile time on a first sweep, for nothing a thread
    pool does not do as well (one lane per thread either way)."""
    if n_lanes == 1:
        lane(0)
        return
    with ThreadPoolExecutor(n_lanes) as pool:
        for done in [pool.submit(lane, k) for k in range(n_lanes)]:
            done.result()


def sweep_independent(m, ex, entry, exit_, exits, group, loose, edges, lanes: int, tile: int) -> tuple:
    """P parameter sets over Market m in independent mode: row p of the RuleGrids entry and exit
    and exits (P, 4: stop loss, take profit, trailing stop, max hold) with the rest of Execution
    ex give set p.

    `group` (P,) numbers the rows of the RuleGrid `loose` (backtest.rules.loosest): a group's
    loose rule holds wherever any member's entry rule does, so its bars are every member's
    candidates. `lanes`: how many threads split the combinations (numba.get_num_threads()); `tile`:
    symbols per block (0: as many as fit TILE_BYTES). The results depend on neither.

    Returns per-symbol metrics (P, N, NMET), per-combination metrics of total equity (P, NMET),
    and power sums of its daily returns per time block (P, S, NSUM).
    """
    n_p = entry.feat.shape[0]
    n_s, n_t = m.close.shape
    out = _results(n_p, n_s, edges)
    n_lanes = max(min(lanes, n_p), 1)
    cands = candidates(m.feats, loose)
    # Neighbouring combinations cost alike, so the lanes deal them out in turn, a tile at a time
    # (at least ~4 turns per lane, for balance).
    deal = max(1, min(TILE_COMBOS, n_p // (4 * n_lanes)))
    blk = tile if tile > 0 else block_symbols(n_t, m.feats.shape[0])
    _on_threads(n_lanes, lambda lane: independent_lane(lane, n_lanes, deal, blk, m, ex, entry, exit_, exits, group,
                                                       cands, edges, out))
    return out.per_symbol, out.combo, out.sums


@njit(cache=True, nogil=True)
def candidates(feats, loose):
    """The candidate bars of every row of RuleGrid `loose` (rules.candidate_bars), as Candidates."""
    n_g = loose.feat.shape[0]
    ptr = np.zeros((n_g, feats.shape[1] + 1), dtype=np.int64)
    at = np.zeros(n_g + 1, dtype=np.int64)
    found = []
    for g in range(n_g):
        p, bars = candidate_bars(feats, _row(loose, g))
        for j in range(p.shape[0]):  # element by element: a slice assignment compiles numba's error message
            ptr[g, j] = p[j]
        at[g + 1] = at[g] + bars.shape[0]
        found.append(bars)
    every = np.empty(at[n_g], dtype=np.int64)
    for g in range(n_g):
        for i in range(found[g].shape[0]):
            every[at[g] + i] = found[g][i]
    return Candidates(ptr, every, at)


@njit(cache=True, nogil=True)
def independent_lane(lane, n_lanes, deal, blk, m, ex, entry, exit_, exits, group, cands, edges, out):
    """Lane `lane` of `sweep_independent` (combinations lane * deal.. in turns of n_lanes * deal),
    its results into Results `out`."""
    n_p = entry.feat.shape[0]
    n_s, n_t = m.close.shape
    feats = m.feats
    per_symbol, combo, sums = out
    most = 0
    for g in range(cands.at.shape[0] - 1):
        most = max(most, cands.at[g + 1] - cands.at[g])
    # One lane per thread, its buffers reused by every combination it runs.
    logs = Logs(*new_logs(0))  # untouched by sweep_column
    work = Work(np.zeros(NFEE), np.empty(STACK, dtype=np.int64))
    stats = np.empty(NCS)
    no_shares = np.empty(0)
    tot_eq = np.empty((deal, n_t))  # per combination: changes per bar summed over symbols
    tot_cash = np.empty((deal, n_t))
    closed = np.zeros(deal, dtype=np.int64)
    wins = np.zeros(deal, dtype=np.int64)
    sig_ptr = np.zeros(n_s + 1, dtype=np.int64)
    sig = np.empty(most, dtype=np.int64)
    for first in range(lane * deal, n_p, n_lanes * deal):
        end = min(first + deal, n_p)
        tot_eq[:] = 0.0
        tot_cash[:] = 0.0
        closed[:] = 0
        wins[:] = 0
        for j0 in range(0, n_s, blk):
            j1 = min(j0 + blk, n_s)
            sig_of = -1  # the combination whose entry signals (on columns j0..j1-1) `sig` holds
            for p in range(first, end):
                k = p - first
                er, xr = _row(entry, p), _row(exit_, p)
                exp = _execution(ex, exits, p)
                track = Track(tot_cash[k], no_shares, tot_eq[k], stats)
                cand = cands.bars[cands.at[group[p]]:cands.at[group[p] + 1]]
                ptr = cands.ptr[group[p]]
                exact = False
                if sig_of >= 0 and _same_entry(entry, sig_of, p):
                    cand, ptr, exact = sig, sig_ptr, True
                else:
                    if sig_of >= 0 and _implies(entry, p, sig_of):
                        # A tighter rule than the last narrowed one (a larger threshold): its
                        # signals are among that one's, fewer than the group's candidates.
                        cand, ptr = sig, sig_ptr
                    if p + 1 < end and (_same_entry(entry, p, p + 1) or _implies(entry, p + 1, p)):
                        # The next combination enters alike (only exits differ) or on a tighter
                        # rule: narrow the candidates to this rule's own signals, for both.
                        _narrow(feats, er, cand, ptr, j0, j1, sig, sig_ptr, work.stack)
                        sig_of = p
                        cand, ptr, exact = sig, sig_ptr, True
                for j in range(j0, j1):
                    c, w = sweep_column(j, m, er, xr, exp, cand[ptr[j]:ptr[j + 1]], exact, track, logs, work)
                    row = per_symbol[p, j]
                    stats_metrics(stats, n_t, row)
                    row[M_TRADES] = c
                    row[M_WIN_RATE] = w / c if c > 0 else np.nan
                    closed[k] += c
                    wins[k] += w
        for p in range(first, end):
            k = p - first
            total_metrics(tot_eq[k], tot_cash[k], n_s * ex.init_cash, True, edges, combo[p], sums[p])
            combo[p, M_TRADES] = closed[k]
            combo[p, M_WIN_RATE] = wins[k] / closed[k] if closed[k] > 0 else np.nan


def sweep_portfolio(m, ex, entry, exit_, r_feat, r_sign, exits, edges, lanes: int) -> tuple:
    """P parameter sets over Market m in portfolio mode (ex.max_positions > 0): row p of the
    RuleGrids entry and exit, r_feat/r_sign (P,) (ranking) and exits (P, 4) with the rest of
    Execution ex give set p, each run by `simulate_portfolio`. `lanes` as in `sweep_independent`.

    Returns what `sweep_independent` does, per-symbol metrics all NaN (a shared account has none).
    """
    n_p = entry.feat.shape[0]
    out = _results(n_p, m.close.shape[0], edges)
    n_lanes = max(min(lanes, n_p), 1)
    deal = max(1, min(DEAL, n_p // (4 * n_lanes)))  # as in sweep_independent
    _on_threads(n_lanes, lambda lane: portfolio_lane(lane, n_lanes, deal, m, ex, entry, exit_, r_feat, r_sign, exits,
                                                     edges, out))
    return out.per_symbol, out.combo, out.sums


@njit(cache=True, nogil=True)
def portfolio_lane(lane, n_lanes, deal, m, ex, entry, exit_, r_feat, r_sign, exits, edges, out):
    """Lane `lane` of `sweep_portfolio`, its results into Results `out`."""
    n_p = entry.feat.shape[0]
    combo, sums = out.combo, out.sums
    for first in range(lane * deal, n_p, n_lanes * deal):
        for p in range(first, min(first + deal, n_p)):
            cash, _, eq, book, _, _ = simulate_portfolio(m, _row(entry, p), _row(exit_, p), r_feat[p],
                                                         r_sign[p], _execution(ex, exits, p))
            total_metrics(eq[0], cash[0], 0.0, False, edges, combo[p], sums[p])
            c, w = trade_counts(book, book.shape[0])
            combo[p, M_TRADES] = c
            combo[p, M_WIN_RATE] = w / c if c > 0 else np.nan
