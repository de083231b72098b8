"""Declarative entry/exit rules: conditions on features, combined and nested.

Rules are data, not functions, so one generic cached kernel evaluates every strategy (DESIGN §4:
a jitted function passed into an `@njit(cache=True)` kernel misses the cache in each process).

    all_of(any_of(feature("drawdown", window=20) <= -0.1, feature("ret_z", window=20) <= -2),
           held(feature("sb_z", window=60) >= 2.0, 3),
           not_(turns_true(feature("adr_z", window=60) >= 0)))

A NaN feature makes its condition *unknown*; unknown propagates (three-valued, Kleene logic) and a
rule acts only when it is true: a NaN never satisfies a condition, negated or not. docs/rules.md
has the whole language, its timing and how it compiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from backtest.trace import Sym


class RuleError(ValueError):
    """A rule built with impossible arguments (k out of range, n < 1, not a rule)."""


class Node:
    """Anything a rule can combine: a condition, a combination or a modifier. `~x` is `not_(x)`."""

    def __invert__(self) -> Not:
        return Not(self)


@dataclass(frozen=True)
class FeatureRef:
    """A named feature with its parameters, e.g. feature("sb_z", window=60)."""

    name: str
    params: tuple[tuple[str, int | float], ...] = ()

    def _cond(self, op: str, threshold: float) -> Cond:
        if isinstance(threshold, Sym):  # a swept parameter (a sweep checks each of its values as below)
            return Cond(self, op, threshold)
        if not isinstance(threshold, (int, float, np.integer, np.floating)) or isinstance(threshold, (bool, np.bool_)):
            raise TypeError(f"compare {self} with a number, not {threshold!r}")
        if threshold != threshold:  # a NaN threshold (e.g. computed from a bad parameter) never holds
            raise RuleError(f"{self} {op} nan: the threshold is not a number")
        return Cond(self, op, float(threshold))

    def __le__(self, t: float) -> Cond:
        return self._cond("<=", t)

    def __ge__(self, t: float) -> Cond:
        return self._cond(">=", t)

    def __lt__(self, t: float) -> Cond:
        return self._cond("<", t)

    def __gt__(self, t: float) -> Cond:
        return self._cond(">", t)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}({args})"


def feature(name: str, **params: int | float) -> FeatureRef:
    """Refer to a feature of the registry in `backtest.features` by name and parameters."""
    return FeatureRef(name, tuple(sorted(params.items())))


@dataclass(frozen=True)
class Cond(Node):
    """feature op threshold; unknown where the feature is NaN."""

    feature: FeatureRef
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.feature} {self.op} {self.threshold:g}"


def _check(x: object, where: str) -> Node:
    if not isinstance(x, Node):
        raise RuleError(f"{where} takes conditions or rules (feature(...) <= x, all_of(...), ...), got {x!r}")
    return x


@dataclass(frozen=True)
class Rule(Node):
    """True on a bar when at least k of its children are true; false when fewer than k can be."""

    conds: tuple[Node, ...]  # children: conditions or nested rules
    k: int

    def __post_init__(self) -> None:
        for c in self.conds:
            _check(c, "all_of/any_of/k_of")
        if isinstance(self.k, Sym):  # a swept parameter (a sweep checks each of its values as below)
            return
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)):
            raise RuleError(f"k_of needs a whole number k, got {self.k!r}")
        if not self.conds or not 1 <= self.k <= len(self.conds):
            raise RuleError(f"a rule needs 1 <= k <= {len(self.conds)} (its number of conditions), got k={self.k}")

    def __str__(self) -> str:
        body = ", ".join(map(str, self.conds))
        if self.k == len(self.conds):
            return f"all({body})"
        return f"any({body})" if self.k == 1 else f"{self.k}_of({body})"


@dataclass(frozen=True)
class Not(Node):
    """True where x is false, false where x is true, unknown where x is unknown."""

    x: Node

    def __post_init__(self) -> None:
        _check(self.x, "not_")

    def __str__(self) -> str:
        return f"not({self.x})"


@dataclass(frozen=True)
class Held(Node):
    """x on this bar and each of the n - 1 bars before (before the data: unknown)."""

    x: Node
    n: int

    def __post_init__(self) -> None:
        _check(self.x, "held")
        if isinstance(self.n, Sym):
            return
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise RuleError(f"held(x, n) needs a whole number n >= 1, got {self.n!r}")

    def __str__(self) -> str:
        return f"held({self.x}, {self.n})"


@dataclass(frozen=True)
class TurnsTrue(Node):
    """x true on this bar and false on the bar before (unknown there: unknown, so not true)."""

    x: Node

    def __post_init__(self) -> None:
        _check(self.x, "turns_true")

    def __str__(self) -> str:
        return f"turns_true({self.x})"


def all_of(*conds: Node) -> Rule:
    return Rule(tuple(conds), len(conds))


def any_of(*conds: Node) -> Rule:
    return Rule(tuple(conds), 1)


def k_of(k: int, *conds: Node) -> Rule:
    return Rule(tuple(conds), k)


def not_(x: Node) -> Not:
    return Not(x)


def held(x: Node, n: int) -> Held:
    return Held(x, n)


def turns_true(x: Node) -> TurnsTrue:
    return TurnsTrue(x)


def as_rule(rule: Node | None) -> Rule | None:
    """A rule as a k-of-n at its root (one condition or modifier: any_of(it)); None stays None."""
    if rule is None or isinstance(rule, Rule):
        return rule
    return Rule((_check(rule, "a strategy's entry/exit"),), 1)


def first_leaf(rule: Node) -> tuple[Cond, bool]:
    """`leaves(rule)[0]` without walking the rest of the rule."""
    neg = False
    while not isinstance(rule, Cond):
        if isinstance(rule, Rule):
            rule = rule.conds[0]
        else:
            neg, rule = neg != isinstance(rule, Not), rule.x
    return rule, neg


def leaves(rule: Node) -> list[tuple[Cond, bool]]:
    """The conditions of a rule in program order, each with whether it sits under an odd number of negations."""
    out: list[tuple[Cond, bool]] = []

    def walk(node: Node, neg: bool) -> None:
        if isinstance(node, Cond):
            out.append((node, neg))
        elif isinstance(node, Rule):
            for c in node.conds:
                walk(c, neg)
        else:
            walk(node.x, neg != isinstance(node, Not))

    walk(rule, False)
    return out


class CompiledRule(NamedTuple):
    """A rule as the kernel's program (backtest.kernels.rules): `code`/`arg` are the structure
    (LEAF c | BEGIN kind | END slot); leaf c holds where `sign[c] * feats[feat[c]] >= bound[c]`;
    `count[slot]` is a node's k (k_of) or n (held); `flat`: a single k-of-n over conditions.
    An empty rule (no exit rule) has no code and count[0] = 0: it never holds."""

    code: np.ndarray  # int64 (L,)
    arg: np.ndarray  # int64 (L,)
    sign: np.ndarray  # float64 (C,): +1 or -1
    feat: np.ndarray  # int64 (C,)
    bound: np.ndarray  # float64 (C,)
    count: np.ndarray  # int64 (M,)
    flat: bool

    @property
    def k(self) -> int:
        """The root's k (0: no rule)."""
        return int(self.count[0])


