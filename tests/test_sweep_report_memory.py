"""The sweep report's statistics read the block sums a group of combinations at a time (at a
million combinations the sums are a 400 MB memory-mapped file): PBO, walk-forward and the deflated
Sharpe ratio computed that way equal straightforward in-memory computations over the whole arrays
(per-split argmax and scipy's average ranks, per-step argmax, the eigenvalues of the P x P
correlation matrix), on random sweeps with ties, flat combinations and a subset of eligible rows.

Returns are multiples of 2^-10, so every power sum is exact in any order of addition: equal inputs
give bit-equal statistics however the rows are grouped, and the comparisons can be exact."""

from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from backtest import robustness as rb
from backtest import sweep_report as sr


def _sums(seed: int, n_p: int = 60, n_s: int = 6, n_t: int = 600) -> np.ndarray:
    """(P, S, 5) block power sums of random returns: a common factor, two flat combinations
    (never trade) and copies of the best row (exact ties for first place)."""
    rng = np.random.default_rng(seed)
    r = rng.integers(-40, 41, size=(n_p, n_t)) + rng.integers(-20, 21, size=(1, n_t))
    r = (r + rng.integers(0, 3, size=(n_p, 1))) / 1024.0
    r[[3, 17]] = 0.0
    r[5] += 8 / 1024.0  # the best by far, and its copies tie with it (in other groups of rows)
    r[[9, 30, 41]] = r[5]
    blocks = np.array_split(r, n_s, axis=1)
    return np.stack([np.stack([np.full(n_p, b.shape[1], dtype=np.float64), *((b**k).sum(axis=1) for k in range(1, 5))],
                              axis=-1) for b in blocks], axis=1)


@pytest.fixture(params=[0, 1, 2])
def case(request, tmp_path):
    """(in-memory sums, the same sums memory-mapped read-only from an .npy file, eligible rows)."""
    sums = _sums(request.param)
    np.save(tmp_path / "block_sums.npy", sums)
    mapped = np.load(tmp_path / "block_sums.npy", mmap_mode="r")
    rows = np.sort(np.random.default_rng(request.param).choice(len(sums), 45, replace=False))
    return sums, mapped, rows


def _args(sums):
    return [sums[..., i] for i in range(3)], {"s3": sums[..., 3], "s4": sums[..., 4]}


def _perf(x: np.ndarray, blocks: np.ndarray, metric: str) -> np.ndarray:
    """The metric of every row of (P, S, 5) sums `x` over the blocks of the mask `blocks`."""
    n, s1, s2, s3, s4 = (x[:, blocks, i].sum(axis=1) for i in range(5))
    return rb._metric(n, s1, s2, metric, s3, s4)


def _best(v: np.ndarray) -> int:
    """First index of the highest value; NaN ranks lowest."""
    return int(np.argmax(np.where(np.isnan(v), -np.inf, v)))


