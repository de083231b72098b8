"""The sweep report's SVG charts (backtest/charts.py through backtest/sweep_report.py): a heatmap
cell's colour is matplotlib's RdYlGn of its value on the report's scale (matplotlib's colormap and
normalisations are the oracle), the outlined cell is the best combination of an independent pandas
ranking, missing cells are masked, texts are escaped, every chart parses as SVG, and writing a
report imports neither matplotlib nor scipy.stats."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from matplotlib import colors as mcolors

from backtest import sweep_report as sr
from backtest.charts import BAD_COLOR
from backtest.grid import Grid

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[1]


def _oracle(v: float, lo: float, hi: float) -> str:
    """The colour matplotlib's imshow gave a cell in the report (its former code: RdYlGn, NaN and
    inf masked, TwoSlopeNorm around 0 when [lo, hi] spans 0, else Normalize). A single value is
    the middle colour (the former code's Normalize(lo - 1e-12, hi + 1e-12), which only gave that
    while 1e-12 was above the value's rounding step, below ~4,500)."""
    if not math.isfinite(v):
        return BAD_COLOR
    if lo < 0 < hi:
        norm = mcolors.TwoSlopeNorm(0.0, lo, hi)
    elif lo == hi:
        return mcolors.to_hex(mpl.colormaps["RdYlGn"](0.5))
    else:
        norm = mcolors.Normalize(lo, hi)
    return mcolors.to_hex(mpl.colormaps["RdYlGn"](norm(v)))


def _cells(svg: str, shape: tuple[int, int]) -> tuple[dict, dict]:
    """{(row, column): fill} of the heatmap's cells (row 0 at the bottom) and the geometry."""
    root = ET.fromstring(svg)
    group = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "cells")
    boxes = []
    for path in group.iter(f"{SVG}path"):
        for x, y, w, h in re.findall(r"M([\d.]+) ([\d.]+)h([\d.]+)v([\d.]+)h-[\d.]+Z", path.get("d")):
            boxes.append((float(x), float(y), float(w), float(h), path.get("fill")))
    assert len(boxes) == shape[0] * shape[1]  # every cell drawn once
    x0, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    w, h = boxes[0][2], boxes[0][3]
    fills = {}
    for x, y, _, _, fill in boxes:
        fills[(shape[0] - 1 - round((y - top) / h), round((x - x0) / w))] = fill
    return fills, {"x0": x0, "top": top, "w": w, "h": h, "rows": shape[0]}


def _cell_of(rect: ET.Element, geo: dict) -> tuple[int, int]:
    col = round((float(rect.get("x")) - geo["x0"]) / geo["w"])
    return geo["rows"] - 1 - round((float(rect.get("y")) - geo["top"]) / geo["h"]), col


def _texts(svg: str, cls: str) -> dict:
    """{(x, y): text} of a text group."""
    root = ET.fromstring(svg)
    group = next((g for g in root.iter(f"{SVG}g") if g.get("class") == cls), None)
    return {} if group is None else {(float(t.get("x")), float(t.get("y"))): t.text for t in group.iter(f"{SVG}text")}


@pytest.mark.parametrize("case", ["spans_zero", "positive", "negative", "constant", "wider_scale"])
def test_cell_colours_are_matplotlibs_rdylgn_on_the_reports_scale(case):
    rng = np.random.default_rng(4)
    mean = rng.normal(size=(7, 9)) * 0.3
    if case == "positive":
        mean = np.abs(mean) + 0.01
    elif case == "negative":
        mean = -np.abs(mean) - 0.01
    elif case == "constant":
        mean[:] = 0.25
    mean[2, 3] = mean[0, 8] = np.nan
    mean[5, 1] = np.inf
    fin = mean[np.isfinite(mean)]
    lo, hi = float(fin.min()), float(fin.max())
    if case == "wider_scale":  # the scale shared by every map of the page is wider than this map
        lo, hi = lo - 0.4, hi + 0.1
    values = (np.arange(7) * 0.01, np.arange(9) + 1)
    svg = sr.heatmap(mean, ("dip", "flow_z"), values, "sharpe", lo, hi, (6, 0))
    fills, geo = _cells(svg, mean.shape)
    for (i, j), v in np.ndenumerate(mean):
        assert fills[(i, j)] == _oracle(v, lo, hi), (i, j, v)
    assert fills[(2, 3)] == fills[(5, 1)] == BAD_COLOR  # NaN and inf are masked
    # value texts: every finite cell, none on a NaN one, inf spelled out
    texts = set(_texts(svg, "values").values())
    assert "∞" in texts and len(_texts(svg, "values")) == mean.size - 2
    assert {sr._cell_text("sharpe", v) for v in fin} <= texts


