"""TOML config -> typed, validated objects. Every error names the file and the key."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from backtest.errors import ConfigError


INT64_MAX = 2**63 - 1  # free-form integers (strategy parameters, grid values) must fit the kernels' int64


def _check(lo: float | None = None, hi: float | None = None, help: str = "") -> dict:
    return {"lo": lo, "hi": hi, "help": help}


@dataclass(frozen=True)
class SynthConfig:
    seed: int = field(default=7, metadata=_check(0, 2**32 - 1, "generator seed"))
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
    init_cash: float = field(default=1_000_000.0, metadata=_check(1.0, 1e15, "starting cash per account, HK$"))
    slippage_bps: float = field(default=0.0, metadata=_check(0.0, 1000.0, "adverse slippage per fill, bps"))
    board_lots: bool = field(default=True, metadata=_check(help="round shares down to board lots (false: fractional shares)"))


@dataclass(frozen=True)
class ExitConfig:
    stop_loss: float = field(default=0.0, metadata=_check(0.0, 1.0, "fraction below entry price; 0 = off"))
    take_profit: float = field(default=0.0, metadata=_check(0.0, 100.0, "fraction above entry price; 0 = off"))
    trailing_stop: float = field(default=0.0, metadata=_check(0.0, 1.0, "fraction below the highest high since entry; 0 = off"))
    max_hold: int = field(default=0, metadata=_check(0, 100_000, "bars held before a time exit; 0 = off"))


@dataclass(frozen=True)
class CostConfig:
    model: Literal["hk", "flat"] = "hk"
    flat_pct: float = field(default=0.0, metadata=_check(0.0, 10.0, "flat fee, percent of value (model = flat)"))
    commission_bps: float = field(default=0.0, metadata=_check(0.0, 100.0, "broker commission, bps (model = hk)"))
    commission_min: float = field(default=0.0, metadata=_check(0.0, 1e6, "broker minimum per order, HK$ (model = hk)"))


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
    chunk_size: int = field(default=0, metadata=_check(0, 1_000_000, "combinations per chunk (0: automatic)"))
    min_trades: int = field(default=30, metadata=_check(0, 1_000_000, "closed trades a combination needs to be ranked"))
    min_exposure: float = field(default=0.05, metadata=_check(0.0, 1.0, "average exposure a combination needs to be ranked"))


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
    """Check a scalar against a field type; ints are accepted where floats are expected, NaN and inf never."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        opts = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, opts[0], where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 1e300:
            raise ConfigError(f"{where}: {value} is too large")
        return float(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
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
            raise ConfigError(f"{file}: key {dotted!r} = {value!r} is out of range [{lo}, {hi}]")
        kwargs[name] = value
    return cls(**kwargs)


def _check_costs(c: CostConfig, file: str) -> None:
    """Keys of the other cost model are refused rather than silently ignored."""
    if c.model == "flat":
        for key in ("commission_bps", "commission_min"):
            if getattr(c, key):
                raise ConfigError(f"{file}: key 'costs.{key}' applies to costs.model = 'hk' only; "
                                  "with costs.model = 'flat' put the whole cost into 'costs.flat_pct'")
    elif c.flat_pct:
        raise ConfigError(f"{file}: key 'costs.flat_pct' applies to costs.model = 'flat' only "
                          "(set costs.model = 'flat' or remove it)")


def config_from_dict(table: dict, source: str = "<dict>") -> Config:
    """Validate a parsed config table (TOML or a Python dict): every error names `source` and the key.

    Strategy parameters and [sweep.grid] are checked against the strategy by `backtest.pipeline.prepare`.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: expected a table of config sections, got {type(table).__name__}")
    if "strategy" not in table:
        raise ConfigError(f"{source}: missing required table [strategy]")
    cfg = _build(Config, table, source, "")
    if not cfg.strategy.name:
        raise ConfigError(f"{source}: missing required key 'strategy.name'")
    if cfg.data.path is not None and not cfg.data.path.strip():
        raise ConfigError(f"{source}: key 'data.path' is empty; give a dataset directory or omit it for the sample market")
    _check_params(cfg.strategy.params, source, "strategy.params")
    _check_params(cfg.sweep.grid, source, "sweep.grid")
    _check_costs(cfg.costs, source)
    if cfg.sweep.blocks % 2:
        raise ConfigError(f"{source}: key 'sweep.blocks' = {cfg.sweep.blocks} must be even "
                          "(CSCV compares every half of the blocks with the other half)")
    if cfg.sweep.train_blocks >= cfg.sweep.blocks:
        raise ConfigError(f"{source}: key 'sweep.train_blocks' = {cfg.sweep.train_blocks} must be below "
                          f"'sweep.blocks' = {cfg.sweep.blocks}")
    # `text` records every value (a dict config has no file text), so a sweep's resume fingerprint covers it
    return dataclasses.replace(cfg, source=source, text=json.dumps(table, indent=2, sort_keys=True, default=str))


def _check_params(table: dict, source: str, prefix: str) -> None:
    """Free-form tables (strategy parameters, grid values): numbers finite and within int64, at any depth."""
    for key, value in table.items():
        where = f"{prefix}.{key}"
        if isinstance(value, dict):
            _check_params(value, source, where)
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{source}: key {where!r}: expected a finite number, got {v!r}")
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > INT64_MAX:
                raise ConfigError(f"{source}: key {where!r}: {v} is too large")


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); a bad byte is located by line and offset."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line} (byte {exc.start}): byte {raw[exc.start]:#04x} is not UTF-8; "
                          "a config must be UTF-8 text") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config; strategy parameters are checked by the strategy layer."""
    path = Path(path)
    table, text = read_table(path)
    cfg = config_from_dict(table, str(path))
    data = cfg.data
    if data.path is not None and not Path(data.path).is_absolute():
        data = dataclasses.replace(data, path=str((path.parent / data.path).resolve()))
    return dataclasses.replace(cfg, data=data, text=text)


def read_table(path: Path) -> tuple[dict, str]:
    """The parsed TOML table of a config file and its text."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    text = _decode(path, raw)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
