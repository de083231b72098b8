"""The sweep report (DESIGN §7): every section is on the page, text is escaped, and the robust
region, the deflated Sharpe ratio and the stitched walk-forward returns equal independent
computations (pandas over the results table, scipy over the single-run engine's returns)."""

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from backtest import sweep_report as sr
from backtest.config import load_config
from backtest.grid import Grid
from backtest.pipeline import run
from backtest.robustness import deflated_sharpe_ratio, walk_forward
from backtest.sweep import block_edges, combo_config, run_sweep, write_results

CONFIG = """
[data]
synthetic = { seed = 3, symbols = 6, years = 3 }
[strategy]
name = "southbound_dip"
[strategy.params]
dip_window = 20
flow_window = 60
fade_z = -1.0
[execution]
mode = "independent"
fill = "next_open"
slippage_bps = 5.0
[exits]
stop_loss = 0.10
take_profit = 0.20
[costs]
model = "hk"
commission_bps = 3.0
commission_min = 50.0
[sweep]
metric = "sharpe"
blocks = 6
train_blocks = 2
min_trades = 0           # rank every combination here; the activity filter has its own tests
min_exposure = 0.0
[sweep.grid]
dip = [0.03, 0.06, 0.09]
flow_z = { start = 0.5, stop = 1.5, num = 3 }
"exits.max_hold" = [5, 15]
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep_report")
    path = tmp / "small_sweep.toml"
    path.write_text(CONFIG)
    cfg = load_config(path)
    res = run_sweep(cfg, tmp / "out", progress=False)
    write_results(res)
    page = sr.write_sweep_report(res, cfg)
    return cfg, res, page


@pytest.fixture(scope="module")
def single_runs(sweep):
    """Daily returns of the single-run engine, per combination, run once each."""
    cfg, res, _ = sweep
    cache = {}

    def returns(p: int) -> pd.Series:
        if p not in cache:
            eq = run(combo_config(cfg, res.grid.combo(p))).result.total_equity
            cache[p] = eq.pct_change().iloc[1:]
        return cache[p]

    return returns


def _section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert m, sid
    return m.group(1)


def test_page_has_every_section_and_no_network(sweep):
    cfg, res, page = sweep
    assert page == res.out_dir / "sweep.html"
    html = page.read_text()
    assert html.startswith("<!doctype html>")
    assert 'id="header"' in html
    for sid, _ in sr.SECTIONS:
        assert html.count(f'<section id="{sid}">') == 1, sid
        assert f'href="#{sid}"' in html
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no external resource
    assert "@import" not in html and "<link rel=\"stylesheet\"" not in html
    # header: grid, combinations, config path, data fingerprint
    head = html[html.index('<header id="header">'):html.index("</header>")]
    for key, values in zip(res.grid.keys, res.grid.values):
        assert f"<code>{key}</code> ({len(values)})" in head
    assert "18 (all computed in this call)" in head and "small_sweep.toml" in head
    fingerprint = run(combo_config(cfg, res.grid.combo(0))).prepared.panel.fingerprint
    assert fingerprint and fingerprint in head
    # one heatmap per pair of the three parameters, annotated (small grid); charts inline
    assert _section(html, "heatmaps").count("<svg ") == 3
    assert html.count("<svg ") == 3 + 1 + 2 + 1  # heatmaps, distribution, PBO (2), walk-forward
    assert _section(html, "top").count("<tr>") == 1 + 10
    for name in ("results.parquet", "results.csv", "by_symbol.parquet", "walk_forward.csv", "manifest.json"):
        assert (res.out_dir / name).stat().st_size > 0, name
    assert not list(res.out_dir.glob(".*.tmp"))


def test_text_from_config_and_data_is_escaped(sweep):
    """A crafted grid key, strategy help, config text or fingerprint shows as text, never as HTML."""
    cfg, res, _ = sweep
    wfo, _ = sr.walk_forward_oos(res, cfg)
    evil = ['<img src=x onerror=alert(1)>', 'b$x$<script>alert(2)</script>', '"><iframe src=//e.com>']
    grid = Grid(tuple(evil), res.grid.values)
    table = res.table.rename(columns=dict(zip(res.grid.keys, evil)))
    bad_res = dataclasses.replace(res, grid=grid, table=table)
    bad_cfg = dataclasses.replace(cfg, text="</pre><script>alert(3)</script>", source="<svg onload=alert(4)>")
    about = {"strategy": "<b>dip</b>", "help": "buy & <i>hold</i>", "fingerprint": '"><script>alert(5)</script>',
             "source": "<iframe>", "period": "<u>x</u>"}
    html = sr.render(bad_res, bad_cfg, wfo, about)
    assert html.count("<script") == 1  # the table sorter, allowed by hash in the CSP
    for raw in ("<img", "<iframe", "<svg onload", "<b>dip", "<i>hold", "<u>x", "</pre><script"):
        assert raw not in html, raw
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "buy &amp; &lt;i&gt;hold&lt;/i&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert html.count("<svg ") == 7  # the crafted key (with $) still draws every chart


def test_neighbourhood_of_a_pick_equals_pandas(sweep):
    cfg, res, page = sweep
    metric, t = "sym_sharpe", res.table  # independent mode ranks the median per-symbol Sharpe
    order = sr.ranking(t, metric)
    assert order[0] == t[metric].idxmax()
    nb = sr.neighbourhood(res.grid, t[metric].to_numpy())
    pos = pd.DataFrame({k: t[k].map({v: i for i, v in enumerate(vals)})
                        for k, vals in zip(res.grid.keys, res.grid.values)})
    html = _section(page.read_text(), "stability")
    for pick in order[:sr.PICKS]:
        step = (pos - pos.loc[pick]).abs()
        near = t.loc[(step <= 1).all(axis=1) & (step > 0).any(axis=1), metric]
        assert nb.count[pick] == near.notna().sum()
        assert nb.mean[pick] == pytest.approx(near.mean(), rel=1e-12)
        assert nb.min[pick] == pytest.approx(near.min(), rel=1e-12)
        region = pd.concat([near, t.loc[[pick], metric]]).mean()
        assert nb.region[pick] == pytest.approx(region, rel=1e-12)
        ratio = near.mean() / t.loc[pick, metric]
        assert f">{sr.num(ratio)}</td>" in html
        assert f">{sr.fmt_metric(metric, near.mean())}</td>" in html
    # an interior point of a 3x3x2 grid has 3*3*2 - 1 = 17 neighbours, a corner 2*2*2 - 1 = 7
    full = sr.neighbourhood(res.grid, np.ones(res.grid.size))
    assert full.count.max() == 17 and full.count.min() == 7


def test_deflated_sharpe_of_the_best_equals_an_independent_computation(sweep, single_runs):
    """DSR of the ranked best against scipy on the single-run engine's returns, with the effective
    number of trials from numpy's eigenvalues of the combinations' correlation matrix (Nyholt 2004:
    1 + (M - 1)(1 - Var(lambda) / M)) over their mean daily returns per sub-block."""
    cfg, res, page = sweep
    t = res.table
    best = int(t["sym_sharpe"].idxmax())  # independent mode ranks the median per-symbol Sharpe
    assert best == sr.ranked(res, cfg).order[0]
    r = single_runs(best).to_numpy()
    sharpes = t["sharpe"].to_numpy()
    sharpes = sharpes[np.isfinite(sharpes)]
    means = res.fine_sums[..., 1] / res.fine_sums[..., 0]
    assert res.fine_sums.shape[1] > res.sums.shape[1]
    np.testing.assert_allclose(res.fine_sums.reshape(18, 6, -1, 5).sum(axis=2), res.sums, rtol=1e-12, atol=1e-15)
    live = means[means.std(axis=1) > 0]
    lam = np.linalg.eigvalsh(np.corrcoef(live))
    m = len(live)
    n_eff = 1 + (m - 1) * (1 - np.var(lam, ddof=1) / m)
    assert 1 <= n_eff < 18
    expected = deflated_sharpe_ratio(r.mean() / r.std(ddof=1), len(r), stats.skew(r),
                                     stats.kurtosis(r, fisher=False), n_trials=n_eff,
                                     sr_trials_var=np.var(sharpes, ddof=1) / 252)
    got = sr.deflated(res.sums, res.fine_sums)
    assert got.n_trials == pytest.approx(n_eff, rel=1e-9)
    assert got.dsr[best] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert got.n_combos == 18 and got.n_obs[best] == len(r)
    assert sr.deflated(res.sums).n_trials == 18  # without sub-blocks: every combination counts
    html = page.read_text()
    assert f">{sr.num(expected, 3)}</td>" in _section(html, "dsr")
    assert f">{sr.num(expected, 3)}</td>" in _section(html, "top")  # DSR column of the top 10


def test_walk_forward_csv_is_the_single_run_engines_returns(sweep, single_runs):
    cfg, res, _ = sweep
    wf = pd.read_csv(res.out_dir / "walk_forward.csv", parse_dates=["date"])
    assert list(wf.columns[:5]) == ["date", "oos_return", "oos_equity", "combo", "step"]
    assert list(wf.columns[5:]) == list(res.grid.keys)
    n, s1, s2 = (res.sums[..., i] for i in range(3))
    expect = walk_forward(n, s1, s2, train_blocks=cfg.sweep.train_blocks)
    assert wf.groupby("step")["combo"].first().tolist() == expect.chosen.tolist()
    dates = single_runs(0).index
    edges = block_edges(len(dates) + 1, cfg.sweep.blocks)
    # the out-of-sample days are every day from the first test block on, once, in order
    assert wf["date"].tolist() == list(dates[edges[cfg.sweep.train_blocks] - 1:])
    for (test, p), (k, g) in zip(expect.steps, wf.groupby("step")):
        assert (g["combo"] == p).all()
        assert g["date"].iloc[0] == dates[edges[test[0]] - 1]
        engine = single_runs(p).reindex(pd.DatetimeIndex(g["date"]))
        np.testing.assert_array_equal(g["oos_return"].to_numpy(), engine.to_numpy())
        for key, v in res.grid.combo(p).items():
            assert (g[key] == v).all()
    np.testing.assert_allclose(wf["oos_equity"], np.cumprod(1 + wf["oos_return"]), rtol=1e-12)
    # the re-run stitched Sharpe is the one walk_forward computes from the block sums
    from backtest.metrics import sharpe

    assert sharpe(wf["oos_return"]) == pytest.approx(expect.stitched, rel=1e-9)


def test_odd_blocks_say_why_pbo_is_missing(sweep):
    cfg, res, _ = sweep
    wfo, _ = sr.walk_forward_oos(res, cfg)
    html = sr.render(dataclasses.replace(res, sums=res.sums[:, :5]), cfg, wfo, {})
    assert "PBO by CSCV is not available" in _section(html, "pbo")
