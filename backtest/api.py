"""The Python API for notebooks (docs/api.md): run, sweep and look-ahead-check a config, simulate
your own signal frames, load or generate a market. Everything goes through the same validation,
kernels and outputs as the command line; this module only translates between them and DataFrames.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import tempfile
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Union

import numpy as np
import pandas as pd

from backtest.config import Config, config_from_dict, load_config, read_table
from backtest.data.market import MarketData, Panel
from backtest.errors import ConfigError, DataError, Problem, UserError
from backtest.pipeline import RunOutput

ConfigLike = Union[str, os.PathLike, dict, Config]


# ---------------------------------------------------------------------------------------------
# Configs and overrides


def make_config(config: ConfigLike, **overrides: Any) -> Config:
    """The validated Config of a TOML path, a dict shaped like the TOML file, or a Config, with
    `overrides` applied: dotted keys (`**{"strategy.params.dip": 0.15}`) or the keyword form with
    `__` for the dots (`strategy__params__dip=0.15`). Overrides are checked exactly like the file."""
    if isinstance(config, Config):
        if not overrides:
            return config
        table, source = _table_of(config), f"{config.source or '<Config>'} + overrides"
    elif isinstance(config, dict):
        table, source = copy.deepcopy(config), "<dict>" + (" + overrides" if overrides else "")
    elif isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not overrides:
            return load_config(path)
        table, _ = read_table(path)
        data = table.get("data")
        if isinstance(data, dict) and isinstance(data.get("path"), str) and not Path(data["path"]).is_absolute():
            data["path"] = str((path.parent / data["path"]).resolve())  # relative to the file, as load_config
        source = f"{path} + overrides"
    else:
        raise UserError(f"config: expected a path, a dict or a Config, got {type(config).__name__}")
    for key, value in overrides.items():
        _set(table, key.replace("__", "."), value, source)
    return config_from_dict(table, source)


def _set(table: dict, dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = table
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: override {dotted!r}: {'.'.join(parts[:i + 1])!r} is a value, not a table")
    node[parts[-1]] = value


def _table_of(cfg: Config) -> dict:
    """A Config back as the table it was built from (keys left at None are dropped)."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if v is not None}
        return x

    table = strip(dataclasses.asdict(cfg))
    table.pop("source", None)
    table.pop("text", None)
    return table


# ---------------------------------------------------------------------------------------------
# Data


def load_market(path: str | os.PathLike) -> MarketData:
    """A dataset directory in the documented format (docs/data.md), validated."""
    from backtest.data.load import load_market as load_dir

    return load_dir(path)


def synthetic(seed: int = 7, symbols: int = 25, years: float = 10.0) -> MarketData:
    """The seeded synthetic sample market (docs/synthetic.md)."""
    from backtest.data.synth_cache import generate_cached

    try:
        return generate_cached(seed=seed, symbols=symbols, years=years)
    except ValueError as exc:
        raise UserError(f"synthetic: {exc}") from None


def align(market: MarketData) -> Panel:
    """The market on the HK trading calendar (docs/timing.md); `panel.frame("close")` is a DataFrame."""
    from backtest.data.align import align as align_market

    if isinstance(market, Panel):
        return market
    if not isinstance(market, MarketData):
        raise UserError(f"align: expected a MarketData (load_market or synthetic), got {type(market).__name__}")
    return align_market(market)


# ---------------------------------------------------------------------------------------------
# One run


