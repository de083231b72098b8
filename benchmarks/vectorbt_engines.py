"""vectorbt's numba engine against its Rust engine (vectorbt-rust) on the benchmark's from_signals
call, interleaved in one process, CPU and wall time (docs/performance.md, "vectorbt's fastest
configuration"). vectorbt-rust is not a dependency: point PYTHONPATH at an unpacked wheel, e.g.

    pip download --no-deps vectorbt-rust -d /tmp/vr && python -m zipfile -e /tmp/vr/*.whl /tmp/vrx
    PYTHONPATH=$PWD:/tmp/vrx python benchmarks/vectorbt_engines.py
"""

from __future__ import annotations

import gc
import time
import warnings

import numpy as np


def main(rounds: int = 5) -> None:
    """Both engines on the same call, alternating, `rounds` times; minimum CPU and wall time of each.
    (The §8 sweep's vectorbt calls pass a time stop through adjust_sl_func_nb, which vectorbt runs
    only on numba: `Portfolio.from_signals` takes its Rust-capable static path without callbacks.)"""
    import vectorbt as vbt
    from vectorbt._engine import is_rust_available

    from backtest.bench import data, vs_vectorbt, workloads

    print(f"vectorbt {vbt.__version__}; rust engine available: {is_rust_available()}")
    o, h, lo, c, en, ex = data._signal_panel(data.REF_T, 500)
    s = workloads.SINGLE
    times = {"numba": [], "rust": []}
    value = {}

    def call(engine):
        vbt.settings["engine"] = engine  # "rust" raises if the call cannot run on Rust
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pf = vs_vectorbt.vectorbt_from_signals(o, h, lo, c, en, ex, s["stop_loss"], s["take_profit"], 0.0, s["fee_pct"],
                                         s["slippage"], s["cash"])
            return pf, pf.value().to_numpy()

    for engine in times:  # compile / warm, not timed
        _, value[engine] = call(engine)
    for _ in range(rounds):
        for engine in times:
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            call(engine)
            times[engine].append((time.perf_counter() - t0, time.process_time() - c0))
    for engine, ts in times.items():
        print(f"{engine:6s} from_signals + value() [2520x500]: wall min {min(t for t, _ in ts) * 1e3:.1f} ms, "
              f"cpu min {min(c for _, c in ts) * 1e3:.1f} ms")
    print(f"equity equal between engines: {np.allclose(value['numba'], value['rust'], rtol=1e-12)}")
    print("rust speed-up on wall / cpu: "
          f"{min(t for t, _ in times['numba']) / min(t for t, _ in times['rust']):.2f}x / "
          f"{min(c for _, c in times['numba']) / min(c for _, c in times['rust']):.2f}x")


if __name__ == "__main__":
    main()
