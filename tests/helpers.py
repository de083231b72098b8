"""Shared test helpers: the repository root, one CLI runner, required-oracle imports, random panels."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(module: str, why: str = "") -> ModuleType:
    """Import a test oracle or dependency. Missing: fail under CI=true (a CI run must not lose an
    oracle silently), skip with a printed reason otherwise."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"required module {module!r} cannot be imported ({exc}){': ' + why if why else ''}"
        missing(reason)
        raise  # unreachable: missing() always raises


def missing(reason: str) -> None:
    """A required test resource is absent: fail under CI=true, else skip saying why."""
    if IN_CI:
        pytest.fail(f"{reason} [CI=true: a required test resource must be present]", pytrace=False)
    print(f"SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason, allow_module_level=True)


def cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m backtest ARGS` as a user runs it, with this checkout first on the import path."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "backtest", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


# A small sweep config (DESIGN §7): six names, three years, HK costs; `{grid}` is a [sweep.grid] body.
SWEEP_BASE = """
[data]
synthetic = {{ seed = {seed}, symbols = 6, years = 3 }}
[strategy]
name = "southbound_dip"
[strategy.params]
dip_window = 20
[execution]
mode = "{mode}"
max_positions = 3
slippage_bps = 5.0
[exits]
stop_loss = 0.08
take_profit = 0.15
[costs]
model = "hk"
commission_bps = 3.0
commission_min = 20.0
[sweep]
blocks = 6
train_blocks = 2
chunk_size = {chunk}
[sweep.grid]
{grid}
"""


# The suite's shared sweep (tests/conftest.py `shared_sweep`): 3 x 3 x 2 combinations in 6 chunks of 3.
SHARED_GRID = 'dip = [0.04, 0.08, 0.12]\nflow_z = [0.5, 1.5, 2.5]\n"exits.max_hold" = [5, 10]\n'
SHARED_CHUNK = 3


def sweep_config(tmp_path: Path, grid: str, mode: str = "independent", seed: int = 3, chunk: int = 4,
                 name: str = "s.toml"):
    """SWEEP_BASE with `grid`, written to tmp_path/name and loaded (error messages name that file)."""
    from backtest.config import load_config

    p = tmp_path / name
    p.write_text(SWEEP_BASE.format(grid=grid, mode=mode, seed=seed, chunk=chunk))
    return load_config(p)


def single_run_metrics(eq, cash, trades, first: int = 0) -> dict:
    """The sweep's metrics recomputed from a single run's account (pandas Series of equity and cash,
    its trades) from bar `first` on, with backtest.metrics (CAGR over the calendar span)."""
    from backtest import metrics

    eq, cash = eq.iloc[first:], cash.iloc[first:]
    r = eq.pct_change().iloc[1:]
    closed = trades[trades["reason"] != "open"]
    return {
        "total_return": metrics.total_return(r), "cagr": metrics.cagr(r, years=metrics.calendar_years(eq.index)),
        "sharpe": metrics.sharpe(r),
        "sortino": metrics.sortino(r), "max_drawdown": metrics.max_drawdown(r),
        "exposure": float(((eq - cash) / eq).mean()), "trades": len(closed),
        "win_rate": float((closed["return"] > 0).mean()) if len(closed) else np.nan,
    }


def run_cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m backtest ARGS` inside this process (backtest.cli.main, argparse's exits included):
    the command's exit status, stdout and stderr without a new interpreter's imports and kernel loads.
    What only a real process shows (a signal, the environment, import cost, the README as typed)
    goes through `cli`."""
    import contextlib
    import io

    from backtest.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse: a usage error or --help
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["backtest", *map(str, args)], code, out.getvalue(), err.getvalue())


def engine_layout(a) -> np.ndarray:
    """`a` as the engine hands a (T, N) panel field to a feature kernel: float64 in Fortran order,
    read-only (backtest.features._read_only). A test calling a kernel directly this way reuses the
    engine's compiled signature instead of compiling one of its own."""
    v = np.asfortranarray(np.asarray(a, dtype=np.float64)).view()
    v.flags.writeable = False
    return v


def random_ohlc(rng: np.random.Generator, n_t: int, n_s: int, nan_frac: float = 0.0, vol: float = 0.025,
                start: float = 100.0):
    """(open, high, low, close) (T, N) with fat-tailed returns and whole NaN bars (suspensions)."""
    r = rng.standard_t(4, size=(n_t, n_s)) * vol
    c = start * np.exp(np.cumsum(r, 0))
    o = c * np.exp(rng.normal(0, vol / 2, (n_t, n_s)))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, vol / 2, (n_t, n_s))))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, vol / 2, (n_t, n_s))))
    gaps = rng.random((n_t, n_s)) < nan_frac
    for a in (o, h, lo, c):
        a[gaps] = np.nan
    return o, h, lo, c


def one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, a single stderr line naming every fragment, and no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
