"""Strategy modules: find them by name or import path, check their parameters, compile their rules.

A strategy module defines NAME, HELP, PARAMS (a tuple of `Param`) and `entry(p) -> Rule`;
optionally `exit(p) -> Rule | None` and `rank(p) -> (FeatureRef, "high_first" | "low_first")`, which
orders same-bar entries in portfolio mode. `p` holds the parameter values as attributes.
"""

from __future__ import annotations

import difflib
import importlib
import re
import traceback
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace

from backtest.errors import ConfigError, UserError
from backtest.params import Param  # noqa: F401  (re-exported: strategies import it from here)
from backtest.features import check_ref
from backtest.rules import CompiledRule, FeatureRef, Node, Rule, RuleError, as_rule, compile_rule, first_leaf

FILL_TIMES = {"same_close": "close", "next_open": "next_open", "next_close": "next_open"}
"""The latest a feature may become known for an order of that fill to be look-ahead free."""


MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def load_strategy(name: str, where: str = "config") -> ModuleType:
    """A shipped strategy by short name (`strategies.<name>`) or a user module by import path.

    A module that cannot be imported (syntax error, missing package, an exception at import) is a
    ConfigError naming the module, the file and line, and the exception.
    """
    if not MODULE_NAME.fullmatch(name):
        raise ConfigError(f"{where}: strategy {name!r} is not a module name (e.g. 'southbound_dip' or 'mypkg.my_strategy')")
    path = name if "." in name else f"strategies.{name}"
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name not in {path, *_parents(path)}:
            raise ConfigError(f"{where}: strategy module {path!r} imports {exc.name!r}, which is not installed "
                              f"({_user_line(exc)})") from None
        hint = ""
        if "." not in name:
            close = difflib.get_close_matches(name, shipped_strategies(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (shipped: {', '.join(shipped_strategies())})"
        raise ConfigError(f"{where}: strategy {name!r} not found{hint}") from None
    except Exception as exc:  # noqa: BLE001 -- any failure of the user's module code is reported, not a bug here
        raise ConfigError(f"{where}: strategy module {path!r} failed to import: {_describe(exc)}") from None
    for attr in ("NAME", "HELP", "PARAMS", "entry"):
        if not hasattr(module, attr):
            raise ConfigError(f"{where}: strategy module {path!r} does not define {attr}")
    _check_shape(module, path, where)
    return module


def _check_shape(module: ModuleType, path: str, where: str) -> None:
    """What the engine assumes of a strategy module, checked once with a message instead of a crash later."""
    import inspect

    bad = f"{where}: strategy module {path!r} ({getattr(module, '__file__', '?')}):"
    for attr in ("NAME", "HELP"):
        if not isinstance(getattr(module, attr), str) or not getattr(module, attr):
            raise ConfigError(f"{bad} {attr} must be a non-empty string, got {getattr(module, attr)!r}")
    params = module.PARAMS
    if not isinstance(params, (tuple, list)) or not all(isinstance(q, Param) for q in params):
        raise ConfigError(f"{bad} PARAMS must be a tuple of backtest.strategy.Param, got {params!r}")
    for q in params:
        q.validate(bad[:-1])
    for fn in ("entry", "exit", "rank"):
        if not hasattr(module, fn):
            continue
        f = getattr(module, fn)
        try:
            inspect.signature(f).bind(SimpleNamespace())
        except TypeError:
            raise ConfigError(f"{bad} {fn} must be a function of one argument, {fn}(p)") from None
        except ValueError:  # a callable without a signature (some builtins): let the call decide
            pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}:{exc.lineno})"
    return f"{type(exc).__name__}: {exc} ({_user_line(exc)})"


def _user_line(exc: BaseException) -> str:
    """file:line of the deepest traceback frame outside this package, the import machinery and libraries."""
    import sysconfig
    from pathlib import Path

    here = str(Path(__file__).resolve().parent)
    skip = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")})
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if not f.filename.startswith(("<", here, *skip))]
    f = (user or frames or [None])[-1]
    return f"{f.filename}:{f.lineno}" if f else "no traceback"


