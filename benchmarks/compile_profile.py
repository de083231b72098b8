"""Where a cold command's compile time goes: CPU seconds per numba-compiled function (numba's
`numba:compile` events), callees indented under their callers. docs/performance.md, "Cold start".

    D=$(mktemp -d); DIPFLOW_CACHE_DIR=$D PYTHONPATH=$PWD python benchmarks/compile_profile.py run configs/dip.toml --out /tmp/r
"""

from __future__ import annotations

import sys
import time

from numba.core import event


class _Compiles(event.Listener):
    def __init__(self) -> None:
        self.open: list[tuple[str, float, int]] = []
        self.done: list[tuple[int, str, float]] = []

    def on_start(self, ev) -> None:
        f = ev.data["dispatcher"].py_func
        self.open.append((f"{f.__module__}.{f.__qualname__}", time.process_time(), len(self.open)))

    def on_end(self, ev) -> None:
        name, t0, depth = self.open.pop()
        self.done.append((depth, name, time.process_time() - t0))


def main(argv: list[str]) -> int:
    rec = _Compiles()
    event.register("numba:compile", rec)
    from backtest.cli import main as cli

    c0, w0 = time.process_time(), time.perf_counter()
    status = cli(argv)
    print(f"exit {status}: {time.process_time() - c0:.1f} s CPU in this process, {time.perf_counter() - w0:.1f} s wall; "
          "compiles over 0.2 s CPU (callees above their caller, indented):", file=sys.stderr)
    for depth, name, secs in rec.done:
        if secs > 0.2:
            print(f"{'  ' * depth}{name} {secs:.2f}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