def test_colour_bar_is_centred_on_zero_and_labelled_in_percent():
    mean = np.array([[-0.10, 0.0, 0.05], [0.30, 0.12, np.nan]])
    svg = sr.heatmap(mean, ("a", "b"), (np.array([1, 2]), np.array([1, 2, 3])), "total_return", -0.10, 0.30, (1, 0))
    root = ET.fromstring(svg)
    bar = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "colorbar")
    rect = bar.find(f"{SVG}rect")
    top, height = float(rect.get("y")), float(rect.get("height"))
    labels = {t.text: float(t.get("y")) for t in bar.iter(f"{SVG}text") if t.get("transform") is None}
    assert list(labels)[0] == "−10" and "30" in labels  # percent points, as the cells
    # a two-slope scale: 0 sits half-way up the bar although it is a quarter of the range
    assert labels["0"] - 9 * 0.35 == pytest.approx(top + height / 2, abs=0.02)
    bands = [p for p in bar.iter(f"{SVG}path") if p.get("fill")]
    assert [p.get("fill") for p in bands] == [mcolors.to_hex(c) for c in mpl.colormaps["RdYlGn"](np.arange(256))]
    ys = [float(re.match(r"M[\d.]+ ([\d.]+)", p.get("d")).group(1)) for p in bands]
    assert ys == sorted(ys, reverse=True)  # from the bottom (low values) up
    assert "mean Total return (%)" in svg
    assert {"−10.0", "0.0", "5.0", "30.0", "12.0"} <= set(_texts(svg, "values").values())
    fills, _ = _cells(svg, mean.shape)
    assert fills[(0, 1)] == mcolors.to_hex(mpl.colormaps["RdYlGn"](0.5))  # 0 takes the middle colour


def _fake_sweep(keys: tuple[str, ...]):
    """A SweepResult-like grid and table (no simulation): a made-up Sharpe per combination, some
    combinations too inactive to be ranked, among them the best raw value."""
    grid = Grid(keys, (np.array([1, 2, 3]), np.array([0.1, 0.2]), np.array([5, 10, 20, 40])))
    idx = grid.indices(0, grid.size)
    rng = np.random.default_rng(11)
    table = pd.DataFrame({k: v[idx[:, i]] for i, (k, v) in enumerate(zip(grid.keys, grid.values))})
    table.insert(0, "combo", np.arange(grid.size))
    table["sharpe"] = rng.normal(size=grid.size)
    table["trades"] = rng.integers(0, 60, size=grid.size)
    table["exposure"] = rng.uniform(0.0, 0.3, size=grid.size)
    table.loc[table["sharpe"].idxmax(), "trades"] = 0  # the raw best is not active enough
    table.loc[(idx[:, 0] == 2) & (idx[:, 1] == 1), "trades"] = 0  # a whole (a=3, b=0.2) slice
    eligible = ((table["trades"] >= 10) & (table["exposure"] >= 0.02)).to_numpy()
    order = sr.ranking(table, "sharpe", eligible)
    rk = sr.Ranked("sharpe", "sharpe", eligible, order, "sharpe", "", 10, 0.02)
    return SimpleNamespace(grid=grid, table=table), rk


