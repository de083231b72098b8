"""Peak memory and CPU time of a large sweep (docs/performance.md, "Memory"): compile_sweep alone,
then run_sweep + write_results, printing the process's resident (VmRSS) and peak (VmHWM) memory.

    PYTHONPATH=$PWD python benchmarks/sweep_memory.py CONFIG OUT_DIR

CONFIG: configs/dip_sweep.toml with a wider [sweep.grid], e.g. dip num = 40, flow_z num = 50,
"exits.max_hold" = { start = 2, stop = 51, num = 50 } for 100,000 combinations.
"""
import sys
import time

from backtest.config import load_config
from backtest.sweep import run_sweep, write_results, compile_sweep
from backtest.pipeline import prepare
from backtest.grid import build_grid
def rss():
    for l in open('/proc/self/status'):
        if l.startswith(('VmRSS', 'VmHWM')): print('  ', l.strip(), flush=True)
cfg = load_config(sys.argv[1])
prep = prepare(cfg)
grid = build_grid(cfg, prep.module)
print('combinations', grid.size); rss()
c0 = time.process_time(); sp = compile_sweep(prep, grid); print(f'compile_sweep cpu {time.process_time()-c0:.1f} s'); rss()
del sp
c0 = time.process_time(); t0 = time.perf_counter()
res = run_sweep(cfg, sys.argv[2], progress=False)
write_results(res)
print(f'run_sweep + write_results cpu {time.process_time()-c0:.1f} s wall {time.perf_counter()-t0:.1f} s'); rss()
