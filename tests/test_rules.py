"""Nested rules (docs/rules.md): the kernel's evaluator against an independent numpy evaluator of
three-valued (Kleene) logic, through `rules.evaluate` and through simulated entries; hand cases of
held/turns_true at the panel start and across NaN bars; the sweep's loose rules bound every
member; a swept nested-rule strategy equals single runs."""

import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from backtest.rules import (Cond, Held, Not, Rule, RuleError, TurnsTrue, all_of, any_of, compile_rule, evaluate,
                            feature, held, k_of, loosest, not_, stack_rules, turns_true)
from tests.helpers import SWEEP_BASE, single_run_metrics

F, U, T = 0, 1, 2
REFS = [feature(n) for n in "abc"]
INDEX = {r: i for i, r in enumerate(REFS)}


# ------------------------------------------------------------------ the oracle: plain numpy
def oracle(node, feats):
    """(T, N) values in {F, U, T} of a rule over feats (F, T, N), written from docs/rules.md."""
    if isinstance(node, Cond):
        x = feats[INDEX[node.feature]]
        with np.errstate(invalid="ignore"):
            holds = {"<=": x <= node.threshold, "<": x < node.threshold, ">=": x >= node.threshold,
                     ">": x > node.threshold}[node.op]
        return np.where(np.isnan(x), U, np.where(holds, T, F))
    if isinstance(node, Rule):
        vals = np.stack([oracle(c, feats) for c in node.conds])
        n_true, n_unknown = (vals == T).sum(0), (vals == U).sum(0)
        return np.where(n_true >= node.k, T, np.where(n_true + n_unknown < node.k, F, U))
    if isinstance(node, Not):
        return 2 - oracle(node.x, feats)
    x = oracle(node.x, feats)

    def lag(v, i):  # row t holds v[t - i]; before the data: unknown
        out = np.full_like(v, U)
        out[i:] = v[:v.shape[0] - i]
        return out

    if isinstance(node, Held):
        return np.min(np.stack([lag(x, i) for i in range(node.n)]), axis=0)
    assert isinstance(node, TurnsTrue)
    return np.minimum(x, 2 - lag(x, 1))


def holds(node, feats):
    return oracle(node, feats) == T


# ------------------------------------------------------------------ random trees and panels
def leaf():
    return st.builds(lambda f, op, th: Cond(REFS[f], op, th), st.integers(0, 2),
                     st.sampled_from(["<=", "<", ">=", ">"]), st.sampled_from([-1.0, -0.5, 0.0, 0.3, 1.0]))


def node(children):
    kof = st.lists(children, min_size=1, max_size=4).flatmap(
        lambda cs: st.integers(1, len(cs)).map(lambda k: Rule(tuple(cs), k)))
    return st.one_of(kof, children.map(Not), st.builds(Held, children, st.integers(1, 4)), children.map(TurnsTrue))


TREES = st.recursive(leaf(), node, max_leaves=10)


@st.composite
def panels(draw, n_t=30, n_s=3):
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    feats = rng.choice([-1.0, -0.5, 0.0, 0.3, 1.0, 2.0], size=(3, n_t, n_s)) + rng.normal(0, 0.01, (3, n_t, n_s)) * (
        rng.random((3, n_t, n_s)) < 0.5)
    feats[rng.random(feats.shape) < draw(st.sampled_from([0.0, 0.1, 0.3]))] = np.nan
    return feats


def kstack(feats):
    return np.ascontiguousarray(feats.transpose(0, 2, 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, feats=panels())
def test_evaluate_equals_the_numpy_oracle(tree, feats):
    got = evaluate(tree, kstack(feats), INDEX)
    assert got.shape == feats.shape[1:] and got.dtype == bool
    np.testing.assert_array_equal(got, holds(tree, feats), err_msg=str(tree))


@settings(max_examples=100, deadline=None)
@given(conds=st.lists(leaf(), min_size=1, max_size=5), data=st.data(), feats=panels())
def test_flat_fast_path_equals_the_general_evaluator(conds, data, feats):
    from backtest.kernels.rules import rule_panel

    k = data.draw(st.integers(1, len(conds)))
    compiled = compile_rule(Rule(tuple(conds), k), dict(INDEX))
    assert compiled.flat
    fast = rule_panel(kstack(feats), compiled)
    slow = rule_panel(kstack(feats), compiled._replace(flat=False))
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast.T, holds(Rule(tuple(conds), k), feats))


