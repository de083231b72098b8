"""The sweep kernel's fast paths give the results of the plain ones.

- Tiling (blocks of symbols x a lane's combinations): every output array is bit-identical
  whatever the block size (1 symbol, sizes that do not divide N, all of N, the automatic one) and
  the number of lanes; per-symbol metrics equal the single-run engine's (`simulate`, itself checked
  against vectorbt and tests/oracle_sim.py) on random panels with bars without a price.
- The log-free sweep column counts trades and wins as the logged column's trade list does.
- Portfolio mode (max_positions > 0) still goes through `simulate_portfolio`.
- `order_fees`' flat fast path equals tests/oracle_sim.py's flat fees, component by component;
  a row that is not purely flat still takes the whole schedule.
"""

from __future__ import annotations


import numpy as np
import pytest
from numba import njit

from backtest import costs
from backtest.config import load_config
from backtest.costs import C_FLAT, NFEE, CostModel, cost_table, order_fees
from backtest.grid import build_grid
from backtest.kernels.metrics import (M_CAGR, M_EXPOSURE, M_MAX_DRAWDOWN, M_SHARPE, M_SORTINO, M_TOTAL_RETURN,
                                      M_TRADES, M_WIN_RATE, PERIODS, _risk, trade_counts)
from backtest.kernels.simulate import simulate
from backtest.kernels.sweep import (X_MAX_HOLD, X_STOP_LOSS, X_TAKE_PROFIT, X_TRAILING_STOP, block_symbols,
                                   sweep_independent, sweep_portfolio)
from backtest.pipeline import prepare
from backtest.rules import loosest
from backtest.sweep import compile_sweep, make_inputs
from tests import oracle_sim as ref

CONFIG = """
[data]
synthetic = {{ seed = {seed}, symbols = {symbols}, years = 2 }}
[strategy]
name = "southbound_dip"
[strategy.params]
dip_window = 15
flow_window = 40
[execution]
mode = "{mode}"
max_positions = 3
fill = "{fill}"
slippage_bps = 5.0
board_lots = {lots}
[exits]
stop_loss = 0.08
take_profit = 0.15
[costs]
{costs}
[sweep]
blocks = 4
train_blocks = 2
[sweep.grid]
dip = [0.02, 0.05, 0.09]
flow_z = [0.0, 1.0]
"exits.max_hold" = [0, 4, 9]
"exits.trailing_stop" = [0.0, 0.05]
"""
HK = 'model = "hk"\ncommission_bps = 3.0\ncommission_min = 20.0'
FLAT = 'model = "flat"\nflat_pct = 0.2'


# The readable two-pass definitions `total_metrics` fuses (the same operations in the same order).


@njit
def equity_metrics(eq, cash, out):
    """Return metrics of a (T,) equity curve into out[M_TOTAL_RETURN..M_EXPOSURE]; trade
    metrics are filled by the caller. Returns r_t = eq_t / eq_{t-1} - 1 for t >= 1; bars where
    nothing changed (most of a dip strategy's) skip the divisions."""
    n_t = eq.shape[0]
    n = n_t - 1
    out[M_TOTAL_RETURN] = eq[n_t - 1] / eq[0] - 1.0
    out[M_CAGR] = (eq[n_t - 1] / eq[0]) ** (PERIODS / n) - 1.0 if n > 0 else np.nan
    total = 0.0
    down = 0.0
    lo = np.inf
    hi = -np.inf
    for t in range(1, n_t):
        r = eq[t] / eq[t - 1] - 1.0 if eq[t] != eq[t - 1] else 0.0
        total += r
        down += min(r, 0.0) ** 2
        lo = min(lo, r)
        hi = max(hi, r)
    ss = 0.0
    if n >= 2:
        mean = total / n
        for t in range(1, n_t):
            d = (eq[t] / eq[t - 1] - 1.0 if eq[t] != eq[t - 1] else 0.0) - mean
            ss += d * d
    _risk(out, n, total, down, lo, hi, ss)
    peak = eq[0]
    mdd = 0.0
    invested = 0.0
    for t in range(n_t):
        if eq[t] >= peak:
            peak = eq[t]
        else:
            mdd = min(mdd, eq[t] / peak - 1.0)
        if eq[t] != cash[t]:
            invested += (eq[t] - cash[t]) / eq[t]
    out[M_MAX_DRAWDOWN] = mdd
    out[M_EXPOSURE] = invested / n_t


@njit
def block_sums(eq, edges, out):
    """Power sums of the daily returns in each time block [edges[b], edges[b+1]) (bar indices of
    the return's end bar) into out (S, NSUM)."""
    out[:] = 0.0
    for b in range(edges.shape[0] - 1):
        for t in range(max(edges[b], 1), edges[b + 1]):
            r = eq[t] / eq[t - 1] - 1.0
            r2 = r * r
            out[b, 0] += 1.0
            out[b, 1] += r
            out[b, 2] += r2
            out[b, 3] += r2 * r
            out[b, 4] += r2 * r2


