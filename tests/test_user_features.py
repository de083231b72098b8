"""User-defined features (`backtest.features.register_feature`): values equal plain pandas, used in
rules like a built-in, computed once per distinct parameter set in a run and a sweep, listed by
`python -m backtest strategies`, one clear error per kind of mistake, and no kernel recompile."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backtest.config import StrategyConfig, load_config
from backtest.data.align import align
from backtest.data.synth import generate
from backtest.errors import ConfigError, UserError
from backtest.features import FEATURES, compute_features, register_feature
from backtest.params import Param
from backtest.rules import all_of, any_of, evaluate, feature
from tests.helpers import ROOT

USER = '''
import numpy as np
from backtest.features import register_feature
from backtest.params import Param

CALLS = []


@register_feature(params=(Param("window", int, 20, 2, 250, "bars in the mean"),), known="close",
                  help="close / its trailing `window`-bar mean - 1")
def uf_stretch(panel, window):
    CALLS.append(window)
    close = panel.frame("close")
    return close / close.rolling(window, min_periods=window).mean() - 1


@register_feature(known="next_open", help="stock net buy share of the day's total (numpy)")
def uf_share(panel):
    x = panel.fields["sb_net_buy"]
    return x / np.nansum(np.abs(x), axis=1, keepdims=True)


@register_feature
def uf_index_up(panel):
    """a market-level series (length T): 1 where the index rose"""
    s = panel.series["index_close"]
    return np.r_[np.nan, (s[1:] > s[:-1]).astype(float)]
'''


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """The user module above, imported from outside the repository; its features removed afterwards."""
    d = tmp_path_factory.mktemp("userpkg")
    (d / "uf_feats.py").write_text(USER)
    sys.path.insert(0, str(d))
    before = set(FEATURES)
    mod = importlib.import_module("uf_feats")
    yield mod
    sys.path.remove(str(d))
    sys.modules.pop("uf_feats", None)
    for name in set(FEATURES) - before:
        del FEATURES[name]


@pytest.fixture
def scratch():
    """Register throw-away features in a test; they are removed afterwards."""
    before = set(FEATURES)
    yield
    for name in set(FEATURES) - before:
        del FEATURES[name]


@pytest.fixture(scope="module")
def market():
    return generate(seed=4, symbols=6, years=3)


@pytest.fixture(scope="module")
def panel(market):
    return align(market)


def _strategy(name: str, entry, exit=None, params=()):
    """A strategy module registered under `name` in sys.modules (as if imported from a user's file)."""
    mod = types.ModuleType(name)
    mod.NAME, mod.HELP, mod.PARAMS, mod.entry = name.split(".")[-1], "test strategy", params, entry
    if exit is not None:
        mod.exit = exit
    sys.modules[name] = mod
    return mod


def _cfg(strategy: str, params=None, **sections):
    cfg = load_config(ROOT / "configs" / "dip.toml")
    return dataclasses.replace(cfg, strategy=StrategyConfig(name=strategy, params=params or {}), **sections)


# ---------------------------------------------------------------- values and use in rules


def test_values_equal_plain_pandas(user, panel):
    feats = compute_features(panel, [feature("uf_stretch", window=10), feature("uf_share"), feature("uf_index_up")])
    close = panel.frame("close")
    want = close / close.rolling(10, min_periods=10).mean() - 1
    np.testing.assert_allclose(feats[0].T, want.to_numpy(), rtol=1e-12)
    sb = panel.frame("sb_net_buy")
    np.testing.assert_allclose(feats[1].T, (sb.div(sb.abs().sum(axis=1), axis=0)).to_numpy(), rtol=1e-12)
    idx = pd.Series(panel.series["index_close"])
    up = (idx > idx.shift(1)).astype(float).where(idx.index > 0)
    np.testing.assert_array_equal(feats[2].T, np.repeat(up.to_numpy()[:, None], len(panel.symbols), 1))
    assert feats.dtype == np.float64 and feats.shape == (3, len(panel.symbols), len(panel.dates))


def test_user_feature_in_a_rule_runs_like_a_builtin(user, market, panel):
    from backtest.pipeline import run

    _strategy("uf_strats.stretch", lambda p: all_of(feature("uf_stretch", window=10) <= -0.05,
                                                    feature("drawdown", window=20) <= -0.05),
              lambda p: feature("uf_stretch", window=10) >= 0.0)
    out = run(_cfg("uf_strats.stretch"), market)
    refs = out.prepared.plan.refs
    assert refs[0] == feature("uf_stretch", window=10)
    feats = compute_features(panel, refs)
    entries = evaluate(out.prepared.plan.entry_rule, feats, {r: i for i, r in enumerate(refs)})
    close = panel.frame("close")
    want = ((close / close.rolling(10, min_periods=10).mean() - 1 <= -0.05)
            & (close / close.rolling(20, min_periods=20).max() - 1 <= -0.05))
    np.testing.assert_array_equal(entries, want.to_numpy())
    assert out.stats["trades"] > 0
    filled = out.result.orders[(out.result.orders["side"] == "buy") & (out.result.orders["status"] == "filled")]
    rows = pd.DatetimeIndex(panel.dates).get_indexer(filled["date"]) - 1  # next_open: signal on the bar before
    cols = [panel.symbols.index(s) for s in filled["symbol"]]
    assert entries[rows, cols].all()


def test_computed_once_per_distinct_parameter_set_in_a_run_and_a_sweep(user, market, tmp_path):
    from backtest.pipeline import run
    from backtest.sweep import run_sweep

    prm = (Param("w", int, 10, 2, 100, "window"), Param("lvl", float, -0.05, -1.0, 0.0, "level"))
    _strategy("uf_strats.twice", lambda p: all_of(feature("uf_stretch", window=p.w) <= p.lvl,
                                                  feature("uf_stretch", window=p.w) >= p.lvl - 0.2),
              lambda p: feature("uf_stretch", window=10) >= 0.0, prm)
    user.CALLS.clear()
    run(_cfg("uf_strats.twice", {"w": 10}), market)
    assert user.CALLS == [10]  # entry (twice) and exit share one computation

    user.CALLS.clear()
    cfg = _cfg("uf_strats.twice", sweep=dataclasses.replace(
        load_config(ROOT / "configs" / "dip_sweep.toml").sweep,
        grid={"w": [5, 10, 20], "lvl": [-0.1, -0.05], "exits.max_hold": [5, 10]}))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic=dataclasses.replace(
        cfg.data.synthetic, seed=4, symbols=6, years=3)))
    res = run_sweep(cfg, tmp_path / "sweep", progress=False)
    assert sorted(user.CALLS) == [5, 10, 20]  # 12 combinations, 3 distinct windows (10 also in the exit)
    assert len(res.table) == 12 and res.table["trades"].nunique() > 1