def _entries_simulated(tree, feats):
    """Entry bars of the simulation kernel with `tree` as entry rule and an exit rule that always
    holds: a signal on row t fills at the open of t + 1 and exits at the open of t + 2."""
    from backtest.costs import CostModel, cost_table
    from backtest.kernels import simulate as nb

    n_t, n_s = feats.shape[1:]
    stackf = np.concatenate([feats, np.zeros((1, n_t, n_s))])  # slot 3: a constant 0
    always = feature("zero")
    index = {**INDEX, always: 3}
    px = np.full((n_s, n_t), 10.0)
    market = nb.Market(px, px, px, px, np.ones((n_s, n_t)), kstack(stackf),
                       cost_table(CostModel(kind="flat"), np.busday_offset(np.datetime64("2024-01-02", "D"),
                                                                          np.arange(n_t), roll="forward")))
    ex = nb.Execution(nb.FILL_NEXT_OPEN, 1e6, 0.0, False, 0, 0.0, 0.0, 0.0, 0)
    out = nb.simulate(market, compile_rule(tree, dict(index)), compile_rule(always >= 0.0, dict(index)), -1, 1.0, ex)
    orders = out[4]
    got = np.zeros((n_t, n_s), bool)
    buys = orders[orders[:, nb.O_SIDE] > 0]
    got[buys[:, nb.O_BAR].astype(int) - 1, buys[:, nb.O_COL].astype(int)] = True
    return got


def _entries_expected(sig):
    n_t, n_s = sig.shape
    out = np.zeros_like(sig)
    for j in range(n_s):
        t = 0
        while t < n_t - 1:
            if sig[t, j]:
                out[t, j] = True
                t += 2  # in the position on t + 1, flat again after the open of t + 2
            else:
                t += 1
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, feats=panels(n_t=40))
def test_simulated_entries_follow_the_numpy_oracle(tree, feats):
    np.testing.assert_array_equal(_entries_simulated(tree, feats), _entries_expected(holds(tree, feats)),
                                  err_msg=str(tree))


# ------------------------------------------------------------------ hand cases
A = feature("a")


def _one(col):
    """feats (3, T, 1) with column a = col."""
    f = np.zeros((3, len(col), 1))
    f[0, :, 0] = col
    return f


def _ev(rule, col):
    return evaluate(rule, kstack(_one(col)), INDEX)[:, 0].tolist()


def test_held_needs_n_known_true_bars():
    nan = np.nan
    #                          bar: 0  1  2  3    4  5  6  7
    assert _ev(held(A >= 1, 3), [1, 1, 1, 0, 1, 1, 1, 1]) == [0, 0, 1, 0, 0, 0, 1, 1]
    # The first n - 1 bars of the data lack history: not held (unknown), even when true.
    assert _ev(held(A >= 1, 2), [1, 1]) == [0, 1]
    # A NaN bar breaks the run like a false one; held(x, 1) is x.
    assert _ev(held(A >= 1, 2), [1, nan, 1, 1]) == [0, 0, 0, 1]
    assert _ev(held(A >= 1, 1), [1, nan, 0, 1]) == [1, 0, 0, 1]


def test_turns_true_at_the_start_and_across_nan():
    nan = np.nan
    assert _ev(turns_true(A >= 1), [0, 1, 1, 0, 1]) == [0, 1, 0, 0, 1]
    # Bar 0 has no previous bar: unknown whether it turned, so not a signal.
    assert _ev(turns_true(A >= 1), [1, 1, 0]) == [0, 0, 0]
    # After a NaN bar it is unknown whether x was false before: not a signal, and the next bar
    # (true before) is not one either.
    assert _ev(turns_true(A >= 1), [0, nan, 1, 1]) == [0, 0, 0, 0]
    # NaN on the current bar: never.
    assert _ev(turns_true(A >= 1), [0, nan]) == [0, 0]


def test_not_of_nan_is_not_true():
    nan = np.nan
    assert _ev(not_(A >= 1), [1, 0, nan]) == [0, 1, 0]
    assert _ev(~(A >= 1), [1, 0, nan]) == [0, 1, 0]
    # not_(x <= b) is x > b on every bar, NaN included (De Morgan holds, too).
    col = [0.5, 1.0, 1.5, nan]
    assert _ev(not_(A <= 1), col) == _ev(A > 1, col) == [0, 0, 1, 0]
    assert _ev(not_(any_of(A <= 0.5, A >= 1.5)), col) == _ev(all_of(A > 0.5, A < 1.5), col) == [0, 1, 0, 0]
    # A known true part decides an any_of even where another part is NaN; all_of needs every part.
    b = feature("b")
    f = _one([1.0, 1.0])
    f[1, :, 0] = [nan, 0.0]
    assert evaluate(any_of(A >= 1, b >= 1), kstack(f), INDEX)[:, 0].tolist() == [1, 1]
    assert evaluate(not_(all_of(A >= 1, b >= 1)), kstack(f), INDEX)[:, 0].tolist() == [0, 1]


def test_bad_rules_are_named():
    with pytest.raises(RuleError, match="1 <= k <= 2"):
        k_of(3, A >= 1, A <= 2)
    with pytest.raises(RuleError, match="n >= 1"):
        held(A >= 1, 0)
    with pytest.raises(RuleError, match="conditions or rules"):
        all_of(A >= 1, True)
    with pytest.raises(RuleError, match="not in the stack"):
        evaluate(feature("zz") >= 1, np.zeros((3, 1, 2)), INDEX)


