"""Property test (issue 12): mutated configs and data files either give exit 2 with messages that
name the file (and the key or row), or are accepted with finite values; never a traceback.

The CLI runs in-process (`backtest.cli.main(["validate", ...])`) on a tiny synthetic dataset, so
each example costs milliseconds; examples are capped to keep the file well under 30 s.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest import config as C
from backtest.cli import main

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEWER = settings(SETTINGS, max_examples=50)  # the Parquet round trip costs more per example

# every scalar key of every table, from the config dataclasses themselves
KEYS = [(section, f.name) for section, cls in [
    ("data.synthetic", C.SynthConfig), ("execution", C.ExecutionConfig), ("exits", C.ExitConfig),
    ("costs", C.CostConfig), ("report", C.ReportConfig), ("sweep", C.SweepConfig)]
    for f in dataclasses.fields(cls) if f.name != "grid"] + [
    ("strategy.params", "dip"), ("strategy.params", "dip_window"), ("sweep.grid", "dip"),
    ("sweep.grid", "exits.max_hold"), ("sweep.grid", "flow_window"), ("strategy", "name"), ("data", "path"),
    ("costs", "model"), ("execution", "fill")]

VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2**63, 2**64, 1e308, 1e-308, 0.5, 2.0, "nan", "", "hk", "flat"]),
    st.text(alphabet="abcxyz_ 019", max_size=6),
    st.booleans(),
    st.lists(st.one_of(st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True)), max_size=3),
    st.fixed_dictionaries({"start": st.floats(-1, 300), "stop": st.floats(-1, 300),
                           "num": st.integers(-2, 8)}),
)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"


BASE = {"strategy": {"name": '"southbound_dip"'}, "data.synthetic": {"symbols": "2", "years": "0.5"}}


def config_text(section: str, key: str, value) -> str:
    tables = {k: dict(v) for k, v in BASE.items()}
    if section == "data":  # [data] and its subtable [data.synthetic] must come in this order
        tables = {"strategy": tables["strategy"], "data": {}, "data.synthetic": tables["data.synthetic"]}
    tables.setdefault(section, {})['"' + key + '"' if "." in key else key] = toml_value(value)
    return "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in tables.items())


def run_validate(capsys, cfg: Path) -> tuple[int, str]:
    code = main(["validate", str(cfg)])
    out, err = capsys.readouterr()
    return code, err.strip()


def assert_one_config_message(code: int, err: str, cfg: Path) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        lines = err.splitlines()
        if re.match(r"error: \d+ data problem\(s\):", lines[0]):  # data.path pointed somewhere bad
            assert len(lines) > 1 and all(ln.startswith("  - ") for ln in lines[1:]), err
        else:
            assert len(lines) == 1 and lines[0].startswith(f"error: {cfg}"), err


def assert_finite_config(cfg: Path) -> None:
    c = C.load_config(cfg)
    for section in (c.data.synthetic, c.execution, c.exits, c.costs, c.report, c.sweep):
        for f in dataclasses.fields(section):
            v = getattr(section, f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert math.isfinite(v) and abs(v) < 2**63, (f.name, v)


@SETTINGS
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_config_value_mutations(capsys, key, value):
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "c.toml"
        cfg.write_text(config_text(*key, value))
        code, err = run_validate(capsys, cfg)
        assert_one_config_message(code, err, cfg)
        if code == 0:
            assert_finite_config(cfg)
        elif key[0] != "data":
            name = {"sweep.grid": "sweep.grid", "strategy": "strategy"}.get(key[0], key[1])
            assert name.split(".")[-1] in err or "sweep.grid" in err or "strategy.params" in err, err
        if code == 2:  # what validate refuses, run and sweep refuse with the same message, before simulating
            commands = ["run", "sweep"] if "[sweep.grid]" in cfg.read_text() else ["run"]
            for command in commands:
                with tempfile.TemporaryDirectory() as out:
                    assert main([command, str(cfg), "--out", str(Path(out) / command)]) == 2
                assert capsys.readouterr().err.strip() == err, command


@SETTINGS
@given(cut=st.integers(0, 200), byte=st.binary(min_size=1, max_size=2), at=st.integers(0, 200),
       bom=st.booleans(), mode=st.sampled_from(["truncate", "insert", "both"]))
def test_config_byte_mutations(capsys, cut, byte, at, bom, mode):
    raw = config_text("execution", "slippage_bps", 5.0).encode()
    if mode in ("truncate", "both"):
        raw = raw[:cut]
    if mode in ("insert", "both"):
        raw = raw[:at] + byte + raw[at:]
    if bom:
        raw = b"\xef\xbb\xbf" + raw
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "c.toml"
        cfg.write_bytes(raw)
        code, err = run_validate(capsys, cfg)
        assert_one_config_message(code, err, cfg)
        if code == 0:
            assert_finite_config(cfg)


# --- data files --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    from backtest.data.synth import generate
    from backtest.data.write import write_market

    root = tmp_path_factory.mktemp("fz") / "market"
    write_market(generate(seed=11, symbols=2, years=0.5), root)
    return root


TABLES = ["symbols.csv", "hk_daily.csv", "southbound.csv", "index.csv", "adr.csv", "fx.csv", "dataset.toml"]
CELLS = st.sampled_from(["nan", "inf", "-inf", "1e300", "-1e300", "1e-300", "-1", "0", "", "abc", "1,5",
                         "99999999999999999999999", "2024-13-45", "0700", "\u00e9", '"', "1e15", "NaN"])


def mutate(text: str, kind: str, line: int, col: int, cell: str) -> str | bytes:
    lines = text.splitlines()
    i = 1 + line % max(len(lines) - 1, 1) if len(lines) > 1 else 0
    fields = lines[i].split(",")
    j = col % len(fields)
    if kind == "cell":
        fields[j] = cell
    elif kind == "drop_field":
        del fields[j]
    elif kind == "add_field":
        fields.insert(j, cell)
    elif kind == "header_only":
        return lines[0] + "\n"
    elif kind == "drop_column":
        return "\n".join(",".join(f for k, f in enumerate(ln.split(",")) if k != j) for ln in lines) + "\n"
    elif kind == "truncate":
        return text[: (line * 37 + col) % max(len(text), 1)]
    elif kind == "latin1":
        fields[j] = fields[j] + "\u00e9"
        lines[i] = ",".join(fields)
        return ("\n".join(lines) + "\n").encode("latin-1")
    elif kind == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    lines[i] = ",".join(fields)
    return "\n".join(lines) + "\n"


PROBLEM = re.compile(r"  - (symbols|hk_daily|southbound|index|adr|fx)\.csv|  - dataset\.toml|  - \.\.\. ")


@SETTINGS
@given(table=st.sampled_from(TABLES), kind=st.sampled_from(
    ["cell", "cell", "cell", "drop_field", "add_field", "header_only", "drop_column", "truncate", "latin1", "bom"]),
    line=st.integers(0, 400), col=st.integers(0, 20), cell=CELLS)
def test_data_file_mutations(capsys, market, table, kind, line, col, cell):
    with tempfile.TemporaryDirectory() as d:
        data = Path(shutil.copytree(market, Path(d) / "data"))
        p = data / table
        new = mutate(p.read_text(), kind, line, col, cell)
        (p.write_bytes if isinstance(new, bytes) else p.write_text)(new)
        cfg = Path(d) / "c.toml"
        cfg.write_text(f'[strategy]\nname = "southbound_dip"\n[data]\npath = "{data}"\n')
        code, err = run_validate(capsys, cfg)
        assert code in (0, 2), err
        assert "Traceback" not in err
        if code == 2:
            lines = err.splitlines()
            if re.match(r"error: \d+ data problem\(s\):", lines[0]):
                assert len(lines) > 1 and all(PROBLEM.match(ln) for ln in lines[1:]), err
            else:
                assert len(lines) == 1 and lines[0].startswith("error: "), err
        else:
            from backtest.data.load import load_market

            md = load_market(data)
            for frame in (*md.hk.values(), md.southbound, md.adr_close):
                v = frame.to_numpy(dtype=np.float64)
                assert not np.isinf(v).any()
            for s in (md.index_close, md.usdhkd):
                assert not np.isinf(s.to_numpy(dtype=np.float64)).any()
            assert (np.nan_to_num(md.hk["close"].to_numpy(), nan=1.0) < 1e6 + 1).all()


@pytest.fixture(scope="module")
def market_parquet(tmp_path_factory) -> Path:
    from backtest.data.synth import generate
    from backtest.data.write import write_market

    root = tmp_path_factory.mktemp("fzp") / "market"
    write_market(generate(seed=11, symbols=2, years=0.5), root, fmt="parquet")
    return root


@FEWER
@given(table=st.sampled_from(["symbols", "hk_daily", "southbound", "index", "adr", "fx"]),
       kind=st.sampled_from(["cell", "cell", "as_text", "drop_column", "no_rows", "garbage"]),
       row=st.integers(0, 400), col=st.integers(0, 20),
       value=st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 1e-300, -1.0, 0.0, 2.0**62]))
def test_parquet_mutations(capsys, market_parquet, table, kind, row, col, value):
    import pandas as pd

    with tempfile.TemporaryDirectory() as d:
        data = Path(shutil.copytree(market_parquet, Path(d) / "data"))
        p = data / f"{table}.parquet"
        df = pd.read_parquet(p)
        c = df.columns[col % len(df.columns)]
        if kind == "cell" and len(df) and pd.api.types.is_float_dtype(df[c]):
            df.loc[df.index[row % len(df)], c] = value
        elif kind == "as_text":
            df[c] = df[c].astype(str)
        elif kind == "drop_column":
            df = df.drop(columns=c)
        elif kind == "no_rows":
            df = df.iloc[:0]
        if kind == "garbage":
            p.write_bytes(p.read_bytes()[: row % 64])
        else:
            df.to_parquet(p, index=False)
        cfg = Path(d) / "c.toml"
        cfg.write_text(f'[strategy]\nname = "southbound_dip"\n[data]\npath = "{data}"\n')
        code, err = run_validate(capsys, cfg)
        assert code in (0, 2) and "Traceback" not in err, err
        if code == 2:
            lines = err.splitlines()
            assert re.match(r"error: \d+ data problem\(s\):", lines[0]), err
            assert all(re.match(r"  - (\.\.\. |[a-z_]+\.(parquet|toml))", ln) for ln in lines[1:]), err
