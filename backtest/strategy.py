"""Strategy modules: find them by name or import path, check their parameters, compile their rules.

A strategy module defines NAME, HELP, PARAMS (a tuple of `Param`) and `entry(p) -> Rule`;
optionally `exit(p) -> Rule | None` and `rank(p) -> (FeatureRef, "high_first" | "low_first")`, which
orders same-bar entries in portfolio mode. `p` holds the parameter values as attributes.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

from backtest.errors import ConfigError
from backtest.features import check_ref
from backtest.rules import CompiledRule, FeatureRef, Node, Rule, RuleError, as_rule, compile_rule, leaves

FILL_TIMES = {"same_close": "close", "next_open": "next_open", "next_close": "next_open"}
"""The latest a feature may become known for an order of that fill to be look-ahead free."""


@dataclass(frozen=True)
class Param:
    """A strategy parameter: its type, default, inclusive valid range and one line of help."""

    name: str
    type: type
    default: int | float
    lo: float
    hi: float
    help: str

    def check(self, value: Any, where: str) -> int | float:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or isinstance(value, bool):
            raise ConfigError(f"{where}: parameter {self.name!r} expects {self.type.__name__}, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise ConfigError(f"{where}: parameter {self.name!r} = {value!r} is out of range [{self.lo}, {self.hi}]")
        return value


def load_strategy(name: str, where: str = "config") -> ModuleType:
    """A shipped strategy by short name (`strategies.<name>`) or a user module by import path."""
    path = name if "." in name else f"strategies.{name}"
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name not in {path, *_parents(path)}:
            raise
        hint = ""
        if "." not in name:
            close = difflib.get_close_matches(name, shipped_strategies(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (shipped: {', '.join(shipped_strategies())})"
        raise ConfigError(f"{where}: strategy {name!r} not found{hint}") from None
    for attr in ("NAME", "HELP", "PARAMS", "entry"):
        if not hasattr(module, attr):
            raise ConfigError(f"{where}: strategy module {path!r} does not define {attr}")
    return module


def _parents(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def shipped_strategies() -> list[str]:
    import pkgutil

    import strategies

    return sorted(m.name for m in pkgutil.iter_modules(strategies.__path__) if not m.name.startswith("_"))


def resolve_params(module: ModuleType, given: dict, where: str = "config") -> SimpleNamespace:
    """Defaults overlaid with `given`; unknown names and bad values are ConfigErrors."""
    spec = {p.name: p for p in module.PARAMS}
    for key in given:
        if key not in spec:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (valid: {', '.join(spec)})"
            raise ConfigError(f"{where}: unknown parameter 'strategy.params.{key}' for strategy {module.NAME!r}{hint}")
    return SimpleNamespace(**{n: p.check(given.get(n, p.default), where) for n, p in spec.items()})


@dataclass(frozen=True)
class StrategyPlan:
    """A strategy's rules for one parameter set, compiled against a list of feature slots."""

    refs: list[FeatureRef]
    entry: CompiledRule
    exit: CompiledRule
    entry_rule: Rule
    exit_rule: Rule | None
    rank_slot: int  # feature slot that ranks same-bar entries (portfolio mode)
    rank_sign: float  # +1: high values first, -1: low values first


def plan(module: ModuleType, params: SimpleNamespace, fill: str, where: str = "config") -> StrategyPlan:
    """Build and check the rules; refuse fills that would act before a feature is known (§3)."""
    try:
        entry_rule = module.entry(params)
        exit_rule = module.exit(params) if hasattr(module, "exit") else None
        if not isinstance(entry_rule, Node) or not (exit_rule is None or isinstance(exit_rule, Node)):
            raise RuleError("entry(p) and exit(p) must return conditions or rules built with "
                            "all_of/any_of/k_of/not_/held/turns_true")
        entry_rule, exit_rule = as_rule(entry_rule), as_rule(exit_rule)
        index: dict[FeatureRef, int] = {}
        entry, exit_ = compile_rule(entry_rule, index), compile_rule(exit_rule, index)
    except RuleError as exc:
        raise ConfigError(f"{where}: strategy {module.NAME!r}: {exc}") from None
    rank_ref, order = module.rank(params) if hasattr(module, "rank") else _default_rank(entry_rule)
    if order not in ("high_first", "low_first"):
        raise ConfigError(f"{where}: strategy {module.NAME!r}: rank() must return (feature, 'high_first' or 'low_first')")
    rank_slot = index.setdefault(rank_ref, len(index))
    refs = list(index)
    for ref in refs:
        fd = check_ref(ref)
        if fd.known == "next_open" and FILL_TIMES[fill] == "close":
            raise ConfigError(
                f"{where}: fill = {fill!r} would trade at the close of the bar whose data forms the signal, "
                f"but feature {ref} is only known before the next HK open (DESIGN §3); "
                f"use fill = 'next_open' or 'next_close'")
    return StrategyPlan(refs, entry, exit_, entry_rule, exit_rule, rank_slot, 1.0 if order == "high_first" else -1.0)


def _default_rank(rule: Rule) -> tuple[FeatureRef, str]:
    """Without a `rank(p)`, the first entry condition ranks: the further past its threshold, the
    stronger (the other way round under a negation)."""
    first, negated = leaves(rule)[0]
    return first.feature, "low_first" if (first.op in ("<=", "<")) != negated else "high_first"


def describe(module: ModuleType) -> str:
    """Human-readable listing of a strategy and its parameters."""
    lines = [f"{module.NAME}: {module.HELP}"]
    for p in module.PARAMS:
        lines.append(f"  {p.name:<16} {p.type.__name__:<5} default {p.default!r:<8} range [{p.lo}, {p.hi}]  {p.help}")
    return "\n".join(lines)

