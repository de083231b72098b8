"""backtest/robustness.py (docs/robustness.md): moments and Sharpe from block power sums, PSR and
DSR, PBO by CSCV and walk-forward selection.

Oracles: scipy.stats and backtest.metrics on the concatenated raw returns; hand-worked tables for
PBO and walk-forward; numerical integration and Monte Carlo for the expected maximum Sharpe and
the calibration of PSR; a direct loop over every CSCV split.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from backtest import metrics
from backtest import robustness as rb
from backtest.robustness import (
    MAX_SPLITS,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    moments,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    sharpe_from_sums,
    walk_forward,
)


def power_sums(blocks_per_combo: list[list[np.ndarray]]) -> list[np.ndarray]:
    """(P, S) arrays n, s1..s4 from raw returns: blocks_per_combo[p][s] is a 1-D array."""
    return [np.array([[np.sum(np.asarray(b, dtype=np.float64) ** k) if k else len(b)
                       for b in combo] for combo in blocks_per_combo], dtype=np.float64)
            for k in range(5)]


def split_returns(r: np.ndarray, n_blocks: int, rng=None) -> list[list[np.ndarray]]:
    """Cut each row of a (P, T) return matrix into n_blocks contiguous blocks (equal, or random
    lengths when rng is given)."""
    t = r.shape[1]
    if rng is None:
        edges = np.linspace(0, t, n_blocks + 1).astype(int)
    else:
        edges = np.r_[0, np.sort(rng.choice(np.arange(1, t), n_blocks - 1, replace=False)), t]
    return [[row[a:b] for a, b in zip(edges[:-1], edges[1:])] for row in r]


# ---------------------------------------------------------------- moments and Sharpe

# daily returns to 1e-6 (0.01 bp): realistic, and free of underflow in the fourth power sums
returns_lists = st.lists(st.floats(-0.3, 0.3, allow_nan=False).map(lambda v: round(v, 6)),
                         min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(blocks=st.lists(returns_lists, min_size=1, max_size=8), data=st.data())
def test_moments_and_sharpe_match_scipy_and_metrics_on_any_union(blocks, data):
    pick = data.draw(st.lists(st.booleans(), min_size=len(blocks), max_size=len(blocks)))
    rf = data.draw(st.sampled_from([0.0, 0.03]))
    n, s1, s2, s3, s4 = power_sums([blocks])
    x = np.concatenate([np.asarray(b, dtype=np.float64) for b, p in zip(blocks, pick) if p] + [[]])
    m = moments(n[0], s1[0], s2[0], s3[0], s4[0], blocks=np.array(pick))
    sr = sharpe_from_sums(n[0], s1[0], s2[0], blocks=np.flatnonzero(pick), risk_free=rf)
    if x.size >= 2 and np.ptp(x) == 0:  # constant: +-inf or NaN, exactly as metrics.sharpe
        np.testing.assert_array_equal(sr, metrics.sharpe(x, risk_free=rf))
    if x.size < 2 or np.std(x) <= 0.05 * np.abs(x).max():
        return  # too short or too close to constant to compare moments (see test below)
    assert m.mean == pytest.approx(np.mean(x), rel=1e-9, abs=1e-15)
    assert m.std == pytest.approx(np.std(x, ddof=1), rel=1e-9)
    assert m.skew == pytest.approx(stats.skew(x), rel=1e-6, abs=1e-7)
    assert m.kurt == pytest.approx(stats.kurtosis(x, fisher=False), rel=1e-6)
    assert sr == pytest.approx(metrics.sharpe(x, risk_free=rf), rel=1e-8, abs=1e-10)


def test_moments_on_realistic_returns_are_exact_to_rounding():
    rng = np.random.default_rng(5)
    r = 0.0005 + 0.02 * rng.standard_t(4, size=(4, 2520))
    edges = np.r_[0, np.sort(rng.choice(np.arange(1, 2520), 11, replace=False)), 2520]
    blocks = [[row[a:b] for a, b in zip(edges[:-1], edges[1:])] for row in r]
    sums = power_sums(blocks)
    for sel in ([0, 3, 4, 11], np.arange(12) % 2 == 0, None):
        mask = np.ones(12, bool) if sel is None else rb._block_mask(sel, 12)
        x = np.array([np.concatenate([b for b, k in zip(row, mask) if k]) for row in blocks])
        m = moments(*sums, blocks=sel)
        np.testing.assert_allclose(m.mean, x.mean(1), rtol=1e-12)
        np.testing.assert_allclose(m.std, x.std(1, ddof=1), rtol=1e-12)
        np.testing.assert_allclose(m.skew, stats.skew(x, axis=1), rtol=1e-9)
        np.testing.assert_allclose(m.kurt, stats.kurtosis(x, axis=1, fisher=False), rtol=1e-10)
        np.testing.assert_allclose(sharpe_from_sums(*sums[:3], blocks=sel),
                                   [metrics.sharpe(row) for row in x], rtol=1e-11)
        np.testing.assert_allclose(sharpe_from_sums(*sums[:3], blocks=sel, periods=1),
                                   x.mean(1) / x.std(1, ddof=1), rtol=1e-11)


def test_flat_constant_short_and_empty_unions():
    # combination 0 never trades (all returns 0), 1 has one return, 2 a constant nonzero return
    # (Sharpe +inf, empyrical's convention, followed by backtest.metrics)
    blocks = [[np.zeros(5), np.zeros(5)], [np.array([0.01]), np.array([])],
              [np.full(5, 0.001), np.full(7, 0.001)]]
    n, s1, s2, s3, s4 = power_sums(blocks)
    m = moments(n, s1, s2, s3, s4)
    sr = sharpe_from_sums(n, s1, s2)
    assert m.mean[0] == 0 and m.std[0] == 0 and np.isnan(m.skew[0]) and np.isnan(sr[0])
    assert m.mean[1] == 0.01 and np.isnan(m.std[1]) and np.isnan(sr[1])
    assert m.std[2] == 0 and np.isnan(m.kurt[2]) and sr[2] == np.inf  # as metrics.sharpe
    assert metrics.sharpe(np.full(12, 0.001)) == np.inf and np.isnan(metrics.sharpe(np.zeros(5)))
    assert sharpe_from_sums(n, s1, s2, risk_free=0.02)[0] == -np.inf
    empty = moments(n, s1, s2, s3, s4, blocks=[])
    assert np.isnan(empty.mean).all() and np.isnan(sharpe_from_sums(n, s1, s2, blocks=[])).all()


def test_blocks_argument_forms_agree_and_repeats_are_refused():
    rng = np.random.default_rng(0)
    n, s1, s2, _, _ = power_sums(split_returns(rng.normal(0, 0.01, (3, 300)), 6))
    a = sharpe_from_sums(n, s1, s2, blocks=[1, 4])
    b = sharpe_from_sums(n, s1, s2, blocks=np.array([False, True, False, False, True, False]))
    c = sharpe_from_sums(n, s1, s2, blocks=[4, -5])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    with pytest.raises(ValueError, match="repeated"):
        sharpe_from_sums(n, s1, s2, blocks=[1, 1])
    with pytest.raises(ValueError, match="out of range"):
        sharpe_from_sums(n, s1, s2, blocks=[6])
    with pytest.raises(ValueError, match="length"):
        sharpe_from_sums(n, s1, s2, blocks=np.ones(5, bool))
    with pytest.raises(ValueError, match="shape"):
        sharpe_from_sums(n, s1[:, :5], s2)


# ---------------------------------------------------------------- PSR / DSR


def test_dsr_paper_numerical_example():
    """Inputs of the numerical example in Bailey & Lopez de Prado (2014), section "A numerical
    example": 100 independent trials whose annualised Sharpe ratios have variance 1/2, best
    annualised SR 2.5 over 5 years of daily returns (T = 1250), skewness -3, kurtosis 10.
    Expected values computed here, independently of the module, with scipy's normal; the paper
    reports DSR of about 0.90 (printed figures not re-checked here; we get 0.8997)."""
    sr, v = 2.5 / np.sqrt(252), 0.5 / 252
    g = 0.5772156649015329
    z = (1 - g) * stats.norm.ppf(1 - 1 / 100) + g * stats.norm.ppf(1 - 1 / (100 * np.e))
    sr0 = np.sqrt(v) * z
    want = stats.norm.cdf((sr - sr0) * np.sqrt(1249) / np.sqrt(1 + 3 * sr + 9 / 4 * sr**2))
    assert expected_max_sharpe(100, v) == pytest.approx(sr0, rel=1e-12)
    assert expected_max_sharpe(100, v) * np.sqrt(252) == pytest.approx(1.789, abs=1e-3)
    dsr = deflated_sharpe_ratio(sr, 1250, -3.0, 10.0, 100, v)
    assert dsr == pytest.approx(want, rel=1e-12)
    assert dsr == pytest.approx(0.8997, abs=1e-4)
    assert round(float(dsr), 2) == 0.90


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_max_formula_against_exact_expected_max_of_normals(n_trials):
    """E[max of N iid N(0,1)] = int x N phi(x) Phi(x)^(N-1) dx; the paper's approximation is
    within a few percent and on the high (strict) side."""
    exact = integrate.quad(lambda x: x * n_trials * stats.norm.pdf(x)
                           * stats.norm.cdf(x) ** (n_trials - 1), -10, 10)[0]
    approx = expected_max_sharpe(n_trials, 1.0)
    assert exact < approx < 1.03 * exact


def test_expected_max_sharpe_monte_carlo_null_trials():
    """Simulate 400 sweeps of 50 skill-less strategies (250 daily normal returns each): the mean
    of the best per-period Sharpe ratio matches SR0 from the trials' Sharpe variance."""
    rng = np.random.default_rng(11)
    r = rng.standard_normal((400, 50, 250)) * 0.01
    sr = r.mean(-1) / r.std(-1, ddof=1)
    sr0 = expected_max_sharpe(50, sr.var(ddof=1))
    assert sr.max(1).mean() == pytest.approx(sr0, rel=0.04)


