"""CPU time of everything Python does around the sweep kernel, against the kernel's own (one thread),
in `run_sweep` + `write_results` of a config (docs/performance.md; issue 13 target: < 10 %).

    PYTHONPATH=$PWD python benchmarks/compile_sweep_share.py configs/dip_sweep.toml [independent|portfolio] [repeats]

Prints, per repeat: the kernel (backtest.kernels.sweep.sweep), compile_sweep, the rest of run_chunk
(taking a chunk's rows, the loosest rules), the feature stack (make_inputs), and the rest: the
results table, per-symbol rebasing and medians, by_symbol.parquet, block sums, chunk files,
results.parquet / .csv, market alignment. The kernel is loaded (or compiled) before timing.
"""
import dataclasses
import shutil
import sys
import tempfile
import time

import backtest.kernels.sweep as K
import backtest.sweep as S
from backtest.config import load_config
from backtest.pipeline import load_market

T = time.process_time
cfg = load_config(sys.argv[1])
if len(sys.argv) > 2:
    cfg = dataclasses.replace(cfg, execution=dataclasses.replace(cfg.execution, mode=sys.argv[2]))
spent = dict.fromkeys(("kernel", "run_chunk", "compile_sweep", "make_inputs"), 0.0)


def timed(name, f):
    def call(*a, **k):
        c = T()
        try:
            return f(*a, **k)
        finally:
            spent[name] += T() - c
    return call


K.sweep = timed("kernel", K.sweep)
for name in ("run_chunk", "compile_sweep", "make_inputs"):
    setattr(S, name, timed(name, getattr(S, name)))
market = load_market(cfg)
d = tempfile.mkdtemp()
try:
    S.write_results(S.run_sweep(cfg, f"{d}/warm", workers=1, progress=False, market=market))
    for rep in range(int(sys.argv[3]) if len(sys.argv) > 3 else 1):
        for k in spent:
            spent[k] = 0.0
        c = T()
        res = S.run_sweep(cfg, f"{d}/{rep}", workers=1, progress=False, market=market)
        S.write_results(res)
        total = T() - c
        kern = spent["kernel"]
        take = spent["run_chunk"] - kern
        rest = total - spent["run_chunk"] - spent["compile_sweep"] - spent["make_inputs"]
        around = spent["compile_sweep"] + take + rest
        print(f"{res.grid.size:,} combinations, {cfg.execution.mode} mode: kernel {kern:.3f} s CPU (1 thread); "
              f"compile_sweep {spent['compile_sweep']:.3f} s ({spent['compile_sweep'] / kern:.1%}), "
              f"run_chunk's Python {take:.3f} s ({take / kern:.1%}), tables and files {rest:.3f} s "
              f"({rest / kern:.1%}); all of it {around:.3f} s = {around / kern:.1%} of the kernel; "
              f"features {spent['make_inputs']:.3f} s", flush=True)
finally:
    shutil.rmtree(d)
