"""Profile the sweep kernel with Linux `perf`, numba's compiled functions named.

    rm -rf /tmp/pc && DIPFLOW_CACHE_DIR=/tmp/pc PYTHONPATH=$PWD \
        perf record -F 1999 -o /tmp/perf.data python benchmarks/kernel_perfmap.py hk 2520 50 15
    perf report -i /tmp/perf.data --no-children --sort dso,sym | grep JIT

perf cannot name JIT code by itself. After compiling (the cache directory must be empty: only a
fresh compilation keeps the LLVM module whose function addresses are written out), this writes
/tmp/perf-<pid>.map with every compiled function's address, then runs the reference sweep (COSTS
hk or flat, BARS, SYMBOLS) on one thread for SECONDS of CPU. Functions inlined into others
(`inline="always"`, and what LLVM inlines) count as their caller.

Per instruction: with KERNEL_PERFMAP_DUMP=NAME (a substring of a mapped function's name), the
machine code of each matching function is also written to /tmp/jit-<address>.bin; then

    perf script -i /tmp/perf.data -F ip,sym | grep NAME | sort | uniq -c | sort -rn | head -40
    objdump -D -b binary -mi386:x86-64 --adjust-vma=0x<address> /tmp/jit-<address>.bin

names the hot instructions.
"""
import ctypes

import gc
import os
import sys
import time

import numba
from numba.core.dispatcher import Dispatcher

from backtest.bench import sweep_case
from backtest.sweep import run_chunk

numba.set_num_threads(1)
costs, n_t, n_s, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
inputs, sp = sweep_case(n_t, n_s, 500, costs)
run_chunk(inputs, sp, 0, 2, threads=1)
entries = set()
for o in gc.get_objects():
    if isinstance(o, Dispatcher):
        for cres in o.overloads.values():
            lib = cres.library
            module = getattr(lib, "_final_module", None)
            for f in module.functions if module is not None else ():
                if not f.is_declaration:
                    address = lib.get_pointer_to_function(f.name)
                    if address:
                        entries.add((address, f.name.split("B3v")[0].split("B4v")[0][:100]))
entries = sorted(entries)
with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
    for (a, name), nxt in zip(entries, entries[1:] + [(entries[-1][0] + 4096, "")]):
        fh.write(f"{a:x} {min(nxt[0] - a, 1 << 20):x} {name}\n")
print(f"{len(entries)} functions mapped", flush=True)
dump = os.environ.get("KERNEL_PERFMAP_DUMP")
for (a, name), nxt in zip(entries, entries[1:]):
    if dump and dump in name:
        with open(f"/tmp/jit-{a:x}.bin", "wb") as fh:
            fh.write(ctypes.string_at(a, min(nxt[0] - a, 1 << 20)))
        print(f"dumped {name} at {a:x}: /tmp/jit-{a:x}.bin", flush=True)
n = sp.exits.shape[0]
c0, k = time.process_time(), 0
while time.process_time() - c0 < seconds:
    run_chunk(inputs, sp, 0, n, threads=1)
    k += 1
cpu = (time.process_time() - c0) / k
print(f"{costs} {n_t} x {n_s} x {n}: {cpu * 1e3:.1f} ms per call, {n_t * n_s * n / cpu / 1e6:.0f} M cells/s")
