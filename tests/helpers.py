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
