"""Issue 12: every bad input is one message naming the file and the row or key, exit 2; never a
traceback, never a silent wrong result. One test (group) per class of the issue."""

from __future__ import annotations

import dataclasses
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from backtest import config as C
from backtest.cli import main

STRAT = '[strategy]\nname = "southbound_dip"\n'


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """A tiny valid dataset in the documented format (2 symbols, one with an ADR, half a year)."""
    from backtest.data.synth import generate
    from backtest.data.write import write_market

    root = tmp_path_factory.mktemp("m") / "market"
    write_market(generate(seed=7, symbols=2, years=0.5), root)
    return root


@pytest.fixture
def data(market, tmp_path) -> Path:
    """A private copy of the dataset to break."""
    return Path(shutil.copytree(market, tmp_path / "data"))


def cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, err.strip()


def write_cfg(tmp_path, text: str | bytes, name="c.toml") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def one_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def cfg_with_data(tmp_path, data: Path, extra: str = "") -> Path:
    return write_cfg(tmp_path, f'{STRAT}[data]\npath = "{data}"\n{extra}')


# --- tracebacks: strategy modules ------------------------------------------------------------------

GOOD_BODY = '''
from backtest.rules import feature
from backtest.strategy import Param
NAME = "s"
HELP = "h"
PARAMS = (Param("dip", float, 0.1, 0.0, 0.9, "d"),)
def entry(p):
    return feature("drawdown", window=20) <= -p.dip
'''


@pytest.mark.parametrize("body, expect, line", [
    ("x = (\n", "SyntaxError", 1),
    ("import numpy\nimport no_such_package_xyz\n", "imports 'no_such_package_xyz', which is not installed", 2),
    ("\n\nraise RuntimeError('boom at import')\n", "RuntimeError: boom at import", 3),
    ("import os\nX = os.environ['NO_SUCH_VAR_XYZ']\n", "KeyError", 2),
    (GOOD_BODY.replace("return feature", "return {}['k'] or feature"), "entry(p): raised KeyError", 8),
    (GOOD_BODY + "def exit(p):\n    return 1 / 0\n", "exit(p): raised ZeroDivisionError", 10),
    (GOOD_BODY + "def rank(p):\n    raise ValueError('bad rank')\n", "rank(p): raised ValueError: bad rank", 10),
])
def test_strategy_module_faults_name_module_file_and_line(tmp_path, capsys, monkeypatch, body, expect, line):
    pkg = f"userstrat_{uuid.uuid4().hex[:8]}"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / pkg / "mod.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = write_cfg(tmp_path, f'[strategy]\nname = "{pkg}.mod"\n[data.synthetic]\nsymbols = 2\nyears = 0.5\n')
    msg = one_error(*cli(capsys, "validate", cfg))
    assert str(cfg) in msg and f"{pkg}.mod" in msg and expect in msg
    assert f"{tmp_path / pkg / 'mod.py'}:{line}" in msg


@pytest.mark.parametrize("body, expect", [
    (GOOD_BODY.replace("def entry(p):", "def entry():"), "entry must be a function of one argument"),
    (GOOD_BODY + "exit = 3\n", "exit must be a function of one argument"),
    (GOOD_BODY.replace('PARAMS = (Param("dip", float, 0.1, 0.0, 0.9, "d"),)', "PARAMS = (5,)"),
     "PARAMS must be a tuple of backtest.strategy.Param"),
    (GOOD_BODY.replace('NAME = "s"', "NAME = 5"), "NAME must be a non-empty string"),
    (GOOD_BODY + "def rank(p):\n    return None\n", "rank() must return (feature"),
    (GOOD_BODY + "def rank(p):\n    return (1, 'high_first')\n", "rank() must return (feature"),
    (GOOD_BODY.replace('feature("drawdown", window=20)', 'feature("nosuch")'), "unknown feature 'nosuch'"),
    (GOOD_BODY.replace("window=20", "window=-5"), "parameter 'window' = -5 is out of range"),
])
def test_malformed_strategy_modules_are_named(tmp_path, capsys, monkeypatch, body, expect):
    pkg = f"userstrat_{uuid.uuid4().hex[:8]}"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / pkg / "mod.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = write_cfg(tmp_path, f'[strategy]\nname = "{pkg}.mod"\n[data.synthetic]\nsymbols = 2\nyears = 0.5\n')
    msg = one_error(*cli(capsys, "validate", cfg))
    assert msg.startswith(f"error: {cfg}: strategy") and expect in msg