def lower_bound(op: str, threshold: float) -> tuple[float, float]:
    """(sign, bound) such that `x op threshold` is exactly `sign * x >= bound` for every float x."""
    sign = -1.0 if op in ("<=", "<") else 1.0
    bound = sign * threshold
    if op in ("<", ">"):  # y > b is y >= the next float above b; nothing is above +inf
        bound = float(np.nextafter(bound, np.inf)) if bound < np.inf else np.nan
    return sign, bound


class Program(NamedTuple):
    """A rule's structure before its features get slots: the kernel program (`code`, `arg`, as in
    CompiledRule), its conditions in program order and its nodes' k's / n's (`count`)."""

    code: list[int]
    arg: list[int]
    conds: list[Cond]
    count: list[int]
    flat: bool


def program(rule: Node | None) -> Program:
    """The program of a rule (None: the empty rule, which never holds); RuleError if nested too deep."""
    if rule is None:
        return Program([], [], [], [0], True)
    leaf, begin, end, kof, held_, not__, turns, max_depth = _codes()
    rule = as_rule(rule)
    n = len(rule.conds)
    if all(isinstance(c, Cond) for c in rule.conds):  # flat, the common case: what emit() below would give
        return Program([begin, *[leaf] * n, end], [kof, *range(n), 0], list(rule.conds), [_count(rule.k)], True)
    code: list[int] = []
    arg: list[int] = []
    conds: list[Cond] = []
    count: list[int] = []

    def emit(node: Node, depth: int) -> None:
        if isinstance(node, Cond):
            code.append(leaf)
            arg.append(len(conds))
            conds.append(node)
            return
        if depth > max_depth:
            raise RuleError(f"rule nested deeper than {max_depth} levels")
        if isinstance(node, Rule):
            kind, value, children = kof, _count(node.k), node.conds
        elif isinstance(node, Held):
            kind, value, children = held_, _count(node.n), (node.x,)
        else:
            kind, value, children = (not__ if isinstance(node, Not) else turns), 0, (node.x,)
        code.append(begin)
        arg.append(kind)
        slot = len(count)
        count.append(value)
        for c in children:
            emit(c, depth + 1)
        code.append(end)
        arg.append(slot)

    emit(rule, 1)
    return Program(code, arg, conds, count, len(code) == len(conds) + 2)  # flat: the root is the only node


