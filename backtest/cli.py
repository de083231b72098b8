"""Command line: `python -m backtest {run,validate,strategies,data synth}`.

Imports stay inside the commands so `--help` never loads numba, pandas or vectorbt.
"""

from __future__ import annotations

import argparse
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backtest",
                                description="Look-ahead-safe backtests of buy-the-dip flow strategies on HK stocks.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run one strategy from a TOML config and write its tear sheet")
    r.add_argument("config", help="TOML config, e.g. configs/dip.toml")
    r.add_argument("--out", help="output directory (default: report.out in the config)")

    w = sub.add_parser("sweep", help="run a parameter sweep from a config's [sweep.grid]")
    w.add_argument("config", help="TOML config with a [sweep.grid] table, e.g. configs/dip_sweep.toml")
    w.add_argument("--out", help="output directory (default: report.out in the config)")
    w.add_argument("--workers", type=int, help="threads (local engine) or Dask worker processes (default: all cores)")
    w.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="local: numba threads in this process; dask: a LocalCluster of --workers processes")
    w.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (implies --engine dask)")
    w.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")

    v = sub.add_parser("validate", help="check a config and its data without running")
    v.add_argument("config")

    sub.add_parser("strategies", help="list strategies and their parameters")

    b = sub.add_parser("bench", help="benchmarks and the speed-regression gate (docs/performance.md)")
    b.add_argument("--quick", action="store_true", help="the reduced set the CI gate runs")
    b.add_argument("--check", action="store_true",
                   help="compare with the baseline; exit 1 if a benchmark is slower than tolerance x baseline")
    b.add_argument("--update-baseline", action="store_true", help="rewrite the baseline's entries for what was run")
    b.add_argument("--only", nargs="+", metavar="NAME", help="benchmarks to run (shell patterns, e.g. 'features.*')")
    b.add_argument("--scaling", action="store_true",
                   help="also time the sweep kernel at three sizes of bars, symbols and combinations")
    b.add_argument("--repeats", type=int, help="timed repeats per benchmark (default: each benchmark's own)")
    b.add_argument("--baseline", help="baseline file (default: benchmarks/baseline.json)")
    b.add_argument("--tolerance", type=float, help="slowdown factor that fails (default: the baseline's, 1.6)")
    b.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    b.add_argument("--list", action="store_true", help="list the benchmarks and exit")

    d = sub.add_parser("data", help="data utilities")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    s = dsub.add_parser("synth", help="write the synthetic sample market in the documented format")
    s.add_argument("--out", required=True, help="directory to write")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--symbols", type=int, default=25)
    s.add_argument("--years", type=float, default=10.0)
    s.add_argument("--format", choices=("csv", "parquet"), default="csv")
    return p


def _run(args) -> int:
    from backtest.config import load_config
    from backtest.output import write_outputs
    from backtest.pipeline import run

    cfg = load_config(args.config)
    out = run(cfg)
    t0 = time.perf_counter()
    out_dir = write_outputs(out, args.out or cfg.report.out)
    s = out.stats
    print(f"{out.prepared.module.NAME}: {s['start']} to {s['end']}, {s['trades']} trades, "
          f"total return {_num(s['total_return'], '.2%')}, Sharpe {_num(s['sharpe'], '.2f')}, "
          f"max drawdown {_num(s['max_drawdown'], '.2%')}")
    print(f"wrote {out_dir}/tearsheet.html, stats.json, trades.csv, orders.csv, equity.csv "
          f"(backtest {out.seconds:.2f} s, report {time.perf_counter() - t0:.2f} s)")
    return 0


def _num(x: float, fmt: str) -> str:
    """A figure for the console; "n/a" where it is undefined (e.g. Sharpe of a flat equity curve)."""
    return format(x, fmt) if x == x and abs(x) != float("inf") else "n/a"


def _sweep(args) -> int:
    from backtest.config import load_config
    from backtest.sweep import run_sweep, write_results

    cfg = load_config(args.config)
    if args.workers is not None and args.workers < 1:
        from backtest.errors import UserError

        raise UserError(f"--workers must be at least 1, got {args.workers}")
    res = run_sweep(cfg, args.out or cfg.report.out, workers=args.workers, scheduler=args.scheduler,
                    engine=args.engine, resume=args.resume)
    write_results(res)
    from backtest.sweep_report import write_sweep_report

    write_sweep_report(res, cfg, res.market)
    metric = cfg.sweep.metric
    best = res.table.sort_values(metric, ascending=False, kind="stable").iloc[0]  # every metric: higher is better
    combo = res.grid.combo(int(best["combo"]))
    print(f"{res.grid.size} combinations ({res.computed} computed now) in {res.seconds:.2f} s; "
          f"best {metric} {best[metric]:.3f} at " + ", ".join(f"{k}={v}" for k, v in combo.items()))
    print(f"wrote {res.out_dir}/sweep.html, results.parquet, results.csv" +
          (", by_symbol.parquet" if res.by_symbol is not None else ""))
    return 0


def _validate(args) -> int:
    from backtest.config import load_config
    from backtest.pipeline import prepare

    prep = prepare(load_config(args.config))
    t, n = prep.panel.shape
    print(f"ok: {args.config}: strategy {prep.module.NAME} {vars(prep.params)}; "
          f"data {prep.panel.source or prep.cfg.data.path}: {t} bars x {n} symbols, fingerprint {prep.panel.fingerprint}")
    return 0


def _strategies(args) -> int:
    from backtest.strategy import describe, load_strategy, shipped_strategies

    print("\n\n".join(describe(load_strategy(name)) for name in shipped_strategies()))
    return 0


def _synth(args) -> int:
    from backtest.data.write import write_market
    from backtest.data.synth import generate
    from backtest.errors import UserError

    try:
        md = generate(seed=args.seed, symbols=args.symbols, years=args.years)
    except ValueError as exc:
        raise UserError(f"data synth: {exc}") from None
    write_market(md, args.out, fmt=args.format)
    print(f"wrote {args.out}: {md.hk['close'].shape[0]} HK days x {md.hk['close'].shape[1]} symbols ({md.source})")
    return 0


def _bench(args) -> int:
    from backtest.bench import run_cli

    return run_cli(args)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": _run, "sweep": _sweep, "validate": _validate, "strategies": _strategies,
               "data": _synth, "bench": _bench}[args.command]
    from backtest.errors import UserError

    try:
        return handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
