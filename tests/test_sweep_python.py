"""The sweep's Python around the kernel, vectorised: the loosest rule per group of combinations
(`rules.loosest`), the per-symbol medians over a stack of metrics, listing years from datetime64
arrays. Oracles: the per-group loop `loosest` was before, pandas' groupby median, pandas'
DatetimeIndex arithmetic (`metrics.calendar_years`)."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.metrics import calendar_years
from backtest.ranking import SYMBOL_METRICS, listing_years, symbol_medians
from backtest.rules import any_of, compile_rule, feature, held, k_of, loosest, not_, polarity, stack_rules, turns_true


def loosest_loop(grid):
    """`rules.loosest` as it was: np.unique groups, then one masked reduction per group."""
    leaf_pol, slot_pol = polarity(grid.row(0))
    both_b, both_c = leaf_pol == 0, slot_pol == 0
    key = np.hstack([grid.feat, np.ascontiguousarray(grid.bound[:, both_b]).view(np.int64), grid.count[:, both_c]])
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = np.ascontiguousarray(group.reshape(-1), dtype=np.int64)
    bound, count = grid.bound[first].copy(), grid.count[first].copy()
    for g in range(len(first)):
        members = group == g
        b, c = grid.bound[members], grid.count[members]
        bound[g, leaf_pol > 0] = np.fmin.reduce(b[:, leaf_pol > 0], axis=0)
        bound[g, leaf_pol < 0] = np.maximum.reduce(b[:, leaf_pol < 0], axis=0)
        count[g, slot_pol > 0] = c[:, slot_pol > 0].min(axis=0)
        count[g, slot_pol < 0] = c[:, slot_pol < 0].max(axis=0)
    return group, grid._replace(feat=np.ascontiguousarray(grid.feat[first]), bound=bound, count=count)


VALUES = st.sampled_from([-1.0, -0.5, -0.0, 0.0, 0.5, 1.0, np.inf, -np.inf])


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), VALUES, VALUES, VALUES, st.integers(1, 3),
                               st.integers(1, 2)), min_size=1, max_size=40),
       nan=st.lists(st.booleans(), min_size=160, max_size=160))
def test_loosest_equals_the_per_group_loop(rows, nan):
    """Groups by window (features) and by the threshold inside turns_true; the loosest bounds, k
    and n of each group, under a negation too; NaN bounds and signed zeros included."""
    rules = []
    for w1, w2, t1, t2, t3, n, k in rows:
        rule = k_of(k, feature("drawdown", window=5 + w1) <= t1, held(feature("sb_z", window=20 + w2) >= t2, n),
                    not_(any_of(feature("ret_z", window=5, vol_window=60) > t3,
                                turns_true(feature("drawdown", window=9) >= t1))))
        rules.append(compile_rule(rule, {}))
    grid = stack_rules(rules)
    grid = grid._replace(bound=np.where(np.array(nan[:grid.bound.size]).reshape(grid.bound.shape), np.nan, grid.bound))
    got, want = loosest(grid), loosest_loop(grid)
    assert got[0].tobytes() == want[0].tobytes()
    for a, b in zip(got[1], want[1]):
        assert (a == b) if isinstance(a, bool) else (a.dtype == b.dtype and a.tobytes() == b.tobytes())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_s=st.integers(0, 9))
def test_symbol_medians_of_a_stack_equal_pandas_groupby_median(seed, n_s):
    rng = np.random.default_rng(seed)
    n_c = 30
    m = {k: rng.normal(size=(n_c, n_s)).round(int(rng.integers(1, 4))) + 0.0 for k in SYMBOL_METRICS}
    m["trades"] = rng.integers(0, 3, size=(n_c, n_s))
    for k in ("sharpe", "sortino", "win_rate"):
        m[k][rng.random((n_c, n_s)) < 0.2] = np.nan
    got = symbol_medians(m)
    df = pd.DataFrame({"combo": np.repeat(np.arange(n_c), n_s), **{k: v.reshape(-1) for k, v in m.items()}})
    want = df[df["trades"] > 0].groupby("combo")[list(SYMBOL_METRICS)].median().reindex(np.arange(n_c))
    for k in SYMBOL_METRICS:
        assert got[f"sym_{k}"].tobytes() == want[k].to_numpy().tobytes(), k


def test_listing_years_of_datetime64_arrays_of_any_unit_equal_calendar_years():
    rng = np.random.default_rng(3)
    days = np.sort(rng.choice(np.arange(np.datetime64("2001-01-01"), np.datetime64("2030-12-31")), 300, replace=False))
    for dates in (days, days.astype("datetime64[s]") + rng.integers(0, 86_400, 300).astype("timedelta64[s]"),
                  days.astype("datetime64[ns]"), np.unique(days.astype("datetime64[M]")), pd.DatetimeIndex(days)):
        first = rng.integers(0, len(dates), 100)
        want = np.array([calendar_years(dates[a:]) for a in first])
        assert listing_years(first, dates).tobytes() == want.tobytes()


FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e16, 1e-5, 0.1]),
                   st.integers(-10**6, 10**6).map(lambda i: i / 1000))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(0, 25), kinds=st.lists(st.sampled_from("if"), min_size=2, max_size=6))
def test_results_csv_is_pandas_to_csv_byte_for_byte(tmp_path_factory, data, n, kinds):
    import backtest.sweep as S

    names = data.draw(st.lists(st.sampled_from(["combo", "dip", "a,b", 'q"x', "exits.max_hold", "sharpe", "é"]),
                               min_size=len(kinds), max_size=len(kinds)))  # repeats, quoting, non-ASCII
    cols = [np.array(data.draw(st.lists(st.integers(-2**63, 2**63 - 1) if k == "i" else FLOATS, min_size=n,
                                        max_size=n)), dtype=np.int64 if k == "i" else np.float64) for k in kinds]
    table = pd.DataFrame(dict(enumerate(cols)))
    table.columns = names
    d = tmp_path_factory.mktemp("csv")
    table.to_csv(d / "want.csv", index=False)
    old, S.CSV_ROWS = S.CSV_ROWS, 7  # several blocks of rows
    try:
        S._write_csv(table, d / "got.csv")
    finally:
        S.CSV_ROWS = old
    assert (d / "got.csv").read_bytes() == (d / "want.csv").read_bytes()


def test_results_table_keeps_a_parameter_that_shares_a_metrics_name():
    """A strategy parameter may be called like a metric (`cagr`, `trades`): the table keeps both
    columns, the parameter's values from the grid and the metric's from the kernel (CAGR over the
    calendar span)."""
    import backtest.sweep as S
    from backtest.grid import Grid
    from backtest.kernels.metrics import METRIC_NAMES
    from backtest.ranking import calendar_cagr

    grid = Grid(("cagr", "trades"), (np.array([0.1, 0.2, 0.3]), np.array([5, 7], dtype=np.int64)))
    rng = np.random.default_rng(1)
    combo = rng.normal(size=(6, len(METRIC_NAMES))) * 0.1
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2023-06-30"))
    table = S._table(grid, combo, METRIC_NAMES, dates, None)
    assert list(table.columns) == ["combo", "cagr", "trades", *METRIC_NAMES]
    assert table.iloc[:, 1].tolist() == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3] and table.iloc[:, 2].tolist() == [5, 7] * 3
    j = 3 + METRIC_NAMES.index("cagr")
    assert table.iloc[:, j].to_numpy().tobytes() == calendar_cagr(combo[:, 0].copy(), dates).tobytes()
    assert table.iloc[:, 3 + METRIC_NAMES.index("trades")].tolist() == combo[:, METRIC_NAMES.index("trades")] \
        .astype(np.int64).tolist()
    want = (1.0 + combo[:, 0]) ** (1.0 / calendar_years(pd.DatetimeIndex(dates))) - 1.0
    assert table.iloc[:, j].to_numpy().tobytes() == want.tobytes()


def test_block_sums_summed_chunk_by_chunk_equal_the_memory_map_summed(tmp_path, monkeypatch):
    """`run_sweep`'s sums per block, summed from each chunk as block_sums.npy is written, equal the
    file's sub-block sums summed; with one sub-block per block they are the memory map itself."""
    import backtest.sweep as S
    from test_sweep import _config

    cfg = _config(tmp_path, 'dip = [0.03, 0.06, 0.09]\nflow_z = [0.5, 1.5]\n"exits.max_hold" = [0, 4]\n', chunk=5)
    for fine_sums, name in ((S.FINE_SUMS, "many"), (1, "one")):  # FINE_SUMS = 1: one sub-block per block
        monkeypatch.setattr(S, "FINE_SUMS", fine_sums)
        res = S.run_sweep(cfg, tmp_path / name, workers=1, progress=False)
        fine = np.load(tmp_path / name / "chunks" / "block_sums.npy")
        m = fine.shape[1] // cfg.sweep.blocks
        assert (m > 1) == (name == "many")
        want = fine.reshape(len(fine), cfg.sweep.blocks, m, fine.shape[-1]).sum(axis=2)
        assert np.asarray(res.sums).tobytes() == want.tobytes() and res.sums.shape == want.shape
        assert (res.sums is res.fine_sums) == (name == "one")
