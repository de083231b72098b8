"""Issue 15, honest numbers: capital that exists, per-symbol distributions, exposure-aware benchmark,
calendar years, integer trade columns, the risk-free label, synthetic labelling, and a sweep ranking
that a lottery ticket cannot win.

Oracles: plain pandas/numpy on the engine's per-account equity, numpy eigenvalues (Nyholt's
effective number of trials), hand-worked tables, and the single-run engine for the sweep.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from backtest import metrics as M
from backtest.config import load_config
from backtest.data.synth import generate
from backtest.grid import Grid
from backtest.ranking import activity, edge_warning, grid_edges, ranking
from backtest.robustness import effective_trials, robust_metric, walk_forward
from tests.helpers import run_cli

CONFIG = """
[data]
synthetic = {{ seed = 5, symbols = 8, years = 10 }}
[strategy]
name = "southbound_dip"
[strategy.params]
dip_window = 20
dip = 0.08
flow_window = 60
flow_z = 1.0
fade_z = -1.0
[execution]
mode = "{mode}"
max_positions = 3
board_lots = {lots}
[exits]
stop_loss = 0.10
take_profit = 0.20
max_hold = 10
[costs]
model = "hk"
commission_bps = 3.0
commission_min = 50.0
[report]
risk_free = 0.03
"""


def _cfg(tmp_path, mode="independent", lots="true", extra=""):
    p = tmp_path / f"{mode}_{lots}.toml"
    p.write_text(CONFIG.format(mode=mode, lots=lots) + extra)
    return load_config(p)


@pytest.fixture(scope="module")
def market():
    return generate(seed=5, symbols=8, years=10)


@pytest.fixture(scope="module")
def independent(tmp_path_factory, market):
    from backtest.pipeline import run

    return run(_cfg(tmp_path_factory.mktemp("ind")), market)


# ------------------------------------------------------------------------- capital that exists


def test_live_accounts_by_hand():
    """Two accounts; B lists on bar 2: its idle cash neither dilutes nor adds returns before."""
    idx = pd.bdate_range("2024-01-01", periods=4)
    eq = pd.DataFrame({"A": [100.0, 110.0, 121.0, 121.0], "B": [100.0, 100.0, 100.0, 150.0]}, index=idx)
    cash = pd.DataFrame({"A": [100.0, 0.0, 0.0, 121.0], "B": [100.0, 100.0, 100.0, 0.0]}, index=idx)
    live = M.live_accounts(eq, cash, np.array([0, 2]))
    np.testing.assert_allclose(live["equity"], [100, 110, 221, 271])
    np.testing.assert_allclose(live["invested"], [0, 110, 121, 150])
    np.testing.assert_allclose(live["return"].iloc[1:], [0.10, 0.10, 50 / 221])
    np.testing.assert_allclose(live["exposure"], [0, 1, 121 / 221, 150 / 271])
    np.testing.assert_array_equal(live["accounts"], [1, 1, 2, 2])
    # one account from bar 0 (the portfolio) is exactly its own equity's returns
    one = M.live_accounts(eq[["A"]], cash[["A"]], np.array([0]))
    np.testing.assert_allclose(one["return"].iloc[1:], eq["A"].pct_change().iloc[1:], rtol=1e-15)


def test_independent_run_counts_accounts_from_their_listing(independent):
    out = independent
    r, panel = out.result, out.prepared.panel
    close = pd.DataFrame(panel.fields["close"], index=r.equity.index, columns=r.equity.columns)
    first = close.notna().to_numpy().argmax(axis=0)
    assert (first > 0).sum() >= 3, "the test needs symbols that list late"
    live = pd.DataFrame(np.arange(len(close))[:, None] >= first[None, :], index=close.index, columns=close.columns)
    prev = live.shift(1, fill_value=False)
    pooled = (r.equity.where(prev, 0).sum(axis=1) / r.equity.shift(1).where(prev, 0).sum(axis=1) - 1).iloc[1:]
    s = out.stats
    assert s["total_return"] == pytest.approx((1 + pooled.fillna(0)).prod() - 1, rel=1e-10)
    assert s["sharpe"] == pytest.approx(M.sharpe(pooled.to_numpy(), 0.03), rel=1e-10)
    invested = (r.equity - r.cash).where(live, 0).sum(axis=1)
    assert s["exposure"] == pytest.approx((invested / r.equity.where(live, 0).sum(axis=1)).mean(), rel=1e-12)
    # the old headline, all accounts from bar 0, counts idle cash as invested capital
    assert s["exposure"] > ((r.equity - r.cash).sum(axis=1) / r.total_equity).mean()


def test_per_symbol_distribution_equals_pandas(independent):
    out = independent
    r = out.result
    close = out.prepared.panel.frame("close")
    rows = {}
    for sym in r.equity.columns:
        a = int(close[sym].notna().to_numpy().argmax())
        eq = r.equity[sym].iloc[a:]
        ret = eq.pct_change().dropna()
        years = (eq.index[-1] - eq.index[0]).days / 365.25
        trades = int(((r.trades["symbol"] == sym) & (r.trades["reason"] != "open")).sum())
        rows[sym] = {"total_return": eq.iloc[-1] / eq.iloc[0] - 1, "cagr": (eq.iloc[-1] / eq.iloc[0]) ** (1 / years) - 1,
                     "sharpe": (ret - 0.03 / 252).mean() / (ret - 0.03 / 252).std() * np.sqrt(252),
                     "exposure": ((eq - r.cash[sym].iloc[a:]) / eq).mean(), "trades": trades}
    want = pd.DataFrame(rows).T
    got = out.per_symbol.set_index("symbol")
    for c in ("total_return", "cagr", "sharpe", "exposure", "trades"):
        np.testing.assert_allclose(got[c].astype(float), want[c].astype(float), rtol=1e-9, err_msg=c)
    traded = want[want["trades"] > 0]
    s = out.stats
    assert s["symbols"] == len(want) and s["symbols_traded"] == len(traded)
    assert s["symbols_positive"] == pytest.approx((traded["total_return"] > 0).mean())
    for m in ("total_return", "sharpe", "exposure"):
        q = traded[m].astype(float).quantile([0.25, 0.5, 0.75]).to_numpy()
        np.testing.assert_allclose([s[f"symbol_{m}_q1"], s[f"symbol_{m}_median"], s[f"symbol_{m}_q3"]], q, rtol=1e-12)


def test_exposure_aware_benchmark_and_return_on_capital(independent):
    out = independent
    s, b = out.stats, out.benchmarks
    e = np.nanmean(out.accounts["exposure"])
    np.testing.assert_allclose(b["index_at_exposure"].iloc[1:], e * b["index"].iloc[1:], rtol=1e-15)
    scaled = b["index_at_exposure"].to_numpy()[1:]
    assert out.benchmark_stats["index_at_exposure"]["total_return"] == pytest.approx(np.prod(1 + np.nan_to_num(scaled)) - 1)
    assert s["excess_return_index_at_exposure"] == pytest.approx(
        s["total_return"] - out.benchmark_stats["index_at_exposure"]["total_return"])
    pnl = out.accounts["pnl"].sum()
    assert pnl == pytest.approx(sum(out.result.equity[c].iloc[-1] - out.result.init_cash
                                    for c, f in zip(out.result.equity.columns, M.first_tradable(out.prepared.panel.fields["close"]))
                                    if f < len(out.accounts)), rel=1e-9)
    assert s["return_on_capital_employed"] == pytest.approx(pnl / out.accounts["invested"].mean() / s["years"], rel=1e-9)


def test_years_are_the_calendar_span(independent):
    out = independent
    d = out.result.equity.index
    assert out.stats["years"] == pytest.approx((d[-1] - d[0]).days / 365.25, rel=1e-15)
    assert out.stats["years"] != pytest.approx(len(d) / 252, rel=1e-3)
    assert out.stats["trades_per_year"] == pytest.approx(out.stats["trades"] / out.stats["years"])
    assert M.cagr([0.1, 0.1], years=2.0) == pytest.approx(0.1)
    assert M.cagr(np.full(252, 0.001)) == pytest.approx(1.001 ** 252 - 1)  # empyrical's bars / 252 by default


# ------------------------------------------------------------------------- files and labels


@pytest.mark.parametrize("lots", ["true", "false"])
def test_trades_csv_writes_whole_numbers_as_integers(tmp_path, market, lots):
    from backtest.output import write_outputs
    from backtest.pipeline import run

    out = run(_cfg(tmp_path, mode="portfolio", lots=lots), market)
    d = write_outputs(out, tmp_path / "out")
    head, first = (d / "trades.csv").read_text().splitlines()[:2]
    row = dict(zip(head.split(","), first.split(",")))
    assert row["bars"].isdigit()
    trades = pd.read_csv(d / "trades.csv")
    orders = pd.read_csv(d / "orders.csv")
    assert trades["bars"].dtype == np.int64
    np.testing.assert_array_equal(trades["shares"], out.result.trades["shares"])  # the same numbers
    if lots == "true":
        assert row["shares"].isdigit() and trades["shares"].dtype == np.int64 and orders["shares"].dtype == np.int64
    else:
        assert trades["shares"].dtype == np.float64 and (trades["shares"] % 1 != 0).any()


def test_tearsheet_states_the_risk_free_rate_and_marks_synthetic_data(tmp_path, independent):
    from backtest.output import run_record, write_outputs
    from backtest.tearsheet import render

    d = write_outputs(independent, tmp_path / "out")
    html = (d / "tearsheet.html").read_text()
    assert "risk-free rate 3.00% a year (report.risk_free)" in html
    assert "risk-free rate 0;" not in html
    assert "SYNTHETIC DATA" in html and "synthetic data</h1>" in html
    assert "(synthetic)</td>" in html  # the trade list's names
    assert (d / "per_symbol.csv").exists() and "per-symbol results" in html
    assert 'id="scale-log" checked' in html  # log scale by default
    record = run_record(independent)
    record["data"]["synthetic"] = False  # the same page for real data carries no banner
    assert "SYNTHETIC" not in render(independent, record, pd.read_csv(d / "equity.csv", index_col=0,
                                                                      parse_dates=True))


def test_synthetic_names_say_so(market):
    assert market.symbols["name"].str.endswith(" (synthetic)").all()
    assert market.symbols.loc["0700", "name"] == "Tencent Holdings (synthetic)"


def test_synthetic_data_written_to_disk_is_still_marked(tmp_path, market):
    from backtest.data.write import write_market
    from backtest.output import run_record
    from backtest.page import is_synthetic
    from backtest.pipeline import run

    write_market(market, tmp_path / "m", fmt="csv")
    cfg = _cfg(tmp_path, mode="portfolio")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(tmp_path / "m")))
    out = run(cfg)
    assert not out.prepared.panel.source.startswith("synthetic")
    assert run_record(out)["data"]["synthetic"]
    assert not is_synthetic("my_market", ["Tencent Holdings", "Meituan (synthetic)"])


def test_run_lists_every_file_it_wrote(dip_cli_run):
    out, r = dip_cli_run
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("wrote "))
    listed = line[len("wrote "):].split(" (backtest")[0].replace(f"{out}/", "").split(", ")
    assert sorted(listed) == sorted(p.name for p in out.iterdir())
    assert {"event_study.csv", "orders.csv", "tearsheet.html"} <= set(listed)
    assert "exposure" in r.stdout.splitlines()[0]


# ------------------------------------------------------------------------- sweep ranking


def _table():
    """Six combinations on a 3 x 2 grid: the best Sharpe trades twice."""
    return pd.DataFrame({"combo": range(6), "a": [1, 1, 2, 2, 3, 3], "b": [0.1, 0.2] * 3,
                         "sharpe": [0.5, 3.0, 0.9, 0.8, np.nan, 1.2],
                         "trades": [40, 2, 50, 60, 0, 45], "exposure": [0.2, 0.3, 0.01, 0.3, 0.0, 0.25]})


def test_activity_filter_keeps_lottery_tickets_out_of_the_ranking():
    t = _table()
    ok = activity(t, min_trades=30, min_exposure=0.05)
    want = (t["trades"] >= 30) & (t["exposure"] >= 0.05)
    np.testing.assert_array_equal(ok, want)
    order = ranking(t, "sharpe", ok)
    ranked = t[want].sort_values("sharpe", ascending=False)["combo"].tolist()
    assert order.tolist()[:len(ranked)] == ranked == [5, 3, 0]
    assert set(order.tolist()[len(ranked):]) == {1, 2, 4}
    assert ranking(t, "sharpe")[0] == 1  # unfiltered, the two-trade combination would win


def test_edge_warning_names_the_parameter_and_side():
    grid = Grid(("a", "b"), (np.array([1, 2, 3]), np.array([0.1, 0.2])))
    assert grid_edges(grid, 2) == [("b", "lowest")]  # a = 2 is interior
    assert grid_edges(grid, 5) == [("a", "highest"), ("b", "highest")]
    w = edge_warning(grid, 5, "the best combination")
    assert "a = 3 is the highest value swept" in w and "b = 0.2 is the highest value swept" in w
    flat = Grid(("a", "b"), (np.array([1, 2, 3]), np.array([0.1])))
    assert edge_warning(flat, 1, "x") == ""  # a single-valued parameter has no edge to flag


def test_effective_trials_by_hand():
    """A, A and B with corr(A, B) = 0: sum over i != j of rho^2 = 2, so M_eff = 3 - 2 / 3."""
    a = np.array([1.0, -1.0, 1.0, -1.0])
    b = np.array([1.0, 1.0, -1.0, -1.0])
    assert effective_trials(np.vstack([a, a, b])) == pytest.approx(3 - 2 / 3)
    assert effective_trials(np.vstack([a, 2 * a + 1, a])) == pytest.approx(1.0)
    assert effective_trials(np.vstack([a, b, np.zeros(4)])) == pytest.approx(2.0)  # constant: no trial
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 60)) + rng.normal(size=60)
    lam = np.linalg.eigvalsh(np.corrcoef(x))
    assert effective_trials(x) == pytest.approx(1 + 39 * (1 - np.var(lam, ddof=1) / 40), rel=1e-10)


def test_walk_forward_and_pbo_use_the_sweep_metric():
    assert robust_metric("sharpe") == ("sharpe", "")
    assert robust_metric("cagr")[0] == robust_metric("total_return")[0] == "total_return"
    metric, note = robust_metric("max_drawdown")
    assert metric == "sharpe" and "max_drawdown" in note
    # two combinations: A steady (high Sharpe, low return), B volatile (low Sharpe, higher return)
    a = np.tile([0.001, 0.0], 150)  # Sharpe 15.9, total return 16 %
    b = np.tile([0.05, -0.03], 150)  # Sharpe 4.0, total return x 15
    blocks = [np.stack([a, b]), np.stack([a, b])]  # block i: (P=2, 300 returns)
    sums = [np.stack([(x ** k).sum(axis=1) if k else np.full(2, 300.0) for x in blocks], axis=1) for k in range(5)]
    wf_s = walk_forward(*sums[:3], train_blocks=1, metric="sharpe")
    wf_r = walk_forward(*sums[:3], train_blocks=1, metric="total_return", s3=sums[3], s4=sums[4])
    growth = [np.prod(1 + blocks[0][p]) - 1 for p in range(2)]
    sharpes = [M.sharpe(blocks[0][p]) for p in range(2)]
    assert wf_s.chosen[0] == int(np.argmax(sharpes)) == 0
    assert wf_r.chosen[0] == int(np.argmax(growth)) == 1
    assert wf_r.is_perf[0] == pytest.approx(growth[1], rel=1e-4)  # log(1 + r) to fourth order
    # PBO's in-sample best follows the metric too (4 blocks: A then B alternate being better)
    from backtest.robustness import pbo_cscv

    four = [np.stack([a, b])] * 4
    sums4 = [np.stack([(x ** k).sum(axis=1) if k else np.full(2, 300.0) for x in four], axis=1) for k in range(5)]
    assert set(pbo_cscv(*sums4[:3], metric="sharpe").is_best) == {0}
    assert set(pbo_cscv(*sums4[:3], metric="total_return", s3=sums4[3], s4=sums4[4]).is_best) == {1}
    with pytest.raises(ValueError, match="s3, s4"):
        pbo_cscv(*sums4[:3], metric="total_return")


@pytest.fixture(scope="module")
def late_sweep(tmp_path_factory):
    from backtest.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("late_sweep")
    cfg = _cfg(tmp, extra='[sweep]\nmetric = "sharpe"\nmin_trades = 5\nmin_exposure = 0.0\n'
                          '[sweep.grid]\ndip = [0.06, 0.1]\nflow_z = [0.5, 1.5]\n')
    return cfg, run_sweep(cfg, tmp / "out", progress=False)


def test_independent_sweep_ranks_per_symbol_results_from_listing(late_sweep, market):
    from backtest.pipeline import run
    from backtest.sweep import combo_config

    cfg, res = late_sweep
    for p in (0, 3):
        out = run(combo_config(cfg, res.grid.combo(p)), market)
        want = out.per_symbol.set_index("symbol")
        got = res.by_symbol[res.by_symbol["combo"] == p].set_index("symbol").loc[want.index]
        for c in ("total_return", "cagr", "max_drawdown", "exposure", "trades"):
            np.testing.assert_allclose(got[c].astype(float), want[c].astype(float), rtol=1e-9, atol=1e-12, err_msg=c)
        # the sweep's Sharpe has no risk-free rate; rebased from all bars to the symbol's own
        for sym in want.index:
            a = int(out.prepared.panel.frame("close")[sym].notna().to_numpy().argmax())
            eq = out.result.equity[sym].iloc[a:]
            assert got.loc[sym, "sharpe"] == pytest.approx(M.sharpe(eq.pct_change().iloc[1:]), rel=1e-7, abs=1e-12)
        traded = got[got["trades"] > 0]
        row = res.table.iloc[p]
        assert row["sym_sharpe"] == pytest.approx(traded["sharpe"].median(), rel=1e-12)
        assert row["symbols_traded"] == len(traded)
        assert row["sym_exposure_mean"] == pytest.approx(got["exposure"].mean(), rel=1e-12)


def test_sweep_report_flags_activity_edges_and_metric(late_sweep, tmp_path):
    from backtest import sweep_report as sr

    cfg, res = late_sweep
    cfg = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, min_trades=10 ** 6))
    rk = sr.ranked(res, cfg)
    assert rk.excluded == res.grid.size and rk.column == "sym_sharpe"
    res = dataclasses.replace(res, out_dir=tmp_path)
    html = sr.write_sweep_report(res, cfg).read_text()
    assert "no combination has 1000000 closed trades" in html
    assert "sits on the edge of the grid" in html  # every point of a 2 x 2 grid is on an edge
    assert "Trades</th>" in html and "Exposure" in html
    wfo, _ = sr.walk_forward_oos(res, cfg)
    assert 0.0 <= wfo.stats["stitched"]["exposure"] <= 1.0 and "Exposure (average share invested)" in html
    assert "SYNTHETIC DATA" in html


def test_sweep_report_uses_the_sweep_metric_in_pbo_and_walk_forward(late_sweep, tmp_path):
    from backtest import sweep_report as sr

    cfg, res = late_sweep
    cfg = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, metric="cagr", min_trades=0))
    wfo, _ = sr.walk_forward_oos(res, cfg)
    assert wfo.wf.metric == "total_return"
    html = sr.render(res, cfg, wfo, {})
    assert "(by total_return, from sweep.metric = cagr" in html
    assert "best total return (from sweep.metric = cagr)" in html
    cfg = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, metric="max_drawdown"))
    wfo, _ = sr.walk_forward_oos(res, cfg)
    assert wfo.wf.metric == "sharpe"
    assert "sweep.metric = max_drawdown cannot be computed per time block" in sr.render(res, cfg, wfo, {})


def test_sweep_cli_prints_activity_edges_and_every_file(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text(CONFIG.format(mode="portfolio", lots="true").replace("years = 10", "years = 3")
                   + '[sweep]\nblocks = 4\ntrain_blocks = 2\n[sweep.grid]\ndip = [0.06, 0.1, 0.14]\nflow_z = [0.5, 1.0]\n')
    r = run_cli("sweep", str(cfg), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "ranked" in lines[0] and "below 30 trades or 5.0% exposure" in lines[0] and "trades, exposure" in lines[0]
    assert any(x.startswith("warning: the best combination") for x in lines)  # a 3 x 2 grid: every point is on an edge
    wrote = next(x for x in lines if x.startswith("wrote "))
    top = {p.name for p in (tmp_path / "o").iterdir() if p.is_file() and not p.name.startswith(".")}  # not the lock
    assert all(name in wrote for name in top) and "chunks/ (" in wrote
    assert {"sweep.html", "walk_forward.csv", "manifest.json", "results.csv"} <= top