def test_labels_read_as_written():
    r = all_of(any_of(A <= -0.1, held(feature("b") >= 2, 3)), k_of(2, A > 0, ~(feature("c") < 1), turns_true(A >= 1)))
    assert str(r) == ("all(any(a() <= -0.1, held(b() >= 2, 3)), 2_of(a() > 0, not(c() < 1), "
                      "turns_true(a() >= 1)))")


# ------------------------------------------------------------------ sweeps
@st.composite
def grids(draw):
    """A rule tree with numbered parameters, and several parameter sets of it."""
    tree = draw(TREES)
    n = draw(st.integers(2, 6))
    return [draw(_vary(tree)) for _ in range(n)]


def _vary(tree):
    """Random thresholds, k's and n's on the structure of `tree`."""
    if isinstance(tree, Cond):
        return st.sampled_from([-1.0, -0.5, 0.0, 0.3, 1.0, np.inf]).map(lambda th: Cond(tree.feature, tree.op, th))
    if isinstance(tree, Rule):
        kids = st.tuples(*[_vary(c) for c in tree.conds])
        return kids.flatmap(lambda cs: st.integers(1, len(cs)).map(lambda k: Rule(cs, k)))
    if isinstance(tree, Held):
        return st.builds(Held, _vary(tree.x), st.integers(1, 4))
    return _vary(tree.x).map(type(tree))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=grids(), feats=panels())
def test_a_groups_loose_rule_holds_wherever_a_member_does(members, feats):
    from backtest.kernels.rules import rule_panel

    grid = stack_rules([compile_rule(m, dict(INDEX)) for m in members])
    group, loose = loosest(grid)
    kf = kstack(feats)
    for p, m in enumerate(members):
        assert not (holds(m, feats) & ~rule_panel(kf, loose.row(group[p])).T).any(), str(m)


STRATEGY = '''
from backtest.rules import all_of, any_of, feature, held, k_of, not_, turns_true
from backtest.strategy import Param

NAME = "nested"
HELP = "a nested rule for the sweep test"
PARAMS = (
    Param("dip", float, 0.05, 0.0, 0.9, ""),
    Param("flow_z", float, 1.0, -5.0, 5.0, ""),
    Param("n", int, 2, 1, 10, ""),
    Param("k", int, 2, 1, 3, ""),
    Param("fade", float, 0.0, -5.0, 5.0, ""),
)


def entry(p):
    flow = feature("sb_z", window=40)
    return k_of(p.k, any_of(feature("drawdown", window=20) <= -p.dip, held(flow >= p.flow_z, p.n)),
                not_(turns_true(flow <= p.fade)), feature("drawdown", window=10) >= -0.4)


def exit(p):
    return any_of(held(feature("sb_z", window=40) <= p.fade, 2), ~(feature("drawdown", window=5) <= -0.01))
'''


@pytest.mark.parametrize("mode", ["independent", "portfolio"])
def test_swept_nested_rules_equal_single_runs(tmp_path, monkeypatch, mode):
    from backtest.config import load_config
    from backtest.pipeline import run
    from backtest.sweep import combo_config, run_sweep

    pkg = tmp_path / "user_strats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nested.py").write_text(textwrap.dedent(STRATEGY))
    monkeypatch.syspath_prepend(str(tmp_path))
    grid = ('dip = [0.04, 0.1]\nflow_z = [0.5, 1.5]\nn = [1, 3]\nk = [2, 3]\nfade = [-0.5, 0.5]\n'
            '"exits.max_hold" = [0, 6]\n')
    text = SWEEP_BASE.format(grid=grid, mode=mode, seed=7, chunk=16).replace('name = "southbound_dip"',
                                                                         'name = "user_strats.nested"')
    text = text.replace("dip_window = 20\n", "")
    (tmp_path / "s.toml").write_text(text)
    cfg = load_config(tmp_path / "s.toml")
    res = run_sweep(cfg, tmp_path / "out", workers=1, progress=False)
    assert res.table["trades"].sum() > 0
    rng = np.random.default_rng(1)
    for p in rng.choice(res.grid.size, 5, replace=False):
        combo = res.grid.combo(int(p))
        single = run(combo_config(cfg, combo)).result
        row = res.table.iloc[p]
        want = single_run_metrics(single.total_equity, single.total_cash, single.trades)
        for name, value in want.items():
            np.testing.assert_allclose(row[name], value, rtol=1e-9, atol=1e-12, err_msg=f"combo {p} {name}")


def test_a_grid_that_changes_the_rule_structure_is_refused():
    with pytest.raises(RuleError, match="structure differs"):
        stack_rules([compile_rule(all_of(A >= 1, A <= 2), dict(INDEX)), compile_rule(any_of(A >= 1), dict(INDEX))])


def test_a_nan_threshold_is_refused_naming_the_condition():
    with pytest.raises(RuleError, match=r"drawdown\(window=20\) <= nan: the threshold is not a number"):
        feature("drawdown", window=20) <= float("nan")
