"""Sweeps (DESIGN §7): kernel metrics equal the single-run engine's, resume after a kill loses
and repeats nothing, serial / parallel / Dask runs are identical, grid errors are named."""

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.config import load_config
from backtest.errors import ConfigError, UserError
from backtest.pipeline import run
import backtest.sweep
from backtest.sweep import combo_config, run_sweep
from tests.helpers import ROOT, SHARED_CHUNK, SHARED_GRID, SWEEP_BASE, cli, require, single_run_metrics, sweep_config


def _config(tmp_path, grid, mode="independent", seed=3, chunk=4, name="s.toml"):
    return sweep_config(tmp_path, grid, mode=mode, seed=seed, chunk=chunk, name=name)


@pytest.mark.parametrize("mode, seed", [("independent", 3), ("independent", 11), ("portfolio", 5)])
def test_sweep_metrics_equal_the_single_run_engine(tmp_path, mode, seed):
    rng = np.random.default_rng(seed)
    grid = (f"dip = {sorted(rng.choice([0.03, 0.06, 0.09, 0.12], 2, replace=False).tolist())}\n"
            f"flow_z = {{ start = {rng.uniform(0.2, 1.0):.2f}, stop = 2.5, num = 3 }}\n"
            f"flow_window = {sorted(rng.choice([20, 40, 60], 2, replace=False).tolist())}\n"
            f'"exits.max_hold" = [0, {int(rng.integers(3, 15))}]\n'
            f'"exits.trailing_stop" = [0.0, 0.06]\n')
    cfg = _config(tmp_path, grid, mode=mode, seed=seed)
    res = run_sweep(cfg, tmp_path / "out", progress=False)
    assert res.table["trades"].sum() > 0
    for p in rng.choice(res.grid.size, 4, replace=False):
        combo = res.grid.combo(int(p))
        single = run(combo_config(cfg, combo)).result
        row = res.table.iloc[p]
        for k, v in combo.items():
            assert row[k] == v
        want = single_run_metrics(single.total_equity, single.total_cash, single.trades)
        for name, value in want.items():
            np.testing.assert_allclose(row[name], value, rtol=1e-9, atol=1e-12, err_msg=f"combo {p} {name}")
        if mode == "independent":
            # per symbol: its account from the symbol's first tradable bar (DESIGN §5)
            sym = res.by_symbol[res.by_symbol["combo"] == p].set_index("symbol")
            for s in single.equity.columns:
                first = int(single.close[s].notna().to_numpy().argmax())
                want = single_run_metrics(single.equity[s], single.cash[s], single.trades[single.trades["symbol"] == s],
                                       first)
                for name, value in want.items():
                    np.testing.assert_allclose(sym.loc[s, name], value, rtol=1e-9, atol=1e-12,
                                               err_msg=f"combo {p} {s} {name}")


def test_block_sums_are_the_daily_returns_of_total_equity(shared_sweep):
    cfg, res = shared_sweep
    eq = run(combo_config(cfg, res.grid.combo(1))).result.total_equity
    r = eq.pct_change().to_numpy()[1:]
    s = res.sums[1]
    assert s[:, 0].sum() == len(r)
    np.testing.assert_allclose(s[:, 1].sum(), r.sum(), rtol=1e-9)
    np.testing.assert_allclose(s[:, 2].sum(), (r ** 2).sum(), rtol=1e-9)


