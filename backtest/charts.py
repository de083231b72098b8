"""A lean inline-SVG chart writer for the tear sheet and the sweep report (lines, markers, areas,
steps, bars, error bars, scatters, rugs, heatmaps with a colour bar).

matplotlib cost a warm `run` ~0.8 s of CPU and a warm `sweep` ~0.9 s (its import and drawing);
these charts take milliseconds and keep the look the pages had with matplotlib
(docs/performance.md): 9 pt text, light grid below the data, left and bottom spines, 5 % data
margins, "nice" linear ticks (steps 1, 2, 2.5, 5, 10), decade ticks on log axes, year or month
ticks on date axes, unicode minus signs, matplotlib's RdYlGn colour map and its normalisations.
Every data point is drawn (no downsampling), each NaN breaks a line or masks a cell, and every
text is escaped. Units are points (1/72 inch) of a figure `width` x `height` inches, like
matplotlib's SVG; the page scales the SVG to its column.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np

PT = 72.0
FONT = 9.0
MINUS = "\u2212"
TICK_COLOR, LABEL_COLOR, TEXT_COLOR = "#4b5563", "#374151", "#1f2937"
GRID_COLOR, SPINE_COLOR = "#e5e7eb", "#9ca3af"
DASHES = {"--": (3.7, 1.6), ":": (1.0, 1.65)}  # matplotlib's, in multiples of the line width


def _num(v: float) -> str:
    """A coordinate: 2 decimals, trailing zeros dropped."""
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def text_width(text: str, size: float = FONT) -> float:
    """Rough advance width of `text` in a sans-serif font (for laying out legends and labels)."""
    return sum(0.32 if c in "il.,:;'|!()[] " else 0.9 if c in "mwMW%" + MINUS else 0.62 for c in text) * size


AUTO_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)  # matplotlib's AutoLocator
MAXN_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)  # matplotlib's MaxNLocator default


def nice_ticks(lo: float, hi: float, n: int = 6, steps: tuple = AUTO_STEPS) -> np.ndarray:
    """The ticks in [lo, hi] of matplotlib's MaxNLocator(n, steps): the smallest step of `steps` x
    10^k that needs at most `n` intervals, at its multiples."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.array([lo]) if math.isfinite(lo) else np.array([])
    dv, mean = hi - lo, (hi + lo) / 2
    # matplotlib's scale_range: far from zero, ticks count from an offset (a power of ten)
    offset = 0.0 if abs(mean) / dv < 100 else math.copysign(10.0 ** math.floor(math.log10(abs(mean))), mean)
    lo, hi = lo - offset, hi - offset
    raw = dv / n
    scale = 10.0 ** math.floor(math.log10(raw))
    for k in range(len(steps) * 2 + 1):
        step = steps[k % len(steps)] * 10.0 ** (k // len(steps)) * scale
        if step >= raw * (1 - 1e-9):
            break
    first = math.ceil(lo / step - 1e-9)
    ticks = (first + np.arange(int(math.floor(hi / step + 1e-9)) - first + 1)) * step
    return np.where(np.abs(ticks) < step * 1e-9, 0.0, ticks) + offset


def step_decimals(ticks: np.ndarray) -> int:
    """The fewest decimals that write every tick exactly (as matplotlib's ScalarFormatter: 1.5 -> "1.5", "3.0")."""
    for d in range(12):
        if np.allclose(ticks * 10.0 ** d, np.round(ticks * 10.0 ** d), rtol=0, atol=1e-6):
            return d
    return 12


def number_labels(ticks: np.ndarray) -> list[str]:
    d = step_decimals(ticks)
    return [_minus(f"{t:.{d}f}") for t in ticks]


def percent_labels(ticks: np.ndarray, view: tuple[float, float], decimals: int | None) -> list[str]:
    """matplotlib's PercentFormatter(1.0, decimals): with None, decimals from the view's range."""
    if decimals is None:
        rng = abs(view[1] - view[0]) * 100
        decimals = 0 if rng <= 0 else min(5, max(0, math.ceil(2.0 - math.log10(2.0 * rng))))
    return [_minus(f"{t * 100:.{decimals}f}%") for t in ticks]


def log_ticks(lo: float, hi: float, subs) -> np.ndarray:
    """Ticks of a log axis over [lo, hi] (lo > 0): `subs` x each power of ten ("all": 1..9)."""
    subs = np.arange(1.0, 10.0) if subs == "all" else np.asarray(subs, dtype=float)
    decades = np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    t = (10.0 ** decades[:, None] * subs[None, :]).ravel()
    return t[(t >= lo * (1 - 1e-9)) & (t <= hi * (1 + 1e-9))]


def date_ticks(first: np.datetime64, last: np.datetime64) -> tuple[np.ndarray, list[str]]:
    """Ticks of a date axis (days since 1970): every year (every other beyond 13 years) for spans
    above three years, else months, labelled with the year in January (as matplotlib's tear sheet)."""
    f, l = first.astype("datetime64[D]"), last.astype("datetime64[D]")
    span = int((l - f).astype(int))
    y0, y1 = int(str(f.astype("datetime64[Y]"))), int(str(l.astype("datetime64[Y]")))
    if span > 3 * 365:
        base = 1 if span < 13 * 365 else 2
        years = [y for y in range(y0, y1 + 1) if y % base == 0]
        days = np.array([np.datetime64(f"{y}-01-01", "D") for y in years])
        keep = (days >= f) & (days <= l)
        return days[keep].astype(np.int64).astype(float), [str(y) for y, k in zip(years, keep) if k]
    if span <= 62:  # a few weeks: every 1, 2, 7 or 14 days
        step = next((k for k in (1, 2, 7, 14) if span / k <= 9), 14)
        d = np.arange(f, l + 1, step)
        names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return d.astype(np.int64).astype(float), [f"{names[int(str(x)[5:7]) - 1]} {str(x)[8:10]}" for x in d]
    months = (l.astype("datetime64[M]") - f.astype("datetime64[M]")).astype(int)
    step = next((s for s in (1, 2, 3, 4, 6, 12) if months / s <= 9), 12)
    start = f.astype("datetime64[M]")
    ms = np.arange(start, l.astype("datetime64[M]") + 1)
    ms = ms[(ms.astype(int) % step) == 0]
    days = ms.astype("datetime64[D]")
    keep = (days >= f) & (days <= l)
    days, ms = days[keep], ms[keep]
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    labels = [str(m.astype("datetime64[Y]")) if int(m.astype(int)) % 12 == 0 else names[int(m.astype(int)) % 12]
              for m in ms]
    return days.astype(np.int64).astype(float), labels


def days(index) -> np.ndarray:
    """A DatetimeIndex as float days since 1970 (the x of a time-series chart)."""
    return np.asarray(index.values.astype("datetime64[s]").astype(np.int64), dtype=float) / 86400.0


@dataclass
class _Entry:
    kind: str  # "line", "patch", "errorbar", "diamond", "rug", "dot"
    label: str
    color: str
    width: float = 1.2
    alpha: float = 1.0
    dash: str = ""
    marker: float = 0.0  # diameter of a round marker on a line's handle


@dataclass
class Plot:
    """One chart: data items in data coordinates, laid out and written by `svg`."""

    height: float
    width: float = 11.0
    bottom: float = 0.35
    top: float = 0.1
    left: float = 0.8
    right: float = 0.15
    items: list = field(default_factory=list)
    legend: list = field(default_factory=list)
    xlim: tuple | None = None
    ylim: tuple | None = None
    ylog: bool = False
    log_subs: object = "all"
    xdates: bool = False
    xticks: tuple | None = None  # (positions, labels) fixed
    xgrid: bool = True
    xpercent: int | None | bool = False  # decimals for a percent x axis (None: auto), False: plain numbers
    ypercent: int | None | bool = False
    xlabel: str = ""
    ylabel: str = ""
    title: str = ""  # over the axes, at their left edge (matplotlib's loc="left"), 10 pt
    title_color: str = TEXT_COLOR
    y_nbins: int = 0  # 0: as many as fit (matplotlib's AutoLocator); time charts: 6 (MaxNLocator(6))
    legend_loc: str = ""  # "above" (a row over the axes), "upper right" / "upper left" / "lower left" (inside), "below"
    legend_ncols: int = 0  # 0: every entry in one row ("above") or one column
    legend_size: float = FONT
    x_sticky: tuple = ()
    y_sticky: tuple = ()
    _xd: list = field(default_factory=list)
    _yd: list = field(default_factory=list)

    # ------------------------------------------------------------------ items (data coordinates)

    def _data(self, x, y) -> None:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if self.ylog:
            y = np.where(y > 0, y, np.nan)
        fx, fy = x[np.isfinite(x)], y[np.isfinite(y)]
        if fx.size:
            self._xd.append((fx.min(), fx.max()))
        if fy.size:
            self._yd.append((fy.min(), fy.max()))

    def line(self, x, y, color: str, width: float = 1.2, alpha: float = 1.0, dash: str = "", label: str = "",
             marker: float = 0.0) -> None:
        """A line through the points, broken at each NaN; `marker` > 0: a round marker of that
        diameter (points) on every finite point too."""
        self._data(x, y)
        self.items.append(("line", np.asarray(x, float), np.asarray(y, float), color, width, alpha, dash, marker))
        if label:
            self.legend.append(_Entry("line", label, color, width, alpha, dash, marker))

    def scatter(self, x, y, color: str, size: float = 3.0, alpha: float = 1.0, label: str = "") -> None:
        """A round marker of `size` points diameter at every point with finite x and y, each its own
        element so that overlapping translucent markers darken (as matplotlib's scatter)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        self._data(x, y)
        self.items.append(("scatter", x, y, color, size, alpha))
        if label:
            self.legend.append(_Entry("dot", label, color, alpha=alpha, marker=max(size, 5.0)))

    def rug(self, x, color: str, length: float = 14.0, width: float = 1.5, label: str = "") -> None:
        """A vertical tick of `length` points centred on y = 0 at every finite x, drawn over the axes'
        edge (matplotlib's "|" marker at y = 0 with clip_on=False)."""
        x = np.asarray(x, float)
        self._data(x, np.zeros_like(x))
        self.items.append(("rug", x, color, length, width))
        if label:
            self.legend.append(_Entry("rug", label, color, width))

    def text(self, x: float, text: str, color: str = TEXT_COLOR, size: float = 8.0, y: float = 1.0,
             dx: float = 0.0) -> None:
        """`text` starting `dx` points right of data x, its bottom at `y` (a fraction of the axes'
        height: 1 = the top edge, as matplotlib's va="bottom" on the x-axis transform)."""
        self.items.append(("text", float(x), y, text, color, size, dx))

    def area(self, x, y, base: float = 0.0, color: str = "#000", alpha: float = 1.0, step: bool = False,
             label: str = "") -> None:
        """Fill between y and `base` (a step that holds each value until the next x when `step`)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        self._data(x, y)
        self._data(x[:1], [base])
        self.items.append(("area", x, y, base, color, alpha, step))
        if label:
            self.legend.append(_Entry("patch", label, color, alpha=alpha))

    def stairs(self, values, edges, color: str, alpha: float = 1.0) -> None:
        """Filled histogram bars from 0: values[i] over [edges[i], edges[i+1])."""
        v, ed = np.asarray(values, float), np.asarray(edges, float)
        self._data(ed, np.concatenate([v, [0.0]]))
        self.y_sticky += (0.0,)
        self.items.append(("stairs", v, ed, color, alpha))

    def bars(self, x, heights, width, color, label: str = "", edge: str = "", edge_width: float = 0.4) -> None:
        """Bars from 0 centred on x; `width` and `color` one for all or one per bar; `edge`: an
        outline colour (matplotlib's edgecolor)."""
        x, h = np.asarray(x, float), np.asarray(heights, float)
        w = np.broadcast_to(np.asarray(width, float), x.shape)
        colors = [color] * len(x) if isinstance(color, str) else [str(c) for c in color]
        self._data(np.concatenate([x - w / 2, x + w / 2]), np.concatenate([h, np.zeros_like(h)]))
        self.y_sticky += (0.0,)
        self.items.append(("bars", x, h, w, colors, edge, edge_width))
        if label:
            self.legend.append(_Entry("patch", label, colors[0] if colors else "#000"))

    def hline(self, y: float, color: str, width: float = 0.8, dash: str = "", label: str = "", below: bool = False) -> None:
        """A horizontal line across the axes (its y counts for the autoscaled limits, as matplotlib's axhline)."""
        self._yd.append((y, y))
        self._add(("hline", y, color, width, dash), below)
        if label:
            self.legend.append(_Entry("line", label, color, width, 1.0, dash))

    def vline(self, x: float, color: str, width: float = 0.8, dash: str = "", label: str = "", below: bool = False) -> None:
        """A vertical line across the axes (its x counts for the autoscaled limits, as matplotlib's axvline)."""
        self._xd.append((x, x))
        self._add(("vline", x, color, width, dash), below)
        if label:
            self.legend.append(_Entry("line", label, color, width, 1.0, dash))

    def _add(self, item: tuple, below: bool) -> None:
        """Draw `item` after (over) the items so far, or `below` all of them."""
        if below:
            self.items.insert(0, item)
        else:
            self.items.append(item)

    def errorbar(self, x, y, lower, upper, color: str, ms: float, width: float, cap: float, label: str = "") -> None:
        """Points at y with bars from y - lower to y + upper."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        lo, hi = y - np.asarray(lower, float), y + np.asarray(upper, float)
        self._data(np.concatenate([x, x]), np.concatenate([lo, hi]))
        self.items.append(("errorbar", x, y, lo, hi, color, ms, width, cap))
        if label:
            self.legend.append(_Entry("errorbar", label, color, width))

    def diamonds(self, x, y, color: str, size: float, label: str = "") -> None:
        self._data(x, y)
        self.items.append(("diamonds", np.asarray(x, float), np.asarray(y, float), color, size))
        if label:
            self.legend.append(_Entry("diamond", label, color))

    # ------------------------------------------------------------------ layout

    def _limits(self, spans: list, fixed, sticky: tuple, log: bool) -> tuple[float, float]:
        if fixed is not None:
            return float(fixed[0]), float(fixed[1])
        if not spans:
            return (1.0, 10.0) if log else (0.0, 1.0)
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        f = (lambda v: math.log10(v)) if log else (lambda v: v)
        g = (lambda v: 10.0 ** v) if log else (lambda v: v)
        a, b = f(lo), f(hi)
        if a == b:
            a, b = a - (0.5 if a == 0 else abs(a) * 0.05), b + (0.5 if b == 0 else abs(b) * 0.05)
        m = 0.05 * (b - a)
        na, nb = g(a - m), g(b + m)
        for s in sticky:  # matplotlib's sticky edges: no margin beyond a bar's base
            if lo >= s > na:
                na = s
            if hi <= s < nb:
                nb = s
        if nb <= na:  # every value on a sticky edge (bars all 0): keep the margins
            na, nb = g(a - m), g(b + m)
        return na, nb

    def svg(self, label: str) -> str:
        W, H = self.width * PT, self.height * PT
        X0, X1 = self.left * PT, W - self.right * PT
        Y0, Y1 = H - self.bottom * PT, self.top * PT  # bottom and top of the axes, in SVG y (down)
        xl = self._limits(self._xd, self.xlim, self.x_sticky, False)
        yl = self._limits(self._yd, self.ylim, self.y_sticky, self.ylog)
        fy = np.log10 if self.ylog else (lambda v: v)
        ya, yb = float(fy(yl[0])), float(fy(yl[1]))
        sx = (X1 - X0) / (xl[1] - xl[0])
        sy = (Y0 - Y1) / (yb - ya)

        def px(x):
            return X0 + (np.asarray(x, float) - xl[0]) * sx

        def py(y):
            y = np.asarray(y, float)
            if self.ylog:
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
            return Y0 - (y - ya) * sy

        # ticks
        if self.xticks is not None:
            xt, xlab = np.asarray(self.xticks[0], float), list(self.xticks[1])
        elif self.xdates:
            xt, xlab = date_ticks(np.datetime64(int(round(xl[0] * 86400)), "s"),
                                  np.datetime64(int(round(xl[1] * 86400)), "s"))
        else:
            xt = nice_ticks(xl[0], xl[1], max(1, min(9, int((X1 - X0) // (3 * FONT)))))
            xlab = (percent_labels(xt, xl, self.xpercent) if self.xpercent is not False else number_labels(xt))
        if self.ylog:
            yt = log_ticks(yl[0], yl[1], self.log_subs)
            if len(yt) < 2:  # less than a factor of two in view: plain ticks (still at their log positions)
                yt = nice_ticks(yl[0], yl[1], self.y_nbins or 6)
            ylab = [_minus(f"{v:g}") for v in yt]
        else:
            if self.y_nbins:
                yt = nice_ticks(yl[0], yl[1], self.y_nbins, MAXN_STEPS)
            else:
                yt = nice_ticks(yl[0], yl[1], max(1, min(9, int((Y0 - Y1) // (2 * FONT)))))
            ylab = percent_labels(yt, yl, self.ypercent) if self.ypercent is not False else number_labels(yt)

        out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(label)}" '
               f'width="{_num(W)}pt" height="{_num(H)}pt" viewBox="0 0 {_num(W)} {_num(H)}" '
               f'font-size="{_num(FONT)}" style="overflow:visible">']
        grid = []
        if self.xgrid:
            grid += [f"M{_num(v)} {_num(Y1)}V{_num(Y0)}" for v in px(xt)]
        grid += [f"M{_num(X0)} {_num(v)}H{_num(X1)}" for v in py(yt)]
        if grid:
            out.append(f'<path d="{"".join(grid)}" stroke="{GRID_COLOR}" stroke-width="0.7" fill="none"/>')
        for item in self.items:
            out.append(self._item(item, px, py, X0, X1, Y0, Y1))
        # spines, ticks, labels
        out.append(f'<path d="M{_num(X0)} {_num(Y1)}V{_num(Y0)}H{_num(X1)}" stroke="{SPINE_COLOR}" '
                   'stroke-width="0.8" fill="none"/>')
        out.append(_ticks_svg(list(px(xt)), xlab, list(py(yt)), ylab, X0, Y0))
        out.append(_axis_labels(self.xlabel, self.ylabel, ylab, X0, X1, Y0, Y1))
        if self.title:
            out.append(f'<text fill="{self.title_color}" font-size="10" x="{_num(X0)}" y="{_num(Y1 - 6)}">'
                       f"{html.escape(self.title)}</text>")
        if self.legend_loc and self.legend:
            size = self.legend_size
            row_h = 1.55 * size
            if self.legend_loc == "above":
                ncols = self.legend_ncols or len(self.legend)
                rows = math.ceil(len(self.legend) / ncols)
                out.append(self.legend_svg(self.legend, X0 + 0.4 * size, Y1 - 0.2 * size - rows * row_h, ncols, size, "start"))
            elif self.legend_loc == "upper right":
                out.append(self.legend_svg(self.legend, X1 - 0.5 * size, Y1 + 0.5 * size, self.legend_ncols or 1, size, "end"))
            elif self.legend_loc == "upper left":
                out.append(self.legend_svg(self.legend, X0 + 0.5 * size, Y1 + 0.5 * size, self.legend_ncols or 1, size, "start"))
            elif self.legend_loc == "lower left":
                ncols = self.legend_ncols or 1
                rows = math.ceil(len(self.legend) / ncols)
                out.append(self.legend_svg(self.legend, X0 + 0.5 * size, Y0 - 0.5 * size - rows * row_h, ncols, size,
                                           "start"))
            else:
                out.append(self.legend_svg(self.legend, (X0 + X1) / 2, Y0 + 0.12 * (Y0 - Y1), self.legend_ncols or 1, size,
                                           "middle"))
        out.append("</svg>")
        return "".join(out)

    def _item(self, item, px, py, X0, X1, Y0, Y1) -> str:
        kind = item[0]
        if kind == "line":
            _, x, y, color, width, alpha, dash, marker = item
            xs, ys = px(x), py(y)
            out = _path(_polyline(xs, ys), color, width, alpha, dash)
            if marker:
                out += _dots(xs, ys, color, marker, alpha)
            return out
        if kind == "scatter":
            _, x, y, color, size, alpha = item
            return _dots(px(x), py(y), color, size, alpha)
        if kind == "rug":
            _, x, color, length, width = item
            xs, b = px(x), float(py(0.0))
            d = "".join(f"M{_num(a)} {_num(b - length / 2)}v{_num(length)}" for a in xs[np.isfinite(xs)])
            return _path(d, color, width, 1.0, "")
        if kind == "text":
            _, x, y, text, color, size, dx = item
            return (f'<text x="{_num(float(px(x)) + dx)}" y="{_num(Y0 - y * (Y0 - Y1) - 0.22 * size)}" fill="{color}" '
                    f'font-size="{_num(size)}">{html.escape(text)}</text>')
        if kind == "hline":
            _, y, color, width, dash = item
            v = _num(float(py(y)))
            return _path(f"M{_num(X0)} {v}H{_num(X1)}", color, width, 1.0, dash)
        if kind == "vline":
            _, x, color, width, dash = item
            return _path(f"M{_num(float(px(x)))} {_num(Y1)}V{_num(Y0)}", color, width, 1.0, dash)
        if kind == "area":
            _, x, y, base, color, alpha, step = item
            return _fill(_area(px(x), py(y), float(py(base)), step), color, alpha)
        if kind == "stairs":
            _, v, ed, color, alpha = item
            ex, vy, b = px(ed), py(v), _num(float(py(0.0)))
            pts = "".join(f"L{_num(ex[i])} {_num(vy[i])}L{_num(ex[i + 1])} {_num(vy[i])}" for i in range(len(v)))
            return _fill(f"M{_num(ex[0])} {b}{pts}L{_num(ex[-1])} {b}Z", color, alpha)
        if kind == "bars":
            _, x, h, width, colors, edge, edge_width = item
            left, right, top, b = px(x - width / 2), px(x + width / 2), py(h), float(py(0.0))
            by_color: dict[str, list[str]] = {}
            for l, r, t, c in zip(left, right, top, colors):
                if math.isfinite(t):
                    by_color.setdefault(c, []).append(f"M{_num(l)} {_num(b)}H{_num(r)}V{_num(t)}H{_num(l)}Z")
            stroke = f' stroke="{edge}" stroke-width="{_num(edge_width)}"' if edge else ' stroke="none"'
            return "".join(f'<path d="{"".join(d)}" fill="{c}"{stroke}/>' for c, d in by_color.items())
        if kind == "errorbar":
            _, x, y, lo, hi, color, ms, width, cap = item
            xs, ys, ls, hs = px(x), py(y), py(lo), py(hi)
            ok = np.isfinite(ys)
            bars = "".join(f"M{_num(a)} {_num(h)}V{_num(l)}M{_num(a - cap)} {_num(h)}h{_num(2 * cap)}"
                           f"M{_num(a - cap)} {_num(l)}h{_num(2 * cap)}" for a, l, h in zip(xs[ok], ls[ok], hs[ok]))
            dots = "".join(f'<circle cx="{_num(a)}" cy="{_num(b)}" r="{_num(ms / 2)}"/>' for a, b in zip(xs[ok], ys[ok]))
            return _path(bars, color, width, 1.0, "") + f'<g fill="{color}">{dots}</g>'
        if kind == "diamonds":
            _, x, y, color, size = item
            r = size * 0.71 + 0.5  # matplotlib's "D" marker of `size` points, with its edge
            ok = np.isfinite(py(y))
            d = "".join(f"M{_num(a)} {_num(b - r)}L{_num(a + r)} {_num(b)}L{_num(a)} {_num(b + r)}L{_num(a - r)} {_num(b)}Z"
                        for a, b in zip(px(x)[ok], py(y)[ok]))
            return _fill(d, color, 1.0)
        raise ValueError(kind)

    # ------------------------------------------------------------------ legends

    def legend_svg(self, entries: list[_Entry], x: float, y: float, ncols: int, size: float, anchor: str) -> str:
        """Entries in a grid of `ncols` columns; (x, y) is the grid's left/centre/right ("start",
        "middle", "end") top corner."""
        handle, pad, gap, row_h = 2.0 * size, 0.8 * size, 2.0 * size, 1.55 * size
        cols = [entries[i::ncols] for i in range(ncols)]
        widths = [max(handle + pad + text_width(en.label, size) for en in col) if col else 0.0 for col in cols]
        total = sum(widths) + gap * (ncols - 1)
        x0 = x if anchor == "start" else x - total / 2 if anchor == "middle" else x - total
        parts = []
        for i, en in enumerate(entries):
            c, r = i % ncols, i // ncols
            cx = x0 + sum(widths[:c]) + gap * c
            cy = y + r * row_h + row_h / 2
            parts.append(_handle(en, cx, cy, handle))
            parts.append(f'<text x="{_num(cx + handle + pad)}" y="{_num(cy + size * 0.35)}">{html.escape(en.label)}</text>')
        return f'<g fill="{TEXT_COLOR}" font-size="{_num(size)}">{"".join(parts)}</g>'


# ---------------------------------------------------------------------------------------------
# Colour maps and heatmaps

RDYLGN = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63",
          "#1a9850", "#006837")
"""ColorBrewer's RdYlGn in 11 classes, red (low) to green (high): matplotlib's "RdYlGn"."""
BAD_COLOR = "#e5e7eb"  # a cell without a finite value


def _rgb(color: str) -> tuple[float, float, float]:
    h = color.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


def _hex(rgb) -> str:
    """As matplotlib's to_hex: each channel rounded to 1/255."""
    return "#" + "".join(format(round(float(v) * 255), "02x") for v in rgb)


@dataclass(frozen=True)
class Colormap:
    """Linear between evenly spaced `anchors`, looked up as matplotlib's LinearSegmentedColormap:
    a table of `n` colours, x in [0, 1] picks entry floor(x * n) (1 the last), below 0 the first,
    above 1 the last, NaN `bad`."""

    anchors: tuple = RDYLGN
    n: int = 256
    bad: str = BAD_COLOR

    def table(self) -> np.ndarray:
        """(n, 3) RGB in [0, 1]: entry i is the map at i / (n - 1)."""
        rgb = np.array([_rgb(c) for c in self.anchors])
        at = np.linspace(0.0, 1.0, len(rgb)) * (self.n - 1)
        xi = ((self.n - 1) * np.linspace(0.0, 1.0, self.n))[1:-1]
        k = np.searchsorted(at, xi)
        frac = (xi - at[k - 1]) / (at[k] - at[k - 1])
        mid = frac[:, None] * (rgb[k] - rgb[k - 1]) + rgb[k - 1]
        return np.clip(np.concatenate([rgb[:1], mid, rgb[-1:]]), 0.0, 1.0)

    def __call__(self, x) -> list[str]:
        """Colours (hex) of normalised values x."""
        x = np.asarray(x, dtype=float).ravel() * self.n
        bad = np.isnan(x)
        x = np.where(bad, 0.0, np.where(x == self.n, self.n - 1, x))
        idx = np.clip(np.floor(x), 0, self.n - 1).astype(np.int64)
        hexes = [_hex(c) for c in self.table()]
        return [self.bad if b else hexes[i] for i, b in zip(idx.tolist(), bad.tolist())]


@dataclass(frozen=True)
class Norm:
    """Values to [0, 1] as matplotlib's Normalize(lo, hi), or as its TwoSlopeNorm(center, lo, hi)
    when lo < center < hi (center at 0.5, each side linear). A single value (lo == hi) maps to
    0.5, the middle colour, whatever its magnitude (matplotlib's Normalize gives 0, the low end)."""

    lo: float
    hi: float
    center: float | None = 0.0

    @property
    def two_slope(self) -> bool:
        return self.center is not None and self.lo < self.center < self.hi

    def __call__(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        if self.two_slope:
            return np.interp(v, [self.lo, self.center, self.hi], [0.0, 0.5, 1.0], left=-np.inf, right=np.inf)
        if self.lo == self.hi:
            return np.where(v > self.lo, np.inf, np.where(v < self.lo, -np.inf, np.where(np.isnan(v), np.nan, 0.5)))
        return (v - self.lo) / (self.hi - self.lo)


@dataclass
class Heatmap:
    """Cells coloured by value on one scale, with a colour bar: values[i, j] is row i (on y, the
    first at the bottom) and column j (on x). Non-finite cells are masked (BAD_COLOR); each cell
    may print a text; `best` (row, column) is outlined. Every cell is drawn."""

    values: np.ndarray
    norm: Norm
    xticks: tuple  # (column positions, labels)
    yticks: tuple  # (row positions, labels)
    xlabel: str = ""
    ylabel: str = ""
    bar_label: str = ""
    bar_format: object = None  # colour-bar tick value -> text; None: as matplotlib's ScalarFormatter
    cells: object = None  # (rows, cols) texts printed at the cell centres ("" for none)
    cell_size: float = 8.0
    best: tuple | None = None
    best_color: str = "#1d4ed8"
    cmap: Colormap = field(default_factory=Colormap)
    width: float = 5.6
    height: float = 4.3
    left: float = 0.8
    bottom: float = 0.55
    top: float = 0.2
    right: float = 1.0  # the colour bar, its ticks and its label

    def colors(self) -> list[str]:
        """The fill of every cell, row by row."""
        v = np.asarray(self.values, dtype=float)
        return self.cmap(np.where(np.isfinite(v), self.norm(v), np.nan))

    def svg(self, label: str) -> str:
        v = np.asarray(self.values, dtype=float)
        rows, cols = v.shape
        W, H = self.width * PT, self.height * PT
        X0, X1 = self.left * PT, W - self.right * PT
        Y0, Y1 = H - self.bottom * PT, self.top * PT
        cw, ch = (X1 - X0) / cols, (Y0 - Y1) / rows
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(label)}" '
               f'width="{_num(W)}pt" height="{_num(H)}pt" viewBox="0 0 {_num(W)} {_num(H)}" '
               f'font-size="{_num(FONT)}" style="overflow:visible">']
        by_color: dict[str, list[str]] = {}
        for k, c in enumerate(self.colors()):
            i, j = divmod(k, cols)
            by_color.setdefault(c, []).append(f"M{_num(X0 + j * cw)} {_num(Y0 - (i + 1) * ch)}h{_num(cw)}v{_num(ch)}"
                                              f"h{_num(-cw)}Z")
        out.append('<g class="cells" shape-rendering="crispEdges">'
                   + "".join(f'<path d="{"".join(d)}" fill="{c}"/>' for c, d in by_color.items()) + "</g>")
        if self.cells is not None:
            level = self.norm(np.where(np.isfinite(v), v, np.nan))
            texts = []
            for (i, j), text in np.ndenumerate(np.asarray(self.cells, dtype=object)):
                if not text:
                    continue
                dark = bool(np.isfinite(level[i, j]) and abs(level[i, j] - 0.5) > 0.35)  # white on the deep ends
                fill = ' fill="#fff"' if dark else ""
                y = Y0 - (i + 0.5) * ch + self.cell_size * 0.35
                texts.append(f'<text x="{_num(X0 + (j + 0.5) * cw)}" y="{_num(y)}"{fill}>{html.escape(str(text))}</text>')
            out.append(f'<g class="values" fill="#111827" text-anchor="middle" font-size="{_num(self.cell_size)}">'
                       + "".join(texts) + "</g>")
        if self.best is not None:
            i, j = self.best
            out.append(f'<rect class="best" x="{_num(X0 + j * cw)}" y="{_num(Y0 - (i + 1) * ch)}" width="{_num(cw)}" '
                       f'height="{_num(ch)}" fill="none" stroke="{self.best_color}" stroke-width="2"/>')
        out.append(f'<path d="M{_num(X0)} {_num(Y1)}V{_num(Y0)}H{_num(X1)}" stroke="{SPINE_COLOR}" stroke-width="0.8" '
                   'fill="none"/>')
        xs = [X0 + (float(p) + 0.5) * cw for p in self.xticks[0]]
        ys = [Y0 - (float(p) + 0.5) * ch for p in self.yticks[0]]
        out.append(_ticks_svg(xs, list(self.xticks[1]), ys, list(self.yticks[1]), X0, Y0))
        out.append(_axis_labels(self.xlabel, self.ylabel, list(self.yticks[1]), X0, X1, Y0, Y1))
        out.append(self._bar(X1 + 0.08 * PT, Y0, Y1))
        out.append("</svg>")
        return "".join(out)

    def _bar(self, x: float, Y0: float, Y1: float) -> str:
        """The colour bar (as tall as the axes, 1/20 as wide): the map's `n` colours in equal bands
        from bottom to top, as matplotlib's colorbar (a two-slope scale gives each side half the
        bar); no element ids, so several charts on a page never clash."""
        bw = (Y0 - Y1) / 20
        n = self.cmap.n
        band = (Y0 - Y1) / n
        bands = "".join(f'<path d="M{_num(x)} {_num(Y0 - (k + 1) * band)}h{_num(bw)}v{_num(band)}h{_num(-bw)}Z" '
                        f'fill="{c}"/>' for k, c in enumerate(_hex(c) for c in self.cmap.table()))
        lo, hi = self.norm.lo, self.norm.hi
        ticks = nice_ticks(lo, hi, max(1, min(9, int((Y0 - Y1) // (2 * FONT))))) if hi > lo else np.array([lo])
        labels = [self.bar_format(t) for t in ticks] if self.bar_format else number_labels(ticks)
        at = Y0 - np.clip(self.norm(ticks), 0.0, 1.0) * (Y0 - Y1)
        x1 = x + bw
        wide = max((text_width(t) for t in labels), default=0.0)
        parts = [f'<g shape-rendering="crispEdges">{bands}</g>',
                 f'<rect x="{_num(x)}" y="{_num(Y1)}" width="{_num(bw)}" height="{_num(Y0 - Y1)}" fill="none" '
                 f'stroke="{SPINE_COLOR}" stroke-width="0.8"/>',
                 f'<path d="{"".join(f"M{_num(x1)} {_num(t)}h3.5" for t in at)}" stroke="{TICK_COLOR}" stroke-width="0.8"/>',
                 f'<g fill="{TICK_COLOR}">' + "".join(f'<text x="{_num(x1 + 7)}" y="{_num(t + FONT * 0.35)}">'
                                                     f"{html.escape(s)}</text>" for t, s in zip(at, labels)) + "</g>"]
        if self.bar_label:
            parts.append(f'<text fill="{LABEL_COLOR}" text-anchor="middle" transform="translate('
                         f'{_num(x1 + 7 + wide + 6 + FONT * 0.8)} {_num((Y0 + Y1) / 2)}) rotate(-90)">'
                         f"{html.escape(self.bar_label)}</text>")
        return f'<g class="colorbar">{"".join(parts)}</g>'


def _ticks_svg(xs: list, xlab: list, ys: list, ylab: list, X0: float, Y0: float) -> str:
    """Tick marks and labels below the x axis at `xs` and left of the y axis at `ys`."""
    tick = [f"M{_num(v)} {_num(Y0)}v3.5" for v in xs] + [f"M{_num(X0)} {_num(v)}h-3.5" for v in ys]
    out = f'<path d="{"".join(tick)}" stroke="{TICK_COLOR}" stroke-width="0.8"/>' if tick else ""
    out += (f'<g fill="{TICK_COLOR}" text-anchor="middle">'
            + "".join(f'<text x="{_num(v)}" y="{_num(Y0 + 3.5 + 3.5 + FONT * 0.8)}">{html.escape(t)}</text>'
                      for v, t in zip(xs, xlab)) + "</g>")
    out += (f'<g fill="{TICK_COLOR}" text-anchor="end">'
            + "".join(f'<text x="{_num(X0 - 7)}" y="{_num(v + FONT * 0.35)}">{html.escape(t)}</text>'
                      for v, t in zip(ys, ylab)) + "</g>")
    return out


def _axis_labels(xlabel: str, ylabel: str, ylab: list, X0: float, X1: float, Y0: float, Y1: float) -> str:
    """The y label rotated left of the tick labels, the x label under the axis."""
    out = ""
    if ylabel:
        wide = max((text_width(t) for t in ylab), default=0.0)
        x = max(X0 - 7 - wide - 5, FONT)
        out += (f'<text fill="{LABEL_COLOR}" text-anchor="middle" transform="translate({_num(x)} {_num((Y0 + Y1) / 2)}) '
                f'rotate(-90)">{html.escape(ylabel)}</text>')
    if xlabel:
        out += (f'<text fill="{LABEL_COLOR}" text-anchor="middle" x="{_num((X0 + X1) / 2)}" '
                f'y="{_num(Y0 + 7 + FONT * 0.8 + 4 + FONT)}">{html.escape(xlabel)}</text>')
    return out


def _handle(en: _Entry, x: float, y: float, length: float) -> str:
    if en.kind == "rug":
        return _path(f"M{_num(x + length / 2)} {_num(y - 5)}V{_num(y + 5)}", en.color, en.width, 1.0, "")
    if en.kind == "dot":
        return _dots(np.array([x + length / 2]), np.array([y]), en.color, en.marker, en.alpha)
    if en.kind == "line" and en.marker:
        return (_path(f"M{_num(x)} {_num(y)}h{_num(length)}", en.color, en.width, en.alpha, en.dash)
                + _dots(np.array([x + length / 2]), np.array([y]), en.color, en.marker, en.alpha))
    if en.kind == "patch":
        return f'<rect x="{_num(x)}" y="{_num(y - 3.5)}" width="{_num(length)}" height="7" fill="{en.color}"{_opacity(en.alpha, "fill")}/>'
    if en.kind == "errorbar":
        m = x + length / 2
        return (_path(f"M{_num(m)} {_num(y - 5)}V{_num(y + 5)}", en.color, en.width, 1.0, "")
                + f'<circle cx="{_num(m)}" cy="{_num(y)}" r="3" fill="{en.color}"/>')
    if en.kind == "diamond":
        m, r = x + length / 2, 3.4
        return _fill(f"M{_num(m)} {_num(y - r)}L{_num(m + r)} {_num(y)}L{_num(m)} {_num(y + r)}L{_num(m - r)} {_num(y)}Z",
                     en.color, 1.0)
    return _path(f"M{_num(x)} {_num(y)}h{_num(length)}", en.color, en.width, en.alpha, en.dash)


def _opacity(alpha: float, what: str) -> str:
    return "" if alpha >= 1.0 else f' {what}-opacity="{_num(alpha)}"'


def _path(d: str, color: str, width: float, alpha: float, dash: str) -> str:
    if not d:
        return ""
    extra = ""
    if dash:
        extra = ' stroke-dasharray="' + ",".join(_num(k * width) for k in DASHES[dash]) + '"'
    return (f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{_num(width)}" stroke-linejoin="round" '
            f'stroke-linecap="butt"{_opacity(alpha, "stroke")}{extra}/>')


def _dots(x: np.ndarray, y: np.ndarray, color: str, size: float, alpha: float) -> str:
    """A filled circle of `size` points diameter at every finite point, each its own element."""
    ok = np.isfinite(x) & np.isfinite(y)
    r = _num(size / 2)
    dots = "".join(f'<circle cx="{a:.2f}" cy="{b:.2f}" r="{r}"/>' for a, b in zip(x[ok].tolist(), y[ok].tolist()))
    return f'<g fill="{color}"{_opacity(alpha, "fill")}>{dots}</g>' if dots else ""


def _fill(d: str, color: str, alpha: float) -> str:
    return f'<path d="{d}" fill="{color}" stroke="none"{_opacity(alpha, "fill")}/>' if d else ""


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _coords(x: np.ndarray, y: np.ndarray) -> str:
    return " ".join(f"{a:.2f} {b:.2f}" for a, b in zip(x.tolist(), y.tolist()))


def _polyline(x: np.ndarray, y: np.ndarray) -> str:
    """A path through the points, broken at every non-finite y."""
    out = []
    for a, b in _runs(np.isfinite(y) & np.isfinite(x)):
        if b - a >= 2:
            out.append(f"M{_coords(x[a:a + 1], y[a:a + 1])}L{_coords(x[a + 1:b], y[a + 1:b])}")
    return "".join(out)


def _area(x: np.ndarray, y: np.ndarray, base: float, step: bool) -> str:
    """Polygons between y and the baseline, one per run of finite values; `step` holds each value
    until the next x (matplotlib's step="post")."""
    out = []
    for a, b in _runs(np.isfinite(y)):
        if step:
            end = min(b, len(x) - 1)
            xs = np.repeat(x[a:b], 2)[1:]
            xs = np.concatenate([xs, [x[end]]])
            ys = np.repeat(y[a:b], 2)
        else:
            xs, ys = x[a:b], y[a:b]
        out.append(f"M{xs[0]:.2f} {base:.2f}L{_coords(xs, ys)}L{xs[-1]:.2f} {base:.2f}Z")
    return "".join(out)
