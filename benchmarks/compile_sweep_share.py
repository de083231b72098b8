"""CPU time of the Python work around the sweep kernel, against the kernel's own (one thread), in
`run_sweep` + `write_results` of a config (docs/performance.md; issue 13 target: compile_sweep +
result tables < 10 % of the kernel).

    PYTHONPATH=$PWD python benchmarks/compile_sweep_share.py CONFIG [independent|portfolio] [repeats] [KEEP_DIR] [-v]

Per repeat, CPU seconds (time.process_time) and share of the kernel of:
  compile  everything between the config's grid and the kernel call: the grid, compile_sweep
           (strategy calls, rule rows, feature slots, exits) and run_chunk's Python (a chunk's
           rows, the loosest rules);
  tables   everything between the kernel's arrays and the tables a user gets: the results table
           (parameters, metrics, CAGR, the per-symbol medians) and the per-symbol table's columns
           (rebased to each listing; `sweep._symbol_table`);
  files    reading and writing files: chunk files, block_sums.npy, by_symbol.parquet (Arrow
           arrays and Parquet), results.parquet, results.csv;
  setup    market alignment and fingerprint, the feature stack;
  other    the rest of run_sweep (output directory, lock, manifest, block sums per block).
"compile + tables" is what the target counts; KEEP_DIR keeps each repeat's outputs (KEEP_DIR/0, ...);
-v prints each timed function's milliseconds. The kernels are loaded by a one-combination sweep
first (not timed).
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
KERNELS = ["sweep", "sweep_independent", "sweep_portfolio"]
WRAP = {K: KERNELS, R: ["listing_years"],
        S: ["prepare", "_fingerprint", "build_grid", "compile_sweep", "run_chunk", "make_inputs", "_save",
            "_load_chunk", "_stack_sums", "_write_by_symbol", "_symbol_table", "_table", "write_results"]}
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
        if hasattr(mod, n):  # names a version lacks are skipped
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
        res = S.run_sweep(cfg, f"{sys.argv[4] if len(sys.argv) > 4 else d}/{rep}", workers=1, progress=False,
                          market=market)
        S.write_results(res)
        total = T() - c
        g = lambda *k: sum(spent.get(x, 0.0) for x in k)  # noqa: E731
        kern = g(*KERNELS)
        compile_ = g("build_grid", "compile_sweep", "run_chunk") - kern
        tables = g("_symbol_table", "_table", "listing_years")
        files = g("_save", "_load_chunk", "_stack_sums", "_write_by_symbol", "write_results") \
            - g("_symbol_table", "listing_years")
        setup = g("prepare", "_fingerprint", "make_inputs")
        other = total - kern - compile_ - tables - files - setup
        if "-v" in sys.argv[5:]:
            print({k: round(v * 1e3, 3) for k, v in spent.items()})
        print(f"{res.grid.size:,} combinations, {cfg.execution.mode}: kernel {kern:.4f} s CPU; compile + tables "
              f"{compile_ + tables:.4f} s = {(compile_ + tables) / kern:.1%} (compile {compile_:.4f} s = "
              f"{compile_ / kern:.1%}, tables {tables:.4f} s = {tables / kern:.1%}); files {files:.3f} s = "
              f"{files / kern:.1%}; setup {setup:.3f} s; other {other:.4f} s = {other / kern:.1%}", flush=True)
finally:
    shutil.rmtree(d)