def test_expected_max_sharpe_edge_cases():
    assert expected_max_sharpe(1, 0.01) == 0.0
    vals = expected_max_sharpe(np.array([1, 2, 10, 100, 1e6]), 1.0)
    assert np.all(np.diff(vals) > 0)
    assert expected_max_sharpe(2, 1.0) == pytest.approx(1 / np.sqrt(np.pi), rel=0.1)
    with pytest.raises(ValueError):
        expected_max_sharpe(0.5, 1.0)


def test_psr_of_normal_returns_matches_t_test():
    """For normal returns PSR(0) is 1 - the one-sided p-value of the t-test of mean > 0."""
    for seed in range(5):
        x = np.random.default_rng(seed).normal(0.0006, 0.01, 1250)
        sr = x.mean() / x.std(ddof=1)
        psr = probabilistic_sharpe_ratio(sr, 0.0, x.size, stats.skew(x),
                                         stats.kurtosis(x, fisher=False))
        p = stats.ttest_1samp(x, 0.0, alternative="greater").pvalue
        assert psr == pytest.approx(1 - p, abs=0.005)


def test_psr_is_calibrated_for_skewed_returns_and_the_normal_formula_is_not():
    """4,000 series of 500 returns with skew -2, kurtosis 9 and true SR 0.2: PSR(true SR) should
    be uniform, so each 5 % tail holds about 5 % of the series. Ignoring skew and kurtosis
    (g3 = 0, g4 = 3) understates the Sharpe estimate's spread and doubles the upper tail."""
    rng = np.random.default_rng(3)
    r = 0.2 + 1.0 - rng.standard_exponential((4000, 500))
    sr = r.mean(1) / r.std(1, ddof=1)
    psr = probabilistic_sharpe_ratio(sr, 0.2, 500, stats.skew(r, 1),
                                     stats.kurtosis(r, 1, fisher=False))
    assert 0.035 < np.mean(psr > 0.95) < 0.065
    assert 0.035 < np.mean(psr < 0.05) < 0.07
    naive = probabilistic_sharpe_ratio(sr, 0.2, 500, 0.0, 3.0)
    assert np.mean(naive > 0.95) > 0.08


