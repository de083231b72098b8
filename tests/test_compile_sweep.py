"""compile_sweep calls the strategy once per distinct set of strategy parameters and broadcasts over
the exits.* axes; the per-symbol medians are computed in numpy. Oracles: the straightforward
compilation that calls the strategy for every combination (what compile_sweep did before), and
pandas' groupby median / mean (what the medians were computed with before)."""

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from backtest.config import load_config
from backtest.errors import ConfigError
from backtest.grid import build_grid
from backtest.pipeline import Prepared
from backtest.ranking import SYMBOL_METRICS, symbol_medians
from backtest.rules import RuleError, compile_rule, stack_rules
from backtest.strategy import _default_rank, load_strategy, plan, resolve_params
from backtest.sweep import EXIT_FIELDS, combo_config, compile_sweep

USER = '''
from backtest.rules import all_of, feature, held, k_of, not_, turns_true
from backtest.strategy import Param

NAME = "ranked"
HELP = "a test strategy whose features, nesting and ranking depend on its parameters"
PARAMS = (
    Param("w", int, 20, 2, 100, "window"),
    Param("dip", float, 0.1, 0.0, 0.9, "dip"),
    Param("z", float, 1.0, -5.0, 5.0, "flow z"),
    Param("n", int, 2, 1, 10, "bars held"),
    Param("by_flow", int, 0, 0, 1, "rank by the flow z-score"),
)
CALLS = []


def entry(p):
    CALLS.append((p.w, p.dip, p.z, p.n, p.by_flow))
    return k_of(2, feature("drawdown", window=p.w) <= -p.dip,
                held(feature("sb_z", window=3 * p.w) >= p.z, p.n),
                not_(turns_true(feature("ret_z", window=p.w, vol_window=60) > p.z)))


def exit(p):
    return feature("sb_z", window=60) <= p.z - 2 if p.by_flow else feature("sb_z", window=2 * p.w) <= p.z - 3


def rank(p):
    if p.by_flow:
        return feature("sb_z", window=3 * p.w), "high_first"
    return feature("drawdown", window=p.w), "low_first"
'''

SHAPES = '''
from backtest.rules import all_of, feature
from backtest.strategy import Param

NAME = "shapes"
HELP = "two conditions or three, by parameter"
PARAMS = (Param("dip", float, 0.1, 0.0, 0.9, "dip"), Param("more", int, 0, 0, 1, "a third condition"))


def entry(p):
    conds = [feature("drawdown", window=20) <= -p.dip, feature("sb_z", window=60) >= 1.0]
    return all_of(*conds, *([feature("ret_z", window=20, vol_window=60) <= -1.0] if p.more else []))
'''

BASE = """
[data]
synthetic = {{ seed = 1, symbols = 4, years = 2 }}
[strategy]
name = "{name}"
[execution]
mode = "independent"
[exits]
stop_loss = 0.08
take_profit = 0.15
[sweep.grid]
{grid}
"""

VALUES = {  # key -> candidate values (a random subset is swept)
    "southbound_dip": {"dip_window": [5, 10, 20, 40], "dip": [0.02, 0.05, 0.1, 0.2], "flow_window": [20, 60, 120],
                       "flow_z": [-1.0, 0.5, 1.0, 2.5], "fade_z": [-2.0, -1.0, 0.0]},
    "user_ranked.ranked": {"w": [5, 10, 25], "dip": [0.03, 0.08, 0.2], "z": [-0.5, 0.5, 1.5], "n": [1, 2, 4],
                           "by_flow": [0, 1]},
    "flow_discount": None,  # its PARAMS, with values taken around the defaults
}
EXITS = {"exits.max_hold": [0, 3, 10, 30], "exits.stop_loss": [0.0, 0.05, 0.1], "exits.take_profit": [0.1, 0.3],
         "exits.trailing_stop": [0.0, 0.07]}


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    pkg = tmp_path / "user_ranked"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ranked.py").write_text(textwrap.dedent(USER))
    (pkg / "shapes.py").write_text(textwrap.dedent(SHAPES))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for m in [m for m in sys.modules if m.startswith("user_ranked")]:
        del sys.modules[m]


