"""TOML config -> typed, validated objects. Every error names the file and the key."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from backtest.errors import ConfigError


def _check(lo: float | None = None, hi: float | None = None, help: str = "") -> dict:
    return {"lo": lo, "hi": hi, "help": help}


@dataclass(frozen=True)
class SynthConfig:
    seed: int = field(default=7, metadata=_check(0, None, "generator seed"))
    symbols: int = field(default=25, metadata=_check(1, 30, "number of names"))
    years: float = field(default=10.0, metadata=_check(0.5, 30, "length of history"))


@dataclass(frozen=True)
class DataConfig:
    path: str | None = field(default=None, metadata=_check(help="dataset directory (docs/data.md); omit for the sample market"))
    synthetic: SynthConfig = field(default_factory=SynthConfig)
    max_adr_staleness: int = field(default=5, metadata=_check(0, 260, "weekdays an ADR close may be carried before it counts as unknown (ADR features NaN)"))


@dataclass(frozen=True)
class StrategyConfig:
    name: str = field(default="", metadata=_check(help="strategy short name or import path"))
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionConfig:
    mode: Literal["independent", "portfolio"] = "independent"
    max_positions: int = field(default=10, metadata=_check(1, 1000, "portfolio mode: most names held at once"))
    fill: Literal["next_open", "next_close", "same_close"] = "next_open"
    init_cash: float = field(default=1_000_000.0, metadata=_check(1.0, None, "starting cash per account, HK$"))
    slippage_bps: float = field(default=0.0, metadata=_check(0.0, 1000.0, "adverse slippage per fill, bps"))
    board_lots: bool = field(default=True, metadata=_check(help="round shares down to board lots (false: fractional shares)"))


@dataclass(frozen=True)
class ExitConfig:
    stop_loss: float = field(default=0.0, metadata=_check(0.0, 1.0, "fraction below entry price; 0 = off"))
    take_profit: float = field(default=0.0, metadata=_check(0.0, 100.0, "fraction above entry price; 0 = off"))
    trailing_stop: float = field(default=0.0, metadata=_check(0.0, 1.0, "fraction below the highest high since entry; 0 = off"))
    max_hold: int = field(default=0, metadata=_check(0, None, "bars held before a time exit; 0 = off"))


@dataclass(frozen=True)
class CostConfig:
    model: Literal["hk", "flat"] = "hk"
    flat_pct: float = field(default=0.0, metadata=_check(0.0, 10.0, "flat fee, percent of value (model = flat)"))
    commission_bps: float = field(default=0.0, metadata=_check(0.0, 100.0, "broker commission, bps"))
    commission_min: float = field(default=0.0, metadata=_check(0.0, None, "broker minimum per order, HK$"))


@dataclass(frozen=True)
class ReportConfig:
    out: str = field(default="out", metadata=_check(help="output directory (relative to the working directory)"))
    risk_free: float = field(default=0.0, metadata=_check(0.0, 0.5, "annual risk-free rate for Sharpe, Sortino and alpha"))


@dataclass(frozen=True)
class SweepConfig:
    grid: dict = field(default_factory=dict)  # key -> list | {start, stop, num | step, log}; see backtest.grid
    metric: Literal["sharpe", "sortino", "total_return", "cagr", "max_drawdown", "win_rate"] = "sharpe"
    blocks: int = field(default=10, metadata=_check(2, 64, "time blocks for PBO (even: CSCV splits them in halves) and walk-forward"))
    train_blocks: int = field(default=4, metadata=_check(1, 63, "walk-forward in-sample window, in blocks"))
    chunk_size: int = field(default=0, metadata=_check(0, None, "combinations per chunk (0: automatic)"))


@dataclass(frozen=True)
class Config:
    strategy: StrategyConfig
    data: DataConfig = field(default_factory=DataConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    exits: ExitConfig = field(default_factory=ExitConfig)
    costs: CostConfig = field(default_factory=CostConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    source: str = field(default="", metadata={"internal": True})
    text: str = field(default="", metadata={"internal": True})


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f" (valid keys: {', '.join(valid)})"


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check a scalar against a field type; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        opts = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, opts[0], where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def _build(cls: type, table: Any, file: str, prefix: str) -> Any:
    where_tbl = f"{file}: [{prefix}]" if prefix else file
    if not isinstance(table, dict):
        raise ConfigError(f"{where_tbl}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    spec = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    for key in table:
        if key not in spec:
            raise ConfigError(f"{file}: unknown key {'.'.join(filter(None, [prefix, key]))!r}{_suggest(key, list(spec))}")
    kwargs = {}
    for name, f in spec.items():
        dotted = ".".join(filter(None, [prefix, name]))
        if name not in table:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{file}: missing required key {dotted!r}")
            continue
        tp = hints[name]
        if isinstance(tp, type) and hasattr(tp, "__dataclass_fields__"):
            kwargs[name] = _build(tp, table[name], file, dotted)
            continue
        value = _coerce(table[name], tp, f"{file}: key {dotted!r}")
        lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
        if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise ConfigError(f"{file}: key {dotted!r} = {value!r} is out of range {rng}")
        kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config; strategy parameters are checked by the strategy layer."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if "strategy" not in table:
        raise ConfigError(f"{path}: missing required table [strategy]")
    cfg = _build(Config, table, str(path), "")
    if not cfg.strategy.name:
        raise ConfigError(f"{path}: missing required key 'strategy.name'")
    data = cfg.data
    if data.path is not None and not Path(data.path).is_absolute():
        data = dataclasses.replace(data, path=str((path.parent / data.path).resolve()))
    if cfg.sweep.blocks % 2:
        raise ConfigError(f"{path}: key 'sweep.blocks' = {cfg.sweep.blocks} must be even "
                          "(CSCV compares every half of the blocks with the other half)")
    if cfg.sweep.train_blocks >= cfg.sweep.blocks:
        raise ConfigError(f"{path}: key 'sweep.train_blocks' = {cfg.sweep.train_blocks} must be below "
                          f"'sweep.blocks' = {cfg.sweep.blocks}")
    return dataclasses.replace(cfg, data=data, source=str(path), text=text)