def _count(k: int | Sym) -> int | Sym:
    return k if isinstance(k, Sym) else int(k)


_CODES: tuple[int, ...] = ()


def _codes() -> tuple[int, ...]:
    """The kernel's opcodes and node kinds, imported on first use (the kernel module loads numba)."""
    global _CODES
    if not _CODES:
        from backtest.kernels import rules as k

        _CODES = (k.OP_LEAF, k.OP_BEGIN, k.OP_END, k.K_KOF, k.K_HELD, k.K_NOT, k.K_TURNS, k.MAX_DEPTH)
    return _CODES


def compile_rule(rule: Node | None, index: dict[FeatureRef, int]) -> CompiledRule:
    """Map a rule onto feature slots, adding features it needs to `index` (None: the empty rule)."""
    pr = program(rule)
    i64 = lambda x: np.array(x, dtype=np.int64)  # noqa: E731
    sign, bound = zip(*(lower_bound(c.op, c.threshold) for c in pr.conds)) if pr.conds else ((), ())
    feat = [index.setdefault(c.feature, len(index)) for c in pr.conds]
    return CompiledRule(i64(pr.code), i64(pr.arg), np.array(sign, dtype=np.float64), i64(feat),
                        np.array(bound, dtype=np.float64), i64(pr.count), pr.flat)


def lower_bounds(sign: np.ndarray, threshold: np.ndarray, strict: np.ndarray) -> np.ndarray:
    """`lower_bound` elementwise: sign (+1/-1) times threshold, the next float up where the
    comparison is strict (NaN above +inf), bit for bit."""
    bound = sign * threshold
    with np.errstate(invalid="ignore"):
        up = np.where(bound < np.inf, np.nextafter(bound, np.inf), np.nan)
    return np.where(strict, up, bound)


def polarity(rule: CompiledRule) -> tuple[np.ndarray, np.ndarray]:
    """(C,) and (M,) int8: +1 where making a leaf's bound or a node's k/n smaller can only make the
    rule truer, -1 where only less true (under a negation), 0 where both (inside turns_true)."""
    from backtest.kernels.rules import K_NOT, K_TURNS, OP_BEGIN, OP_LEAF

    leaf = np.zeros(rule.feat.shape[0], np.int8)
    slot = np.zeros(rule.count.shape[0], np.int8)
    stack = [1]
    for op, a in zip(rule.code, rule.arg):
        if op == OP_LEAF:
            leaf[a] = stack[-1]
        elif op == OP_BEGIN:
            pol = stack[-1]
            stack.append(-pol if a == K_NOT else 0 if a == K_TURNS else pol)
        else:
            stack.pop()
            slot[a] = stack[-1]
    return leaf, slot


