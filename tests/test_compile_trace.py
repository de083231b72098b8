"""compile_sweep's traced path (one symbolic call of the strategy for the whole grid) and its
fall-back to one call per parameter set. Oracle: `reference` of test_compile_sweep, which calls
`strategy.plan` for every combination and stacks the compiled rules (what compile_sweep did
before either path existed). Every result must equal it bit for bit, whichever path ran."""

import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backtest.sweep as S
from backtest.errors import ConfigError
from backtest.grid import build_grid
from backtest.trace import Escape, symbols
from test_compile_sweep import _prepared, _same, reference

ARITH = '''
from backtest.rules import all_of, any_of, feature, held, k_of, not_, turns_true
from backtest.strategy import Param

NAME = "arith"
HELP = "thresholds, windows, k and n computed from the parameters by arithmetic"
PARAMS = (
    Param("w", int, 10, 2, 60, "window"),
    Param("a", float, 0.1, -5.0, 5.0, "a"),
    Param("b", float, 2.0, -5.0, 5.0, "b"),
    Param("k", int, 1, 1, 5, "k of the two flow conditions"),
    Param("n", int, 2, 1, 5, "bars held"),
)


def entry(p):
    return all_of(feature("drawdown", window=p.w) <= -p.a * 2 + 0.01,
                  k_of(p.k, held(feature("sb_z", window=3 * p.w) >= p.b / 4 - p.a, p.n),
                       not_(turns_true(feature("ret_z", window=p.w + 1, vol_window=60) > 1 - p.b))))


def exit(p):
    return any_of(feature("sb_z", window=60) < +p.b, feature("drawdown", window=2 * p.w) >= (p.a - p.b) / 3)
'''

BRANCHY = '''
import math

import numpy as np

from backtest.rules import all_of, feature
from backtest.strategy import Param

NAME = "branchy"
HELP = "Python-side uses of the parameters that a trace cannot follow"
PARAMS = (Param("x", float, 0.1, 0.0, 0.9, "x"), Param("w", int, 20, 2, 60, "window"),
          Param("how", int, 0, 0, 6, "which way"))


def entry(p):
    if p.how == 0:  # a branch: features change with the value, the shape does not
        thr, ref = -p.x, feature("drawdown", window=p.w if p.x < 0.2 else 2 * p.w)
    elif p.how == 1:  # a math function
        thr, ref = -math.sqrt(p.x), feature("drawdown", window=p.w)
    elif p.how == 2:  # numpy on a parameter
        thr, ref = float(-np.log1p(p.x)), feature("drawdown", window=p.w)
    elif p.how == 3:  # an exception swallowed by the strategy
        try:
            thr = -round(p.x, 2)
        except BaseException:  # noqa: B036
            thr = -0.1
        ref = feature("drawdown", window=p.w)
    elif p.how == 4:  # a check of the type, not of the value
        thr, ref = (-p.x if type(p.x) is float else -0.05), feature("drawdown", window=p.w)
    elif p.how == 5:  # a window by integer division
        thr, ref = -p.x, feature("drawdown", window=p.w // 2 + 2)
    else:  # the parameter as a dictionary key
        thr, ref = {0.05: -0.05}.get(p.x, -p.x), feature("drawdown", window=p.w)
    return all_of(ref <= thr, feature("sb_z", window=60) >= 0.5)
'''

MODULES = {"arith": ARITH, "branchy": BRANCHY}


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    pkg = tmp_path / "user_trace"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in MODULES.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for m in [m for m in sys.modules if m.startswith("user_trace")]:
        del sys.modules[m]


def _compile(tmp_path, name: str, grid_text: str, monkeypatch):
    """compile_sweep's plan, the per-combination reference, and whether the traced path was used."""
    prep = _prepared(tmp_path, name, grid_text)
    grid = build_grid(prep.cfg, prep.module)
    used = []
    traced = S._traced
    monkeypatch.setattr(S, "_traced", lambda *a: used.append(traced(*a)) or used[-1])
    sp = S.compile_sweep(prep, grid)
    return sp, reference(prep, grid), bool(used) and used[-1] is not None


def _equal(sp, ref) -> bool:
    """Equal to the reference, bit for bit, in writable C arrays (numba compiles its kernels again
    for read-only ones)."""
    refs, entry, exit_, r_feat, r_sign, exits = ref
    arrays = [*(a for a in (*sp.entry, *sp.exit) if isinstance(a, np.ndarray)), sp.r_feat, sp.r_sign, sp.exits]
    assert all(a.flags.writeable and a.flags.c_contiguous for a in arrays)
    part = sp.take(slice(0, 1))
    assert all(a.flags.writeable for a in (part.entry.feat, part.entry.bound, part.r_feat, part.exits))
    return (sp.refs == refs and _same(tuple(sp.entry), tuple(entry)) and _same(tuple(sp.exit), tuple(exit_))
            and _same(sp.r_feat, r_feat) and _same(sp.r_sign, r_sign) and _same(sp.exits, exits))


def _values(draw, lo, hi, kind, size):
    pool = st.integers(lo, hi) if kind is int else st.floats(lo, hi, allow_nan=False).map(lambda x: round(x, 3))
    return draw(st.lists(pool, min_size=1, max_size=size, unique=True))


