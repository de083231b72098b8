"""CPU time of everything Python does around the sweep kernel, against the kernel's own (one thread),
in `run_sweep` + `write_results` of a config (docs/performance.md; issue 13 target: compile_sweep +
result tables < 10 % of the kernel).

    PYTHONPATH=$PWD python benchmarks/compile_sweep_share.py CONFIG [independent|portfolio] [repeats] [KEEP_DIR]

Per repeat, CPU seconds and share of the kernel (backtest.kernels.sweep.sweep_*) of:
  tables  everything but the kernel, files and setup: compile_sweep, run_chunk's Python (a chunk's
          rows, the loosest rules), the results table, CAGR and ranking columns, per-symbol
          rebasing and medians;
  files   chunk files, block_sums.npy, by_symbol.parquet's Arrow conversion and writing,
          results.parquet / results.csv;
  setup   market alignment and fingerprint, the feature stack.
The kernels are loaded by a one-combination sweep first (not timed).
"""
import dataclasses
import shutil
import sys
import tempfile
import time

import backtest.kernels.sweep as K
import backtest.ranking as R
import backtest.sweep as S
from backtest.config import load_config
from backtest.grid import build_grid
from backtest.pipeline import load_market
from backtest.strategy import load_strategy

T = time.process_time
cfg = load_config(sys.argv[1])
if len(sys.argv) > 2:
    cfg = dataclasses.replace(cfg, execution=dataclasses.replace(cfg.execution, mode=sys.argv[2]))
WRAP = {K: ["sweep_independent", "sweep_portfolio"], R: ["rebase", "rebase_symbols", "symbol_medians", "listing_years"],
        S: ["prepare", "_fingerprint", "compile_sweep", "make_inputs", "_save", "_load_chunk", "_stack_sums",
            "_write_by_symbol", "write_results"]}  # names a version lacks are skipped
spent: dict[str, float] = {}


def timed(name, f):
    def call(*a, **k):
        c = T()
        try:
            return f(*a, **k)
        finally:
            spent[name] = spent.get(name, 0.0) + T() - c
    return call


for mod, names in WRAP.items():
    for n in names:
        if hasattr(mod, n):
            setattr(mod, n, timed(n, getattr(mod, n)))
market = load_market(cfg)
d = tempfile.mkdtemp()
try:
    grid = build_grid(cfg, load_strategy(cfg.strategy.name))
    one = dataclasses.replace(cfg.sweep, grid={k: [v[0].item()] for k, v in zip(grid.keys, grid.values)})
    S.write_results(S.run_sweep(dataclasses.replace(cfg, sweep=one), f"{d}/warm", workers=1, progress=False,
                                market=market))
    for rep in range(int(sys.argv[3]) if len(sys.argv) > 3 else 1):
        spent.clear()
        c = T()
        res = S.run_sweep(cfg, sys.argv[4] if len(sys.argv) > 4 else f"{d}/{rep}", workers=1, progress=False,
                          market=market)
        S.write_results(res)
        total = T() - c
        g = lambda k: spent.get(k, 0.0)  # noqa: E731
        kern = g("sweep_independent") + g("sweep_portfolio")
        computed = g("rebase") + g("rebase_symbols") + g("symbol_medians") + g("listing_years")
        files = g("_save") + g("_load_chunk") + g("_stack_sums") + g("_write_by_symbol") - computed + g("write_results")
        setup = g("prepare") + g("_fingerprint") + g("make_inputs")
        tables = total - kern - files - setup  # compile_sweep, run_chunk's Python, tables, rebasing, medians
        print(f"{res.grid.size:,} combinations, {cfg.execution.mode}: kernel {kern:.3f} s CPU; "
              f"compile_sweep + tables {tables:.3f} s = {tables / kern:.1%} (compile_sweep "
              f"{g('compile_sweep'):.3f} s = {g('compile_sweep') / kern:.1%}); files {files:.3f} s = "
              f"{files / kern:.1%}; setup {setup:.3f} s", flush=True)
finally:
    shutil.rmtree(d)