def test_an_engine_bug_stays_a_visible_traceback(tmp_path, capsys, monkeypatch):
    import backtest.pipeline

    def broken(*a, **k):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(backtest.pipeline, "prepare", broken)
    code, err = cli(capsys, "validate", write_cfg(tmp_path, STRAT))
    assert code == 1 and "Traceback" in err and "engine bug" in err and "bug in dipflow" in err


# --- tracebacks: config encoding, huge integers ------------------------------------------------------

@pytest.mark.parametrize("raw, line", [
    (STRAT.encode() + b"# caf\xe9\n", 3),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", 1),
])
def test_config_that_is_not_utf8_is_located(tmp_path, capsys, raw, line):
    cfg = write_cfg(tmp_path, raw)
    msg = one_error(*cli(capsys, "validate", cfg))
    assert str(cfg) in msg and f"line {line}" in msg and "not UTF-8" in msg


def test_config_with_a_bom_is_accepted(tmp_path):
    cfg = write_cfg(tmp_path, b"\xef\xbb\xbf" + STRAT.encode())
    assert C.load_config(cfg).strategy.name == "southbound_dip"


def _numeric_keys():
    for section, cls in [("data.synthetic", C.SynthConfig), ("execution", C.ExecutionConfig),
                         ("exits", C.ExitConfig), ("costs", C.CostConfig), ("report", C.ReportConfig),
                         ("sweep", C.SweepConfig)]:
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float", int, float):
                yield section, f


def test_every_numeric_key_has_a_finite_range_within_int64():
    for section, f in _numeric_keys():
        lo, hi = f.metadata["lo"], f.metadata["hi"]
        assert lo is not None and hi is not None, f"{section}.{f.name} has no bound"
        assert -(2**63) < lo <= hi < 2**63 and np.isfinite([lo, hi]).all(), f"{section}.{f.name}"


@pytest.mark.parametrize("section, name, value", [
    (s, f.name, v) for s, f in _numeric_keys() for v in (
        ("nan", "inf", "-inf", "1e308") if f.type in ("float", float) else ("99999999999999999999999", "-1"))
])
def test_non_finite_or_huge_numbers_are_refused_at_the_config_layer(tmp_path, section, name, value):
    body = STRAT if section == "strategy" else STRAT + f"[{section}]\n{name} = {value}\n"
    with pytest.raises(C.ConfigError) as err:
        C.load_config(write_cfg(tmp_path, body))
    assert f"'{section}.{name}'" in str(err.value) and str(tmp_path / "c.toml") in str(err.value)


@pytest.mark.parametrize("extra, key", [
    ("[strategy.params]\ndip = nan\n", "strategy.params.dip"),
    ("[sweep.grid]\ndip = [0.1, nan]\n", "sweep.grid.dip"),
    ("[sweep.grid]\ndip = { start = 0.1, stop = inf, num = 3 }\n", "sweep.grid.dip.stop"),
    ("[sweep.grid]\ndip_window = [99999999999999999999]\n", "sweep.grid.dip_window"),
])
def test_non_finite_or_huge_params_and_grid_values(tmp_path, extra, key):
    with pytest.raises(C.ConfigError, match=key.replace(".", r"\.")):
        C.load_config(write_cfg(tmp_path, STRAT + extra))


# --- tracebacks: --out ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("where, text", [
    ("file", "exists and is not a directory"),
    ("below_file", "a part of the path is a file"),
    ("proc", "cannot be created"),
])
def test_bad_output_location_fails_before_the_backtest(tmp_path, capsys, monkeypatch, command, where, text):
    import backtest.pipeline
    import backtest.sweep

    def must_not_run(*a, **k):
        raise AssertionError("the backtest ran before the output location was checked")

    monkeypatch.setattr(backtest.pipeline, "run", must_not_run)
    monkeypatch.setattr(backtest.pipeline, "load_market", must_not_run)
    monkeypatch.setattr(backtest.sweep, "load_market", must_not_run)
    (tmp_path / "afile").write_text("x")
    out = {"file": tmp_path / "afile", "below_file": tmp_path / "afile" / "sub",
           "proc": Path("/proc/self/no_such_dir/x")}[where]
    cfg = write_cfg(tmp_path, STRAT + "[sweep.grid]\ndip = [0.1, 0.2]\n")
    msg = one_error(*cli(capsys, command, cfg, "--out", out))
    assert str(out) in msg and text in msg


