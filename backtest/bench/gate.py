"""The CI speed-regression gate: compare with the baseline, re-measure before failing, say why."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Callable

from backtest.bench.data import ROOT
from backtest.bench.machine import machine, tree
from backtest.bench.measure import _slowdowns, measure, measure_isolated
from backtest.bench.registry import BY_NAME

BASELINE = ROOT / "benchmarks" / "baseline.json"
TOLERANCE = 1.6
RETRIES = 2  # extra measurements of a benchmark over the limit before it fails


def load_baseline(path: Path = BASELINE) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {"tolerance": TOLERANCE, "benchmarks": {}}


METRICS = (("cpu", "normalised_cpu"), ("wall", "normalised"))


def compare(results: list[dict], baseline: dict, tolerance: float | None = None) -> list[dict]:
    """Per result: its ratios to the baseline's normalised CPU and wall times, the gated ratio
    ("ratio": the largest over the benchmark's gated clocks, CPU by default) and a status: "ok",
    "SLOWER" (fails: ratio > tolerance), "faster" (ratio < 1 / tolerance), "new" (not in the
    baseline), "-" (never gated: vectorbt)."""
    tol = tolerance or baseline.get("tolerance", TOLERANCE)
    rows = []
    for r in results:
        b = BY_NAME.get(r["name"])
        base = baseline.get("benchmarks", {}).get(r["name"])
        row = {"name": r["name"], "tolerance": tol, "attempts": r.get("attempts", 1)}
        if b is not None and not b.gate:
            row.update(status="-")
        elif base is None:
            row.update(status="new")
        else:
            clocks = b.clocks if b is not None else ("cpu",)
            ratios = {m: r[k] / base[k] for m, k in METRICS if k in base and k in r}
            gated = [v for m, v in ratios.items() if m in clocks]
            if not gated:
                row.update(status="new")
                rows.append(row)
                continue
            worst = max(gated)
            row.update(ratios=ratios, ratio=worst, clocks=clocks,
                       status="SLOWER" if worst > tol else "faster" if worst < 1 / tol else "ok")
        rows.append(row)
    return rows


def _best(a: dict, b: dict) -> dict:
    """Two measurements of one benchmark merged: each normalised figure the lower of the two."""
    out = dict(a if a["normalised_cpu"] <= b["normalised_cpu"] else b)
    for _, k in METRICS:
        out[k] = min(a[k], b[k])
    out["attempts"] = a.get("attempts", 1) + b.get("attempts", 1)
    return out


def remeasure(name: str) -> dict:
    """A fresh measurement of benchmark `name` (in its own process if it is isolated)."""
    b = BY_NAME[name]
    f = _slowdowns().get(name, 1)
    return measure_isolated(b, None, f) if b.isolate else measure(b, None, f)


def gate(results: list[dict], baseline: dict, tolerance: float | None = None, retries: int = RETRIES,
         progress=None, again: Callable[[str], dict] = remeasure) -> list[dict]:
    """`compare`, re-measuring (with `again(name)`) each benchmark over the limit up to `retries`
    times; per benchmark and figure the best over all attempts counts (`results` is updated)."""
    rows = compare(results, baseline, tolerance)
    for attempt in range(retries):
        over = [i for i, row in enumerate(rows) if row["status"] == "SLOWER"]
        if not over:
            break
        for i in over:
            name = results[i]["name"]
            if progress:
                progress(f"  {name}: {_fmt_ratios(rows[i])} baseline, over the limit: measuring again "
                         f"({attempt + 1}/{retries})")
            results[i] = _best(results[i], again(name))
        rows = compare(results, baseline, tolerance)
    return rows


def verdict(rows: list[dict], baseline: dict, tolerance: float | None = None) -> tuple[int, list[str]]:
    """Exit status (1: a benchmark is slower) and the lines saying why: each failing benchmark
    with its gated figure against the baseline, the limit and the number of attempts."""
    tol = tolerance or baseline.get("tolerance", TOLERANCE)
    failed = [r for r in rows if r["status"] == "SLOWER"]
    new = [r["name"] for r in rows if r["status"] == "new"]
    lines = []
    if new:
        lines.append(f"not in the baseline (not gated): {', '.join(new)}")
    if failed:
        lines.append(f"FAILED: {len(failed)} benchmark(s) slower than {tol} x baseline "
                     f"(normalised CPU time, best of each benchmark's attempts):")
        for r in failed:
            wall = r["ratios"].get("wall")
            lines.append(f"  {r['name']}: {r['ratio']:.2f}x baseline CPU ({(r['ratio'] - 1) * 100:+.0f} %, limit "
                         f"{tol}x) after {r['attempts']} attempt(s)" + (f"; wall {wall:.2f}x" if wall else ""))
        now = tree()["kernels"]
        if baseline.get("kernels") and baseline["kernels"] != now:
            lines.append(f"kernel sources changed since the baseline ({baseline['kernels']} -> {now}); if the "
                         f"slowdown is intended, rewrite it: python -m backtest bench --quick --update-baseline")
    else:
        gated = [r for r in rows if "ratio" in r]
        lines.append(f"gate passed: {len(gated)} benchmark(s) within {tol} x baseline")
    faster = [r["name"] for r in rows if r["status"] == "faster"]
    if faster:
        lines.append(f"faster than baseline / {tol}: {', '.join(faster)}; to lock the gain in: "
                     f"python -m backtest bench --quick --update-baseline")
    return (1 if failed else 0), lines


def _fmt_ratios(row: dict) -> str:
    return " ".join(f"{m} {v:.2f}x" for m, v in row.get("ratios", {}).items())


def write_baseline(results: list[dict], path: Path = BASELINE, tolerance: float | None = None) -> dict:
    """Merge the gated results into the baseline file (other entries are kept)."""
    old = load_baseline(path)
    entries = {k: v for k, v in old.get("benchmarks", {}).items() if k in BY_NAME and BY_NAME[k].gate}
    for r in results:
        b = BY_NAME.get(r["name"])
        if b is None or b.gate:
            entries[r["name"]] = {"normalised_cpu": round(r["normalised_cpu"], 6), "normalised": round(r["normalised"], 6),
                                  "reference": r["ref"], "seconds": round(r["seconds"], 6),
                                  "ref_seconds": round(r["ref_seconds"], 6)}
    data = {
        "about": "Normalised times of each benchmark: its min CPU time / the reference workload's min CPU time "
                 "(normalised_cpu) and the same for wall time (normalised), measured in one run. "
                 "`python -m backtest bench --check` fails a benchmark when either figure exceeds tolerance x "
                 "its entry. Rewrite with `python -m backtest bench --quick --update-baseline`. "
                 "See backtest/bench.py and docs/performance.md.",
        "tolerance": tolerance or old.get("tolerance", TOLERANCE),
        "updated": date.today().isoformat(),
        "machine": machine(),
        "kernels": tree()["kernels"],
        "benchmarks": dict(sorted(entries.items())),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return data
