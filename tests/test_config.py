"""Config errors name the file and the key and suggest the nearest valid key."""

import pytest

from backtest.config import load_config
from backtest.errors import ConfigError
from backtest.pipeline import prepare
from backtest.strategy import load_strategy, resolve_params
from tests.helpers import ROOT

BASE = '[strategy]\nname = "southbound_dip"\n'


def _write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    (BASE + "[exits]\nstop_los = 0.1\n", "unknown key 'exits.stop_los' (did you mean 'stop_loss'?)"),
    (BASE + "[exits]\nstop_loss = 2\n", "key 'exits.stop_loss' = 2.0 is out of range [0.0, 1.0]"),
    (BASE + "[exits]\nmax_hold = 1.5\n", "key 'exits.max_hold': expected int, got float 1.5"),
    (BASE + "[execution]\nfill = 'open'\n", "expected 'next_open' or 'next_close' or 'same_close', got 'open'"),
    (BASE + "[executon]\n", "unknown key 'executon' (did you mean 'execution'?)"),
    (BASE + "[data.synthetic]\nsymbols = 31\n", "key 'data.synthetic.symbols' = 31 is out of range [1, 30]"),
    ("[data]\n", "missing required table [strategy]"),
    (BASE + "x = [1,\n", "not valid TOML"),
])
def test_bad_config_is_named(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(p) in str(err.value)
    assert message in str(err.value)


def test_unknown_strategy_suggests_a_shipped_one(tmp_path):
    with pytest.raises(ConfigError, match=r"strategy 'southbound_dp' not found \(did you mean 'southbound_dip'\?\)"):
        load_strategy("southbound_dp")


@pytest.mark.parametrize("params, message", [
    ({"dip_windo": 10}, "unknown parameter 'strategy.params.dip_windo' for strategy 'southbound_dip' (did you mean 'dip_window'?)"),
    ({"dip": 1.5}, "parameter 'dip' = 1.5 is out of range [0.0, 0.9]"),
    ({"dip_window": 2.5}, "parameter 'dip_window' expects int, got 2.5"),
])
def test_bad_strategy_params_are_named(params, message):
    with pytest.raises(ConfigError) as err:
        resolve_params(load_strategy("southbound_dip"), params, "c.toml")
    assert message in str(err.value)


def test_same_bar_fill_of_a_flow_signal_is_refused(tmp_path):
    p = _write(tmp_path, BASE + "[execution]\nfill = 'same_close'\n[data.synthetic]\nsymbols = 2\nyears = 1\n")
    with pytest.raises(ConfigError, match=r"feature sb_z\(window=60\) is only known before the next HK open"):
        prepare(load_config(p))


def test_relative_data_path_is_resolved_against_the_config(tmp_path):
    p = _write(tmp_path, BASE + "[data]\npath = 'market'\n")
    assert load_config(p).data.path == str(tmp_path / "market")


def test_config_reference_lists_every_key():
    import dataclasses
    
    from backtest import config as C

    doc = (ROOT / "docs" / "config.md").read_text()
    for section, cls in [("data", C.DataConfig), ("data.synthetic", C.SynthConfig), ("strategy", C.StrategyConfig),
                         ("execution", C.ExecutionConfig), ("exits", C.ExitConfig), ("costs", C.CostConfig),
                         ("report", C.ReportConfig), ("sweep", C.SweepConfig)]:
        body = doc.split(f"## [{section}]")[1].split("\n## ")[0]
        for f in dataclasses.fields(cls):
            if not dataclasses.is_dataclass(f.type) and f.name != "synthetic":
                assert f"`{f.name}`" in body, f"docs/config.md [{section}] misses {f.name}"


def test_risk_free_rate_from_the_config_reaches_the_statistics(tmp_path):
    from backtest import metrics
    from backtest.pipeline import run

    p = _write(tmp_path, BASE + "[data.synthetic]\nseed = 2\nsymbols = 4\nyears = 2\n[report]\nrisk_free = 0.03\n")
    out = run(load_config(p))
    r = out.result.total_equity.pct_change().iloc[1:]
    assert out.stats["sharpe"] == metrics.sharpe(r, 0.03) != metrics.sharpe(r, 0.0)