@pytest.mark.parametrize("keys", [("a", "b", "c"), ("<a&b>", 'c"d', "e'<f>")])
def test_best_cell_is_where_the_ranking_puts_it_and_inactive_cells_are_masked(keys):
    res, rk = _fake_sweep(keys)
    t = res.table
    eligible = (t["trades"] >= 10) & (t["exposure"] >= 0.02)
    best = int(t.loc[eligible, "sharpe"].idxmax())  # pandas, independently of the report's ranking
    assert best == int(rk.order[0])
    html = sr._heatmaps(res, rk, best)
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) == 3
    pairs = [(0, 1), (0, 2), (1, 2)]
    for svg, (i, j) in zip(svgs, pairs):
        root = ET.fromstring(svg)  # valid XML whatever the keys are
        ki, kj = keys[i], keys[j]
        assert root.get("aria-label") == f"heatmap of mean sharpe over {ki} and {kj}"
        texts = [el.text for el in root.iter(f"{SVG}text")]
        assert ki in texts and kj in texts  # axis labels, escaped in the source, intact once parsed
        vi, vj = res.grid.values[i], res.grid.values[j]
        fills, geo = _cells(svg, (len(vi), len(vj)))
        (rect,) = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "best"]
        row, col = _cell_of(rect, geo)
        assert (vi[row], vj[col]) == (t.loc[best, ki], t.loc[best, kj])
        # each cell: the mean over the other parameter of the eligible combinations (pandas)
        means = (t.assign(v=t["sharpe"].where(eligible)).groupby([ki, kj])["v"].mean())
        for (a, b), m in means.items():
            cell = (int(np.flatnonzero(vi == a)[0]), int(np.flatnonzero(vj == b)[0]))
            lo_hi = _shared_scale(t, eligible, keys)
            assert fills[cell] == _oracle(m, *lo_hi), (ki, kj, a, b)
    # the (a=3, b=0.2) slice has no eligible combination: masked grey, no value printed
    fills, _ = _cells(svgs[0], (3, 2))
    assert fills[(2, 1)] == BAD_COLOR
    if keys[0] == "<a&b>":
        assert "<a&b>" not in html and "&lt;a&amp;b&gt;" in html  # only escaped


def _shared_scale(t: pd.DataFrame, eligible: pd.Series, keys: tuple[str, ...]) -> tuple[float, float]:
    """One colour scale for all maps: min and max of every pair's cell means."""
    v = t.assign(v=t["sharpe"].where(eligible))
    means = pd.concat([v.groupby([keys[i], keys[j]])["v"].mean() for i, j in [(0, 1), (0, 2), (1, 2)]])
    return float(means.min()), float(means.max())


