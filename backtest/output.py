"""Write a run's machine-readable files and its tear sheet.

stats.json      what produced the numbers (strategy, parameters, config, data fingerprint, run time)
                and the numbers: strategy metrics, each benchmark's metrics, the pooled event study
trades.csv      the trade list
orders.csv      the order log, skipped entries included
equity.csv      per bar, of the capital that exists: equity, cash, invested, exposure, accounts,
                return, growth (value of 1), drawdown; index close and the benchmarks as the value
                of the starting equity invested in them
per_symbol.csv  independent mode: each symbol's account from its first tradable bar
event_study.csv every (signal, symbol, horizon) row of the event study ("*" = pooled)
tearsheet.html  the page (backtest.tearsheet)

Each file is written to a temporary name and renamed, so an interrupted run never leaves a
half-written file behind. Non-finite numbers (NaN, +-inf) are `null` in stats.json.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from backtest import event_study as es
from backtest.errors import UserError
from backtest.metrics import drawdown
from backtest.page import is_synthetic
from backtest.pipeline import RunOutput, whole_numbers

BENCHMARK_DESCRIPTIONS = {
    "index": "the data's index close (index_close), missing levels carried forward",
    "equal_weight": "equal weight of every name with a close, rebalanced daily (close to close)",
    "index_at_exposure": "the index held at the strategy's average exposure, the rest in cash at 0, rebalanced daily",
}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:  # disk full, directory removed or made read-only during the run
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


def _json_safe(obj):
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def run_record(out: RunOutput) -> dict:
    """What produced the numbers, next to the numbers: strategy, parameters, data, timing."""
    prep = out.prepared
    index = prep.panel.index_name or "index"
    names = {"index": index, "equal_weight": "equal weight",
             "index_at_exposure": f"{index} at the strategy's average exposure"}
    record = {
        "strategy": prep.module.NAME,
        "params": vars(prep.params),
        "entry_rule": str(prep.plan.entry_rule),
        "exit_rule": str(prep.plan.exit_rule) if prep.plan.exit_rule else None,
        "config": prep.cfg.source,
        "data": {"source": prep.panel.source, "fingerprint": prep.panel.fingerprint,
                 "symbols": len(prep.panel.symbols), "bars": len(prep.panel.dates),
                 "synthetic": is_synthetic(prep.panel.source, prep.panel.meta.get("name"))},
        "accounting": {"mode": prep.cfg.execution.mode, "risk_free": prep.cfg.report.risk_free,
                       "max_positions": prep.cfg.execution.max_positions if prep.cfg.execution.mode == "portfolio" else None,
                       "capital": "independent: one account per symbol, from its first tradable bar; "
                                  "portfolio: one account, shared cash"},
        "run": {"started": out.started, "seconds": out.seconds},
        "metrics": out.stats,
        "benchmarks": {k: {"name": names.get(k, k), "definition": BENCHMARK_DESCRIPTIONS.get(k, ""), **v}
                       for k, v in (out.benchmark_stats or {}).items()},
    }
    if out.event_study is not None:
        pooled = out.event_study[out.event_study["symbol"] == es.POOLED].drop(columns="symbol")
        record["event_study"] = {
            "fill": prep.cfg.execution.fill, "horizons": list(es.HORIZONS), "bootstrap": {
                "method": "circular moving-block over dates", "block": max(es.HORIZONS), "resamples": es.N_BOOT,
                "seed": es.SEED, "interval": "2.5th-97.5th percentile of resampled means"},
            "pooled": pooled.to_dict("records"),
            "per_symbol": "event_study.csv",
        }
    return record


def equity_frame(out: RunOutput) -> pd.DataFrame:
    """Per bar: the capital that exists (HK$; in independent mode an account exists from its
    symbol's first tradable bar), its time-weighted return and growth, and the benchmarks."""
    r = out.result
    live = out.accounts
    growth = np.cumprod(1.0 + np.nan_to_num(live["return"].to_numpy()))
    frame = pd.DataFrame({
        "equity": live["equity"],
        "cash": live["equity"] - live["invested"],
        "invested": live["invested"],
        "exposure": live["exposure"],
        "accounts": live["accounts"],
        "return": live["return"],
        "growth": growth,
        "drawdown": np.concatenate([[0.0], drawdown(live["return"].to_numpy()[1:])]),
        "index_close": out.prepared.panel.series["index_close"],
    }, index=r.equity.index)
    if out.benchmarks is not None:
        for name in out.benchmarks.columns:
            frame[f"bench_{name}"] = live["equity"].iloc[0] * np.cumprod(1.0 + np.nan_to_num(out.benchmarks[name].to_numpy()))
    return frame


def write_outputs(out: RunOutput, out_dir: str | Path) -> Path:
    from backtest.tearsheet import render

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    record = run_record(out)
    eq = equity_frame(out)
    _atomic_write(d / "stats.json", json.dumps(_json_safe(record), indent=2, default=str) + "\n")
    lots = out.prepared.cfg.execution.board_lots
    _atomic_write(d / "trades.csv", whole_numbers(out.result.trades, lots).to_csv(index=False))
    _atomic_write(d / "orders.csv", whole_numbers(out.result.orders, lots).to_csv(index=False))
    _atomic_write(d / "equity.csv", eq.to_csv())
    if out.event_study is not None:
        _atomic_write(d / "event_study.csv", out.event_study.to_csv(index=False))
    if out.per_symbol is not None:
        _atomic_write(d / "per_symbol.csv", out.per_symbol.to_csv(index=False))
    _atomic_write(d / "tearsheet.html", render(out, record, eq))
    return d
