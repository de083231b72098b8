"""The README's commands, run as a user would: exit codes, outputs, one-line errors."""

import json
import subprocess
import sys

import pandas as pd

from tests.helpers import ROOT, cli


def test_run_dip_config_writes_every_output(dip_cli_run):
    out, r = dip_cli_run
    assert r.returncode == 0, r.stderr
    for name in ("stats.json", "trades.csv", "orders.csv", "equity.csv", "tearsheet.html"):
        assert (out / name).stat().st_size > 0, name
    stats = json.loads((out / "stats.json").read_text())
    assert stats["strategy"] == "southbound_dip"
    m = stats["metrics"]
    trades = pd.read_csv(out / "trades.csv")
    equity = pd.read_csv(out / "equity.csv", index_col=0)
    assert m["trades"] == int((trades["reason"] != "open").sum()) > 0
    assert abs(equity["equity"].iloc[-1] / equity["equity"].iloc[0] - 1 - m["total_return"]) < 1e-12
    assert not list(out.glob(".*.tmp"))


def test_run_is_bit_identical_twice(dip_cli_run, tmp_path):
    a, first = dip_cli_run
    assert first.returncode == 0, first.stderr
    assert cli("run", "configs/dip.toml", "--out", str(tmp_path)).returncode == 0
    for name in ("trades.csv", "orders.csv", "equity.csv"):
        assert (a / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[strategy]\nname = "southbound_dip"\n[strategy.params]\nflow_zz = 3\n')
    r = cli("run", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {bad}: unknown parameter 'strategy.params.flow_zz' for strategy 'southbound_dip' (did you mean 'flow_z'?)"]


def test_bad_data_exits_2_naming_the_file(tmp_path):
    data = tmp_path / "market"
    assert cli("data", "synth", "--out", str(data), "--symbols", "3", "--years", "1").returncode == 0
    lines = (data / "hk_daily.csv").read_text().splitlines()
    row = lines[5].split(",")
    row[5] = "-1"  # close
    lines[5] = ",".join(row)
    (data / "hk_daily.csv").write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\npath = "{data}"\n[strategy]\nname = "southbound_dip"\n')
    r = cli("validate", str(cfg))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "hk_daily.csv" in r.stderr and "row 6" in r.stderr and "close" in r.stderr


def test_validate_ok_and_strategies_listing():
    r = cli("validate", "configs/dip.toml")
    assert r.returncode == 0 and r.stdout.startswith("ok: configs/dip.toml: strategy southbound_dip")
    r = cli("strategies")
    assert r.returncode == 0 and "southbound_dip" in r.stdout and "flow_z" in r.stdout


def test_help_loads_no_heavy_module():
    code = ("import sys, contextlib, io\nfrom backtest.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
            "print(sorted(m for m in ('numba', 'pandas', 'vectorbt', 'matplotlib') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