class RunResult:
    """One backtest as DataFrames; `.tearsheet(dir)` writes the same files as `python -m backtest run`."""

    def __init__(self, output: RunOutput, market: MarketData | None = None):
        self.output = output  # the engine's own record (backtest.pipeline.RunOutput)
        self.market = market

    @property
    def config(self) -> Config:
        return self.output.prepared.cfg

    @property
    def panel(self) -> Panel:
        return self.output.prepared.panel

    @property
    def result(self):
        """The simulation's labelled output (backtest.simulate.Result)."""
        return self.output.result

    @cached_property
    def equity(self) -> pd.DataFrame:
        """Per bar: equity, cash, invested, exposure, drawdown, index close, benchmarks (equity.csv)."""
        from backtest.output import equity_frame

        return equity_frame(self.output)

    @property
    def trades(self) -> pd.DataFrame:
        return self.output.result.trades

    @property
    def orders(self) -> pd.DataFrame:
        """Every order, skipped entries included (`status`)."""
        return self.output.result.orders

    @property
    def cash(self) -> pd.DataFrame:
        """Cash per account (symbols in independent mode, "portfolio" in portfolio mode)."""
        return self.output.result.cash

    @property
    def shares(self) -> pd.DataFrame:
        """Shares held per symbol at each bar's close."""
        return self.output.result.shares

    @cached_property
    def stats(self) -> pd.Series:
        """The key metrics of stats.json (backtest.metrics.summary)."""
        return pd.Series(self.output.stats, name=self.output.prepared.module.NAME, dtype=object)

    @cached_property
    def benchmark_stats(self) -> pd.DataFrame:
        """Metrics of each benchmark (columns: index, equal_weight)."""
        return pd.DataFrame(self.output.benchmark_stats or {})

    @property
    def event_study(self) -> pd.DataFrame | None:
        return self.output.event_study

    @cached_property
    def features(self) -> dict[str, pd.DataFrame]:
        """The features the rules used, by name with parameters, as dates x symbols frames."""
        idx = pd.DatetimeIndex(self.panel.dates, name="date")
        return {str(ref): pd.DataFrame(self.output.features[i], index=idx, columns=list(self.panel.symbols))
                for i, ref in enumerate(self.output.prepared.plan.refs)}

    def tearsheet(self, path: str | os.PathLike | None = None) -> Path:
        """Write tearsheet.html, stats.json, trades.csv, orders.csv, equity.csv, event_study.csv into
        `path` (default: the config's report.out); returns the directory."""
        from backtest.output import write_outputs

        return write_outputs(self.output, path if path is not None else self.config.report.out)

    def to_vectorbt(self, freq: str = "1D"):
        """A vectorbt Portfolio replaying the exact fills, sizes and fees (value equals equity)."""
        return self.output.result.to_vectorbt(freq)

    def __repr__(self) -> str:
        s = self.output.stats
        return (f"<RunResult {self.output.prepared.module.NAME}: {s.get('start')} to {s.get('end')}, "
                f"{s.get('trades')} closed trades, {s.get('open_trades', 0)} open, total return {s.get('total_return', float('nan')):.2%}, "
                f"Sharpe {s.get('sharpe', float('nan')):.2f}>")


def run(config: ConfigLike, *, market: MarketData | None = None, **overrides: Any) -> RunResult:
    """One backtest of `config` (path, dict or Config) with `overrides` (see `make_config`);
    `market` replaces the config's data (e.g. a market you loaded or generated once)."""
    from backtest.pipeline import load_market as config_market, run as run_pipeline

    cfg = make_config(config, **overrides)
    market = market if market is not None else config_market(cfg)
    return RunResult(run_pipeline(cfg, market), market)


# ---------------------------------------------------------------------------------------------
# Sweeps