# --- silently accepted / vague messages: data files --------------------------------------------------

def _data_problems(capsys, tmp_path, data) -> list[str]:
    code, err = cli(capsys, "validate", cfg_with_data(tmp_path, data))
    assert code == 2 and "Traceback" not in err, err
    return [ln.strip()[2:] for ln in err.splitlines()[1:]]


@pytest.mark.parametrize("table", ["symbols", "hk_daily", "southbound", "index", "adr", "fx"])
def test_header_only_table_is_one_message(tmp_path, capsys, data, table):
    p = data / f"{table}.csv"
    p.write_text(p.read_text().splitlines()[0] + "\n")
    assert _data_problems(capsys, tmp_path, data) == [f"{table}.csv: {table}.csv has no rows (only a header)"]


@pytest.mark.parametrize("table, line, change", [
    ("hk_daily", 4, lambda f: f[:-1]),  # a field lost: board_lot would shift into sb_net_buy
    ("hk_daily", 7, lambda f: f + ["1"]),
    ("symbols", 2, lambda f: f[:3]),
    ("southbound", 9, lambda f: f[:2]),
    ("index", 3, lambda f: f + [""]),
])
def test_line_with_wrong_field_count_names_file_and_line(tmp_path, capsys, data, table, line, change):
    p = data / f"{table}.csv"
    lines = p.read_text().splitlines()
    lines[line - 1] = ",".join(change(lines[line - 1].split(",")))
    p.write_text("\n".join(lines) + "\n")
    probs = _data_problems(capsys, tmp_path, data)
    assert len(probs) == 1 and probs[0].startswith(f"{table}.csv, row {line}: line has "), probs


@pytest.mark.parametrize("table, column, value", [
    ("hk_daily", "close", "1e300"), ("hk_daily", "open", "1e-300"), ("hk_daily", "volume", "1e300"),
    ("hk_daily", "turnover", "1e300"), ("hk_daily", "sb_net_buy", "-1e300"), ("hk_daily", "board_lot", "1e300"),
    ("southbound", "sh", "1e300"), ("index", "close", "1e300"), ("adr", "close", "1e300"),
    ("symbols", "board_lot", "1e300"),
])
def test_absurd_magnitudes_are_refused(tmp_path, capsys, data, table, column, value):
    p = data / f"{table}.csv"
    lines = p.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[2].split(",")
    row[header.index(column)] = value
    if table == "hk_daily" and column in ("close", "open"):  # keep high/low coherent so only the magnitude is wrong
        for c in ("open", "high", "low", "close"):
            row[header.index(c)] = value
    lines[2] = ",".join(row)
    p.write_text("\n".join(lines) + "\n")
    probs = _data_problems(capsys, tmp_path, data)
    hits = [m for m in probs if m.startswith(f"{table}.csv, row 3") and f"'{column}'" in m]
    assert hits and ("plausible" in hits[0] or "expected a positive integer" in hits[0]), probs


def test_data_csv_with_a_bom_is_accepted(tmp_path, capsys, data):
    p = data / "index.csv"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    code, err = cli(capsys, "validate", cfg_with_data(tmp_path, data))
    assert code == 0, err


@pytest.mark.parametrize("line", [1, 4])
def test_data_csv_that_is_not_utf8_is_located(tmp_path, capsys, data, line):
    p = data / "index.csv"
    lines = p.read_bytes().split(b"\n")
    lines[line - 1] += b"\xe9"
    p.write_bytes(b"\n".join(lines))
    probs = _data_problems(capsys, tmp_path, data)
    assert len(probs) == 1 and probs[0].startswith(f"index.csv, row {line}: byte 0xe9 at offset"), probs


def test_manifest_with_a_bom_is_accepted(tmp_path, capsys, data):
    p = data / "dataset.toml"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    code, err = cli(capsys, "validate", cfg_with_data(tmp_path, data))
    assert code == 0, err


def test_output_into_the_dataset_directory_is_refused(tmp_path, capsys, data):
    msg = one_error(*cli(capsys, "run", cfg_with_data(tmp_path, data), "--out", data))
    assert "is the dataset directory" in msg
    assert not (data / "stats.json").exists()


