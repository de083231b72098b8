"""`python -m backtest bench`: measure, compare or gate, print, and write the baseline or a JSON record."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

from backtest.bench.gate import BASELINE, compare, gate, load_baseline, verdict, write_baseline
from backtest.bench.machine import machine, tree
from backtest.bench.measure import run_benchmarks, select
from backtest.bench.registry import BENCHES
from backtest.bench.report import scaling_table, table, targets
from backtest.bench.scaling import PER_CORE_TARGET, scaling


def run_cli(args) -> int:
    from backtest.errors import UserError

    if args.list:
        for b in BENCHES:
            print(f"{b.name:42s} {'quick ' if b.quick else '      '}{'gated' if b.gate else 'info '}  {b.about}")
        return 0
    if args.repeats is not None and args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
    baseline_path = Path(args.baseline) if args.baseline else BASELINE
    benches = select(args.only, args.quick)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    say(f"measuring {len(benches)} benchmark(s), each interleaved with its reference workload")
    results = run_benchmarks(benches, args.repeats, say)
    baseline = load_baseline(baseline_path)
    rows = None
    if args.check:
        rows = gate(results, baseline, args.tolerance, progress=say)
    elif baseline.get("benchmarks") and not args.update_baseline:
        rows = compare(results, baseline, args.tolerance)
    scale = scaling(progress=say) if args.scaling else None
    m, tr = machine(), tree()
    print(f"dipflow benchmarks, {date.today().isoformat()}: {m['nproc']} x {m['cpu']}, {m['memory_gb']} GB; "
          f"numba {m['numba']}, numpy {m['numpy']}; commit {tr['commit']}"
          f"{' + ' + str(len(tr['changed'])) + ' changed file(s)' if tr['changed'] else ''}, kernels {tr['kernels']}")
    print(table(results, rows))
    tgt = targets(results, scale)
    if scale:
        print(f"\nsweep kernel scaling (HK costs, 1 thread; per-core target {PER_CORE_TARGET / 1e6:.0f} M cells/s):")
        print(scaling_table(scale))
    if tgt:
        print("\nDESIGN §8 targets:")
        print("\n".join("  " + x for x in tgt))
    status = 0
    if args.check:
        status, lines = verdict(rows, baseline, args.tolerance)
        print("\n" + "\n".join(lines))
        base_cpu = baseline.get("machine", {}).get("cpu")
        if base_cpu and base_cpu != m["cpu"]:
            print(f"note: the baseline was measured on {base_cpu}, this is {m['cpu']}: normalised figures carry "
                  f"over between similar machines; rewrite the baseline if CI moves to a different kind")
    if args.update_baseline:
        write_baseline(results, baseline_path, args.tolerance)
        print(f"\nwrote {baseline_path}")
    if args.json:
        record = {"date": date.today().isoformat(), "machine": m, "tree": tr,
                  "args": {k: v for k, v in vars(args).items() if k != "command"},
                  "results": results, "compare": rows, "scaling": scale, "targets": tgt}
        Path(args.json).write_text(json.dumps(record, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    say(f"({time.perf_counter() - t0:.0f} s)")
    return status
