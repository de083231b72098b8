"""Write a run's machine-readable files (stats.json, trades.csv, equity.csv) and its tear sheet.

Each file is written to a temporary name and renamed, so an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

from backtest.pipeline import RunOutput


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    return obj


def run_record(out: RunOutput) -> dict:
    """What produced the numbers, next to the numbers: strategy, parameters, data, timing."""
    prep = out.prepared
    return {
        "strategy": prep.module.NAME,
        "params": vars(prep.params),
        "entry_rule": str(prep.plan.entry_rule),
        "exit_rule": str(prep.plan.exit_rule) if prep.plan.exit_rule else None,
        "config": prep.cfg.source,
        "data": {"source": prep.panel.source, "fingerprint": prep.panel.fingerprint,
                 "symbols": len(prep.panel.symbols), "bars": len(prep.panel.dates)},
        "metrics": out.stats,
    }


def equity_frame(out: RunOutput) -> pd.DataFrame:
    r = out.result
    return pd.DataFrame({
        "equity": r.total_equity,
        "cash": r.cash.sum(axis=1),
        "invested": (r.equity - r.cash).sum(axis=1),
        "benchmark": out.prepared.panel.series["index_close"],
    })


def write_outputs(out: RunOutput, out_dir: str | Path) -> Path:
    from backtest.tearsheet import render

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    record = run_record(out)
    _atomic_write(d / "stats.json", json.dumps(_json_safe(record), indent=2, default=str) + "\n")
    _atomic_write(d / "trades.csv", out.result.trades.to_csv(index=False))
    _atomic_write(d / "orders.csv", out.result.orders.to_csv(index=False))
    _atomic_write(d / "equity.csv", equity_frame(out).to_csv())
    _atomic_write(d / "tearsheet.html", render(out, record, equity_frame(out)))
    return d