# --- vague messages: costs ---------------------------------------------------------------------------

@pytest.mark.parametrize("costs, key", [
    ('model = "flat"\ncommission_bps = 3\n', "costs.commission_bps"),
    ('model = "flat"\ncommission_min = 5\n', "costs.commission_min"),
    ('model = "hk"\nflat_pct = 0.1\n', "costs.flat_pct"),
])
def test_cost_keys_of_the_other_model_name_costs_model_and_the_file(tmp_path, costs, key):
    p = write_cfg(tmp_path, STRAT + "[costs]\n" + costs)
    with pytest.raises(C.ConfigError) as err:
        C.load_config(p)
    assert str(p) in str(err.value) and key in str(err.value) and "costs.model" in str(err.value)
    assert "costs.kind" not in str(err.value)


# --- validate as strict as run and sweep ---------------------------------------------------------------

def _old_data(data: Path) -> Path:
    """The dataset moved back 21 years: before the HK cost schedule (2005-12-19)."""
    for p in data.glob("*.csv"):
        p.write_text(p.read_text().replace("\n2025-", "\n2004-").replace("\n2026-", "\n2005-"))
    return data


BAD_CONFIGS = [
    STRAT + "[sweep.grid]\ndipp = [0.1]\n",
    STRAT + "[sweep.grid]\ndip = [2.0]\n",
    STRAT + "[sweep.grid]\ndip = { start = 0.1, stop = 0.2, num = 'x' }\n",
    STRAT + "[sweep.grid]\ndip = { start = 'a', stop = 0.2, num = 2 }\n",
    STRAT + "[sweep.grid]\ndip = { start = 0.1, stop = 0.2, num = 100000000000 }\n",
    STRAT + '[sweep.grid]\n"exits.max_hold" = [99999999999999999999]\n',
    STRAT + '[costs]\nmodel = "flat"\ncommission_bps = 3\n[sweep.grid]\ndip = [0.1]\n',
    STRAT + "[execution]\nslippage_bps = nan\n[sweep.grid]\ndip = [0.1]\n",
    STRAT + "[exits]\nstop_loss = nan\n[sweep.grid]\ndip = [0.1]\n",
    STRAT + "[strategy.params]\ndip = inf\n[sweep.grid]\ndip = [0.1]\n",
    "OLD_DATA",
]


@pytest.mark.parametrize("i", range(len(BAD_CONFIGS)))
def test_validate_refuses_exactly_what_run_and_sweep_refuse(tmp_path, capsys, data, i):
    text = BAD_CONFIGS[i]
    if text == "OLD_DATA":
        cfg = cfg_with_data(tmp_path, _old_data(data), "[sweep.grid]\ndip = [0.1, 0.2]\n")
    else:
        cfg = write_cfg(tmp_path, text + "[data.synthetic]\nsymbols = 2\nyears = 0.5\n")
    msg = one_error(*cli(capsys, "validate", cfg))
    assert str(cfg) in msg
    for command in ("run", "sweep"):
        assert one_error(*cli(capsys, command, cfg, "--out", tmp_path / command)) == msg, command


def test_old_data_is_fine_with_the_flat_cost_model(tmp_path, capsys, data):
    cfg = cfg_with_data(tmp_path, _old_data(data), '[costs]\nmodel = "flat"\nflat_pct = 0.1\n')
    code, err = cli(capsys, "validate", cfg)
    assert code == 0, err


# --- sweep directories: concurrent runs, corrupt manifest and chunks ---------------------------------------

def test_a_second_sweep_into_a_locked_directory_is_refused(tmp_path, capsys):
    import fcntl

    from backtest.outdir import LOCK

    out = tmp_path / "out"
    out.mkdir()
    cfg = write_cfg(tmp_path, STRAT + "[sweep.grid]\ndip = [0.1, 0.2]\n")
    with open(out / LOCK, "w") as other:  # another process's lock: its own open file description
        other.write("4242\n")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for args in (("--resume",), ()):
            msg = one_error(*cli(capsys, "sweep", cfg, "--out", out, *args))
            assert f"another sweep is writing {out} (pid 4242)" in msg
    assert not (out / "manifest.json").exists()


SWEEP = STRAT + """[data.synthetic]
symbols = 3
years = 1
[sweep]
blocks = 4
train_blocks = 2
chunk_size = 2
[sweep.grid]
dip = [0.05, 0.1, 0.15]
flow_z = [1.0, 2.0]
"""