class SweepOutput:
    """A finished sweep: `table` (one row per combination), `by_symbol`, and the robustness
    summary (`summary`, `dsr`, `pbo`, `walk_forward`), each computed by backtest.sweep_report /
    backtest.robustness on first use."""

    def __init__(self, res, cfg: Config, by_symbol: pd.DataFrame | None = None):
        self.raw = res  # backtest.sweep.SweepResult
        self.config = cfg
        self._by_symbol = by_symbol  # held in memory when the sweep's directory is gone

    @property
    def table(self) -> pd.DataFrame:
        return self.raw.table

    @property
    def by_symbol(self) -> pd.DataFrame | None:
        """Independent mode: metrics per (combination, symbol), each symbol from its listing."""
        return self._by_symbol if self._by_symbol is not None else self.raw.by_symbol

    @property
    def metric(self) -> str:
        return self.config.sweep.metric

    def combo(self, p: int) -> dict:
        """The grid values of combination p."""
        return self.raw.grid.combo(int(p))

    @cached_property
    def review(self):
        """Ranking (activity filter), neighbourhoods, deflated Sharpe, PBO and warnings, exactly as
        the report shows them (backtest.sweep_report.Review)."""
        from backtest.sweep_report import review

        return review(self.raw, self.config)

    def best(self, n: int = 10) -> pd.DataFrame:
        """The n best rows as the report ranks them: combinations below the activity minimum
        (sweep.min_trades, sweep.min_exposure) come after every eligible one."""
        return self.table.set_index("combo").loc[self.review.ranked.order[:n]].reset_index()

    @property
    def dsr(self) -> pd.DataFrame:
        """Per combination: daily Sharpe, PSR against 0 and the deflated Sharpe ratio over the
        effective number of trials."""
        d = self.review.deflated
        return pd.DataFrame({"combo": np.arange(len(d.sr)), "sharpe_daily": d.sr, "n_obs": d.n_obs,
                             "psr0": d.psr0, "dsr": d.dsr})

    @property
    def pbo(self):
        """PBO by CSCV (backtest.robustness.PBOResult), or None when the blocks do not allow it."""
        return self.review.pbo

    @cached_property
    def walk_forward(self):
        """Walk-forward picks re-run and stitched out of sample (backtest.sweep_report.WalkForwardOOS)."""
        from backtest.sweep_report import walk_forward_oos

        return walk_forward_oos(self.raw, self.config, self.raw.market, self.review.ranked)[0]

    @cached_property
    def summary(self) -> pd.Series:
        """The numbers of the report's summary: best eligible pick with its activity, its
        neighbours, DSR, PBO, walk-forward, and the report's warnings."""
        rv = self.review
        rk = rv.ranked
        best = int(rk.order[0])
        row = self.table.iloc[best]
        wf = self.walk_forward.stats
        pbo = rv.pbo
        return pd.Series({
            "combinations": self.raw.grid.size, "metric": rk.metric, "ranked_column": rk.column,
            "excluded_inactive": rk.excluded, "best_combo": best,
            **{f"best.{k}": v for k, v in self.combo(best).items()},
            f"best_{rk.metric}": row[rk.column], "best_trades": row["trades"],
            f"neighbour_mean_{rk.metric}": rv.neighbourhood.mean[best],
            "dsr_best": rv.deflated.dsr[best], "n_trials": rv.deflated.n_trials,
            "pbo": pbo.pbo if pbo is not None else np.nan,
            "prob_oos_loss": pbo.prob_oos_loss if pbo is not None else np.nan,
            "wf_sharpe": wf["stitched"]["sharpe"], "wf_total_return": wf["stitched"]["total_return"],
            "wf_exposure": wf["stitched"]["exposure"],
            "wf_lookahead_sharpe": wf["reference"]["sharpe"],
            "wf_lookahead_total_return": wf["reference"]["total_return"],
            "warnings": list(rv.warnings),
        }, dtype=object, name="sweep")

    def run(self, p: int) -> RunResult:
        """Re-run combination p with the single-run engine (trades, tear sheet, ...)."""
        from backtest.sweep import combo_config

        return run(combo_config(self.config, self.combo(p)), market=self.raw.market)

    def report(self, path: str | os.PathLike | None = None) -> Path:
        """Write results.parquet, results.csv, by_symbol.parquet, sweep.html and walk_forward.csv
        into `path` (default: where the sweep ran, or report.out); returns the page's path."""
        from backtest.sweep import write_results
        from backtest.sweep_report import write_sweep_report

        out = Path(path) if path is not None else (self.raw.out_dir if self._kept else Path(self.config.report.out))
        out.mkdir(parents=True, exist_ok=True)
        res = dataclasses.replace(self.raw, out_dir=out)
        write_results(res)
        if self.by_symbol is not None and self.raw.by_symbol_path != out / "by_symbol.parquet":
            self.by_symbol.to_parquet(out / "by_symbol.parquet", index=False)
        return write_sweep_report(res, self.config, res.market)

    _kept = True  # False when the sweep ran in a temporary directory

    def __repr__(self) -> str:
        return f"<SweepOutput {self.config.strategy.name}: {self.raw.grid.size} combinations, metric {self.metric}>"


