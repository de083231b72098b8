"""`backtest.coldstart.precompile` on an empty cache: wall time, CPU per job in this process and the
helper process's CPU. docs/performance.md, "Cold start".

    D=$(mktemp -d); DIPFLOW_CACHE_DIR=$D PYTHONPATH=$PWD python benchmarks/precompile_lanes.py run configs/dip.toml
    E=$(mktemp -d); DIPFLOW_CACHE_DIR=$E PYTHONPATH=$PWD python benchmarks/precompile_lanes.py sweep configs/dip_sweep.toml
"""

from __future__ import annotations

import resource
import sys
import time

from backtest import coldstart
from backtest.config import load_config


def main(kind: str, path: str) -> None:
    cfg = load_config(path)
    spent: list[tuple[str, float]] = []
    run_jobs = coldstart._run_jobs

    def timed(jobs, cfg, failed):
        for j in jobs:
            t = time.process_time()
            run_jobs([j], cfg, failed)
            spent.append((j.name, round(time.process_time() - t, 1)))

    coldstart._run_jobs = timed
    c0, w0 = time.process_time(), time.perf_counter()
    r = coldstart.precompile((kind,), config=cfg)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{kind}: lanes {r.lanes}; wall {time.perf_counter() - w0:.1f} s, this process "
          f"{time.process_time() - c0:.1f} s CPU {spent}, helper {child.ru_utime + child.ru_stime:.1f} s CPU"
          + (f"; failed: {r.failed}" if r.failed else ""))


if __name__ == "__main__":
    main(*sys.argv[1:3])
