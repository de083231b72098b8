"""CLI paths no other test walks: a sweep to completion (local, Dask engine, an external
scheduler), run/validate on an on-disk dataset, run without --out, data synth options and errors,
Ctrl-C, a zero-trade run, and config checks (one line, exit 2)."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from backtest.errors import ConfigError
from backtest.pipeline import prepare
from tests.helpers import cli, one_line_error, require, run_cli

SWEEP = """
[data]
synthetic = { seed = 3, symbols = 4, years = 2 }
[strategy]
name = "southbound_dip"
[execution]
slippage_bps = 5.0
[sweep]
blocks = 4
train_blocks = 2
chunk_size = 3
[sweep.grid]
dip = [0.04, 0.08, 0.12]
flow_z = [0.5, 1.5]
"""


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """`sweep --workers 1` run once to completion: (config path, out dir, CompletedProcess)."""
    d = tmp_path_factory.mktemp("sweep")
    cfg = d / "s.toml"
    cfg.write_text(SWEEP)
    r = cli("sweep", str(cfg), "--out", str(d / "local"), "--workers", "1")
    return cfg, d / "local", r


def test_sweep_runs_to_completion_through_the_cli(local_sweep):
    _, out, r = local_sweep
    assert r.returncode == 0, r.stderr
    for name in ("results.csv", "results.parquet", "by_symbol.parquet", "sweep.html", "manifest.json"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 6 and list(table["combo"]) == list(range(6))
    pd.testing.assert_frame_equal(table, pd.read_parquet(out / "results.parquet"), check_dtype=False)
    line = next(x for x in r.stdout.splitlines() if " best " in x)
    m = re.search(r"6 combinations \(6 computed now\) in [\d.]+ s; (\d+) ranked, (\d+) below 30 trades or 5.0% exposure; "
                  r"best median per-symbol Sharpe (-?[\d.]+|nan) \((\d+) trades, exposure ([\d.]+)%\) "
                  r"at dip=(\S+), flow_z=(\S+)$", line)
    assert m, line
    # independent mode ranks the median per-symbol Sharpe among combinations active enough (docs/sweeps.md)
    active = table[(table["trades"] >= 30) & (table["sym_exposure_mean"] >= 0.05)]
    assert (int(m[1]), int(m[2])) == (len(active), len(table) - len(active)) and len(active) > 0
    best = active.sort_values("sym_sharpe", ascending=False, kind="stable").iloc[0]
    assert float(m[3]) == pytest.approx(best["sym_sharpe"], abs=5e-4) and int(m[4]) == best["trades"]
    assert (float(m[6]), float(m[7])) == (best["dip"], best["flow_z"])


def test_sweep_workers_below_one_is_refused(local_sweep, tmp_path):
    cfg, _, _ = local_sweep
    one_line_error(run_cli("sweep", str(cfg), "--out", str(tmp_path / "o"), "--workers", "0"),
                   "--workers must be at least 1, got 0")


def test_sweep_on_the_dask_engine_and_on_an_external_scheduler_equals_local(local_sweep, tmp_path):
    distributed = require("dask.distributed")
    cfg, local, _ = local_sweep
    want = pd.read_csv(local / "results.csv")
    r = cli("sweep", str(cfg), "--out", str(tmp_path / "dask"), "--engine", "dask", "--workers", "2")
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "dask" / "results.csv"), want, check_exact=True)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        r = cli("sweep", str(cfg), "--out", str(tmp_path / "sched"), "--scheduler", cluster.scheduler_address)
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sched" / "results.csv"), want, check_exact=True)


def test_run_and_validate_on_an_on_disk_dataset_and_run_without_out(tmp_path):
    data = tmp_path / "market"
    r = run_cli("data", "synth", "--out", str(data), "--symbols", "3", "--years", "1", "--seed", "5", "--format", "parquet")
    assert r.returncode == 0, r.stderr
    assert list(data.glob("*.parquet")) and not list(data.glob("*.csv"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\npath = "{data}"\n[strategy]\nname = "southbound_dip"\n[strategy.params]\nflow_z = 0.5\n')
    r = run_cli("validate", str(cfg))
    assert r.returncode == 0 and r.stdout.startswith(f"ok: {cfg}: strategy southbound_dip") and "x 3 symbols" in r.stdout
    r = run_cli("run", str(cfg), cwd=tmp_path)  # no --out: report.out ("out") under the working directory
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["strategy"] == "southbound_dip"
    assert len(pd.read_csv(tmp_path / "out" / "equity.csv")) > 200


def test_data_synth_seed_and_format_and_its_error_path(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert run_cli("data", "synth", "--out", str(tmp_path / name), "--symbols", "2", "--years", "0.5",
                   "--seed", str(seed)).returncode == 0
    a, b, c = ((tmp_path / n / "hk_daily.csv").read_bytes() for n in "abc")
    assert a == b != c
    one_line_error(run_cli("data", "synth", "--out", str(tmp_path / "d"), "--years", "0"), "data synth")
    r = run_cli("data", "synth", "--out", str(tmp_path / "e"), "--format", "xlsx")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_ctrl_c_exits_130(monkeypatch, capsys):
    import backtest.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(backtest.cli, "_validate", interrupted)
    assert backtest.cli.main(["validate", "configs/dip.toml"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_a_zero_trade_run_reports_sane_numbers(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nsynthetic = { seed = 2, symbols = 3, years = 1 }\n[strategy]\nname = "southbound_dip"\n'
                   "[strategy.params]\nflow_z = 20.0\n")
    r = run_cli("run", str(cfg), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "0 trades" in r.stdout and not re.search(r"\b(nan|inf)\b", r.stdout, re.I), r.stdout
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["metrics"]["trades"] == 0 and stats["metrics"]["total_return"] == 0
    assert len(pd.read_csv(tmp_path / "out" / "trades.csv")) == 0
    page = (tmp_path / "out" / "tearsheet.html").read_text()
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", page, flags=re.S)
    assert not re.search(r"(?<![\w-])(nan|-?inf|infinity)(?![\w-])", text, re.I), \
        re.search(r".{60}(?<![\w-])(nan|-?inf|infinity)(?![\w-]).{60}", text, re.I | re.S)


@pytest.mark.parametrize("body, fragments", [
    ('[strategy]\nname = "southbound_dip"\n[sweep]\nblocks = 5\n', ["'sweep.blocks' = 5", "even"]),
    ('[strategy]\nname = "southbound_dip"\n[sweep]\nblocks = 4\ntrain_blocks = 4\n', ["'sweep.train_blocks' = 4"]),
    ("[strategy]\n[execution]\nmode = 'portfolio'\n", ["missing required key 'strategy.name'"]),
    ('[strategy\nname = "x"\n', ["not valid TOML"]),
    ('[strategy]\nname = "southbound_dip"\n[sweep.grid]\ndip = { start = 0.0, stop = 0.2, num = 3, log = true }\n',
     ["'dip'", "a log range needs num and positive start and stop"]),
    ('[strategy]\nname = "southbound_dip"\n[sweep.grid]\ndip = { start = 0.1, stop = 0.2, step = -0.05 }\n',
     ["'dip'", "step must be positive"]),
])
def test_config_checks_are_one_line_exit_2(tmp_path, body, fragments):
    p = tmp_path / "c.toml"
    p.write_text(body)
    one_line_error(run_cli("sweep" if "sweep.grid" in body else "validate", str(p), "--out", str(tmp_path / "o"))
                   if "sweep.grid" in body else run_cli("validate", str(p)), str(p), *fragments)


def test_an_unreadable_config_is_one_line_exit_2(tmp_path):
    one_line_error(run_cli("validate", str(tmp_path / "missing.toml")), "missing.toml", "cannot read config")
    one_line_error(run_cli("run", str(tmp_path)), str(tmp_path), "cannot read config")


def test_fewer_than_two_trading_days_is_refused(small_config, small_market):
    md = dataclasses.replace(small_market, hk={k: v.iloc[:1] for k, v in small_market.hk.items()},
                             index_close=small_market.index_close.iloc[:1])
    with pytest.raises(ConfigError, match="1 trading day"):
        prepare(small_config, md)


def test_sample_config_prepares(small_config):
    assert prepare(small_config).panel.shape[1] == 8 and np.isfinite(small_config.execution.init_cash)
