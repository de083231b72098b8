"""Declarative entry/exit rules: feature x comparison x threshold, combined k-of-n.

Rules are data, not functions, so one generic cached kernel evaluates every strategy (DESIGN §4:
a jitted function passed into an `@njit(cache=True)` kernel misses the cache in each process).

    all_of(feature("drawdown", window=20) <= -0.1, feature("sb_z", window=60) >= 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

@dataclass(frozen=True)
class FeatureRef:
    """A named feature with its parameters, e.g. feature("sb_z", window=60)."""

    name: str
    params: tuple[tuple[str, int | float], ...] = ()

    def _cond(self, op: str, threshold: float) -> Cond:
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
            raise TypeError(f"compare {self} with a number, not {threshold!r}")
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
class Cond:
    feature: FeatureRef
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.feature} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Rule:
    """True on a bar when at least k of the conditions hold (a NaN feature never holds)."""

    conds: tuple[Cond, ...]
    k: int

    def __post_init__(self) -> None:
        if not self.conds or not 1 <= self.k <= len(self.conds):
            raise ValueError(f"a rule needs 1 <= k <= {len(self.conds)} conditions, got k={self.k}")

    def __str__(self) -> str:
        body = ", ".join(map(str, self.conds))
        if self.k == len(self.conds):
            return f"all({body})"
        return f"any({body})" if self.k == 1 else f"{self.k}_of({body})"


def all_of(*conds: Cond) -> Rule:
    return Rule(tuple(conds), len(conds))


def any_of(*conds: Cond) -> Rule:
    return Rule(tuple(conds), 1)


def k_of(k: int, *conds: Cond) -> Rule:
    return Rule(tuple(conds), k)


def as_rule(rule: Rule | Cond | None) -> Rule | None:
    return Rule((rule,), 1) if isinstance(rule, Cond) else rule


@dataclass(frozen=True)
class CompiledRule:
    """Array form for the kernel: condition c holds where `sign[c] * feats[feat[c]] >= bound[c]`
    (NaN never holds). Every comparison written as a lower bound leaves the kernel's rule loop
    without a branch per operator."""

    feat: np.ndarray  # int64 (C,)
    sign: np.ndarray  # float64 (C,): +1 or -1
    bound: np.ndarray  # float64 (C,)
    k: int


def lower_bound(op: str, threshold: float) -> tuple[float, float]:
    """(sign, bound) such that `x op threshold` is exactly `sign * x >= bound` for every float x."""
    sign = -1.0 if op in ("<=", "<") else 1.0
    bound = sign * threshold
    if op in ("<", ">"):  # y > b is y >= the next float above b; nothing is above +inf
        bound = float(np.nextafter(bound, np.inf)) if bound < np.inf else np.nan
    return sign, bound


def compile_rule(rule: Rule | None, index: dict[FeatureRef, int]) -> CompiledRule:
    """Map a rule onto feature slots, adding features it needs to `index` (a no-op rule: k = 0)."""
    if rule is None:
        return CompiledRule(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), 0)
    feat = [index.setdefault(c.feature, len(index)) for c in rule.conds]
    sign, bound = zip(*(lower_bound(c.op, c.threshold) for c in rule.conds))
    return CompiledRule(np.array(feat, np.int64), np.array(sign), np.array(bound), rule.k)


def evaluate(rule: Rule | Cond | None, feats: np.ndarray, index: dict[FeatureRef, int]) -> np.ndarray:
    """Whole-panel signals of a rule as (T, N) bool, from the (F, N, T) feature stack whose slots
    `index` names; the kernel's semantics (a NaN feature never holds). No rule: never true."""
    _, n_s, n_t = feats.shape
    rule = as_rule(rule)
    if rule is None:
        return np.zeros((n_t, n_s), dtype=bool)
    held = np.zeros((n_t, n_s), dtype=np.int64)
    for c in rule.conds:
        sign, bound = lower_bound(c.op, c.threshold)
        held += sign * feats[index[c.feature]].T >= bound
    return held >= rule.k