def _prepared(tmp_path, name: str, grid: str, with_plan: bool = True) -> Prepared:
    """A Prepared for strategy `name` and [sweep.grid] `grid`; without the defaults' plan when
    `with_plan` is False (compile_sweep needs none, and a test strategy may fail on its defaults)."""
    p = tmp_path / "s.toml"
    p.write_text(BASE.format(name=name, grid=grid))
    cfg = load_config(p)
    module = load_strategy(cfg.strategy.name)
    params = resolve_params(module, cfg.strategy.params)
    return Prepared(cfg, module, params, plan(module, params, cfg.execution.fill) if with_plan else None, None)


def reference(prep: Prepared, grid):
    """The per-combination compilation: the strategy called for every combination of the grid."""
    cfg, module = prep.cfg, prep.module
    index, entries, exits_, r_feat, r_sign, exits = {}, [], [], [], [], []
    for p in range(grid.size):
        c = combo_config(cfg, grid.combo(p))
        params = resolve_params(module, c.strategy.params)
        sp = plan(module, params, cfg.execution.fill)
        entries.append(compile_rule(sp.entry_rule, index))
        exits_.append(compile_rule(sp.exit_rule, index))
        ref, order = module.rank(params) if hasattr(module, "rank") else _default_rank(sp.entry_rule)
        r_feat.append(index.setdefault(ref, len(index)))
        r_sign.append(1.0 if order == "high_first" else -1.0)
        exits.append([getattr(c.exits, f) for f in EXIT_FIELDS])
    return (list(index), stack_rules(entries), stack_rules(exits_), np.array(r_feat, np.int64), np.array(r_sign),
            np.array(exits, dtype=np.float64))


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _random_grid(rng, name: str, module) -> str:
    values = VALUES[name] or {p.name: sorted({p.default, *(p.default * f for f in (0.5, 2.0))} if p.type is float
                                             else {p.default, max(p.lo, p.default // 2), p.default + 1})
                              for p in module.PARAMS}
    pool = {**{k: v for k, v in values.items()}, **EXITS}
    keys = list(rng.permutation(list(pool)))[:rng.integers(1, 5)]
    lines = []
    for k in keys:
        vals = list(pool[k])
        take = sorted(rng.choice(len(vals), rng.integers(1, len(vals) + 1), replace=False))
        lines.append(f'"{k}" = [{", ".join(repr(vals[i]) for i in take)}]')
    return "\n".join(lines)


@pytest.mark.parametrize("name", list(VALUES))
@pytest.mark.parametrize("seed", range(6))
def test_compile_sweep_equals_the_per_combination_compilation(tmp_path, user_modules, name, seed):
    rng = np.random.default_rng([seed, len(name)])
    prep = _prepared(tmp_path, name, "dummy = [1]")
    grid_text = _random_grid(rng, name, prep.module)
    prep = _prepared(tmp_path, name, grid_text)
    grid = build_grid(prep.cfg, prep.module)
    sp = compile_sweep(prep, grid)
    refs, entry, exit_, r_feat, r_sign, exits = reference(prep, grid)
    assert sp.refs == refs, grid_text
    assert _same(tuple(sp.entry), tuple(entry)) and _same(tuple(sp.exit), tuple(exit_)), grid_text
    assert _same(sp.r_feat, r_feat) and _same(sp.r_sign, r_sign) and _same(sp.exits, exits), grid_text
    rows = rng.choice(grid.size, min(grid.size, 5), replace=False)
    part = sp.take(rows)
    assert _same(tuple(part.entry), tuple(entry.take(rows))) and _same(part.exits, exits[rows])


def test_the_strategy_is_called_once_per_distinct_strategy_parameters(tmp_path, user_modules):
    grid = '"exits.max_hold" = [0, 5, 10]\nw = [5, 10]\n"exits.stop_loss" = [0.0, 0.1]\nby_flow = [0, 1]\n'
    prep = _prepared(tmp_path, "user_ranked.ranked", grid)
    calls = prep.module.CALLS
    calls.clear()
    sp = compile_sweep(prep, build_grid(prep.cfg, prep.module))
    real = [c for c in calls if all(type(x) in (int, float) for x in c)]  # not the traced call (it escapes)
    assert len(real) == 4 and len(set(real)) == 4  # 2 windows x 2 rankings; exits do not call it
    assert sp.exits.shape == (24, 4) and len(np.unique(sp.r_feat)) == 4  # drawdown(5), (10), sb_z(15), (30)
    assert set(np.unique(sp.r_sign)) == {-1.0, 1.0}
    assert _same(sp.r_feat, reference(prep, build_grid(prep.cfg, prep.module))[3])


def test_exits_only_grid_calls_the_strategy_once(tmp_path, user_modules):
    prep = _prepared(tmp_path, "user_ranked.ranked", '"exits.take_profit" = [0.1, 0.2, 0.4]\n"exits.max_hold" = [3, 9]')
    prep.module.CALLS.clear()
    grid = build_grid(prep.cfg, prep.module)
    sp = compile_sweep(prep, grid)
    assert len(prep.module.CALLS) == 1
    assert _same(sp.exits, reference(prep, grid)[5])
    assert (sp.entry.feat == sp.entry.feat[0]).all() and (sp.entry.bound == sp.entry.bound[0]).all()


def test_rules_that_change_shape_across_the_grid_are_refused_as_before(tmp_path, user_modules):
    prep = _prepared(tmp_path, "user_ranked.shapes", 'dip = [0.05, 0.1]\n"exits.max_hold" = [0, 5]\nmore = [0, 1]')
    grid = build_grid(prep.cfg, prep.module)
    with pytest.raises(RuleError) as ref:
        reference(prep, grid)
    with pytest.raises(ConfigError, match="builds rules of different shapes across the grid") as got:
        compile_sweep(prep, grid)
    assert str(ref.value) in str(got.value)


@pytest.mark.parametrize("seed", range(4))
def test_symbol_medians_equal_pandas_groupby(seed):
    """Medians over the symbols that traded (NaN left out), mean exposure and counts, bit for bit
    as the pandas groupby they replace."""
    rng = np.random.default_rng(seed)
    n_c, n_s = 200, int(rng.integers(1, 9))
    # rounded: ties; + 0.0: no negative zeros (which of -0.0 and 0.0 is "the middle" is the sort's choice)
    m = {k: rng.normal(size=(n_c, n_s)).round(int(rng.integers(1, 4))) + 0.0 for k in SYMBOL_METRICS}
    m["trades"] = rng.integers(0, 3, size=(n_c, n_s))
    m["sharpe"][rng.random((n_c, n_s)) < 0.2] = np.nan
    if seed % 2:
        m["exposure"][rng.random((n_c, n_s)) < 0.1] = np.nan  # the pandas path
    got = symbol_medians(m)
    df = pd.DataFrame({"combo": np.repeat(np.arange(n_c), n_s), **{k: v.reshape(-1) for k, v in m.items()}})
    traded = df[df["trades"] > 0]
    want = traded.groupby("combo")[list(SYMBOL_METRICS)].median().add_prefix("sym_")
    want["symbols_traded"] = traded.groupby("combo").size()
    want["sym_exposure_mean"] = df.groupby("combo")["exposure"].mean()
    want = want.reindex(np.arange(n_c))
    want["symbols_traded"] = want["symbols_traded"].fillna(0).astype(np.int64)
    assert list(got) == list(want.columns)
    for k in want.columns:
        assert got[k].dtype == want[k].dtype and got[k].tobytes() == want[k].to_numpy().tobytes(), k


def test_listing_years_equal_calendar_years():
    from backtest.metrics import calendar_years
    from backtest.ranking import listing_years

    rng = np.random.default_rng(5)
    day = np.sort(rng.choice(np.arange(np.datetime64("2001-01-01"), np.datetime64("2030-12-31")), 800, replace=False))
    timed = pd.DatetimeIndex(day) + pd.to_timedelta(rng.integers(0, 86_400, 800), unit="s")  # times of day too
    for dates in (day, timed):
        first = rng.integers(0, len(dates), 300)
        want = np.array([calendar_years(dates[a:]) for a in first])
        assert listing_years(first, dates).tobytes() == want.tobytes()