def test_dsr_properties_and_units():
    sr_d, t, g3, g4 = 1.5 / np.sqrt(252), 2520, -0.5, 6.0
    dsr = deflated_sharpe_ratio(sr_d, t, g3, g4, np.array([1, 10, 100, 1000]), 0.4 / 252)
    assert np.all(np.diff(dsr) < 0)
    assert dsr[0] == probabilistic_sharpe_ratio(sr_d, 0.0, t, g3, g4)
    # broadcasting over combinations; NaN where the inputs cannot give a Sharpe distribution
    out = probabilistic_sharpe_ratio(np.array([0.1, 0.1, 0.1]), 0.0, np.array([1, 100, 100]),
                                     0.0, np.array([3.0, 3.0, -500.0]))
    assert np.isnan(out[0]) and 0.5 < out[1] < 1 and np.isnan(out[2])


# ---------------------------------------------------------------- PBO by CSCV


def mean_table_sums(table: np.ndarray, per_block: int = 2) -> list[np.ndarray]:
    """Power sums of returns whose block means are `table` (P, S): per_block returns m +- 0.5."""
    offsets = np.resize([-0.5, 0.5], per_block)
    return power_sums([[m + offsets for m in row] for row in table])


def by_split(res) -> dict[tuple[int, ...], int]:
    return {tuple(np.flatnonzero(m)): k for k, m in enumerate(res.splits)}


