"""Interleaved CPU-time comparison of the sweep kernel in two source trees (before / after).

    python benchmarks/kernel_compare.py OLD_TREE NEW_TREE [--rounds 5] [--sizes T:N:P:costs ...]

Starts one worker process per tree (PYTHONPATH=<tree>, one numba thread), each builds every case
(`backtest.bench.sweep_case`) and warms the kernel; then, round by round and size by size, asks
the workers in turn to time one `run_chunk` over all combinations (CPU time: time.process_time).
A size is BARS:SYMBOLS:COMBINATIONS:COSTS with COSTS "hk" or "flat", and "-pf" for portfolio mode
(5 slots) instead of independent accounts.
Prints min CPU time and cells per CPU second of each tree per size, and checks that both trees
return bit-identical arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import dataclasses, hashlib, json, sys, time
import numba
numba.set_num_threads(1)
from backtest.bench import sweep_case
from backtest.sweep import run_chunk
cases = {}
for spec in json.loads(sys.argv[1]):
    t, n, p, costs = spec.split(":")
    inputs, sp = sweep_case(int(t), int(n), int(p), costs.removesuffix("-pf"))
    if costs.endswith("-pf"):  # portfolio mode, 5 slots
        inputs = dataclasses.replace(inputs, execution=inputs.execution._replace(max_positions=5))
    run_chunk(inputs, sp, 0, 2, threads=1)
    cases[spec] = (inputs, sp, sp.exits.shape[0])
print("ready", flush=True)
for line in sys.stdin:
    spec = line.strip()
    inputs, sp, n = cases[spec]
    c0 = time.process_time()
    out = run_chunk(inputs, sp, 0, n, threads=1)
    cpu = time.process_time() - c0
    h = hashlib.sha256()
    for a in out:
        h.update(a.tobytes())
    print(json.dumps({"cpu": cpu, "digest": h.hexdigest()[:16], "n": n}), flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", nargs="+", default=["2520:50:500:hk", "2520:50:500:flat"])
    a = ap.parse_args()
    workers = []
    for tree in a.trees:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), NUMBA_NUM_THREADS="1")
        w = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(a.sizes)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env, cwd=os.path.abspath(tree))
        assert w.stdout.readline().strip() == "ready"
        workers.append(w)
    res = {(i, s): [] for i in range(len(workers)) for s in a.sizes}
    dig = {}
    n_p = {}
    for _ in range(a.rounds):
        for s in a.sizes:
            for i, w in enumerate(workers):
                w.stdin.write(s + "\n")
                w.stdin.flush()
                r = json.loads(w.stdout.readline())
                res[i, s].append(r["cpu"])
                dig[i, s] = r["digest"]
                n_p[s] = r["n"]
    for w in workers:
        w.stdin.close()
        w.wait()
    for s in a.sizes:
        t, n, p, costs = s.split(":")
        line = [f"{s:>20}"]
        for i, tree in enumerate(a.trees):
            m = min(res[i, s])
            cells = int(t) * int(n) * n_p[s]
            line.append(f"{os.path.basename(os.path.abspath(tree))}: {m * 1e3:8.1f} ms {cells / m / 1e6:6.0f} M/s")
        same = len({dig[i, s] for i in range(len(workers))}) == 1
        line.append("identical" if same else "DIFFERENT " + " ".join(dig[i, s] for i in range(len(workers))))
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