@st.composite
def arith_grids(draw):
    keys = {"w": (2, 60, int), "a": (-2.0, 2.0, float), "b": (-2.0, 2.0, float), "k": (1, 2, int), "n": (1, 5, int)}
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), min_size=1, max_size=4, unique=True))
    lines = [f"{k} = {_values(draw, *keys[k], 4)!r}" for k in chosen]
    if draw(st.booleans()):
        lines.append(f'"exits.max_hold" = {_values(draw, 0, 30, int, 3)!r}')
    return "\n".join(lines)


@st.composite
def shipped_grids(draw):
    name = draw(st.sampled_from(["southbound_dip", "flow_discount", "adr_discount", "slump_flow"]))
    from backtest.strategy import load_strategy

    params = [p for p in load_strategy(name).PARAMS]
    chosen = draw(st.lists(st.sampled_from(params), min_size=1, max_size=3, unique_by=lambda p: p.name))
    lines = []
    for p in chosen:
        lo, hi = p.lo, min(p.hi, p.lo + 60) if p.type is int else p.hi
        lines.append(f"{p.name} = {_values(draw, lo, hi, p.type, 4)!r}")
    return name, "\n".join(lines)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(grid_text=arith_grids())
def test_traced_rows_equal_a_plain_call_per_combination(tmp_path, user_modules, monkeypatch, grid_text):
    sp, ref, traced = _compile(tmp_path, "user_trace.arith", grid_text, monkeypatch)
    assert _equal(sp, ref), grid_text
    assert traced, grid_text  # arithmetic, k_of(p.k), held(n=p.n): all followed by the trace


@SETTINGS
@given(case=shipped_grids())
def test_shipped_strategies_are_traced_and_equal_the_reference(tmp_path, monkeypatch, case):
    name, grid_text = case
    try:
        sp, ref, traced = _compile(tmp_path, name, grid_text, monkeypatch)
    except ConfigError as exc:  # a grid the strategy refuses (e.g. k above its number of conditions)
        with pytest.raises(ConfigError) as want:
            prep = _prepared(tmp_path, name, grid_text)
            reference(prep, build_grid(prep.cfg, prep.module))
        assert str(want.value) in str(exc) or str(exc) in str(want.value)
        return
    assert _equal(sp, ref), grid_text
    assert traced, grid_text


@pytest.mark.parametrize("how", range(7))
def test_a_strategy_the_trace_cannot_follow_falls_back_to_one_call_per_set(tmp_path, user_modules, monkeypatch, how):
    grid_text = f"how = {how}\nx = [0.05, 0.1, 0.15, 0.25, 0.3]\nw = [10, 20]"
    sp, ref, traced = _compile(tmp_path, "user_trace.branchy", grid_text, monkeypatch)
    assert _equal(sp, ref)
    assert not traced  # each way needs the values (4: the type check, caught by comparing with real calls)


def test_rules_whose_shape_changes_with_a_parameter_are_refused_as_by_the_reference(tmp_path, monkeypatch):
    from test_compile_sweep import SHAPES

    MODULES["shapes"] = SHAPES
    try:
        pkg = tmp_path / "user_trace"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "shapes.py").write_text(textwrap.dedent(SHAPES))
        monkeypatch.syspath_prepend(str(tmp_path))
        prep = _prepared(tmp_path, "user_trace.shapes", "dip = [0.05, 0.1]\nmore = [0, 1]")
        with pytest.raises(ConfigError, match="builds rules of different shapes across the grid"):
            S.compile_sweep(prep, build_grid(prep.cfg, prep.module))
    finally:
        del MODULES["shapes"]
        for m in [m for m in sys.modules if m.startswith("user_trace")]:
            del sys.modules[m]


def test_a_bad_value_in_one_set_raises_what_the_per_set_calls_raise(tmp_path, user_modules):
    """A set whose value a real call refuses (here k above the number of conditions in the middle of
    the grid) gives the per-set path's error, not a traced row."""
    grid_text = "k = [1, 3, 2]\nw = [5, 10]"
    prep = _prepared(tmp_path, "user_trace.arith", grid_text)
    grid = build_grid(prep.cfg, prep.module)
    with pytest.raises(ConfigError) as got:
        S.compile_sweep(prep, grid)
    with pytest.raises(ConfigError) as want:
        S._per_set(prep, ["k", "w"], [[1, 3, 2], [5, 10]])
    assert str(got.value) == str(want.value) and "1 <= k <= 2" in str(got.value)


def test_a_symbol_escapes_on_any_use_of_its_value():
    trace, s = symbols(["x", "w"], [float, int])
    x, w = s["x"], s["w"]
    assert isinstance(x, float) and isinstance(w, int)  # as the values would be
    assert (-x * 2 + 0.5).evaluate({"x": 0.25}) == -0.25 * 2 + 0.5
    assert (3 * w + 1).evaluate({"w": 7}) == 22 and (w / 4).evaluate({"w": 2}) == 0.5
    for use in (bool, float, int, hash, str, repr, abs, round, lambda v: v < 1, lambda v: v == 1,
                lambda v: v ** 2, lambda v: v // 2, lambda v: v % 2, lambda v: f"{v}", lambda v: np.log(v),
                lambda v: np.float64(2.0) * v, lambda v: v.real, lambda v: [1, 2][v], lambda v: {v: 1}):
        trace.escaped = False
        with pytest.raises(Escape):
            use(x)
        assert trace.escaped