def test_pbo_hand_computed_p3_s4():
    """Block means (2 returns per block, metric "mean", so a union's mean is the average of its
    block means):
        A = [3, 0,   0, 0  ]
        B = [1, 1,   1, 1  ]
        C = [2, 1.5, 0, 2.5]
    IS blocks: IS sums (A, B, C) -> best; OOS sums (A, B, C) -> rank of best, w = rank / 4:
        {0,1}: 3, 2, 3.5 -> C;  {2,3}: 0, 2, 2.5 -> rank 3    w 3/4   logit ln 3
        {0,2}: 3, 2, 2   -> A;  {1,3}: 0, 2, 4   -> rank 1    w 1/4   logit ln 1/3
        {0,3}: 3, 2, 4.5 -> C;  {1,2}: 0, 2, 1.5 -> rank 2    w 1/2   logit 0 (counts)
        {1,2}: 0, 2, 1.5 -> B;  {0,3}: 3, 2, 4.5 -> rank 1    w 1/4   logit ln 1/3
        {1,3}: 0, 2, 4   -> C;  {0,2}: 3, 2, 2   -> tie B, C: rank 1.5, w 3/8, logit ln 3/5
        {2,3}: 0, 2, 2.5 -> C;  {0,1}: 3, 2, 3.5 -> rank 3    w 3/4   logit ln 3
    PBO = 4/6 (logits <= 0)."""
    table = np.array([[3, 0, 0, 0], [1, 1, 1, 1], [2, 1.5, 0, 2.5]])
    n, s1, s2, _, _ = mean_table_sums(table)
    res = pbo_cscv(n, s1, s2, metric="mean")
    want = {  # IS blocks: (best, logit, IS mean, OOS mean)
        (0, 1): (2, np.log(3), 1.75, 1.25),
        (0, 2): (0, np.log(1 / 3), 1.5, 0.0),
        (0, 3): (2, 0.0, 2.25, 0.75),
        (1, 2): (1, np.log(1 / 3), 1.0, 1.0),
        (1, 3): (2, np.log(3 / 5), 2.0, 1.0),
        (2, 3): (2, np.log(3), 1.25, 1.75),
    }
    idx = by_split(res)
    assert sorted(idx) == sorted(want) and len(res.logits) == 6
    for blocks, (best, logit, ins, oos) in want.items():
        k = idx[blocks]
        assert res.is_best[k] == best
        assert res.logits[k] == pytest.approx(logit, abs=1e-12)
        assert res.is_perf[k] == pytest.approx(ins) and res.oos_perf[k] == pytest.approx(oos)
    assert res.pbo == pytest.approx(4 / 6)
    assert res.prob_oos_loss == 0.0
    fit = stats.linregress(res.is_perf, res.oos_perf)
    assert res.slope == pytest.approx(fit.slope) and res.intercept == pytest.approx(fit.intercept)


