"""pytest-benchmark suite over the workloads of backtest/bench/ (workloads.py, registry.py) (docs/performance.md).

Not collected by the default `python -m pytest` (testpaths = ["tests"]); run it explicitly:

    python -m pytest benchmarks                              # everything, vectorbt included (~5 min)
    python -m pytest benchmarks -m quick                     # the CI gate's set (~1 min)
    python -m pytest benchmarks -m quick --bench-check       # ... failing on a slowdown vs benchmarks/baseline.json
    python -m pytest benchmarks -m "not vectorbt and not slow"
    python -m pytest benchmarks -m quick --benchmark-timer time.process_time --bench-check   # CPU time

Each test times its reference workload (backtest.bench.REFERENCES) before every round, with the
timer pytest-benchmark uses, and records normalised = min(round times) / min(reference times) in
the benchmark's `extra_info` (so `--benchmark-json` keeps it). With `--bench-check` the session
fails when a normalised time exceeds tolerance x the baseline's figure for the same clock
(`normalised` for wall time, `normalised_cpu` with `--benchmark-timer time.process_time`).
`python -m backtest bench --check` is the same gate with interleaved repeats, both clocks and
re-measurement before failing; use it in CI.
"""

from __future__ import annotations

import pytest

from backtest.bench import gate, memory, registry, report

RESULTS: dict[str, dict] = {}


def pytest_addoption(parser):
    g = parser.getgroup("dipflow bench")
    g.addoption("--bench-check", action="store_true",
                help="fail the session if a benchmark's normalised time exceeds tolerance x benchmarks/baseline.json")
    g.addoption("--bench-tolerance", type=float, default=None, help="slowdown factor that fails (default: baseline's)")


def pytest_configure(config):
    for name, about in (("quick", "in the CI gate's reduced set"), ("vectorbt", "times vectorbt"),
                        ("slow", "takes more than ~10 s (cold start, §8 sweep)")):
        config.addinivalue_line("markers", f"{name}: {about}")
    memory.CHILD_MEMORY = False  # time child processes directly, not through the memory-measuring launcher


@pytest.fixture
def record():
    def put(name: str, result: dict) -> None:
        RESULTS[name] = result
    return put


def _check(config) -> list[str]:
    """Lines of the gate's verdict; marks the session failed on a slowdown."""
    baseline = gate.load_baseline()
    tol = config.getoption("--bench-tolerance") or baseline.get("tolerance", gate.TOLERANCE)
    lines, failed = [], []
    for name, r in RESULTS.items():
        base = baseline.get("benchmarks", {}).get(name)
        key = "normalised_cpu" if r["clock"] == "cpu" else "normalised"
        b = registry.BY_NAME[name]
        if not b.gate or not base or key not in base:
            continue
        ratio = r["normalised"] / base[key]
        lines.append(f"  {name}: {ratio:.2f}x baseline ({r['clock']})")
        if ratio > tol:
            failed.append(f"{name}: {ratio:.2f}x baseline")
    if failed:
        lines.append(f"FAILED: slower than {tol} x baseline: " + "; ".join(failed))
        config._bench_failed = True
    else:
        lines.append(f"gate passed: {len(lines)} benchmark(s) within {tol} x baseline")
    return lines


def pytest_sessionfinish(session, exitstatus):
    if RESULTS and session.config.getoption("--bench-check"):
        session.config._bench_lines = _check(session.config)
        if getattr(session.config, "_bench_failed", False) and session.exitstatus == 0:
            session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("dipflow: normalised times, vectorbt ratios")
    for name, r in RESULTS.items():
        b = registry.BY_NAME[name]
        vs = ""
        if b.vs and b.vs in RESULTS:
            vs = f"  {RESULTS[b.vs]['seconds'] / r['seconds']:.1f}x faster than vectorbt"
        rate = f"  {report._fmt_rate(r['cells_per_s'])} cells/s" if r.get("cells_per_s") else ""
        tr.write_line(f"{name:42s} {report._fmt_time(r['seconds']):>9s}  norm. {r['normalised']:.4g} "
                      f"({r['clock']}){rate}{vs}")
    for line in getattr(config, "_bench_lines", []):
        tr.write_line(line, red=line.startswith("FAILED"), green=line.startswith("gate passed"))