def test_strategies_command_lists_a_users_features(user, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(user.__file__).parent), str(ROOT)])}
    r = subprocess.run([sys.executable, "-m", "backtest", "strategies", "uf_feats"], cwd=ROOT, capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "uf_stretch(window)  known: close  [uf_feats]" in r.stdout
    assert "window       int   range [2, 250]  bars in the mean" in r.stdout
    assert "uf_share()  known: next_open" in r.stdout
    assert "sb_rank()  known: next_open" in r.stdout  # built-ins too
    r = subprocess.run([sys.executable, "-m", "backtest", "strategies", "no_such_mod"], cwd=ROOT,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "no_such_mod" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- bad features: one clear error each


def _define(body: str, name: str, params: str = "()", known: str = "close", tmp: Path | None = None):
    """Register `name` from a real file, so tracebacks point into user code."""
    src = textwrap.dedent(f'''
        import numpy as np
        import pandas as pd
        from backtest.features import register_feature
        from backtest.params import Param


        @register_feature(params={params}, known="{known}")
        def {name}(panel, **kw):
        ''') + textwrap.indent(textwrap.dedent(body), "    ")
    path = tmp / f"{name}_mod.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"{name}_mod", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return path


BAD_OUTPUTS = {
    "wrong_shape": ("return np.zeros((len(panel.dates), len(panel.symbols) + 1))", "returned shape"),
    "transposed": ("return np.zeros((len(panel.symbols), len(panel.dates)))", "returned shape"),
    "strings": ("return np.full(panel.shape, 'x')", "dtype <U1"),
    "objects": ("return np.full(panel.shape, None)", "dtype object"),
    "none": ("x = 1", "returned None"),
    "text_column": ("f = panel.frame('close')\nf[f.columns[0]] = 'a'\nreturn f", "non-numeric column"),
    "shifted_index": ("f = panel.frame('close')\nf.index = f.index + pd.Timedelta(days=1)\nreturn f",
                      "index is not the panel's"),
    "missing_column": ("return panel.frame('close').iloc[:, 1:]", "columns are not the panel's symbols"),
    "plain_index": ("return panel.frame('close').reset_index(drop=True)", "index is not the panel's"),
    "infinite": ("x = panel.fields['close'].copy()\nx[5, 1] = np.inf\nreturn x", "infinite value"),
    "mutates_panel": ("panel.fields['close'][0, 0] = 1.0\nreturn panel.fields['close']", "read-only"),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_bad_output_is_one_error_naming_the_feature(case, panel, scratch, tmp_path):
    body, expect = BAD_OUTPUTS[case]
    name = f"bad_{case}"
    _define(body, name, tmp=tmp_path)
    close_before = panel.fields["close"].copy()
    with pytest.raises(UserError) as err:
        compute_features(panel, [feature(name)])
    msg = str(err.value)
    assert msg.startswith(f"feature {name}()") and expect in msg, msg
    assert "\n" not in msg
    np.testing.assert_array_equal(panel.fields["close"], close_before)


def test_infinite_value_is_located(panel, scratch, tmp_path):
    _define("x = panel.fields['close'].copy()\nx[5, 1] = -np.inf\nreturn x", "inf_where", tmp=tmp_path)
    with pytest.raises(UserError) as err:
        compute_features(panel, [feature("inf_where")])
    day = np.datetime_as_string(panel.dates[5], unit="D")
    assert f"on {day} for symbol {panel.symbols[1]}" in str(err.value) and "-inf" in str(err.value)


def test_an_exception_shows_the_users_own_frame(panel, scratch, tmp_path):
    path = _define("close = panel.frame('close')\nreturn close / close['NOPE']", "boom", tmp=tmp_path)
    with pytest.raises(UserError) as err:
        compute_features(panel, [feature("boom")])
    msg = str(err.value)
    line = path.read_text().splitlines().index("    return close / close['NOPE']") + 1
    assert f"{path}:{line} in boom" in msg, msg
    assert "KeyError" in msg and "NOPE" in msg and "return close / close['NOPE']" in msg
    assert "backtest/features.py" not in msg and "pandas" not in msg.split(" at ")[1]
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_nan_is_fine_and_integer_or_bool_output_is_converted(panel, scratch, tmp_path):
    _define("x = panel.fields['close'] > 50\nreturn x", "is_big", tmp=tmp_path)
    _define("return np.full(panel.shape, np.nan)", "all_nan", tmp=tmp_path)
    feats = compute_features(panel, [feature("is_big"), feature("all_nan")])
    np.testing.assert_array_equal(feats[0].T, (panel.fields["close"] > 50).astype(float))
    assert np.isnan(feats[1]).all()


@pytest.mark.parametrize("value, expect", [(1, "out of range [2, 250]"), (251, "out of range"),
                                           (2.5, "expects int"), (True, "expects int")])
def test_a_parameter_outside_its_range_or_of_the_wrong_type(user, value, expect):
    from backtest.strategy import plan, resolve_params

    mod = _strategy("uf_strats.badp", lambda p: feature("uf_stretch", window=value) <= 0.0)
    with pytest.raises(ConfigError) as err:
        plan(mod, resolve_params(mod, {}), "next_open", "cfg.toml")
    assert f"feature uf_stretch(window={value})" in str(err.value) and "parameter 'window'" in str(err.value)
    assert expect in str(err.value)


def test_missing_or_unknown_parameters(user):
    from backtest.features import check_ref

    with pytest.raises(ConfigError, match=r"feature uf_stretch\(\): takes parameters \['window'\], got \[\]"):
        check_ref(feature("uf_stretch"))
    with pytest.raises(ConfigError, match=r"takes parameters \['window'\], got \['span', 'window'\]"):
        check_ref(feature("uf_stretch", window=5, span=3))


@pytest.mark.parametrize("kwargs, expect", [
    ({"name": "drawdown"}, "already taken by a built-in feature"),
    ({"name": "sb_rank"}, "already taken by a built-in feature"),
    ({"known": "open"}, "known must be 'close'"),
    ({"known": "same_close"}, "got 'same_close'"),
    ({"name": "has space"}, "must be an identifier"),
    ({"params": (("window", int),)}, "tuple of backtest.params.Param"),
    ({"params": (Param("window", str, "a", 0, 1, ""),)}, "needs a number type"),
    ({"params": (Param("window", int, 500, 2, 250, ""),)}, "lo <= default <= hi"),
    ({"params": (Param("span", int, 5, 2, 250, ""),)}, "compute must accept (panel, span)"),
])
def test_bad_registration_is_a_config_error_naming_the_feature(kwargs, expect, scratch):
    def good_name(panel, window=3):
        return panel.fields["close"]

    name = kwargs.pop("name", "good_name")
    with pytest.raises(ConfigError) as err:
        register_feature(name, **kwargs)(good_name)
    assert f"register_feature {name!r}" in str(err.value) and expect in str(err.value), str(err.value)
    assert FEATURES.get("drawdown").builtin


def test_reregistering_the_same_function_replaces_it_but_another_module_may_not_take_the_name(scratch):
    def twin(panel):
        return panel.fields["close"]

    register_feature()(twin)
    register_feature()(twin)  # a notebook cell run twice
    other = types.FunctionType(twin.__code__, {}, "twin")
    other.__module__ = "someone_else"
    with pytest.raises(ConfigError, match="already taken by a feature from test_user_features"):
        register_feature()(other)


def test_cli_run_with_a_failing_user_feature_exits_2_with_one_line(tmp_path):
    pkg = tmp_path / "uf_cli"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "s.py").write_text(textwrap.dedent('''
        from backtest.features import register_feature
        from backtest.rules import feature

        NAME, HELP, PARAMS = "s", "fails", ()


        @register_feature(known="close")
        def uf_fail(panel):
            return panel.fields["close"] * {}


        def entry(p):
            return feature("uf_fail") >= 1.0
        '''))
    cfg = tmp_path / "c.toml"
    cfg.write_text('[strategy]\nname = "uf_cli.s"\n[data]\nsynthetic = { seed = 3, symbols = 4, years = 1 }\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    r = subprocess.run([sys.executable, "-m", "backtest", "run", str(cfg), "--out", str(tmp_path / "o")], cwd=ROOT,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "feature uf_fail(): uf_fail() raised TypeError" in lines[0] and f"{pkg / 's.py'}:10 in uf_fail" in lines[0]


# ---------------------------------------------------------------- the kernel stays generic and cached

PROBE = '''
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
import dataclasses, types
from backtest.config import StrategyConfig, load_config
from backtest.data.synth import generate
from backtest.features import register_feature
from backtest.params import Param
from backtest.pipeline import run
from backtest.rules import all_of, feature
from backtest.kernels import simulate as nb

KIND = sys.argv[2]
if KIND == "a":
    @register_feature(params=(Param("n", int, 5, 1, 50, ""),))
    def probe_a(panel, n):
        c = panel.frame("close")
        return c / c.shift(n) - 1
    rule = lambda p: feature("probe_a", n=5) <= -0.03
else:
    @register_feature(known="next_open")
    def probe_b(panel):
        return np.nan_to_num(panel.fields["sb_net_buy"]) / 1e8
    rule = lambda p: all_of(feature("probe_b") >= 1.0, feature("drawdown", window=10) <= -0.02,
                            feature("index_dd", window=20) <= -0.01)
mod = types.ModuleType("probe_strat." + KIND)
mod.NAME, mod.HELP, mod.PARAMS, mod.entry = "probe", "probe", (), rule
sys.modules[mod.__name__] = mod
cfg = load_config(Path(sys.argv[3]) / "configs" / "dip.toml")
cfg = dataclasses.replace(cfg, strategy=StrategyConfig(name=mod.__name__, params={}))
out = run(cfg, generate(seed=2, symbols=5, years=2))
from numba.core.registry import CPUDispatcher
used = [d for d in vars(nb).values() if isinstance(d, CPUDispatcher) and d.signatures]
print(json.dumps({"misses": sum(sum(d.stats.cache_misses.values()) for d in used),
                  "hits": sum(sum(d.stats.cache_hits.values()) for d in used),
                  "signatures": max(len(d.signatures) for d in used), "kernels": len(used),
                  "trades": out.stats["trades"], "features": len(out.prepared.plan.refs)}))
'''


def test_a_user_feature_causes_no_recompile_of_the_simulation_kernel(tmp_path):
    """Warm up with one user feature, then run a different one (other count and kinds of features)
    in a fresh process: the simulation kernel loads from numba's cache (a hit, no miss)."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def probe(kind):
        r = subprocess.run([sys.executable, str(script), str(tmp_path), kind, str(ROOT)], capture_output=True,
                           text=True, env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    probe("a")  # warm-up: compiles and caches if nothing was cached yet
    b = probe("b")
    assert b["features"] == 3 and b["signatures"] == 1
    assert b["misses"] == 0 and b["hits"] >= b["kernels"] >= 1, b


def test_duplicate_references_in_one_call_are_computed_once(user, panel):
    user.CALLS.clear()
    feats = compute_features(panel, [feature("uf_stretch", window=7), feature("drawdown", window=5),
                                     feature("uf_stretch", window=7)])
    assert user.CALLS == [7]
    np.testing.assert_array_equal(feats[0], feats[2])


def test_the_docs_feature_example_registers_and_matches_pandas(panel, scratch):
    import re

    text = (ROOT / "docs" / "strategies.md").read_text().split("## Writing a feature", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    exec(compile(code, "docs_example.py", "exec"), {})
    got = compute_features(panel, [feature("stretch", window=15)])[0].T
    close = panel.frame("close")
    np.testing.assert_allclose(got, (close / close.rolling(15, min_periods=15).mean() - 1).to_numpy(), rtol=1e-12)
    assert FEATURES["stretch"].known == "close" and not FEATURES["stretch"].builtin


def test_strategies_command_lists_a_top_level_strategy_module(tmp_path):
    (tmp_path / "uf_solo.py").write_text(textwrap.dedent('''
        from backtest.features import register_feature
        from backtest.params import Param
        from backtest.rules import feature

        NAME, HELP = "uf_solo", "a strategy module outside any package"
        PARAMS = (Param("lvl", float, 0.5, 0.0, 1.0, "level"),)


        @register_feature(known="next_open")
        def uf_solo_flow(panel):
            """aggregate southbound net buy in HK$ bn"""
            return panel.series["sb_net_buy"] / 1e9


        def entry(p):
            return feature("uf_solo_flow") >= p.lvl
        '''))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    r = subprocess.run([sys.executable, "-m", "backtest", "strategies", "uf_solo"], cwd=ROOT, capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "uf_solo: a strategy module outside any package" in r.stdout
    assert "uf_solo_flow()  known: next_open  [uf_solo]\n      aggregate southbound net buy in HK$ bn" in r.stdout


_SMALL = align(generate(seed=6, symbols=3, years=0.5))
_CELL = st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=64), st.just(np.inf), st.just(-np.inf))


@settings(max_examples=60, deadline=None)
@given(values=hnp.arrays(np.float64, _SMALL.shape, elements=_CELL), as_frame=st.booleans())
def test_any_finite_or_nan_result_passes_bit_for_bit_and_any_infinity_is_refused(values, as_frame):
    out = pd.DataFrame(values, index=pd.DatetimeIndex(_SMALL.dates), columns=list(_SMALL.symbols)) if as_frame \
        else values
    name = "uf_prop"
    FEATURES.pop(name, None)
    register_feature(name)(lambda panel: out)
    try:
        if np.isinf(values).any():
            t, j = np.argwhere(np.isinf(values))[0]
            with pytest.raises(UserError, match=f"for symbol {_SMALL.symbols[j]}"):
                compute_features(_SMALL, [feature(name)])
        else:
            got = compute_features(_SMALL, [feature(name)])[0].T
            np.testing.assert_array_equal(got, values)
    finally:
        del FEATURES[name]


def test_a_feature_with_no_data_is_named_in_the_run_warnings(scratch, market):
    from backtest.pipeline import run

    @register_feature(known="close")
    def uf_never(panel):
        """no value anywhere (e.g. a field the dataset does not have)"""
        return np.full(panel.shape, np.nan)

    _strategy("uf_strats.never", lambda p: any_of(feature("uf_never") >= 0.0, feature("drawdown", window=20) <= -0.3))
    out = run(_cfg("uf_strats.never"), market)
    assert out.warnings == ("feature uf_never() has no value on any bar or symbol of this dataset: "
                            "conditions on it never hold",)
    assert run(load_config(ROOT / "configs" / "dip.toml"), market).warnings == ()
