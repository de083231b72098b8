"""Benchmarks and the CI speed-regression gate (DESIGN §8); measured figures in docs/performance.md.

One job per module: data (the inputs), workloads (the engine's work), vs_vectorbt (vectorbt doing the
same work), reference (fixed work timed beside each benchmark), registry (the list), memory and
machine (what is measured besides time), measure (timing), gate (baseline comparison), scaling
(cost growth), report (text), cli (`python -m backtest bench`).

    python -m backtest bench                    every benchmark: time, cells/s, ratio to vectorbt, memory
    python -m backtest bench --quick            the reduced set the CI gate runs (about half a minute)
    python -m backtest bench --quick --check    the gate: compare with benchmarks/baseline.json, exit 1 on a slowdown
    python -m backtest bench --quick --update-baseline
    python -m backtest bench --scaling          sweep-kernel cost against bars, symbols and combinations

The same workloads run under pytest-benchmark: `python -m pytest benchmarks` (see benchmarks/conftest.py).

How the gate survives a noisy shared machine
--------------------------------------------
- Every benchmark is timed against a *reference workload* measured in the same run and
  interleaved with it: k times { time the reference; time the benchmark }. References: "numba"
  (a fixed compiled loop, for compiled kernels), "python" (a fixed mix of interpreter, numpy and
  pandas work, for pandas-heavy code), "startup" (`python -c pass` in a subprocess, for the CLI).
- Each benchmark gets two figures, each min(benchmark) / min(reference): normalised CPU time
  (process CPU seconds; a child's rusage) and normalised wall time. The gate decides on CPU time:
  it does not grow when other processes take the core away, so it stays within a few per cent on
  a loaded machine; wall time is reported beside it but never fails the gate (on a shared machine
  it moved 0.8-1.1x between runs of an unchanged tree, and a wall-clock gate once failed a clean
  run). The minimum drops samples hit by bursts of load; the ratio cancels a slower machine.
- Parallel kernels are gated on one thread: a busy second core would otherwise halve them.
- A benchmark fails when its CPU figure exceeds tolerance x its baseline (tolerance 1.6, stored in
  the baseline). Before it fails it is measured again, up to twice, and fails only if the best
  figure over all attempts still exceeds the limit: a real slowdown persists, a burst of load
  does not. The failure names each benchmark, its figure against the baseline and the limit.
- Faster than baseline / tolerance is reported and never fails; rewrite the baseline with
  `--update-baseline` after a deliberate change of speed.
"""

from backtest.bench.data import bench_panel, sweep_case
from backtest.bench.reference import _ref_loop
from backtest.bench.vs_vectorbt import vectorbt_from_signals

__all__ = ["bench_panel", "sweep_case", "_ref_loop", "vectorbt_from_signals"]
