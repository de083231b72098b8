"""Every benchmark: its name, workload, reference, repeats, and whether the CI gate runs and compares it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from backtest.bench.data import _F, _S8, CONFIGS, REF_N, REF_P, REF_T
from backtest.bench.vs_vectorbt import _vectorbt_single, _vectorbt_sweep
from backtest.bench.workloads import _cli, _features, _pipeline, _simulate, _sweep, _tearsheet


@dataclass(frozen=True)
class Bench:
    name: str
    setup: Callable
    ref: str  # reference workload: "numba", "python" or "startup"
    quick: bool = False  # in --quick, the set the CI gate runs
    gate: bool = True  # compared with the baseline when measured (vectorbt: never)
    repeats: int = 5
    vs: str = ""  # the vectorbt benchmark doing the same work
    isolate: bool = False  # measured in a fresh process (its own memory peak, no shared state)
    threads: int = 0  # numba threads while measured (0: all)
    about: str = ""
    clocks: tuple[str, ...] = ("cpu",)  # figures gated; wall time is reported, never gated (module docstring)


BENCHES: list[Bench] = [
    *[Bench(f"features.{k}[{_F}]", _features(k), "numba", quick=True, about=f"feature kernel {k}")
      for k in ("drawdown", "return_zscore", "trailing_zscore", "trailing_percentile")],
    Bench(f"simulate[{REF_T}x500]", _simulate(500), "numba", quick=True, vs=f"vectorbt.from_signals[{REF_T}x500]",
          about="simulate kernel, one parameter set, boolean signals, stop loss, take profit, flat fees"),
    Bench(f"sweep.1t[{REF_T}x{REF_N}x50]", _sweep(REF_T, REF_N, 50), "numba", quick=True, threads=1,
          about="sweep kernel, 50 of the 500 §8 combinations, HK costs, one thread"),
    Bench("pipeline.run[dip.toml]", _pipeline, "python", quick=True, repeats=5,
          about="backtest.pipeline.run(configs/dip.toml): data, features, simulation, stats, event study"),
    Bench("tearsheet[dip.toml]", _tearsheet, "python", quick=True, repeats=5,
          about="backtest.output.write_outputs: tear sheet and CSV/JSON files"),
    Bench("cli.help", _cli(["--help"]), "startup", quick=True, repeats=7, about="python -m backtest --help"),
    Bench(f"vectorbt.from_signals[{REF_T}x500]", _vectorbt_single(500), "numba", gate=False, repeats=3,
          about="vectorbt Portfolio.from_signals + value() on the inputs of simulate[...]"),
    Bench(f"sweep[{_S8}]", _sweep(REF_T, REF_N, REF_P), "numba", repeats=5, isolate=True, gate=False,
          about="§8 reference sweep, HK costs and board lots (configs/dip_sweep.toml), all threads"),
    Bench(f"sweep.flat[{_S8}]", _sweep(REF_T, REF_N, REF_P, "flat"), "numba", repeats=5, isolate=True, gate=False,
          vs=f"vectorbt.sweep[{_S8}]", about="§8 reference sweep, flat fees, no lots (vectorbt's model), all threads"),
    Bench(f"sweep.flat.1t[{_S8}]", _sweep(REF_T, REF_N, REF_P, "flat"), "numba", repeats=3, isolate=True, threads=1,
          vs=f"vectorbt.sweep[{_S8}]", about="as sweep.flat[...], one thread (vectorbt runs on one)"),
    Bench(f"vectorbt.sweep[{_S8}]", _vectorbt_sweep(), "numba", gate=False, repeats=2, isolate=True,
          about="§8 reference sweep in vectorbt: signals, from_signals, metrics"),
    Bench("cli.run.warm[dip.toml]", _cli(["run", str(CONFIGS / "dip.toml"), "--out", "{out}"]), "startup", repeats=5,
          about="python -m backtest run configs/dip.toml, numba cache warm"),
    Bench("cli.run.cold[dip.toml]", _cli(["run", str(CONFIGS / "dip.toml"), "--out", "{out}"], cold=True), "startup",
          repeats=1, about="python -m backtest run configs/dip.toml, numba cache empty (every kernel compiles)"),
]
BY_NAME = {b.name: b for b in BENCHES}