def test_serial_parallel_and_dask_runs_are_identical(shared_sweep, tmp_path):
    cfg, one = shared_sweep  # run with workers=1
    two = run_sweep(cfg, tmp_path / "two", workers=2, progress=False)
    pd.testing.assert_frame_equal(one.table, two.table, check_exact=True)
    pd.testing.assert_frame_equal(one.by_symbol, two.by_symbol, check_exact=True)
    require("dask.distributed")
    dask = run_sweep(cfg, tmp_path / "dask", workers=2, engine="dask", progress=False)
    pd.testing.assert_frame_equal(one.table, dask.table, check_exact=True)
    assert np.array_equal(one.sums, dask.sums)


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_resume_after_a_kill_redoes_nothing_and_loses_nothing(shared_sweep, tmp_path, how):
    """A real `sweep` process SIGKILLed (or interrupted) right after its 3rd chunk is saved (the
    DIPFLOW_TEST_INTERRUPT hook: no timing involved), then resumed; the result equals the shared
    sweep of the same config, run uninterrupted. (Its own directory: it kills and resumes it.)"""
    fresh_cfg, fresh = shared_sweep
    cfg_path = tmp_path / "s.toml"
    cfg_path.write_text(SWEEP_BASE.format(grid=SHARED_GRID, mode="independent", seed=3, chunk=SHARED_CHUNK))
    assert cfg_path.read_text() == fresh_cfg.text
    out = tmp_path / "out"
    r = cli("sweep", str(cfg_path), "--out", str(out), "--workers", "1", env={"DIPFLOW_TEST_INTERRUPT": f"3:{how}"})
    chunks = out / "chunks"
    done_before = sorted(p.name for p in chunks.glob("chunk_*.npz"))
    assert len(done_before) == 3, (r.returncode, r.stderr)
    if how == "kill":
        assert r.returncode == -signal.SIGKILL
    else:
        assert r.returncode == 130 and "Traceback" not in r.stderr
        assert "3 of 6 chunks" in r.stderr and "--resume" in r.stderr, r.stderr
    stamps = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk_*.npz")}
    cfg = load_config(cfg_path)
    with pytest.raises(UserError, match="pass --resume"):
        run_sweep(cfg, out, progress=False)
    resumed = run_sweep(cfg, out, resume=True, progress=False)
    assert resumed.computed == resumed.grid.size - SHARED_CHUNK * len(done_before) > 0
    assert all((chunks / n).stat().st_mtime_ns == t for n, t in stamps.items()), "a finished chunk was redone"
    pd.testing.assert_frame_equal(resumed.table, fresh.table, check_exact=True)
    assert not list(chunks.glob(".*.tmp"))


def test_resume_refuses_a_different_config(shared_sweep, tmp_path):
    _, res = shared_sweep
    out = tmp_path / "out"
    shutil.copytree(res.out_dir, out)  # the refusal must not touch the shared directory, even by mistake
    other = _config(tmp_path, "dip = [0.05, 0.2]\n", chunk=SHARED_CHUNK, name="other.toml")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="different config"):
        run_sweep(other, out, resume=True, progress=False)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("grid, message", [
    ("dipp = [0.1]\n", "unknown parameter 'dipp' for strategy 'southbound_dip' (did you mean 'dip'?)"),
    ("dip = { start = 0.1, stop = 0.2 }\n", "a range needs start, stop and one of num or step"),
    ("dip = [1.5]\n", "parameter 'dip' = 1.5 is out of range"),
    ("flow_window = { start = 20, stop = 21, num = 5 }\n", "repeated values"),
    ('"exits.max_hold" = [2.5]\n', "expects int"),
    ("dip = { start = 0.1, stop = 0.2, num = 2, logg = true }\n", "unknown range key 'logg' (did you mean 'log'?)"),
])
def test_grid_errors_are_named(tmp_path, grid, message):
    cfg = _config(tmp_path, grid)
    with pytest.raises(ConfigError) as err:
        run_sweep(cfg, tmp_path / "out", progress=False)
    assert message in str(err.value) and str(tmp_path / "s.toml") in str(err.value)


_real_run_chunk = backtest.sweep.run_chunk


def _chunk_task_that_kills_its_worker_once(inputs, sp, start, stop, threads=None):
    """Test stand-in for the chunk task the sweep sends to Dask (backtest.sweep.run_chunk): the
    first task to find the marker file deletes it and kills its own worker process mid-sweep."""
    marker = Path(os.environ["DIPFLOW_TEST_KILL_MARKER"])
    try:
        marker.unlink()
    except FileNotFoundError:
        return _real_run_chunk(inputs, sp, start, stop, threads)
    os._exit(1)


def test_a_dask_worker_killed_mid_sweep_loses_and_duplicates_nothing(shared_sweep, tmp_path, monkeypatch):
    distributed = require("dask.distributed")
    marker = tmp_path / "kill-once"
    marker.touch()
    monkeypatch.setenv("DIPFLOW_TEST_KILL_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setattr(backtest.sweep, "run_chunk", _chunk_task_that_kills_its_worker_once)
    cfg, local = shared_sweep  # the same sweep run serially, undisturbed
    written = []
    real_save = backtest.sweep._save
    monkeypatch.setattr(backtest.sweep, "_save", lambda path, **a: (written.append(path.name), real_save(path, **a)))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        res = run_sweep(cfg, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
    assert not marker.exists(), "no worker was killed"
    assert sorted(written) == sorted(set(written)) and len(written) == -(-res.grid.size // SHARED_CHUNK), "a chunk was lost or written twice"
    pd.testing.assert_frame_equal(res.table, local.table, check_exact=True)