def _case(tmp_path, seed, symbols=13, mode="independent", fill="next_open", cost=HK, lots="true"):
    """Inputs and plan of a small sweep on the synthetic market, with random bars without a price."""
    p = tmp_path / f"k{seed}.toml"
    p.write_text(CONFIG.format(seed=seed, symbols=symbols, mode=mode, fill=fill, costs=cost, lots=lots))
    cfg = load_config(p)
    prep = prepare(cfg)
    sp = compile_sweep(prep, build_grid(cfg, prep.module))
    sp = sp.take(slice(0, sp.exits.shape[0]))  # contiguous rows, as run_chunk passes them
    inputs = make_inputs(prep, sp)
    m = inputs.market
    rng = np.random.default_rng(seed)
    gone = rng.random(m.close.shape) < 0.03
    gone[rng.integers(0, m.close.shape[0]), : m.close.shape[1] // 5] = True  # one late listing
    nan = lambda a: np.ascontiguousarray(np.where(gone, np.nan, a))  # noqa: E731
    m = m._replace(open=nan(m.open), high=nan(m.high), low=nan(m.low), close=nan(m.close))
    return m, inputs.execution, sp, inputs.edges


def _execution(ex, exits, p):
    """Execution ex with combination p's exits (what the kernel runs)."""
    e = exits[p]
    return ex._replace(stop_loss=float(e[X_STOP_LOSS]), take_profit=float(e[X_TAKE_PROFIT]),
                       trailing_stop=float(e[X_TRAILING_STOP]), max_hold=int(e[X_MAX_HOLD]))


def _run(m, ex, sp, edges, lanes, tile):
    if ex.max_positions > 0:
        return sweep_portfolio(m, ex, sp.entry, sp.exit, sp.r_feat, sp.r_sign, sp.exits, edges, lanes)
    group, loose = loosest(sp.entry)
    return sweep_independent(m, ex, sp.entry, sp.exit, sp.exits, group, loose, edges, lanes, tile)


def _same(a, b):
    """Bit-identical arrays (NaN where NaN)."""
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_array_equal(x.view(np.uint64), y.view(np.uint64))


@pytest.mark.parametrize("seed, fill, cost, lots", [(3, "next_open", HK, "true"), (8, "next_close", FLAT, "false"),
                                                   (21, "next_open", FLAT, "true")])
def test_tiles_and_lanes_change_nothing_and_symbols_equal_the_single_run_engine(tmp_path, seed, fill, cost, lots):
    m, ex, sp, edges = _case(tmp_path, seed, fill=fill, cost=cost, lots=lots)
    n_s, n_t = m.close.shape
    base = _run(m, ex, sp, edges, 1, n_s)  # one block: the untiled order
    for lanes, tile in [(1, 1), (1, 3), (2, 5), (3, 0), (1, n_s + 4), (4, 2)]:
        _same(base, _run(m, ex, sp, edges, lanes, tile))
    per_symbol, combo, _ = base
    assert np.nansum(per_symbol[:, :, M_TRADES]) > 0
    for p in range(sp.exits.shape[0]):
        exp = _execution(ex, sp.exits, p)
        cash, _, eq, trades, _, _ = simulate(m, sp.entry.row(p), sp.exit.row(p), -1, 1.0, exp)
        for j in range(n_s):
            row = per_symbol[p, j]
            mine = trades[trades[:, 0] == j]
            closed, wins = trade_counts(mine, mine.shape[0])
            assert row[M_TRADES] == closed
            if closed:
                assert row[M_WIN_RATE] == wins / closed
            else:
                assert np.isnan(row[M_WIN_RATE])
            want = np.empty(8)
            equity_metrics(eq[j], cash[j], want)
            for k in (M_TOTAL_RETURN, M_CAGR, M_MAX_DRAWDOWN, M_EXPOSURE):  # same operations, same order
                assert row[k] == want[k] or np.isnan(row[k]) and np.isnan(want[k]), (p, j, k)
            for k in (M_SHARPE, M_SORTINO):  # one-pass variance against two-pass
                np.testing.assert_allclose(row[k], want[k], rtol=1e-9, atol=1e-12)
        total = np.zeros(8)
        equity_metrics(eq.sum(axis=0), cash.sum(axis=0), total)
        np.testing.assert_allclose(combo[p, :6], total[:6], rtol=1e-9, atol=1e-12)
        closed, wins = trade_counts(trades, trades.shape[0])
        assert combo[p, M_TRADES] == closed


def test_block_size_fits_the_tile_budget():
    assert block_symbols(2520, 2) >= 4
    assert block_symbols(10080, 2) >= 1
    assert block_symbols(10080, 2) < block_symbols(2520, 2)
    assert block_symbols(1, 0) > 1000
    assert block_symbols(10_000_000, 30) == 1


def test_portfolio_mode_sweep_equals_simulate_portfolio_and_ignores_lanes_and_tiles(tmp_path):
    from backtest.kernels.metrics import NSUM

    m, ex, sp, edges = _case(tmp_path, 5, symbols=9, mode="portfolio")
    base = _run(m, ex, sp, edges, 1, 0)
    _same(base, _run(m, ex, sp, edges, 3, 2))
    per_symbol, combo, _ = base
    assert np.isnan(per_symbol).all()
    for p in range(0, sp.exits.shape[0], 7):
        cash, _, eq, trades, _, _ = simulate(m, sp.entry.row(p), sp.exit.row(p), int(sp.r_feat[p]),
                                             float(sp.r_sign[p]), _execution(ex, sp.exits, p))
        want, want_sums = np.empty(8), np.empty((edges.shape[0] - 1, NSUM))
        equity_metrics(eq[0], cash[0], want)
        block_sums(eq[0], edges, want_sums)
        _same([combo[p, :6], base[2][p]], [want[:6], want_sums])
        assert combo[p, M_TRADES] == trade_counts(trades, trades.shape[0])[0]


def test_flat_fee_fast_path_equals_the_oracle():
    rng = np.random.default_rng(7)
    days = np.array(["2007-03-01", "2015-06-30", "2022-05-04", "2025-07-02"], dtype="datetime64[D]")
    out = np.empty(NFEE)
    for pct in [0.001, 0.1, 0.15, 0.2, 1.0, 2.5, float(rng.uniform(0, 3))]:
        table = cost_table(CostModel(kind="flat", flat_pct=pct), days)
        oracle = ref.Costs(kind="flat", flat_pct=pct)
        for value in np.exp(rng.uniform(np.log(0.01), np.log(1e10), 300)):
            for i, day in enumerate(days):
                total = order_fees(float(value), table[i], out)
                want = oracle.fees(float(value), str(day))
                assert total == ref._total(want)
                assert out.tolist() == [want[k] for k in ref.FEE_KINDS]
    assert order_fees(0.0, table[0], out) == 0.0 and not out.any()
    assert order_fees(-5.0, table[0], out) == 0.0 and not out.any()


def test_a_row_that_is_not_purely_flat_pays_the_whole_schedule():
    rng = np.random.default_rng(11)
    days = np.array(["2012-01-03", "2023-02-01"], dtype="datetime64[D]")
    for model in (CostModel(commission_bps=3.0, commission_min=20.0), CostModel()):
        hk = cost_table(model, days)
        mixed = hk.copy()
        mixed[:, C_FLAT] = 0.0015
        a, b = np.empty(NFEE), np.empty(NFEE)
        for value in np.exp(rng.uniform(np.log(10.0), np.log(1e9), 200)):
            for i in range(len(days)):
                order_fees(float(value), hk[i], a)
                total = order_fees(float(value), mixed[i], b)
                assert b[:-1].tolist() == a[:-1].tolist()
                assert b[-1] == value * 0.0015
                s = 0.0
                for x in b:
                    s += x
                assert total == s
    assert costs.flat_only(cost_table(CostModel(kind="flat", flat_pct=0.1), days)[0])
    assert not costs.flat_only(cost_table(CostModel(), days)[0])


@pytest.mark.parametrize("n_t", [1, 2, 3, 40, 757])
def test_total_metrics_equal_equity_metrics_and_block_sums_of_the_summed_curve(n_t):
    from backtest.kernels.metrics import NSUM, total_metrics
    from backtest.sweep import block_edges, fine_edges

    rng = np.random.default_rng(n_t)
    for trial in range(20):
        d_eq = rng.normal(0, 1e3, n_t) * (rng.random(n_t) < 0.4)  # flat bars change nothing
        d_cash = np.where(rng.random(n_t) < 0.1, rng.normal(0, 1e4, n_t), 0.0)
        base = float(rng.uniform(1e5, 1e7))
        edges = block_edges(n_t, 4) if trial % 2 else fine_edges(n_t, 2, 3)
        eq, cash = d_eq.copy(), d_cash.copy()
        eq[0] += base
        cash[0] += base
        eq, cash = np.cumsum(eq), np.cumsum(cash)
        want, want_sums = np.full(8, -1.0), np.empty((edges.shape[0] - 1, NSUM))
        equity_metrics(eq, cash, want)
        block_sums(eq, edges, want_sums)
        got, got_sums = np.full(8, -1.0), np.full((edges.shape[0] - 1, NSUM), 7.0)
        total_metrics(d_eq.copy(), d_cash.copy(), base, True, edges, got, got_sums)
        _same([got, got_sums], [want, want_sums])
        got, got_sums = np.full(8, -1.0), np.full((edges.shape[0] - 1, NSUM), 7.0)
        total_metrics(eq.copy(), cash.copy(), 0.0, False, edges, got, got_sums)  # the curve itself
        _same([got, got_sums], [want, want_sums])
