"""compile_sweep's CPU time against the sweep kernel's (one thread) for a config's grid
(docs/performance.md; issue 13 target: < 10 %).

    PYTHONPATH=$PWD python benchmarks/compile_sweep_share.py configs/dip_sweep.toml
"""
import sys
import time

from backtest.config import load_config
from backtest.pipeline import prepare
from backtest.grid import build_grid
from backtest.sweep import compile_sweep, make_inputs, run_chunk
T = time.process_time
cfg = load_config(sys.argv[1]); prep = prepare(cfg); grid = build_grid(cfg, prep.module)
c = T(); sp = compile_sweep(prep, grid); c = T() - c
inputs = make_inputs(prep, sp); run_chunk(inputs, sp, 0, 2, threads=1)
k = T(); run_chunk(inputs, sp, 0, grid.size, threads=1); k = T() - k
print(f"{grid.size} combinations x {prep.panel.shape}: compile_sweep {c:.3f} s CPU, kernel (1 thread) {k:.3f} s CPU, ratio {c / k:.1%}")
