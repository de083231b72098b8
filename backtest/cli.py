"""Command line: `python -m backtest {run,sweep,validate,strategies,lookahead,bench,data synth,data import}`.

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
                   help="local: threads in this process; dask: a LocalCluster of --workers processes")
    w.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (implies --engine dask)")
    w.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")

    v = sub.add_parser("validate", help="check a config and its data without running")
    v.add_argument("config")

    st = sub.add_parser("strategies", help="list strategies and features with their parameters")
    st.add_argument("extra", nargs="*", metavar="CONFIG_OR_MODULE",
                    help="also list the strategy of a config, or a module of your own strategies/features "
                         "(import path, e.g. my_strats.adr_snap)")

    la = sub.add_parser("lookahead", help="prove a config's strategy and features free of look-ahead "
                                          "(exit 0 clean, 1 leak)")
    la.add_argument("config")
    la.add_argument("--cuts", type=int, default=5, help="random cut bars to perturb after (default 5)")
    la.add_argument("--seed", type=int, default=0, help="seed of the cut bars and perturbations")

    b = sub.add_parser("bench", help="benchmarks and the speed-regression gate (docs/performance.md)")
    b.add_argument("--quick", action="store_true", help="the reduced set the CI gate runs")
    b.add_argument("--check", action="store_true",
                   help="compare with the baseline; exit 1 if a benchmark is slower than tolerance x baseline")
    b.add_argument("--update-baseline", action="store_true", help="rewrite the baseline's entries for what was run")
    b.add_argument("--only", nargs="+", metavar="NAME", help="benchmarks to run (shell patterns, e.g. 'features.*')")
    b.add_argument("--scaling", action="store_true",
                   help="also time the sweep kernel at three sizes of bars, symbols and combinations "
                        "(a full run without --quick or --only always does)")
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
    i = dsub.add_parser("import", help="import vendor files (yfinance, akshare, tushare, nasdaq, csv) "
                                       "named by a TOML import spec into a validated dataset")
    i.add_argument("spec", help="TOML import spec (docs/data.md, 'Bring your own data')")
    i.add_argument("--out", required=True, help="new dataset directory to write")
    i.add_argument("--fetch", action="store_true",
                   help="first download missing source files with their library (needs network)")
    return p


def _out_dir(args, cfg):
    """--out (or report.out), created and proven writable; never the dataset directory itself."""
    from pathlib import Path

    from backtest.errors import UserError
    from backtest.outdir import prepare_out_dir

    out = Path(args.out or cfg.report.out)
    if cfg.data.path is not None and out.resolve() == Path(cfg.data.path).resolve():
        raise UserError(f"output directory {out} is the dataset directory (data.path); outputs there would "
                        "make the dataset invalid: choose another --out")
    return prepare_out_dir(out)


def _run(args) -> int:
    from backtest.config import load_config
    from backtest.output import write_outputs
    from backtest.pipeline import run

    cfg = load_config(args.config)
    out_dir = _out_dir(args, cfg)  # before the backtest: a bad --out fails at once
    from backtest.coldstart import precompile

    precompile(("run",), config=cfg, stream=sys.stderr)  # a first run: its kernels, two processes at once
    out = run(cfg)
    t0 = time.perf_counter()
    before = _files(out_dir)
    write_outputs(out, out_dir)
    s = out.stats
    if out.per_symbol is not None and not s["symbols_traded"]:
        headline = f"no symbol traded ({s['symbols']} independent accounts)"
    elif out.per_symbol is not None:  # independent accounts: the spread of per-symbol results, not their sum
        headline = (f"median symbol total return {_num(s['symbol_total_return_median'], '.2%')} (quartiles "
                    f"{_num(s['symbol_total_return_q1'], '.2%')} to {_num(s['symbol_total_return_q3'], '.2%')}), median Sharpe "
                    f"{_num(s['symbol_sharpe_median'], '.2f')}, {_num(s['symbols_positive'], '.0%')} of {s['symbols_traded']} symbols "
                    f"that traded positive, median exposure {_num(s['symbol_exposure_median'], '.1%')} (independent mode)")
    else:
        headline = (f"total return {_num(s['total_return'], '.2%')} at {_num(s['exposure'], '.1%')} average exposure, Sharpe "
                    f"{_num(s['sharpe'], '.2f')}, max drawdown {_num(s['max_drawdown'], '.2%')} ({cfg.execution.mode} mode)")
    print(f"{out.prepared.module.NAME}: {s['start']} to {s['end']}, {s['trades']} trades, {headline}")
    for w in out.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out_dir}/{_written(out_dir, before)} "
          f"(backtest {out.seconds:.2f} s, report {time.perf_counter() - t0:.2f} s)")
    return 0


def _files(directory) -> dict:
    """name -> (inode, mtime_ns, size) of the files under `directory` (none if it does not exist)."""
    from pathlib import Path

    root = Path(directory)
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): (st.st_ino, st.st_mtime_ns, st.st_size)
            for p in root.rglob("*") if p.is_file() for st in [p.stat()]}


def _written(directory, before: dict) -> str:
    """The files under `directory` that are new or were rewritten since `before` (`_files`), as
    one comma-separated list; the files of a subdirectory are counted, not listed."""
    after = _files(directory)
    new = sorted(n for n, sig in after.items() if before.get(n) != sig and not n.split("/")[-1].startswith("."))
    top = [n for n in new if "/" not in n]
    sub: dict[str, int] = {}
    for n in new:
        if "/" in n:
            sub[n.split("/")[0]] = sub.get(n.split("/")[0], 0) + 1
    top.sort(key=lambda n: (not n.endswith(".html"), n))
    return ", ".join(top + [f"{d}/ ({k} file{'s' if k > 1 else ''})" for d, k in sorted(sub.items())])


def _num(x: float, fmt: str) -> str:
    """A figure for the console; "n/a" where it is undefined (e.g. Sharpe of a flat equity curve)."""
    return format(x, fmt) if x == x and abs(x) != float("inf") else "n/a"


def _sweep(args) -> int:
    from backtest.config import load_config
    from backtest.errors import ConfigError, UserError
    from backtest.outdir import sweep_lock
    from backtest.sweep import run_sweep, write_results
    from backtest.sweep_report import best_lines, write_sweep_report

    cfg = load_config(args.config)
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.workers is not None and args.engine == "local" and not args.scheduler:
        import numba

        if args.workers > numba.config.NUMBA_NUM_THREADS:
            raise UserError(f"--workers {args.workers}: the local engine has at most "
                            f"{numba.config.NUMBA_NUM_THREADS} threads (NUMBA_NUM_THREADS)")
    if not cfg.sweep.grid:
        raise ConfigError(f"{cfg.source}: no [sweep.grid] table: nothing to sweep")
    out_dir = _out_dir(args, cfg)
    if not args.scheduler:  # (a cluster's workers compile with their own caches)
        from backtest.coldstart import precompile

        precompile(("sweep",), config=cfg, stream=sys.stderr)
    before = _files(out_dir)
    with sweep_lock(out_dir):  # held until the report is written, so no other sweep interleaves
        res = run_sweep(cfg, out_dir, workers=args.workers, scheduler=args.scheduler, engine=args.engine,
                        resume=args.resume)
        write_results(res)
        write_sweep_report(res, cfg, res.market)
    head, *warns = best_lines(res, cfg)
    print(f"{res.grid.size} combinations ({res.computed} computed now) in {res.seconds:.2f} s; {head}")
    for w in warns:
        print(w)
    print(f"wrote {res.out_dir}/{_written(res.out_dir, before)}")
    return 0


def _validate(args) -> int:
    from backtest.config import load_config
    from backtest.pipeline import prepare

    prep = prepare(load_config(args.config))
    if prep.cfg.sweep.grid:  # what `sweep` refuses beyond `run`: rules that change shape across the grid
        from backtest.grid import build_grid
        from backtest.sweep import compile_sweep

        compile_sweep(prep, build_grid(prep.cfg, prep.module))
    t, n = prep.panel.shape
    print(f"ok: {args.config}: strategy {prep.module.NAME} {vars(prep.params)}; "
          f"data {prep.panel.source or prep.cfg.data.path}: {t} bars x {n} symbols, fingerprint {prep.panel.fingerprint}")
    return 0


def _strategies(args) -> int:
    import importlib

    from backtest.config import load_config
    from backtest.features import describe_features
    from backtest.strategy import describe, load_strategy, shipped_strategies

    modules = [load_strategy(name) for name in shipped_strategies()]
    for arg in args.extra:  # importing a module registers its features
        if arg.endswith(".toml"):
            modules.append(load_strategy(load_config(arg).strategy.name, arg))
        else:
            try:
                mod = importlib.import_module(arg)
            except ModuleNotFoundError as exc:
                from backtest.errors import UserError

                raise UserError(f"strategies: cannot import {arg!r} ({exc}); is it on PYTHONPATH?") from None
            if all(hasattr(mod, a) for a in ("NAME", "HELP", "PARAMS", "entry")):
                modules.append(mod)
    seen = {}
    for m in modules:
        seen.setdefault(m.__name__, m)
    print("\n\n".join(describe(m) for m in seen.values()))
    print("\n" + describe_features())
    return 0


def _lookahead(args) -> int:
    from backtest.config import load_config
    from backtest.lookahead import check

    report = check(load_config(args.config), cuts=args.cuts, seed=args.seed)
    print(report)
    return 0 if report.clean else 1


def _synth(args) -> int:
    from backtest.config import SynthConfig, _build
    from backtest.data.synth import generate
    from backtest.data.write import write_market
    from backtest.errors import UserError
    from backtest.outdir import prepare_out_dir

    # the same ranges as [data.synthetic] in a config
    _build(SynthConfig, {"seed": args.seed, "symbols": args.symbols, "years": args.years}, "data synth", "")
    prepare_out_dir(args.out)
    try:
        md = generate(seed=args.seed, symbols=args.symbols, years=args.years)
    except ValueError as exc:
        raise UserError(f"data synth: {exc}") from None
    write_market(md, args.out, fmt=args.format)
    print(f"wrote {args.out}: {md.hk['close'].shape[0]} HK days x {md.hk['close'].shape[1]} symbols ({md.source})")
    return 0


def _import(args) -> int:
    from backtest.data.importers import import_dataset

    print(import_dataset(args.spec, args.out, fetch=args.fetch).summary())
    return 0


def _data(args) -> int:
    return {"synth": _synth, "import": _import}[args.data_command](args)


def _bench(args) -> int:
    from backtest.bench.cli import run_cli

    return run_cli(args)


def _located(exc: Exception, args) -> str:
    """A strategy module's error, prefixed with the config that names the module."""
    msg = str(exc)
    config = getattr(args, "config", None)
    return f"{config}: {msg}" if config and msg.startswith("strategy module") else msg


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": _run, "sweep": _sweep, "validate": _validate, "strategies": _strategies,
               "lookahead": _lookahead, "data": _data, "bench": _bench}[args.command]
    from backtest.errors import UserError

    try:
        return handler(args)
    except UserError as exc:
        if "backtest.strategy" in sys.modules:  # raised inside a strategy module's code: say where
            from backtest.strategy import strategy_fault

            exc = strategy_fault(exc) or exc
        print(f"error: {_located(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a pager or `head` that closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 -- sorted below: the user's strategy code, or a bug of ours
        from backtest.strategy import strategy_fault

        fault = strategy_fault(exc)
        if fault is not None:
            print(f"error: {_located(fault, args)}", file=sys.stderr)
            return 2
        import traceback

        traceback.print_exc()
        print("internal error: the above is a bug in dipflow, not a problem with your input; "
              "please report it with this traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
