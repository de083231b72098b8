"""The tear sheet's SVG charts (backtest/charts.py): ticks and labels as matplotlib's locators and
formatters make them (matplotlib is the oracle), every data point drawn, NaN breaks a line, log
scale maps equal ratios to equal distances, and every chart of the page keeps its content."""

from __future__ import annotations

import re

import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import pytest

from backtest.charts import AUTO_STEPS, MAXN_STEPS, Plot, date_ticks, days, nice_ticks, percent_labels


def _inside(ticks: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return ticks[(ticks >= lo) & (ticks <= hi)]


@pytest.mark.parametrize("n,steps", [(6, MAXN_STEPS), (8, AUTO_STEPS), (9, AUTO_STEPS)])
def test_ticks_equal_matplotlibs_max_n_locator(n, steps):
    rng = np.random.default_rng(1)
    loc = mticker.MaxNLocator(n, steps=list(steps))
    checked = 0
    for _ in range(3000):
        lo = rng.normal() * 10 ** rng.uniform(-3, 4)
        hi = lo + 10 ** rng.uniform(-4, 5)
        want = loc.tick_values(lo, hi)
        tol = 1e-6 * (hi - lo)
        if np.any((np.abs(want - lo) < tol) | (np.abs(want - hi) < tol)):
            continue  # a tick on the edge: in or out is a rounding question, not a layout one
        want = _inside(want, lo, hi)
        got = nice_ticks(lo, hi, n, steps)
        assert len(got) == len(want) and np.allclose(got, want, rtol=1e-9, atol=tol), (lo, hi, got, want)
        checked += 1
    assert checked > 2500


@pytest.mark.parametrize("decimals", [None, 0, 1])
def test_percent_labels_equal_matplotlibs_percent_formatter(decimals):
    fmt = mticker.PercentFormatter(1.0, decimals=decimals)
    for lo, hi in [(-0.4348, 0.0), (-0.03, 0.041), (0.0, 1.1), (-0.0004, 0.0009), (-1.2, 2.5)]:
        ticks = nice_ticks(lo, hi, 6, MAXN_STEPS)
        want = [fmt.fix_minus(fmt.format_pct(t, hi - lo)) for t in ticks]
        assert percent_labels(ticks, (lo, hi), decimals) == want


@pytest.mark.parametrize("start,end,base", [("2016-01-04", "2025-12-31", 1), ("2001-03-01", "2025-06-30", 2)])
def test_year_ticks_equal_matplotlibs_year_locator(start, end, base):
    first, last = np.datetime64(start), np.datetime64(end)
    got, labels = date_ticks(first, last)
    loc = mdates.YearLocator(base=base)
    want = np.array([t for t in loc.tick_values(pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime())
                     if mdates.date2num(first) <= t <= mdates.date2num(last)])
    assert np.allclose(got, want)
    assert labels == [mdates.num2date(t).strftime("%Y") for t in want]


def test_month_ticks_on_short_spans_label_the_year_in_january():
    got, labels = date_ticks(np.datetime64("2023-01-02"), np.datetime64("2025-12-31"))
    assert 4 <= len(got) <= 10
    dates = pd.to_datetime(got, unit="D")
    assert all(d.day == 1 for d in dates)
    assert [lab for d, lab in zip(dates, labels) if d.month == 1] == [str(d.year) for d in dates if d.month == 1]
    assert all(lab[:3].isalpha() for d, lab in zip(dates, labels) if d.month != 1)


def _paths(svg: str) -> list[str]:
    return re.findall(r'<path d="([^"]*)" fill="none" stroke="#123456"', svg)


def test_every_point_is_drawn_and_nan_breaks_the_line():
    x = np.arange(100.0)
    y = np.sin(x / 7)
    y[[10, 11, 50]] = np.nan
    p = Plot(3.0)
    p.line(x, y, "#123456")
    (d,) = _paths(p.svg("t"))
    segments = d.split("M")[1:]
    assert len(segments) == 3  # 0-9, 12-49, 51-99
    points = sum(len(re.findall(r"-?[\d.]+ -?[\d.]+", s)) for s in segments)
    assert points == int(np.isfinite(y).sum())


def test_log_scale_maps_equal_ratios_to_equal_distances():
    y = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    p = Plot(3.0, ylog=True, log_subs=(1.0, 2.0, 5.0))
    p.line(np.arange(5.0), y, "#123456")
    svg = p.svg("t")
    (d,) = _paths(svg)
    ys = np.array([float(b) for _, b in re.findall(r"(-?[\d.]+) (-?[\d.]+)", d)])
    assert np.allclose(np.diff(ys), np.diff(ys)[0], atol=0.02) and np.diff(ys)[0] < 0
    ticks = re.findall(r'text-anchor="end">(.*?)</g>', svg)[0]
    assert re.findall(r">([^<]+)</text>", ticks) == ["0.5", "1", "2", "5"]


def test_text_is_escaped():
    p = Plot(3.0, ylabel="<b>&", legend_loc="above")
    p.line([0, 1], [0, 1], "#123456", label="<script>alert(1)</script>")
    svg = p.svg('a "quoted" <label>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;&amp;" in svg
    assert 'aria-label="a &quot;quoted&quot; &lt;label&gt;"' in svg


def test_the_tear_sheet_charts_keep_their_content(tmp_path):
    from backtest.config import load_config
    from backtest.data.synth import generate
    from backtest.output import write_outputs
    from backtest.pipeline import run

    out = run(load_config("configs/dip.toml"), generate(seed=7, symbols=5, years=3))
    page = (write_outputs(out, tmp_path) / "tearsheet.html").read_text()
    svgs = dict(re.findall(r'<svg [^>]*aria-label="([^"]+)"[^>]*>(.*?)</svg>', page, flags=re.S))
    index = out.prepared.panel.index_name
    lines = ["Strategy", index, "Equal weight", f"{index} × "]
    for name in ("equity curve, linear scale", "equity curve, log scale", "rolling six-month Sharpe ratio"):
        assert all(label in svgs[name] for label in lines), name
    assert "(log scale)" in svgs["equity curve, log scale"]
    assert all(s in svgs["exposure over time"] for s in ("share of equity invested, each day", "60-day average",
                                                          "average "))
    assert all(s in svgs["distribution of trade returns"] for s in ("mean ", "median ", "trade return (net of fees)"))
    years = sorted(set(pd.DatetimeIndex(out.result.equity.index[1:]).year))
    assert all(f">{y}</text>" in svgs["yearly returns"] for y in years)
    ev = svgs["event study: mean forward return after each signal with 95% bootstrap intervals"]
    assert "entry rule" in ev and "unconditional (every day)" in ev and "1 day after" in ev
    assert ev.count("<circle") >= 3 * 4  # a mean per signal and horizon (and the legend's)
    assert "drawdown" in svgs["underwater drawdown curve"]
    assert len(days(pd.DatetimeIndex(out.result.equity.index))) == len(out.result.equity)


def test_number_labels_equal_matplotlibs_scalar_formatter():
    from backtest.charts import number_labels

    for lo, hi, n, steps in [(-3.6, 4.0, 6, MAXN_STEPS), (0.0, 63.0, 9, AUTO_STEPS), (0.0, 1.37, 6, MAXN_STEPS),
                             (-0.27, 1.3, 6, MAXN_STEPS), (-0.02, 0.013, 6, MAXN_STEPS)]:
        ticks = nice_ticks(lo, hi, n, steps)
        fmt = mticker.ScalarFormatter(useOffset=False)
        fmt.create_dummy_axis()
        fmt.axis.set_view_interval(lo, hi)
        fmt.set_locs(ticks)
        assert number_labels(ticks) == [fmt(t) for t in ticks], (lo, hi)


def test_day_ticks_on_spans_of_a_few_weeks():
    got, labels = date_ticks(np.datetime64("2025-12-03"), np.datetime64("2025-12-31"))
    assert 2 <= len(got) <= 10 and labels[0] == "Dec 03"
    assert np.all(np.diff(got) == 7)


def test_colormap_and_norms_equal_matplotlibs():
    import matplotlib as mpl
    from matplotlib import colors as mcolors

    from backtest.charts import BAD_COLOR, Colormap, Norm

    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-0.2, 1.2, 20000), [0.0, 1.0, 0.5, np.nan, -np.inf, np.inf, 1 - 1e-16, 255 / 256]])
    ref = mpl.colormaps["RdYlGn"].with_extremes(bad=BAD_COLOR)
    assert Colormap()(x) == [mcolors.to_hex(c) for c in ref(x)]
    for _ in range(200):
        lo, hi = np.sort(rng.normal(size=2) * 10 ** rng.uniform(-3, 2))
        v = rng.uniform(lo - (hi - lo), hi + (hi - lo), 50)
        want = mcolors.TwoSlopeNorm(0.0, lo, hi)(v) if lo < 0 < hi else mcolors.Normalize(lo, hi)(v)
        np.testing.assert_array_equal(Norm(lo, hi, 0.0)(v), np.asarray(want))
    for one in (2.0, -0.3, 16385.0, 1e9):  # a single value: the middle colour, whatever its size
        assert Norm(one, one)(np.array([one])).tolist() == [0.5]


def test_scatter_markers_and_rug_draw_every_finite_point_and_escape_texts():
    import xml.etree.ElementTree as ET

    svg_ns = "{http://www.w3.org/2000/svg}"
    x = np.arange(50.0)
    y = np.cos(x)
    y[[3, 7]] = np.nan
    p = Plot(3.0, title="fit <a&b>", legend_loc="upper left")
    p.scatter(x, y, "#123456", 3.0, 0.45)
    p.line(x, y, "#654321", marker=6.0, label="<line>")
    p.rug([1.0, np.nan, 2.0], "#ea580c", label="top 2")
    p.text(10.0, "#<5>", y=1.0)
    root = ET.fromstring(p.svg("s"))
    circles = list(root.iter(f"{svg_ns}circle"))
    assert len(circles) == 48 + 48 + 1  # scatter, line markers, the line's legend handle
    assert all(c.get("r") in ("1.5", "3") for c in circles)
    rug = [el.get("d") for el in root.iter(f"{svg_ns}path") if el.get("stroke") == "#ea580c"]
    assert rug[0].count("v14") == 2
    texts = [t.text for t in root.iter(f"{svg_ns}text")]
    assert {"fit <a&b>", "<line>", "top 2", "#<5>"} <= set(texts)
