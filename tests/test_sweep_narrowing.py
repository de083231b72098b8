"""A combination's results do not depend on its neighbours in a chunk.

The independent sweep shares work between neighbouring combinations: an entry rule's signals are
narrowed once for the next combination that enters alike, or narrowed again from them for a
tighter rule (`kernels.sweep._implies`). Whatever the order and spacing of the combinations
(the whole grid, every k-th, reversed, shuffled, tiny tiles), every per-symbol and per-combination
array of a combination must be bit-identical to its row in the plain run of the whole grid, which
tests/test_sweep_kernel.py checks against the single-run engine (itself checked against
tests/oracle_sim.py and vectorbt).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.kernels.sweep import sweep_independent
from backtest.rules import loosest
from tests.test_sweep_kernel import FLAT, HK, _case

_CASES = {}


def _inputs(tmp_path_factory, seed, cost):
    key = (seed, cost)
    if key not in _CASES:
        _CASES[key] = _case(tmp_path_factory.mktemp("narrow"), seed, symbols=7, cost=cost)
    return _CASES[key]


def _run(m, ex, sp, edges, rows, lanes, tile):
    part = sp.take(np.asarray(rows, dtype=np.int64))
    group, loose = loosest(part.entry)
    return sweep_independent(m, ex, part.entry, part.exit, part.exits, group, loose, edges, lanes, tile)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from([3, 11]), cost=st.sampled_from([HK, FLAT]), order=st.sampled_from(
    ["every", "reversed", "shuffled"]), step=st.integers(1, 7), lanes=st.integers(1, 3), tile=st.integers(0, 3),
    shuffle_seed=st.integers(0, 2**16))
def test_rows_equal_the_whole_grids(tmp_path_factory, seed, cost, order, step, lanes, tile, shuffle_seed):
    m, ex, sp, edges = _inputs(tmp_path_factory, seed, cost)
    n_p = sp.exits.shape[0]
    whole = _run(m, ex, sp, edges, np.arange(n_p), 1, 0)
    rows = np.arange(0, n_p, step)
    if order == "reversed":
        rows = rows[::-1]
    elif order == "shuffled":
        rows = np.random.default_rng(shuffle_seed).permutation(rows)
    got = _run(m, ex, sp, edges, rows, lanes, tile)
    for part, full in zip(got, whole):
        assert part.tobytes() == np.ascontiguousarray(full[rows]).tobytes()
