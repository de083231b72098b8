"""The speed-regression gate (backtest/bench.py, docs/performance.md, DESIGN §8).

Speed itself is measured in benchmarks, never asserted here; these tests show that the gate
tells a real slowdown from a noisy machine, and run the CI gate itself once:
- it fails on an injected 2x slowdown (the benchmark does its work twice) and names it;
- it passes an unchanged tree measured twice against a baseline measured in the same test;
- `python -m backtest bench --quick --check` passes against the committed benchmarks/baseline.json.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backtest import bench

ROOT = Path(__file__).resolve().parents[1]
# Two compiled kernels and the command-line start-up (a child process); two of them get slowed.
SUBSET = ["features.drawdown[2520x50]", "features.trailing_zscore[2520x50]", "cli.help"]
SLOWED = ["features.drawdown[2520x50]", "cli.help"]


def _gate(tmp_path, *args):
    return bench.main(["--only", *SUBSET, "--baseline", str(tmp_path / "baseline.json"), *args])


def test_compare_fails_only_beyond_the_tolerance():
    base = {"tolerance": 1.6, "benchmarks": {n: {"normalised": 1.0, "normalised_cpu": 1.0} for n in ("a", "b", "c", "d")}}
    results = [{"name": "a", "normalised": 1.5, "normalised_cpu": 1.1},  # noise: ok
               {"name": "b", "normalised": 1.2, "normalised_cpu": 2.0},  # twice the CPU work
               {"name": "c", "normalised": 2.0, "normalised_cpu": 1.0},  # waits (sleep, I/O)
               {"name": "d", "normalised": 0.5, "normalised_cpu": 0.5},  # faster: never fails
               {"name": "e", "normalised": 9.0, "normalised_cpu": 9.0}]  # not in the baseline
    status = {r["name"]: r["status"] for r in bench.compare(results, base)}
    assert status == {"a": "ok", "b": "SLOWER", "c": "SLOWER", "d": "faster", "e": "new"}
    assert {r["name"]: r["status"] for r in bench.compare(results, base, tolerance=2.5)}["b"] == "ok"


def test_gate_passes_unchanged_twice_and_fails_an_injected_2x_slowdown(tmp_path, monkeypatch, capsys):
    assert _gate(tmp_path, "--update-baseline") == 0
    written = json.loads((tmp_path / "baseline.json").read_text())
    assert set(written["benchmarks"]) == set(SUBSET) and written["tolerance"] == bench.TOLERANCE

    for _ in range(2):  # the same tree, measured again: within tolerance
        assert _gate(tmp_path, "--check") == 0, capsys.readouterr().out
        assert f"gate passed: {len(SUBSET)} benchmark(s)" in capsys.readouterr().out

    # Each slowed benchmark does its work twice: a compiled kernel and a child process.
    monkeypatch.setenv(bench.SLOWDOWN_ENV, ",".join(f"{name}=2" for name in SLOWED))
    assert _gate(tmp_path, "--check") == 1
    failed = capsys.readouterr().out.split("FAILED:", 1)[1]
    assert all(name in failed for name in SLOWED)
    assert not any(name in failed for name in set(SUBSET) - set(SLOWED))


@pytest.mark.skipif(not bench.BASELINE.exists(), reason="no committed baseline")
def test_ci_gate_passes_on_the_quick_set():
    """The real gate, as CI would run it on its own: the quick set against benchmarks/baseline.json.
    Without glibc malloc settings a Dask cluster started earlier in this process may have left in
    its environment (MALLOC_TRIM_THRESHOLD_=65536 maps every large array afresh: simulate 2x)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    r = subprocess.run([sys.executable, "-m", "backtest", "bench", "--quick", "--check"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "gate passed" in r.stdout
    gated = {line.split()[0] for line in r.stdout.splitlines() if line.rstrip().endswith(("ok", "faster"))}
    assert {b.name for b in bench.BENCHES if b.quick} <= gated