def sweep(config: ConfigLike, grid: dict | None = None, *, workers: int | None = None, engine: str = "local",
          scheduler: str | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          progress: bool = True, market: MarketData | None = None, **overrides: Any) -> SweepOutput:
    """A parameter sweep of `config` with `overrides` (see `make_config`); `grid` (a dict like
    `[sweep.grid]`) replaces the config's grid; `market` replaces the config's data. With `out`, chunks go to the same resumable store
    as `python -m backtest sweep --out` (`resume=True` continues it); without, a temporary one."""
    from backtest.sweep import run_sweep

    if grid is not None:
        if not isinstance(grid, dict):
            raise UserError(f"sweep: grid must be a dict like [sweep.grid], got {type(grid).__name__}")
        overrides = {**overrides, "sweep.grid": grid}
    if engine not in ("local", "dask"):
        raise UserError(f"sweep: engine must be 'local' or 'dask', got {engine!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise UserError(f"sweep: workers must be an integer of at least 1, got {workers!r}")
    cfg = make_config(config, **overrides)
    if out is not None:
        res = run_sweep(cfg, out, workers=workers, scheduler=scheduler, engine=engine, resume=resume,
                        progress=progress, market=market)
        return SweepOutput(res, cfg)
    if resume:
        raise UserError("sweep: resume=True needs out= (the directory of the sweep to continue)")
    with tempfile.TemporaryDirectory(prefix="dipflow-sweep-") as tmp:
        res = run_sweep(cfg, tmp, workers=workers, scheduler=scheduler, engine=engine, progress=progress,
                        market=market)
        swept = SweepOutput(res, cfg, res.by_symbol)  # read before the directory goes
    swept._kept = False
    return swept


# ---------------------------------------------------------------------------------------------
# Your own signals

SIGNAL_SETTINGS = {
    **{k: "execution" for k in ("mode", "max_positions", "fill", "init_cash", "slippage_bps", "board_lots")},
    **{k: "exits" for k in ("stop_loss", "take_profit", "trailing_stop", "max_hold")},
    **{k: "costs" for k in ("model", "flat_pct", "commission_bps", "commission_min")},
    "risk_free": "report",
}
"""simulate_signals keyword -> the config table it belongs to (docs/config.md has every key)."""


def simulate_signals(market_or_panel: MarketData | Panel, entries, exits=None, *, rank=None, known: str = "close",
                     **settings: Any) -> RunResult:
    """Simulate your own boolean signal frames (dates x symbols) with the engine's kernel, stops,
    costs, lots and modes. A signal on row t is known at the close of t (`known="next_open"` if it
    uses southbound flows or ADR closes: then fill="same_close" is refused, as for a strategy) and
    fills per `fill`. `rank` (optional frame, higher first) orders same-bar entries in portfolio
    mode. `settings` are the keys of [execution], [exits], [costs] and report.risk_free."""
    from backtest.pipeline import Prepared, run as run_pipeline
    from backtest.rules import all_of, compile_rule, feature
    from backtest.strategy import StrategyPlan

    where = "simulate_signals"
    table: dict = {"strategy": {"name": "signals"}}
    for given, value in settings.items():
        section, _, key = given.replace("__", ".").rpartition(".")  # "exits.stop_loss" works too
        if key not in SIGNAL_SETTINGS or section not in ("", SIGNAL_SETTINGS[key]):
            close = difflib.get_close_matches(key, list(SIGNAL_SETTINGS), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (valid: {', '.join(SIGNAL_SETTINGS)})"
            raise ConfigError(f"{where}: unknown setting {given!r}{hint}")
        table.setdefault(SIGNAL_SETTINGS[key], {})[key] = value
    cfg = config_from_dict(table, where)
    if known not in ("close", "next_open"):
        raise ConfigError(f"{where}: known must be 'close' or 'next_open', got {known!r}")
    if known == "next_open" and cfg.execution.fill == "same_close":
        raise ConfigError(f"{where}: fill = 'same_close' would trade at the close of the bar whose data forms the "
                          "signal, but the signals are only known before the next HK open (known='next_open', "
                          "DESIGN §3); use fill = 'next_open' or 'next_close'")
    market = market_or_panel if isinstance(market_or_panel, MarketData) else None
    panel = align(market_or_panel)
    if panel.shape[0] < 2:
        raise UserError(f"{where}: the data has {panel.shape[0]} trading day(s); a backtest needs at least 2")

    frames = {"entries": signal_array(entries, panel, "entries")}
    entry_rule = all_of(feature("entries") >= 0.5)
    exit_rule = None
    if exits is not None:
        frames["exits"] = signal_array(exits, panel, "exits")
        exit_rule = all_of(feature("exits") >= 0.5)
    index: dict = {}
    entry, exit_ = compile_rule(entry_rule, index), compile_rule(exit_rule, index)
    rank_ref = feature("entries")
    if rank is not None:
        frames["rank"] = _value_array(rank, panel, "rank")
        rank_ref = feature("rank")
    rank_slot = index.setdefault(rank_ref, len(index))
    refs = list(index)
    feats = np.ascontiguousarray(np.stack([frames[ref.name].T for ref in refs]))
    plan = StrategyPlan(refs, entry, exit_, entry_rule, exit_rule, rank_slot, 1.0)
    module = SimpleNamespace(NAME="signals", HELP="your own entry/exit signal frames (backtest.simulate_signals)")
    prepared = Prepared(cfg, module, SimpleNamespace(), plan, panel)
    return RunResult(run_pipeline(cfg, prepared=prepared, features=feats), market)


def _labelled(x, panel: Panel, name: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """`x` as a DataFrame with its rows and columns located in the panel (bad labels: DataError)."""
    if isinstance(x, np.ndarray):
        if x.shape != panel.shape:
            raise UserError(f"{name}: an array must have the panel's shape {panel.shape} (dates x symbols), "
                            f"got {x.shape}; pass a DataFrame to align by labels")
        x = pd.DataFrame(x, index=pd.DatetimeIndex(panel.dates), columns=list(panel.symbols))
    if not isinstance(x, pd.DataFrame):
        raise UserError(f"{name}: expected a DataFrame of dates x symbols, got {type(x).__name__}")
    try:
        idx = pd.DatetimeIndex(x.index)
    except (TypeError, ValueError):
        raise UserError(f"{name}: the index must be dates, got {x.index.dtype} values like {x.index[:1].tolist()}") from None
    if idx.tz is not None:
        raise UserError(f"{name}: the index must be tz-naive HK dates, got time zone {idx.tz}")
    if idx.hasnans:
        raise UserError(f"{name}: the index holds {int(idx.isna().sum())} missing date(s) (NaT)")
    problems = []
    if (idx != idx.normalize()).any():
        problems.append(Problem(name, "dates must not carry a time of day", date=str(idx[idx != idx.normalize()][0])))
    cols = [str(c) for c in x.columns]
    for label, dup in (("date", idx[idx.duplicated()]), ("symbol", pd.Index(cols)[pd.Index(cols).duplicated()])):
        for d in dup[:5]:
            problems.append(Problem(name, f"{label} appears more than once", **{label: str(d)[:10] if label == "date" else d}))
    known_dates = pd.DatetimeIndex(panel.dates)
    rows = known_dates.get_indexer(idx.normalize())
    symbols = list(panel.symbols)
    col_pos = pd.Index(symbols).get_indexer(cols)
    for c in np.asarray(cols, dtype=object)[col_pos < 0][:10]:
        close = difflib.get_close_matches(c, symbols, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(Problem(name, f"symbol is not in the market{hint}", column=c))
    for d in idx[rows < 0][:10]:
        problems.append(Problem(name, f"date is not a trading day of the market "
                                      f"({known_dates[0]:%Y-%m-%d} to {known_dates[-1]:%Y-%m-%d})", date=f"{d:%Y-%m-%d}"))
    if problems:
        raise DataError(problems)
    return x, rows, col_pos


def signal_array(x, panel: Panel, name: str = "entries") -> np.ndarray:
    """A boolean (or 0/1) signal frame as a (T, N) bool array on the panel's dates x symbols.
    NaN/None count as False; dates or symbols the frame lacks have no signal; labels the market
    lacks, and any other value, are a DataError naming the cell."""
    x, rows, cols = _labelled(x, panel, name)
    if all(t == np.bool_ for t in x.dtypes):
        values = x.to_numpy(dtype=bool)
    else:
        num = None
        if all(pd.api.types.is_numeric_dtype(t) for t in x.dtypes):  # no strings: "1" is not a signal
            try:
                num = x.astype("float64").to_numpy()
            except (TypeError, ValueError):  # nullable booleans or integers holding NA
                pass
        if num is None:
            num = x.map(lambda v: np.nan if v is None or v is pd.NA else v
                        if isinstance(v, (bool, int, float, np.number, np.bool_)) else np.inf).to_numpy(np.float64)
        bad = ~(np.isnan(num) | (num == 0) | (num == 1))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError([Problem(name, f"value {_plain(x.iat[r, c])!r} is not boolean (True/False, 1/0 or NaN); "
                                           f"{int(bad.sum())} such cell(s)",
                                     date=f"{pd.Timestamp(x.index[r]):%Y-%m-%d}", symbol=str(x.columns[c]))])
        values = num == 1
    out = np.zeros(panel.shape, dtype=bool)
    out[np.ix_(rows, cols)] = values
    return out


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _value_array(x, panel: Panel, name: str) -> np.ndarray:
    """A numeric frame (e.g. a rank) on the panel's dates x symbols; missing cells are NaN."""
    x, rows, cols = _labelled(x, panel, name)
    try:
        values = x.astype("float64").to_numpy()
    except (TypeError, ValueError):
        raise UserError(f"{name}: expected numbers, got dtypes {sorted(set(map(str, x.dtypes)))}") from None
    if np.isinf(values).any():
        r, c = np.argwhere(np.isinf(values))[0]
        raise DataError([Problem(name, "value is infinite", date=f"{pd.Timestamp(x.index[r]):%Y-%m-%d}",
                                 symbol=str(x.columns[c]))])
    out = np.full(panel.shape, np.nan)
    out[np.ix_(rows, cols)] = values
    return out


# ---------------------------------------------------------------------------------------------
# Look-ahead


def lookahead(config: ConfigLike, *, market: MarketData | None = None, cuts: int = 5, seed: int = 0,
              **overrides: Any):
    """Perturb the data after random cuts and report anything at or before a cut that changed
    (backtest.lookahead.check; `.clean`, `.findings`, printable)."""
    from backtest.lookahead import check

    return check(make_config(config, **overrides), market=market, cuts=cuts, seed=seed)