def _naive_pbo(sums, rows, metric):
    """Per in-sample half (a tuple of blocks): (winner's row, its OOS logit, its IS and OOS values)."""
    x = sums[rows]
    n_s = x.shape[1]
    out = {}
    for half in combinations(range(n_s), n_s // 2):
        ins = np.isin(np.arange(n_s), half)
        perf = [_perf(x, m, metric) for m in (ins, ~ins)]
        b = _best(perf[0])
        rank = stats.rankdata(np.where(np.isnan(perf[1]), -np.inf, perf[1]), method="average")[b]
        w = rank / (len(rows) + 1.0)
        out[half] = (int(rows[b]), float(np.log(w / (1 - w))), perf[0][b], perf[1][b])
    return out


@pytest.mark.parametrize("metric", ["sharpe", "total_return"])
def test_pbo_by_groups_of_rows_equals_the_whole_array_computation(case, metric, monkeypatch):
    sums, mapped, rows = case
    (n, s1, s2), extra = _args(sums)
    whole = rb.pbo_cscv(n, s1, s2, metric=metric, rows=rows, **extra)
    monkeypatch.setattr(rb, "ROWS", 7)  # groups of 7 combinations, read from the memory map
    (n, s1, s2), extra = _args(mapped)
    grouped = rb.pbo_cscv(n, s1, s2, metric=metric, rows=rows, **extra)
    for field in ("logits", "is_best", "is_perf", "oos_perf", "splits"):
        np.testing.assert_array_equal(getattr(grouped, field), getattr(whole, field), err_msg=field)
    assert (grouped.pbo, grouped.prob_oos_loss) == (whole.pbo, whole.prob_oos_loss)
    naive = _naive_pbo(sums, rows, metric)  # every split: all C(S, S/2) halves
    assert len(naive) == len(grouped.logits)
    for k, mask in enumerate(grouped.splits):
        best, logit, v_is, v_oos = naive[tuple(np.flatnonzero(mask))]
        assert grouped.is_best[k] == best and grouped.logits[k] == pytest.approx(logit, rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal([grouped.is_perf[k], grouped.oos_perf[k]], [v_is, v_oos])


def test_pbo_over_a_subset_equals_pbo_of_the_subset(case, monkeypatch):
    """`rows` chooses among those combinations only: the same as passing their rows alone."""
    sums, mapped, rows = case
    monkeypatch.setattr(rb, "ROWS", 5)
    sub = sums[rows]
    alone = rb.pbo_cscv(*(sub[..., i] for i in range(3)))
    within = rb.pbo_cscv(*(mapped[..., i] for i in range(3)), rows=rows)
    np.testing.assert_array_equal(within.is_best, rows[alone.is_best])
    np.testing.assert_array_equal(within.logits, alone.logits)


@pytest.mark.parametrize("metric", ["sharpe", "total_return"])
@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward_by_groups_of_rows_equals_per_step_argmax(case, metric, anchored, monkeypatch):
    sums, mapped, rows = case
    monkeypatch.setattr(rb, "ROWS", 4)
    (n, s1, s2), extra = _args(mapped)
    wf = rb.walk_forward(n, s1, s2, train_blocks=2, anchored=anchored, metric=metric, rows=rows, **extra)
    x = sums[rows]

    def perf(blocks):
        return _perf(x, np.isin(np.arange(x.shape[1]), blocks), metric)

    for k, train in enumerate(wf.train):
        p = perf(train)
        assert wf.chosen[k] == rows[_best(p)]
        np.testing.assert_array_equal(wf.is_perf[k], p[_best(p)])
    assert wf.reference == rows[_best(perf(np.arange(x.shape[1])))]
    (n, s1, s2), extra = _args(sums[rows])
    alone = rb.walk_forward(n, s1, s2, train_blocks=2, anchored=anchored, metric=metric, **extra)
    np.testing.assert_array_equal(wf.chosen, rows[alone.chosen])
    np.testing.assert_array_equal(wf.oos_perf, alone.oos_perf)
    assert (wf.stitched, wf.reference_oos) == (alone.stitched, alone.reference_oos)


def test_no_rows_to_choose_from_is_an_error(case):
    _, mapped, _ = case
    (n, s1, s2), _ = _args(mapped)
    with pytest.raises(ValueError, match="at least one combination"):
        rb.walk_forward(n, s1, s2, train_blocks=2, rows=np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="P >= 2"):
        rb.pbo_cscv(n, s1, s2, rows=np.array([4]))


def test_deflated_from_a_memory_map_equals_the_in_memory_computation(case, monkeypatch):
    sums, mapped, _ = case
    whole = sr.deflated(sums, sums)
    monkeypatch.setattr(rb, "ROWS", 6)
    grouped = sr.deflated(mapped, mapped)
    for field in ("sr", "n_obs", "skew", "kurt", "psr0"):
        np.testing.assert_array_equal(getattr(grouped, field), getattr(whole, field), err_msg=field)
    assert grouped.var == whole.var
    # Nyholt's M_eff from the eigenvalues of the P x P correlation matrix (what the report must not build)
    means = sums[..., 1] / sums[..., 0]
    live = means[means.std(axis=1) > 0]
    lam = np.linalg.eigvalsh(np.corrcoef(live))
    m = len(live)
    n_eff = 1 + (m - 1) * (1 - np.var(lam, ddof=1) / m)
    assert grouped.n_trials == pytest.approx(n_eff, rel=1e-9)
    assert whole.n_trials == pytest.approx(n_eff, rel=1e-9)
    np.testing.assert_allclose(grouped.dsr, whole.dsr, rtol=1e-9, atol=1e-12)
    moms = rb.moments(*(sums[..., i] for i in range(5)))
    np.testing.assert_array_equal(grouped.skew, moms.skew)


def test_effective_trials_gram_adds_over_groups_of_rows():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 8)) + rng.normal(size=(1, 8))
    x[4] = 1.0  # constant: left out
    x[7, 3] = np.nan  # not finite: left out
    parts = [rb.trials_gram(x[a:a + 9]) for a in range(0, 50, 9)]
    gram, m = sum(g for g, _ in parts), sum(k for _, k in parts)
    assert gram.shape == (8, 8) and m == 48
    assert rb.trials_from_gram(gram, m) == pytest.approx(rb.effective_trials(x), rel=1e-12)


def test_row_blocks_reads_a_memory_map_into_memory_group_by_group(case):
    sums, mapped, rows = case
    seen = []
    for ids, (blk,) in rb.row_blocks([mapped], size=8):
        assert not isinstance(blk, np.memmap) and blk.flags.owndata and blk.flags.c_contiguous
        np.testing.assert_array_equal(blk, sums[ids])
        seen.append(ids)
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(len(sums)))
    got = [(ids, blk) for ids, (blk,) in rb.row_blocks([mapped[..., 1]], rows=rows, size=8)]
    assert all(len(ids) <= 8 for ids, _ in got)
    np.testing.assert_array_equal(np.concatenate([ids for ids, _ in got]), rows)
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), sums[rows, :, 1])
    assert rb._mapping(mapped[..., 1]) is not None and rb._mapping(sums) is None
    np.testing.assert_array_equal(mapped, sums)  # the map still reads after its pages were released