def test_resume_survives_a_truncated_manifest_and_corrupt_chunks(tmp_path, capsys):
    import pandas as pd

    from backtest.errors import UserError
    from backtest.sweep import run_sweep

    cfg = C.load_config(write_cfg(tmp_path, SWEEP))
    out = tmp_path / "out"
    fresh = run_sweep(cfg, out, progress=False)  # what the damaged directory held before the damage
    chunks = sorted((out / "chunks").glob("chunk_*.npz"))
    assert len(chunks) == 3
    (out / "manifest.json").write_text('{"fingerp')
    chunks[0].write_bytes(chunks[0].read_bytes()[:50])  # truncated
    chunks[1].write_bytes(b"not a zip at all")
    keep = chunks[2].stat().st_mtime_ns
    resumed = run_sweep(cfg, out, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "manifest.json" in err and "recomputing 2 damaged chunk file(s)" in err
    assert resumed.computed == 4 and chunks[2].stat().st_mtime_ns == keep
    pd.testing.assert_frame_equal(resumed.table, fresh.table, check_exact=True)
    # a chunk of another sweep under a damaged manifest is refused, never overwritten
    other = C.load_config(write_cfg(tmp_path, SWEEP.replace("0.15", "0.2"), name="other.toml"))
    (out / "manifest.json").write_text("")
    before = chunks[0].read_bytes()
    with pytest.raises(UserError, match="chunk_000000.npz belongs to a sweep of a different config"):
        run_sweep(other, out, resume=True, progress=False)
    assert chunks[0].read_bytes() == before


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_the_extremes_that_are_accepted_keep_every_result_finite(tmp_path, data):
    """Prices at both ends of the plausible range, the largest flows, init_cash = 1e15 and the
    largest costs: the bounds are chosen so that the run stays finite (oracle: np.isfinite)."""
    import csv

    from backtest.pipeline import run

    p = data / "hk_daily.csv"
    rows = list(csv.reader(p.open()))
    h = rows[0]
    for r in rows[1:]:
        lo, hi = float(r[h.index("low")]), float(r[h.index("high")])
        scale = 1.0001e-4 / lo if r[1] == "0700" else 9.99e5 / hi
        for c in ("open", "high", "low", "close"):
            r[h.index(c)] = repr(float(r[h.index(c)]) * scale)
        r[h.index("volume")], r[h.index("turnover")] = "1e13", "1e15"
    with p.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    sb = data / "southbound.csv"
    lines = sb.read_text().splitlines()
    sb.write_text("\n".join([lines[0]] + [f"{ln.split(',')[0]},{'1e15' if i % 3 else '-1e15'},1e15"
                                           for i, ln in enumerate(lines[1:])]) + "\n")
    symbols = data / "symbols.csv"  # no ADR: its premium check would (rightly) object to the scaled HK prices
    symbols.write_text(symbols.read_text().replace(",BABA,8", ",,"))
    (data / "adr.csv").unlink()
    (data / "fx.csv").unlink()
    cfg = C.load_config(cfg_with_data(tmp_path, data, "[strategy.params]\ndip = 0.0\nflow_z = -5.0\n"
                                      "[execution]\ninit_cash = 1e15\nslippage_bps = 1000\n"
                                      "[costs]\ncommission_bps = 100\ncommission_min = 1e6\n"))
    out = run(cfg)
    assert out.stats["trades"] > 0
    for frame in (out.result.cash, out.result.equity):
        assert np.isfinite(frame.to_numpy()).all()
    closed = out.result.trades[out.result.trades["reason"] != "open"]
    assert len(closed) and np.isfinite(closed.select_dtypes("number").to_numpy()).all()
    assert all(np.isfinite(v) for v in out.stats.values() if isinstance(v, float) and v == v)


@pytest.mark.parametrize("args, key", [
    (["--years", "1e308"], "years"), (["--years", "inf"], "years"), (["--symbols", "1000"], "symbols"),
    (["--seed", "99999999999999999999999"], "seed"), (["--seed", "-1"], "seed"),
])
def test_data_synth_options_have_the_config_ranges(tmp_path, capsys, args, key):
    msg = one_error(*cli(capsys, "data", "synth", "--out", tmp_path / "m", *args))
    assert f"'{key}'" in msg and not (tmp_path / "m").exists()