CONFIG = """
[data]
synthetic = { seed = 5, symbols = 5, years = 3 }
[strategy]
name = "southbound_dip"
[execution]
mode = "portfolio"
[sweep]
metric = "total_return"
blocks = 6
train_blocks = 2
min_trades = 0
min_exposure = 0.0
[sweep.grid]
dip = [0.03, 0.06, 0.09]
flow_z = [0.5, 1.5]
"exits.max_hold" = [5, 15]
"""


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A report written by the CLI in a fresh process, and the heavy modules that process imported."""
    tmp = tmp_path_factory.mktemp("sweep_charts")
    (tmp / "s.toml").write_text(CONFIG)
    code = textwrap.dedent(f"""
        import sys
        from backtest.cli import main
        assert main(["sweep", {str(tmp / 's.toml')!r}, "--out", {str(tmp / 'out')!r}]) == 0
        print(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib" or m.startswith("scipy.stats")))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return (tmp / "out" / "sweep.html").read_text(), done.stdout.strip().splitlines()[-1]


def test_writing_a_report_imports_neither_matplotlib_nor_scipy_stats(written):
    _, modules = written
    assert modules == "[]"


def test_every_chart_of_the_report_is_valid_svg_and_keeps_its_content(written):
    html, _ = written
    blocks = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(blocks) == 3 + 1 + 2 + 1
    roots = [ET.fromstring(b) for b in blocks]
    assert all(r.tag == f"{SVG}svg" for r in roots)
    assert "matplotlib" not in html
    ids = [el.get("id") for r in roots for el in r.iter() if el.get("id")]
    assert not ids  # nothing that could clash between charts of one page
    labels = {r.get("aria-label"): r for r in roots}
    assert len(labels) == len(roots)
    dist = labels["distribution of total_return over all combinations"]
    legend = [t.text for t in dist.iter(f"{SVG}text")]
    assert any(s.startswith("median ") and s.endswith("%") for s in legend)
    assert any(s.startswith("best ") for s in legend) and "top 5" in legend
    wf = labels["walk-forward stitched out-of-sample equity versus the full-sample best"]
    wtexts = [t.text for t in wf.iter(f"{SVG}text")]
    assert "walk-forward (stitched out of sample)" in wtexts
    assert any(s.startswith("full-sample best #") and s.endswith("(look-ahead)") for s in wtexts)
    assert sum(1 for s in wtexts if re.fullmatch(r"#\d+", s)) == 4  # one pick label per step (6 blocks, 2 train)
    scatter = labels["out-of-sample versus in-sample Sharpe of each split's winner"]
    dots = [c for c in scatter.iter(f"{SVG}circle")]
    assert len(dots) == math.comb(6, 3)  # every CSCV split drawn, none thinned
    assert any((t.text or "").startswith("fit: OOS = ") for t in scatter.iter(f"{SVG}text"))


def test_a_single_varied_parameter_draws_a_line_with_a_marker_per_value():
    mean = np.array([0.1, np.nan, -0.05, 0.2])
    svg = sr.line_chart(mean, "<k>", np.array([1, 2, 3, 4]), "cagr")
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{SVG}circle"))) == 3  # the finite values
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<k>" in texts and "&lt;k&gt;" in svg
    assert all(lab in texts for lab in ("1", "2", "3", "4"))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=6),
                  elements=st.floats(-1e6, 1e6) | st.sampled_from([np.nan, np.inf, -np.inf])),
       st.sampled_from(["sharpe", "cagr"]))
def test_any_matrix_draws_a_valid_heatmap_coloured_as_matplotlib(mean, metric):
    fin = mean[np.isfinite(mean)]
    lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
    rows, cols = mean.shape
    svg = sr.heatmap(mean, ("y<", "x&"), (np.arange(rows), np.arange(cols)), metric, lo, hi, (rows - 1, cols - 1))
    fills, _ = _cells(svg, mean.shape)  # parses as XML, one box per cell
    for (i, j), v in np.ndenumerate(mean):
        assert fills[(i, j)] == _oracle(v, lo, hi)
    assert not re.search(r"\bnan\b|\binf\b", svg.lower())  # no non-finite number written


def test_charts_without_a_finite_value_still_draw_valid_svg():
    from backtest.robustness import PBOResult

    nan = np.full(4, np.nan)
    pbo = PBOResult(np.nan, nan, np.zeros(4, int), nan, nan, np.zeros((4, 2), bool), np.nan, np.nan, np.nan, "sharpe")
    svgs = [sr.degradation(pbo), sr.logit_hist(pbo), sr.histogram(nan, "sharpe", np.nan, nan),
            sr.histogram(np.ones(3), "cagr", 1.0, np.ones(1)), sr.line_chart(nan, "k", np.arange(4), "sharpe"),
            sr.heatmap(np.full((2, 3), np.nan), ("a", "b"), (np.arange(2), np.arange(3)), "sharpe", 0.0, 1.0, (0, 0))]
    for svg in svgs:
        ET.fromstring(svg)
        assert not re.search(r"\bnan\b|\binf\b", svg.lower())
    assert set(_cells(svgs[-1], (2, 3))[0].values()) == {BAD_COLOR}