def strategy_fault(exc: BaseException) -> ConfigError | None:
    """If `exc` was raised inside a strategy module's code (entry, exit, rank, helpers), the user's error,
    naming the module and the user's file:line (a UserError raised there, e.g. an unknown feature, too).

    None otherwise: the exception is then a bug in the engine and must stay visible as one.
    """
    tb, module = exc.__traceback__, None
    while tb is not None:
        g = tb.tb_frame.f_globals
        if module is None and all(k in g for k in ("NAME", "PARAMS", "entry")) and g.get("__name__") != __name__:
            module = (g.get("__name__"), tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    if module is None:
        return None
    if isinstance(exc, ConfigError) and str(exc).startswith("strategy module"):
        return exc
    what = f"{exc} ({_user_line(exc)})" if isinstance(exc, UserError) else f"raised {_describe(exc)}"
    return ConfigError(f"strategy module {module[0]!r}: {module[1]}(p): {what}")


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
    return SimpleNamespace(**{n: p.check(given.get(n, p.default), f"{where}: [strategy.params]") for n, p in spec.items()})


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
    entry_rule, exit_rule = rules_of(module, params, where)
    index: dict[FeatureRef, int] = {}
    try:
        entry, exit_ = compile_rule(entry_rule, index), compile_rule(exit_rule, index)
    except RuleError as exc:
        raise ConfigError(f"{where}: strategy {module.NAME!r}: {exc}") from None
    rank_ref, rank_sign = rank_of(module, params, entry_rule, where)
    rank_slot = index.setdefault(rank_ref, len(index))
    refs = list(index)
    for ref in refs:
        check_feature(module, ref, fill, where)
    return StrategyPlan(refs, entry, exit_, entry_rule, exit_rule, rank_slot, rank_sign)


def rules_of(module: ModuleType, params: SimpleNamespace, where: str = "config") -> tuple[Rule, Rule | None]:
    """The strategy's entry and exit rules for one parameter set, each a k-of-n at its root."""
    try:
        entry_rule = module.entry(params)
        exit_rule = module.exit(params) if hasattr(module, "exit") else None
        if not isinstance(entry_rule, Node) or not (exit_rule is None or isinstance(exit_rule, Node)):
            raise RuleError("entry(p) and exit(p) must return conditions or rules built with "
                            "all_of/any_of/k_of/not_/held/turns_true")
        return as_rule(entry_rule), as_rule(exit_rule)
    except RuleError as exc:
        raise ConfigError(f"{where}: strategy {module.NAME!r}: {exc}") from None


def rank_of(module: ModuleType, params: SimpleNamespace, entry_rule: Rule, where: str = "config"
            ) -> tuple[FeatureRef, float]:
    """The feature that ranks same-bar entries and its sign (+1: high values first)."""
    ranked = module.rank(params) if hasattr(module, "rank") else _default_rank(entry_rule)
    if not (isinstance(ranked, tuple) and len(ranked) == 2 and isinstance(ranked[0], FeatureRef)):
        raise ConfigError(f"{where}: strategy {module.NAME!r}: rank() must return (feature, 'high_first' or "
                          f"'low_first'), got {ranked!r}")
    rank_ref, order = ranked
    if order not in ("high_first", "low_first"):
        raise ConfigError(f"{where}: strategy {module.NAME!r}: rank() must return (feature, 'high_first' or 'low_first')")
    return rank_ref, 1.0 if order == "high_first" else -1.0


def check_feature(module: ModuleType, ref: FeatureRef, fill: str, where: str = "config") -> None:
    """ConfigError unless `ref` names a registered feature with valid parameters, known in time for `fill`."""
    try:
        fd = check_ref(ref)
    except ConfigError as exc:
        raise ConfigError(f"{where}: strategy {module.NAME!r}: {exc}") from None
    if fd.known == "next_open" and FILL_TIMES[fill] == "close":
        raise ConfigError(
            f"{where}: fill = {fill!r} would trade at the close of the bar whose data forms the signal, "
            f"but feature {ref} is only known before the next HK open (DESIGN §3); "
            f"use fill = 'next_open' or 'next_close'")


def _default_rank(rule: Rule) -> tuple[FeatureRef, str]:
    """Without a `rank(p)`, the first entry condition ranks: the further past its threshold, the
    stronger (the other way round under a negation)."""
    first, negated = first_leaf(rule)
    return first.feature, "low_first" if (first.op in ("<=", "<")) != negated else "high_first"


def describe(module: ModuleType) -> str:
    """Human-readable listing of a strategy and its parameters."""
    lines = [f"{module.NAME}: {module.HELP}"]
    for p in module.PARAMS:
        lines.append(f"  {p.name:<16} {p.type.__name__:<5} default {p.default!r:<8} range [{p.lo}, {p.hi}]  {p.help}")
    return "\n".join(lines)

