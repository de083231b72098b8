"""Shipped strategies, their parameters and configs, k-of-n rules and the README's user strategy."""

import os
import re

import numpy as np
import pytest

from backtest.config import load_config
from backtest.data.align import align
from backtest.data.synth import generate
from backtest.errors import ConfigError
from backtest.features import FEATURES, check_ref, compute_features
from backtest.rules import feature
from backtest.strategy import load_strategy, plan, resolve_params, shipped_strategies
from tests.helpers import ROOT, cli, one_line_error

SHIPPED = shipped_strategies()
CONFIGS = {"configs/dip.toml": "southbound_dip", "configs/adr.toml": "adr_discount",
           "configs/flow_discount.toml": "flow_discount", "configs/slump_flow.toml": "slump_flow"}
SMALL = "[data]\nsynthetic = { seed = 3, symbols = 8, years = 3 }\n"


def config(tmp_path, name, params=""):
    p = tmp_path / f"{name.replace('.', '_')}.toml"
    p.write_text(f'[strategy]\nname = "{name}"\n[strategy.params]\n{params}\n{SMALL}')
    return p


def test_the_three_designed_strategies_are_shipped():
    assert {"southbound_dip", "adr_discount", "flow_discount"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_strategy_loads_and_its_defaults_are_in_range(name):
    module = load_strategy(name)
    assert module.NAME == name and module.HELP
    for p in module.PARAMS:
        assert p.lo <= p.default <= p.hi and isinstance(p.default, p.type) and p.help, p
    params = resolve_params(module, {})
    sp = plan(module, params, "next_open")
    for ref in sp.refs:
        assert ref.name in FEATURES


def test_strategies_command_lists_every_strategy_with_its_parameters():
    r = cli("strategies")
    assert r.returncode == 0, r.stderr
    blocks = {b.split(":", 1)[0]: b for b in r.stdout.strip().split("\n\n") if not b.startswith("features (")}
    assert set(blocks) == set(SHIPPED)
    for name in SHIPPED:
        for p in load_strategy(name).PARAMS:
            line = rf"^  {p.name} +{p.type.__name__} +default {re.escape(repr(p.default))} +range \[{p.lo}, {p.hi}\]"
            assert re.search(line, blocks[name], re.M), (name, p)


@pytest.mark.parametrize("name", SHIPPED)
def test_default_parameters_pass_validation(tmp_path, name):
    r = cli("validate", str(config(tmp_path, name)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"ok: {tmp_path}") and f"strategy {name} " in r.stdout


@pytest.mark.parametrize("name", SHIPPED)
def test_unknown_parameter_is_rejected_by_name(tmp_path, name):
    p = config(tmp_path, name, "no_such_param = 1\n")
    one_line_error(cli("validate", str(p)), str(p), "unknown parameter 'strategy.params.no_such_param'",
                   f"strategy {name!r}")


@pytest.mark.parametrize("name", SHIPPED)
def test_out_of_range_parameter_is_rejected_by_name(tmp_path, name):
    spec = load_strategy(name).PARAMS[0]
    bad = int(spec.hi) + 1 if spec.type is int else spec.hi + 1.0
    p = config(tmp_path, name, f"{spec.name} = {bad!r}\n")
    one_line_error(cli("validate", str(p)), str(p), f"parameter {spec.name!r} = {bad!r} is out of range")


@pytest.mark.parametrize("k", [0, 4])
def test_flow_discount_k_must_be_between_1_and_the_number_of_conditions(k):
    with pytest.raises(ConfigError, match=rf"parameter 'k' = {k} is out of range \[1, 3\]"):
        resolve_params(load_strategy("flow_discount"), {"k": k})


@pytest.mark.parametrize("path, name", CONFIGS.items(), ids=list(CONFIGS))
def test_each_strategy_config_runs_its_strategy_with_real_trading(path, name):
    from backtest.pipeline import run

    cfg = load_config(ROOT / path)
    assert cfg.strategy.name == name and cfg.data.path is None
    out = run(cfg)
    assert out.stats["trades"] >= 50, out.stats["trades"]


def _entries(name, params, panel):
    """Boolean (T, N) of bars on which the compiled entry rule holds, evaluated by the kernel's own
    `rule_holds(feats, ..., t, j)` (the function the simulation loop calls) on the features stacked
    by `compute_features`, whatever their layout."""
    from backtest.kernels.rules import STACK, rule_holds

    module = load_strategy(name)
    sp = plan(module, resolve_params(module, params), "next_open")
    feats = compute_features(panel, sp.refs)
    e = sp.entry
    t_n, n_s = panel.shape
    out = np.zeros((t_n, n_s), dtype=bool)
    stack = np.empty(STACK, np.int64)
    for t in range(t_n):
        for j in range(n_s):
            out[t, j] = rule_holds(feats, e, t, j, stack)
    return out, feats, sp


def _panel_feature(panel, ref):
    """One feature as a (T, N) array, computed by its registry entry."""
    x = FEATURES[ref.name].compute(panel, **dict(ref.params))
    assert x.shape == panel.shape
    return x


def test_k_of_n_entries_are_nested():
    # Thresholds loose enough that every k has signals on a 3-year market.
    panel = align(generate(seed=3, symbols=8, years=3))
    loose = {"flow_z": 1.0, "discount_z": -1.0, "dip": 0.05}
    by_k = {k: _entries("flow_discount", {**loose, "k": k}, panel)[0] for k in (1, 2, 3)}
    assert by_k[3].sum() > 0
    assert not (by_k[2] & ~by_k[1]).any(), "k=2 entries must be a subset of k=1 entries"
    assert not (by_k[3] & ~by_k[2]).any(), "k=3 entries must be a subset of k=2 entries"
    assert by_k[1].sum() > by_k[2].sum() > by_k[3].sum()

    # And k counts conditions as documented, with NaN never holding (features straight from the
    # registry, as (T, N) panels, independent of the kernel's stacked layout).
    _, _, sp = _entries("flow_discount", {**loose, "k": 1}, panel)
    held = np.zeros(panel.shape, dtype=np.int64)
    for c in sp.entry_rule.conds:
        x = _panel_feature(panel, c.feature)
        with np.errstate(invalid="ignore"):
            held += (x <= c.threshold) if c.op == "<=" else (x >= c.threshold)
    for k in (1, 2, 3):
        np.testing.assert_array_equal(by_k[k], held >= k)


def test_adr_discount_only_trades_dual_listed_names():
    panel = align(generate(seed=3, symbols=8, years=3))
    entries, _, _ = _entries("adr_discount", {"discount_z": -1.5}, panel)
    premium = _panel_feature(panel, feature("adr_premium"))
    dual = np.isfinite(premium).any(axis=0)
    assert dual.any() and not dual.all()
    assert entries[:, dual].any()
    assert not entries[:, ~dual].any()


def _readme_strategy() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Writing a strategy", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "expected one python block under 'Writing a strategy'"
    return blocks[0]


def test_readme_strategy_example_validates_and_runs(tmp_path):
    code = _readme_strategy()
    assert 'NAME = "adr_snap"' in code
    pkg = tmp_path / "my_strats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "adr_snap.py").write_text(code)
    cfg = config(tmp_path, "my_strats.adr_snap")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}

    r = cli("validate", str(cfg), env=env)
    assert r.returncode == 0, r.stderr
    assert "strategy adr_snap " in r.stdout

    out = tmp_path / "out"
    r = cli("run", str(cfg), "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("adr_snap: ")
    assert (out / "stats.json").stat().st_size > 0 and (out / "tearsheet.html").stat().st_size > 0


@pytest.mark.parametrize("ref, key", [
    (feature("adr_z", window=1), "window"),
    (feature("sb_z", window=1), "window"),
    (feature("adr_pct", window=1), "window"),
    (feature("sb_adv", window=1), "window"),
    (feature("drawdown", window=1), "window"),
    (feature("ret_z", window=5, vol_window=1), "vol_window"),
    (feature("adr_z", window=0), "window"),
    (feature("adr_z", window=2.0), "window"),
])
def test_window_below_two_is_a_config_error_naming_feature_and_parameter(ref, key):
    with pytest.raises(ConfigError) as err:
        check_ref(ref)
    assert f"feature {ref}" in str(err.value) and f"parameter {key!r}" in str(err.value)


def test_window_one_in_a_strategy_is_refused_before_any_kernel_runs(tmp_path):
    pkg = tmp_path / "w1_strats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "one.py").write_text(
        "from backtest.rules import feature\n"
        'NAME = "one"\nHELP = "window of one bar"\nPARAMS = ()\n\n\n'
        "def entry(p):\n    return feature('adr_z', window=1) <= -2.0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    r = cli("validate", str(config(tmp_path, "w1_strats.one")), env=env)
    one_line_error(r, "feature adr_z(window=1)", "parameter 'window'", "out of range [2, ")


def test_a_one_bar_return_horizon_is_still_allowed():
    check_ref(feature("ret", window=1))
    check_ref(feature("ret_z", window=1, vol_window=20))


_FLOATS = [-np.inf, -1e308, -2.5, -0.0, 0.0, 5e-324, 0.1, 1.0, 2.5, 1e308, np.inf, np.nan]
_COMPARE = {"<=": np.less_equal, ">=": np.greater_equal, "<": np.less, ">": np.greater}


@pytest.mark.parametrize("op", list(_COMPARE))
def test_lower_bound_form_is_exactly_the_comparison(op):
    """The kernels test `sign * x >= bound`: for every threshold and value, including the
    threshold's neighbouring floats, infinities and NaN, that must be `x op threshold`."""
    from backtest.rules import lower_bound

    for thr in _FLOATS:
        sign, bound = lower_bound(op, thr)
        near = [np.nextafter(thr, -np.inf), thr, np.nextafter(thr, np.inf)] if thr == thr else []
        xs = np.array(_FLOATS + near, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(sign * xs >= bound, _COMPARE[op](xs, thr), err_msg=f"x {op} {thr}")
