"""Write a run's machine-readable files and its tear sheet.

stats.json      what produced the numbers (strategy, parameters, config, data fingerprint, run time)
                and the numbers: strategy metrics, each benchmark's metrics, the pooled event study
trades.csv      the trade list
orders.csv      the order log, skipped entries included
equity.csv      per bar: equity, cash, invested, exposure, drawdown, index close and both
                benchmarks as the value of the starting equity invested in them
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
from backtest.pipeline import RunOutput

BENCHMARK_DESCRIPTIONS = {
    "index": "the data's index close (index_close), missing levels carried forward",
    "equal_weight": "equal weight of every name with a close, rebalanced daily (close to close)",
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
    names = {"index": prep.panel.index_name or "index", "equal_weight": "equal weight"}
    record = {
        "strategy": prep.module.NAME,
        "params": vars(prep.params),
        "entry_rule": str(prep.plan.entry_rule),
        "exit_rule": str(prep.plan.exit_rule) if prep.plan.exit_rule else None,
        "config": prep.cfg.source,
        "data": {"source": prep.panel.source, "fingerprint": prep.panel.fingerprint,
                 "symbols": len(prep.panel.symbols), "bars": len(prep.panel.dates)},
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
    """Per-bar equity and its benchmarks (HK$), as in equity.csv."""
    r = out.result
    equity = r.total_equity
    invested = (r.equity - r.cash).sum(axis=1)
    frame = pd.DataFrame({
        "equity": equity,
        "cash": r.cash.sum(axis=1),
        "invested": invested,
        "exposure": invested / equity,
        "drawdown": np.concatenate([[0.0], drawdown(equity.pct_change().to_numpy()[1:])]),
        "index_close": out.prepared.panel.series["index_close"],
    })
    if out.benchmarks is not None:
        for name in out.benchmarks.columns:
            frame[f"bench_{name}"] = equity.iloc[0] * np.cumprod(1.0 + np.nan_to_num(out.benchmarks[name].to_numpy()))
    return frame


def write_outputs(out: RunOutput, out_dir: str | Path) -> Path:
    from backtest.tearsheet import render

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    record = run_record(out)
    eq = equity_frame(out)
    _atomic_write(d / "stats.json", json.dumps(_json_safe(record), indent=2, default=str) + "\n")
    _atomic_write(d / "trades.csv", out.result.trades.to_csv(index=False))
    _atomic_write(d / "orders.csv", out.result.orders.to_csv(index=False))
    _atomic_write(d / "equity.csv", eq.to_csv())
    if out.event_study is not None:
        _atomic_write(d / "event_study.csv", out.event_study.to_csv(index=False))
    _atomic_write(d / "tearsheet.html", render(out, record, eq))
    return d