def cscv_oracle(blocks: list[list[np.ndarray]]):
    """Direct loop over every split on the raw returns, Sharpe via backtest.metrics."""
    n_comb, n_blocks = len(blocks), len(blocks[0])
    out = {}
    for ins in combinations(range(n_blocks), n_blocks // 2):
        oos = [s for s in range(n_blocks) if s not in ins]
        r_is = np.array([metrics.sharpe(np.concatenate([c[s] for s in ins])) for c in blocks])
        r_oos = np.array([metrics.sharpe(np.concatenate([c[s] for s in oos])) for c in blocks])
        best = int(np.argmax(r_is))
        w = stats.rankdata(r_oos)[best] / (n_comb + 1)
        out[ins] = (best, np.log(w / (1 - w)), r_is[best], r_oos[best])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pbo_matches_direct_loop_over_splits(seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.01, (5, 600))
    r[3] = r[1]  # an exact duplicate: ties in both samples
    blocks = split_returns(r, 6, rng)
    n, s1, s2, _, _ = power_sums(blocks)
    res = pbo_cscv(n, s1, s2)
    want = cscv_oracle(blocks)
    idx = by_split(res)
    assert len(res.logits) == comb(6, 3) == len(idx)
    for ins, (best, logit, r_is, r_oos) in want.items():
        k = idx[ins]
        assert res.is_best[k] == best
        assert res.logits[k] == pytest.approx(logit, rel=1e-9)
        assert res.is_perf[k] == pytest.approx(r_is, rel=1e-9)
        assert res.oos_perf[k] == pytest.approx(r_oos, rel=1e-9)
    assert res.pbo == np.mean([v[1] <= 0 for v in want.values()])


def test_pbo_of_pure_noise_is_about_one_half():
    """20 combinations with identical expected performance: the in-sample best's OOS rank is
    uniform, so PBO has expectation 1/2. One seed's PBO is noisy (its splits share the data), so
    bound the mean over 40 seeds (its standard error is about 0.03)."""
    pbos = []
    for seed in range(40):
        r = np.random.default_rng(seed).standard_t(5, (20, 500)) * 0.01
        pbos.append(pbo_cscv(*power_sums(split_returns(r, 10))[:3]).pbo)
    assert 0.4 < np.mean(pbos) < 0.6
    assert min(pbos) < 0.3 and max(pbos) > 0.6  # and the single-seed spread is wide


def test_pbo_is_zero_when_one_combination_is_genuinely_better():
    rng = np.random.default_rng(4)
    r = rng.normal(0.0, 0.01, (20, 600))
    r[7] += 0.004  # daily Sharpe about 0.4 more, in every block
    res = pbo_cscv(*power_sums(split_returns(r, 10))[:3])
    assert res.pbo == 0.0 and np.all(res.is_best == 7)
    assert np.all(res.logits == np.log(20 / 21 / (1 - 20 / 21)))
    assert res.prob_oos_loss == 0.0


def test_pbo_flat_combination_never_wins_and_ranks_last():
    rng = np.random.default_rng(8)
    r = rng.normal(-0.001, 0.01, (4, 400))
    r[2] = 0.0  # never trades: Sharpe undefined in every union
    res = pbo_cscv(*power_sums(split_returns(r, 4))[:3])
    assert not np.any(res.is_best == 2)
    assert np.all(np.isfinite(res.logits))


def test_pbo_split_sampling():
    r = np.random.default_rng(0).normal(0, 0.01, (6, 1800))
    sums = power_sums(split_returns(r, 18))[:3]
    res = pbo_cscv(*sums)  # C(18, 9) = 48,620 > MAX_SPLITS: sampled in complementary pairs
    k = len(res.logits)
    assert k == MAX_SPLITS and res.splits.shape == (k, 18)
    assert np.all(res.splits.sum(1) == 9) and np.all(res.splits[: k // 2, 0])
    assert np.array_equal(res.splits[k // 2:], ~res.splits[: k // 2])
    assert len({m.tobytes() for m in res.splits}) == k
    again = pbo_cscv(*sums)
    assert np.array_equal(again.splits, res.splits) and again.pbo == res.pbo
    other = pbo_cscv(*power_sums(split_returns(r[:, :800], 8))[:3], n_splits=9, seed=3)
    assert len(other.logits) == 10 and len({m.tobytes() for m in other.splits}) == 10


def test_unrank_enumerates_combinations_in_lexicographic_order():
    items = list(range(1, 10))
    want = list(combinations(items, 4))
    assert [tuple(rb._unrank(i, items, 4)) for i in range(len(want))] == want


def test_pbo_rejects_bad_input():
    n, s1, s2 = (np.ones((3, 5)),) * 3
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(n, s1, s2)
    with pytest.raises(ValueError, match="P >= 2"):
        pbo_cscv(np.ones((1, 4)), np.ones((1, 4)), np.ones((1, 4)))
    with pytest.raises(ValueError, match="metric"):
        pbo_cscv(np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4)), metric="sortino")


# ---------------------------------------------------------------- walk-forward

WF_TABLE = np.array([
    [1, 0, 3, 0, 0, 0],  # A
    [0, 1, 1, 1, 1, 1],  # B
    [2, 2, 0, 0, 2, 0],  # C
], dtype=float)


def test_walk_forward_rolling_hand_computed():
    """Rolling, 2 training blocks, 1 test block, metric "mean" (equal block lengths):
        test 2: train {0,1} sums A 1, B 1, C 4 -> C;   C in block 2: 0
        test 3: train {1,2} sums A 3, B 2, C 2 -> A;   A in block 3: 0
        test 4: train {2,3} sums A 3, B 2, C 0 -> A;   A in block 4: 0
        test 5: train {3,4} sums A 0, B 2, C 2 -> B (tie, lowest index);  B in block 5: 1
    stitched mean = 1/4; full-sample sums A 4, B 5, C 6 -> reference C, its mean over blocks
    2-5 = 2/4."""
    res = walk_forward(*mean_table_sums(WF_TABLE)[:3], train_blocks=2, metric="mean")
    assert res.chosen.tolist() == [2, 0, 0, 1]
    assert [t.tolist() for t in res.train] == [[0, 1], [1, 2], [2, 3], [3, 4]]
    assert res.steps == [((2,), 2), ((3,), 0), ((4,), 0), ((5,), 1)]
    np.testing.assert_allclose(res.is_perf, [2.0, 1.5, 1.5, 1.0])
    np.testing.assert_allclose(res.oos_perf, [0, 0, 0, 1])
    assert res.stitched == pytest.approx(0.25)
    assert res.reference == 2 and res.reference_oos == pytest.approx(0.5)


def test_walk_forward_anchored_and_multi_block_windows():
    sums = mean_table_sums(WF_TABLE)[:3]
    # anchored: {0,1} -> C; {0,1,2}: A 4, B 2, C 4 -> A (tie); {0..3}: A 4, B 3, C 4 -> A;
    # {0..4}: A 4, B 4, C 6 -> C
    res = walk_forward(*sums, train_blocks=2, anchored=True, metric="mean")
    assert res.chosen.tolist() == [2, 0, 0, 2]
    assert [t.tolist() for t in res.train][-1] == [0, 1, 2, 3, 4]
    # 3 test blocks: {0,1} -> C on 2,3,4 (mean 2/3); {3,4} -> B (tie) on the cut window {5}
    res = walk_forward(*sums, train_blocks=2, test_blocks=3, metric="mean")
    assert res.steps == [((2, 3, 4), 2), ((5,), 1)]
    np.testing.assert_allclose(res.oos_perf, [2 / 3, 1.0])
    assert res.stitched == pytest.approx((0 + 0 + 2 + 1) / 4)


def test_walk_forward_sharpe_matches_stitched_raw_returns():
    rng = np.random.default_rng(21)
    r = rng.standard_t(4, (30, 1500)) * 0.01 + rng.normal(0, 0.0005, (30, 1))
    blocks = split_returns(r, 10, rng)
    n, s1, s2, _, _ = power_sums(blocks)
    res = walk_forward(n, s1, s2, train_blocks=3)
    stitched = np.concatenate([blocks[c][s] for t, c in res.steps for s in t])
    assert res.stitched == pytest.approx(metrics.sharpe(stitched), rel=1e-10)
    for (t, c), train, ins, oos in zip(res.steps, res.train, res.is_perf, res.oos_perf):
        is_sr = [metrics.sharpe(np.concatenate([b[s] for s in train])) for b in blocks]
        assert c == int(np.argmax(is_sr)) and ins == pytest.approx(is_sr[c], rel=1e-10)
        assert oos == pytest.approx(metrics.sharpe(np.concatenate([blocks[c][s] for s in t])),
                                    rel=1e-10)
    full = [metrics.sharpe(np.concatenate(b)) for b in blocks]
    assert res.reference == int(np.argmax(full))
    assert res.reference_oos == pytest.approx(
        metrics.sharpe(np.concatenate(blocks[res.reference][3:])), rel=1e-10)


def test_walk_forward_picks_genuine_skill_and_skips_flat_combinations():
    rng = np.random.default_rng(2)
    r = rng.normal(0, 0.01, (10, 1000))
    r[0] = 0.0  # flat: NaN Sharpe, never chosen
    r[6] += 0.003
    res = walk_forward(*power_sums(split_returns(r, 10))[:3], train_blocks=2)
    assert np.all(res.chosen == 6) and res.reference == 6
    assert res.stitched == pytest.approx(res.reference_oos)


def test_walk_forward_rejects_bad_windows():
    sums = mean_table_sums(WF_TABLE)[:3]
    for kw in ({"train_blocks": 6}, {"train_blocks": 0}, {"train_blocks": 2, "test_blocks": 0}):
        with pytest.raises(ValueError):
            walk_forward(*sums, **kw)
    with pytest.raises(ValueError, match="metric"):
        walk_forward(*sums, train_blocks=2, metric="calmar")
