"""Evaluate compiled rules (`backtest.rules.CompiledRule`) on a bar of a symbol.

A rule is a program over three-valued truth: 0 false, 1 unknown (a NaN feature, a bar before the
data), 2 true. `k_of` is true when at least k children are true and false when fewer than k could
be, `not_` swaps true and false, `held(x, n)` is the weakest of x on this bar and the n - 1 before,
`turns_true(x)` is the weaker of x now and not-x on the bar before. A bar trades only on true.

The program is postfix-like: BEGIN(kind) children END(slot). Each open node keeps a frame of four
integers in `stack` (kind, pc of its BEGIN, two counters); a modifier re-runs its child's code
at earlier bars by jumping back to its BEGIN with a larger lag. No recursion, no allocation, no
state kept between bars: a flat account may jump between candidate bars.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OP_LEAF, OP_BEGIN, OP_END = range(3)
K_KOF, K_NOT, K_HELD, K_TURNS = range(4)
FALSE, UNKNOWN, TRUE = range(3)
MAX_DEPTH = 32  # nesting levels a rule may have (frames of the evaluation stack)
STACK = 4 * MAX_DEPTH


@njit(cache=True, nogil=True, _nrt=False)
def rule_value(feats, r, t, j, stack):
    """FALSE, UNKNOWN or TRUE: the nested rule `r` on row t of column j (feats (F, N, T))."""
    depth = 0
    lag = 0
    pc = 0
    v = FALSE
    n_code = r.code.shape[0]
    while pc < n_code:
        op = r.code[pc]
        if op == OP_BEGIN:
            f = 4 * depth
            kind = r.arg[pc]
            stack[f] = kind
            stack[f + 1] = pc
            stack[f + 2] = 0
            stack[f + 3] = TRUE if kind == K_HELD else FALSE
            depth += 1
            pc += 1
            continue
        if op == OP_LEAF:
            c = r.arg[pc]
            tt = t - lag
            if tt < 0:
                v = UNKNOWN
            else:
                x = r.sign[c] * feats[r.feat[c], j, tt]
                v = TRUE if x >= r.bound[c] else (UNKNOWN if x != x else FALSE)
        else:  # OP_END: the node's value from its frame
            f = 4 * (depth - 1)
            kind = stack[f]
            a = stack[f + 2]
            b = stack[f + 3]
            if kind == K_KOF:
                k = r.count[r.arg[pc]]
                v = TRUE if a >= k else (FALSE if a + b < k else UNKNOWN)
            elif kind == K_NOT:
                v = TRUE - b
            else:
                a += 1
                n = r.count[r.arg[pc]] if kind == K_HELD else 2
                if a < n and b != FALSE:  # run the child again, one bar earlier
                    stack[f + 2] = a
                    lag += 1
                    pc = stack[f + 1] + 1
                    continue
                lag -= a - 1
                v = b
            depth -= 1
        pc += 1
        if depth > 0:  # hand v to the enclosing node
            f = 4 * (depth - 1)
            kind = stack[f]
            if kind == K_KOF:
                if v == TRUE:
                    stack[f + 2] += 1
                elif v == UNKNOWN:
                    stack[f + 3] += 1
            elif kind == K_NOT:
                stack[f + 3] = v
            elif kind == K_HELD:
                stack[f + 3] = min(stack[f + 3], v)
            elif stack[f + 2] == 0:  # K_TURNS, this bar
                stack[f + 3] = v
            else:  # K_TURNS, the bar before
                stack[f + 3] = min(stack[f + 3], TRUE - v)
    return v


@njit(cache=True, nogil=True, inline="always")
def flat_holds(feats, feat, sign, bound, k, t, j):
    """A flat k-of-n over conditions (the shipped strategies): count them (checking every
    condition measured faster than stopping early: fewer mispredicted branches); k = 0 never holds."""
    if k == 0:
        return False
    n = 0
    for c in range(feat.shape[0]):
        if sign[c] * feats[feat[c], j, t] >= bound[c]:
            n += 1
    return n >= k


@njit(cache=True, nogil=True, inline="always")
def rule_holds(feats, r, t, j, stack):
    """The rule is true on row t of column j (flat rules counted directly, see `flat_holds`)."""
    if r.flat:
        return flat_holds(feats, r.feat, r.sign, r.bound, r.count[0], t, j)
    return rule_value(feats, r, t, j, stack) == TRUE


@njit(cache=True, nogil=True)
def candidate_bars(feats, r):
    """Bars where the rule holds, per column, as CSR (ptr (N + 1,), idx): with the loosest
    parameters of a group of rules (backtest.rules.loosest) it bounds every member's entries, so a
    flat account can jump from candidate to candidate instead of reading every bar."""
    n_s, n_t = feats.shape[1], feats.shape[2]
    stack = np.empty(STACK, dtype=np.int64)
    ptr = np.zeros(n_s + 1, dtype=np.int64)
    idx = np.empty(max(n_t, 16), dtype=np.int64)
    feat, sign, bound, k = r.feat, r.sign, r.bound, r.count[0]
    n = 0
    for j in range(n_s):
        if n + n_t > idx.shape[0]:  # room for a whole column: reassigning an array inside the bar loop
            # costs numba a reference-count update per bar (4x this function's time, measured)
            grown = np.empty(max(2 * idx.shape[0], n + n_t), dtype=np.int64)
            for i in range(n):  # a loop: a slice assignment makes numba compile its shape-error message
                grown[i] = idx[i]
            idx = grown
        for t in range(n_t):
            if flat_holds(feats, feat, sign, bound, k, t, j) if r.flat else rule_value(feats, r, t, j, stack) == TRUE:
                idx[n] = t
                n += 1
        ptr[j + 1] = n
    return ptr, idx[:n]


@njit(cache=True, nogil=True)
def rule_panel(feats, r):
    """(N, T) bool: where the rule holds on every bar of every column."""
    n_s, n_t = feats.shape[1], feats.shape[2]
    stack = np.empty(STACK, dtype=np.int64)
    out = np.zeros((n_s, n_t), dtype=np.bool_)
    for j in range(n_s):
        for t in range(n_t):
            out[j, t] = rule_holds(feats, r, t, j, stack)
    return out
