"""Shared fixtures: the sample config and market, loaded once per session; one sweep shared by every test
that only reads it."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import IN_CI, ROOT, SHARED_CHUNK, SHARED_GRID, sweep_config

# No wall clock in any property test: no per-example deadline and no "too slow" health check (a
# loaded machine is slow, not wrong). CI runs the same examples every time (a red run is
# reproducible, never noise); locally each run draws new ones and the example database replays
# past failures first.
_NO_CLOCK = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_NO_CLOCK)
settings.register_profile("dev", **_NO_CLOCK)
settings.load_profile("ci" if IN_CI else "dev")

# Dask's 30 s connect and TCP time-outs, for this process and the CLI subprocesses it starts: a
# worker importing numba on a machine loaded by other compilers can take longer to answer.
for _key in ("CONNECT", "TCP"):
    os.environ.setdefault(f"DASK_DISTRIBUTED__COMM__TIMEOUTS__{_key}", "300s")


PRECOMPILE_FROM = 100  # tests selected: from this many on, a cold numba cache is filled first, in parallel


def pytest_collection_finish(session):
    """A run of much of the suite on a cold numba cache compiles the run and sweep kernels first on
    both cores (backtest.coldstart.precompile: nothing is started when everything is cached), instead
    of one kernel after another inside whichever test needs it first. A few tests compile only what
    they use."""
    if len(session.items) < PRECOMPILE_FROM:
        return
    import sys

    from backtest.coldstart import precompile

    done = precompile(("run", "sweep"), processes=2, stream=sys.__stderr__)
    for failure in done.failed:  # left to the tests that need the kernel: they compile it themselves
        print(f"precompile: {failure}", file=sys.__stderr__)


@pytest.fixture(scope="session")
def dip_config():
    """configs/dip.toml, parsed (a frozen Config: derive variants with dataclasses.replace)."""
    from backtest.config import load_config

    return load_config(ROOT / "configs" / "dip.toml")


@pytest.fixture(scope="session")
def small_config(dip_config):
    """configs/dip.toml on a small seeded sample market (8 names, 4 years)."""
    from backtest.config import SynthConfig

    return dataclasses.replace(dip_config, data=dataclasses.replace(
        dip_config.data, synthetic=SynthConfig(seed=2, symbols=8, years=4)))


@pytest.fixture(scope="session")
def small_market(small_config):
    """The sample market of `small_config` (do not mutate: generate a fresh one to perturb)."""
    from backtest.pipeline import load_market

    return load_market(small_config)


@pytest.fixture(scope="session")
def dip_cli_run(tmp_path_factory):
    """`python -m backtest run configs/dip.toml --out DIR` as a user types it, run once per session:
    (DIR, CompletedProcess). Read only."""
    from tests.helpers import cli

    out = tmp_path_factory.mktemp("dip_cli_run")
    return out, cli("run", "configs/dip.toml", "--out", str(out))

@pytest.fixture(scope="session")
def _shared_sweep_once(tmp_path_factory):
    from backtest.sweep import run_sweep

    d = tmp_path_factory.mktemp("shared_sweep")
    cfg = sweep_config(d, SHARED_GRID, chunk=SHARED_CHUNK)
    return cfg, run_sweep(cfg, d / "out", workers=1, progress=False)


@pytest.fixture
def shared_sweep(_shared_sweep_once):
    """(config, SweepResult) of helpers.SHARED_GRID on helpers.SWEEP_BASE (independent, seed 3, 6 chunks),
    run once per session, serially, into a session directory. Each test gets its own copies of the
    in-memory arrays; the directory (res.out_dir) is read-only by convention: a test that resumes,
    corrupts or rewrites a sweep directory copies it first (shutil.copytree)."""
    cfg, res = _shared_sweep_once
    return cfg, dataclasses.replace(res, table=res.table.copy(), sums=res.sums.copy(),
                                    fine_sums=None if res.fine_sums is None else res.fine_sums.copy())