def evaluate(rule: Node, feats: np.ndarray, index: dict[FeatureRef, int]) -> np.ndarray:
    """(T, N) bool: where `rule` holds on every bar of every symbol, with the kernel's evaluator.
    feats: the (F, N, T) stack `compute_features` made for the features in `index` (ref -> slot)."""
    from backtest.kernels.rules import rule_panel

    slots = dict(index)
    compiled = compile_rule(rule, slots)
    missing = [str(ref) for ref, i in slots.items() if i >= feats.shape[0] or ref not in index]
    if missing:
        raise RuleError(f"rule {rule} needs features not in the stack: {', '.join(missing)}")
    return rule_panel(np.ascontiguousarray(feats, dtype=np.float64), compiled).T


class RuleGrid(NamedTuple):
    """One rule structure with P parameter sets (a sweep): the fields of CompiledRule, with
    feat, bound (P, C) and count (P, M) holding row p's leaves and k's/n's."""

    code: np.ndarray
    arg: np.ndarray
    sign: np.ndarray
    feat: np.ndarray
    bound: np.ndarray
    count: np.ndarray
    flat: bool

    def row(self, p: int) -> CompiledRule:
        return CompiledRule(self.code, self.arg, self.sign, self.feat[p], self.bound[p], self.count[p], self.flat)

    def take(self, rows: np.ndarray | slice) -> RuleGrid:
        c = np.ascontiguousarray
        return self._replace(feat=c(self.feat[rows]), bound=c(self.bound[rows]), count=c(self.count[rows]))


def check_structure(first: CompiledRule, r: CompiledRule) -> None:
    """RuleError unless `r` has the structure of `first` (program and signs; parameters may differ)."""
    if not (np.array_equal(r.code, first.code) and np.array_equal(r.arg, first.arg)
            and np.array_equal(r.sign, first.sign)):
        raise RuleError(f"the rule's structure differs across the grid: {_shape(first)} vs {_shape(r)}")


def stack_rules(rules: list[CompiledRule]) -> RuleGrid:
    """The compiled rules of a sweep's combinations as one RuleGrid; RuleError if their structures differ."""
    first = rules[0]
    for r in rules:
        check_structure(first, r)
    rows = lambda f, dtype: np.ascontiguousarray(  # noqa: E731
        np.array([getattr(r, f) for r in rules], dtype=dtype).reshape(len(rules), -1))
    return RuleGrid(first.code, first.arg, first.sign, rows("feat", np.int64), rows("bound", np.float64),
                    rows("count", np.int64), first.flat)


def _shape(r: CompiledRule) -> str:
    return f"{len(r.feat)} conditions, program {r.code.tolist()}"


def loosest(grid: RuleGrid) -> tuple[np.ndarray, RuleGrid]:
    """(group (P,), loose RuleGrid (G rows)): combinations that share their features (and every
    parameter that can act both ways, inside turns_true) form a group; the group's loose rule holds
    wherever any member's rule holds, so its bars bound every member's entries. Per parameter: the
    loosest value where smaller is truer (lowest bound, smallest k or n; a NaN bound never holds),
    the tightest under a negation."""
    leaf_pol, slot_pol = polarity(grid.row(0))
    both_b, both_c = leaf_pol == 0, slot_pol == 0
    key = np.hstack([grid.feat, np.ascontiguousarray(grid.bound[:, both_b]).view(np.int64), grid.count[:, both_c]])
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = np.ascontiguousarray(group.reshape(-1), dtype=np.int64)
    order = np.argsort(group, kind="stable")  # each group's members in grid order, groups one after another
    starts = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=len(first)))[:-1]])
    b, c = grid.bound[order], grid.count[order]
    bound = grid.bound[first].copy()
    count = grid.count[first].copy()
    for pol, keep in ((leaf_pol > 0, np.fmin), (leaf_pol < 0, np.maximum)):  # fmin: NaN only where all are NaN;
        if pol.any():  # maximum: NaN (never holds) is the tightest
            bound[:, pol] = keep.reduceat(b[:, pol], starts, axis=0)
    for pol, keep in ((slot_pol > 0, np.minimum), (slot_pol < 0, np.maximum)):
        if pol.any():
            count[:, pol] = keep.reduceat(c[:, pol], starts, axis=0)
    loose = grid._replace(feat=np.ascontiguousarray(grid.feat[first]), bound=np.ascontiguousarray(bound),
                          count=np.ascontiguousarray(count))
    return group, loose
