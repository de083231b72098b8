"""CPU time of the sweep kernel (one thread) on the reference sweep at several tile shapes.

    PYTHONPATH=$PWD python benchmarks/kernel_tiles.py BARS SYMBOLS TILE:LANES[,TILE:LANES ...]

TILE: symbols per block (0: automatic, from kernels.sweep.TILE_BYTES); LANES: how many lanes
split the combinations (on one thread a lane only changes how many combinations share a tile:
min(TILE_COMBOS, 500 // (4 x LANES))). Results do not depend on either; min of 3 interleaved runs.
"""

import sys
import time

import numba

from backtest.bench import sweep_case
from backtest.kernels.sweep import sweep_independent
from backtest.rules import loosest

numba.set_num_threads(1)
T, N = int(sys.argv[1]), int(sys.argv[2])
shapes = [tuple(int(y) for y in x.split(":")) for x in sys.argv[3].split(",")]
inputs, sp = sweep_case(T, N, 500, "hk")
sp = sp.take(slice(0, sp.exits.shape[0]))
group, loose = loosest(sp.entry)


def run(shape):
    c0 = time.process_time()
    sweep_independent(inputs.market, inputs.execution, sp.entry, sp.exit, sp.exits, group, loose, inputs.edges,
                      shape[1], shape[0])
    return time.process_time() - c0


run((0, 1))
best = dict.fromkeys(shapes, float("inf"))
for _ in range(3):
    for s in shapes:
        best[s] = min(best[s], run(s))
for s in shapes:
    print(f"{T} x {N} x 500, tile {s[0]}, lanes {s[1]}: {best[s] * 1e3:7.1f} ms CPU, "
          f"{T * N * 500 / best[s] / 1e6:5.0f} M cells/s", flush=True)
