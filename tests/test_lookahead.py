"""DESIGN §3 through the look-ahead checker (`backtest.lookahead`, `python -m backtest lookahead`):
changing data after bar t never changes a feature, signal, fill or equity value at or before t, on
every shipped config; and the checker names a user feature that leaks (a centred rolling mean) or
that is declared known at the close but reads flows or ADR closes published only after it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import types

import pytest

from backtest.config import StrategyConfig, SynthConfig, load_config
from backtest.data.synth import generate
from backtest.features import FEATURES, register_feature
from backtest.lookahead import check
from backtest.params import Param
from backtest.rules import all_of, feature
from tests.helpers import ROOT

CONFIGS = sorted(ROOT.glob("configs/*.toml"))


def _small(cfg, seed):
    s = SynthConfig(seed=seed, symbols=8, years=3)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic=s)), generate(seed, 8, 3)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_shipped_config_is_clean(config, seed):
    cfg = load_config(config)
    if cfg.data.path is not None:
        pytest.skip("runs on the embedded sample market only")
    cfg, md = _small(cfg, seed)
    report = check(cfg, md, cuts=3, seed=seed)
    assert report.clean, str(report)
    assert report.runs == 6 and report.reached == report.runs  # the perturbation really reaches the future
    assert str(report).splitlines()[-1].startswith("clean:")


@pytest.fixture
def leaky():
    """Leaking and honest user features (removed afterwards) and strategies using them."""
    before = set(FEATURES)

    @register_feature(params=(Param("window", int, 5, 3, 99, "bars, odd"),), known="close")
    def la_centred(panel, window):
        close = panel.frame("close")
        return close / close.rolling(window, center=True, min_periods=1).mean() - 1

    @register_feature(known="close")  # wrong: the ADR close of the same US date comes after the HK close
    def la_adr_at_close(panel):
        return panel.fields["adr_premium"]

    @register_feature(known="close")  # wrong: southbound flows of day t are final after the close
    def la_flow_at_close(panel):
        return panel.series["sb_net_buy"] / 1e9

    @register_feature(known="next_open")  # right
    def la_flow_next_open(panel):
        return panel.series["sb_net_buy"] / 1e9

    def strat(name, rule):
        mod = types.ModuleType(f"la_strats.{name}")
        mod.NAME, mod.HELP, mod.PARAMS, mod.entry = name, name, (), rule
        mod.exit = lambda p: feature("drawdown", window=10) >= 0.0
        sys.modules[mod.__name__] = mod
        return mod.__name__

    yield strat
    for name in set(FEATURES) - before:
        del FEATURES[name]


def _cfg(strategy, fill="next_open", seed=1):
    cfg = load_config(ROOT / "configs" / "dip.toml")
    cfg = dataclasses.replace(cfg, strategy=StrategyConfig(name=strategy, params={}),
                              execution=dataclasses.replace(cfg.execution, fill=fill))
    return _small(cfg, seed)


def test_catches_a_centred_rolling_mean(leaky):
    cfg, md = _cfg(leaky("centred", lambda p: all_of(feature("drawdown", window=20) <= -0.05,
                                                      feature("la_centred", window=5) <= -0.01)))
    report = check(cfg, md, cuts=3)
    assert not report.clean
    first = report.findings[0]
    assert (first.kind, first.name) == ("feature", "la_centred(window=5)")
    assert first.perturbed == "open" and first.bar < first.cut  # rows two bars before the cut moved
    text = str(report)
    assert "LOOK-AHEAD: feature la_centred(window=5) (declared known at close) changed on" in text
    assert "look-ahead" in text
    assert {f.kind for f in report.findings} >= {"feature", "entry rule"}
    assert not any(f.name.startswith("drawdown") for f in report.findings)


@pytest.mark.parametrize("name", ["la_adr_at_close", "la_flow_at_close"])
@pytest.mark.parametrize("fill", ["next_open", "same_close"])
def test_catches_a_next_open_value_declared_known_at_the_close(leaky, name, fill):
    cfg, md = _cfg(leaky(name, lambda p: feature(name) <= 0.0), fill=fill)
    report = check(cfg, md, cuts=3)
    assert not report.clean
    first = report.findings[0]
    assert (first.kind, first.name, first.perturbed) == ("feature", f"{name}()", "close")
    assert first.bar == first.cut  # the cut bar's own value uses data published after its close
    assert 'declare known="next_open"' in str(report)
    if fill == "same_close":  # traded at the close on it: the fills and equity moved too
        assert {"fills", "equity"} & {f.kind for f in report.findings}


def test_the_same_value_declared_next_open_is_clean(leaky):
    cfg, md = _cfg(leaky("honest", lambda p: all_of(feature("la_flow_next_open") >= 2.0,
                                                     feature("drawdown", window=20) <= -0.05)))
    report = check(cfg, md, cuts=3)
    assert report.clean, str(report)


def test_cli_exit_codes_and_the_leaking_feature_named(tmp_path):
    pkg = tmp_path / "la_cli"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "leak.py").write_text(textwrap.dedent('''
        from backtest.features import register_feature
        from backtest.rules import feature

        NAME, HELP, PARAMS = "leak", "tomorrow's close", ()


        @register_feature(known="close")
        def la_tomorrow(panel):
            c = panel.frame("close")
            return c.shift(-1) / c - 1


        def entry(p):
            return feature("la_tomorrow") >= 0.02
        '''))
    small = '[data]\nsynthetic = { seed = 3, symbols = 5, years = 2 }\n'
    (tmp_path / "leak.toml").write_text(f'[strategy]\nname = "la_cli.leak"\n{small}')
    (tmp_path / "dip.toml").write_text(
        (ROOT / "configs" / "dip.toml").read_text().replace("synthetic = { seed = 7, symbols = 25, years = 10 }",
                                                            "synthetic = { seed = 3, symbols = 5, years = 2 }"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "backtest", "lookahead", *args], cwd=ROOT, capture_output=True,
                              text=True, env=env)

    r = cli(str(tmp_path / "leak.toml"), "--cuts", "2")
    assert r.returncode == 1, r.stderr
    assert "LOOK-AHEAD: feature la_tomorrow() (declared known at close) changed on" in r.stdout
    r = cli(str(tmp_path / "dip.toml"), "--cuts", "2", "--seed", "4")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "clean: nothing at or before a cut changed" in r.stdout
    r = cli(str(tmp_path / "dip.toml"), "--cuts", "0")
    assert r.returncode == 2 and "cuts=0" in r.stderr and "Traceback" not in r.stderr


def test_a_different_seed_picks_different_cuts():
    cfg, md = _small(load_config(ROOT / "configs" / "dip.toml"), 1)
    a, b = check(cfg, md, cuts=2, seed=0), check(cfg, md, cuts=2, seed=1)
    assert a.cuts != b.cuts and len(a.cuts) == 2


def test_the_readme_strategy_and_feature_are_listed_and_clean(tmp_path):
    import re

    text = (ROOT / "README.md").read_text().split("## Writing a strategy", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    feature_lines = code.split("@register_feature", 1)[1].split("\n\n\n", 1)[0].strip().splitlines()
    assert len(feature_lines) + 1 < 15  # "a feature in under 15 lines"
    pkg = tmp_path / "my_strats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "adr_snap.py").write_text(code)
    cfg = tmp_path / "snap.toml"
    cfg.write_text('[strategy]\nname = "my_strats.adr_snap"\n[data]\nsynthetic = { seed = 3, symbols = 8, years = 3 }\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    run = lambda *a: subprocess.run([sys.executable, "-m", "backtest", *a], cwd=ROOT, capture_output=True,  # noqa
                                    text=True, env=env)
    r = run("strategies", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "adr_snap: " in r.stdout and "premium_drop(window)  known: next_open  [my_strats.adr_snap]" in r.stdout
    r = run("lookahead", str(cfg), "--cuts", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "feature premium_drop(window=60) [known: next_open]" in r.stdout and "clean:" in r.stdout
