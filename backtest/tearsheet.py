"""A self-contained HTML tear sheet (DESIGN §6): one file, inline SVG charts, no network request.

`render` returns the whole page as a string. Charts are inline SVG from `backtest.charts` (no
matplotlib: it cost a warm run ~0.8 s); the monthly heatmap and every table are HTML. The only
script is a small table sorter, allowed by its hash in the page's Content-Security-Policy; the
linear/log toggle of the equity chart is pure CSS. Every text that comes from data or config is
escaped with `html.escape`, chart text included.
docs/tearsheet.md describes the page section by section.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from backtest import event_study as es
from backtest.event_study import POOLED
from backtest.metrics import ROLLING_WINDOW, drawdown_periods, period_returns, rolling_sharpe
from backtest.charts import Plot, days
from backtest.page import CSP, CSS, SORT_JS, SYNTHETIC_BANNER, e, finite, html_table, num, pct, sign_class, td
from backtest.pipeline import RunOutput

SECTIONS = (
    ("metrics", "Key metrics"),
    ("equity", "Equity"),
    ("underwater", "Underwater"),
    ("top-drawdowns", "Top drawdowns"),
    ("monthly", "Monthly returns"),
    ("yearly", "Yearly returns"),
    ("rolling-sharpe", "Rolling Sharpe"),
    ("trade-returns", "Trade returns"),
    ("exposure", "Exposure"),
    ("event-study", "Event study"),
    ("trades", "Trades"),
    ("config", "Config"),
)
"""(id, title) of every section after the header (id "header"), in page order."""

COLORS = {"strategy": "#1d4ed8", "index": "#ea580c", "equal_weight": "#0d9488", "index_at_exposure": "#a16207"}
UP, DOWN = (22, 163, 74), (220, 38, 38)
BENCH_LABELS = {"equal_weight": "Equal weight"}



# ---------------------------------------------------------------------------------------------
# Formatting


def _date(ts) -> str:
    return "" if ts is None or pd.isna(ts) else str(pd.Timestamp(ts).date())


# ---------------------------------------------------------------------------------------------
# Charts


class _Charts:
    """The tear sheet's charts, as inline SVG (backtest.charts)."""

    @staticmethod
    def _time(height: float, index, **kw) -> tuple[Plot, np.ndarray]:
        x = days(index)
        return Plot(height, xlim=(x[0], x[-1]) if len(x) > 1 else None, xdates=True, y_nbins=6, **kw), x

    def equity(self, index, lines: dict[str, tuple[np.ndarray, str]]) -> tuple[str, str]:
        """The same chart twice: linear and log y axis."""
        lo = min(np.nanmin(y) for y, _ in lines.values())
        hi = max(np.nanmax(y) for y, _ in lines.values())
        decades = math.log10(hi / lo) if lo > 0 else 1.0
        subs = "all" if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 4 else (1.0,)
        out = []
        for log in (False, True):
            p, x = self._time(3.9, index, top=0.35, ylog=log, log_subs=subs, legend_loc="above",
                              ylabel="value of 1 invested" + (" (log scale)" if log else ""))
            p.hline(1.0, "#9ca3af", 0.8, below=True)
            for label, (y, color) in lines.items():
                p.line(x, y, color, 1.5 if color == COLORS["strategy"] else 1.1, label=label)
            out.append(p.svg(f"equity curve, {'log' if log else 'linear'} scale"))
        return out[0], out[1]

    def underwater(self, index, dd: np.ndarray) -> str:
        p, x = self._time(2.3, index, ylim=(min(float(dd.min()) * 1.08, -0.01), 0.0), ypercent=None,
                          ylabel="drawdown")
        p.area(x, dd, 0.0, "#dc2626", 0.35)
        p.line(x, dd, "#b91c1c", 0.8)
        return p.svg("underwater drawdown curve")

    def rolling_sharpe(self, index, lines: dict[str, tuple[np.ndarray, str]]) -> str:
        p, x = self._time(2.8, index, top=0.35, legend_loc="above", ylabel=f"Sharpe, trailing {ROLLING_WINDOW} days")
        for label, (y, color) in lines.items():
            strategy = color == COLORS["strategy"]
            p.line(x, y, color, 1.4 if strategy else 0.9, 1.0 if strategy else 0.75, label=label)
        p.hline(0.0, "#6b7280", 0.8)
        return p.svg("rolling six-month Sharpe ratio")

    def exposure(self, index, exposure: np.ndarray) -> str:
        top = float(np.nanmax(exposure)) if np.isfinite(exposure).any() else 0.0
        p, x = self._time(2.5, index, top=0.35, ylim=(0.0, max(top * 1.1, 0.01)), ypercent=0, legend_loc="above",
                          ylabel="equity invested")
        p.area(x, exposure, 0.0, COLORS["strategy"], 0.25, step=True, label="share of equity invested, each day")
        smooth = pd.Series(exposure).rolling(60, min_periods=1).mean().to_numpy()
        p.line(x, smooth, COLORS["strategy"], 1.2, label="60-day average")
        mean = float(np.nanmean(exposure)) if np.isfinite(exposure).any() else np.nan
        if finite(mean):
            p.hline(mean, "#111827", 0.9, "--", label=f"average {pct(mean, 1)}")
        return p.svg("exposure over time")

    def yearly(self, table: pd.DataFrame, colors: list[str]) -> str:
        k = len(table.columns)
        width = 0.8 / k
        x = np.arange(len(table))
        p = Plot(3.2, width=7.0, top=0.35, xticks=(x, [str(y) for y in table.index]), xgrid=False, ypercent=0,
                 legend_loc="above")
        for i, (col, color) in enumerate(zip(table.columns, colors)):
            p.bars(x + (i - (k - 1) / 2) * width, table[col].to_numpy(), width, color, label=str(col))
        p.hline(0.0, "#6b7280", 0.8)
        return p.svg("yearly returns")

    def trade_hist(self, returns: np.ndarray) -> str:
        p = Plot(2.9, width=6.0, bottom=0.5, xpercent=0, xlabel="trade return (net of fees)", ylabel="trades",
                 legend_loc="upper right")
        if returns.size:
            lo, hi = float(returns.min()), float(returns.max())
            w = max((hi - lo) / 40, 1e-4)
            edges = np.arange(math.floor(lo / w) * w, math.ceil(hi / w) * w + w * 1.001, w)
            counts, edges = np.histogram(returns, bins=edges)
            neg = np.where(edges[:-1] + w / 2 < 0, counts, 0)
            p.stairs(neg, edges, "#dc2626", 0.75)
            p.stairs(counts - neg, edges, "#16a34a", 0.75)
            mean, med = float(np.mean(returns)), float(np.median(returns))
            p.vline(mean, "#111827", 1.1, "--", label=f"mean {pct(mean)}")
            p.vline(med, "#6b7280", 1.1, ":", label=f"median {pct(med)}")
        return p.svg("distribution of trade returns")

    def event_study(self, pooled: pd.DataFrame, labels: dict[str, str]) -> str:
        horizons = sorted(pooled["horizon"].unique())
        signals = list(labels)
        k = len(signals) + 1
        step = 0.7 / max(k - 1, 1)
        x = np.arange(len(horizons))
        p = Plot(3.0, bottom=0.7, xlim=(-0.6, len(horizons) - 0.4),
                 xticks=(x, [f"{h} day{'s' if h > 1 else ''} after" for h in horizons]), xgrid=False, ypercent=1,
                 ylabel="mean forward return", legend_loc="below", legend_ncols=min(k, 4), legend_size=8.5)
        for b in x[:-1]:
            p.vline(b + 0.5, "#e5e7eb", 0.8, below=True)
        palette = ["#7c3aed", "#db2777", "#d97706", "#059669", "#0891b2", "#65a30d"]
        for i, sig in enumerate(signals):
            rows = pooled[pooled["signal"] == sig].set_index("horizon").reindex(horizons)
            mean, lo, hi = rows["mean"].to_numpy(), rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy()
            rule = i == len(signals) - 1
            color = COLORS["strategy"] if rule else palette[i % len(palette)]
            p.errorbar(x - 0.35 + i * step, mean, np.nan_to_num(mean - lo), np.nan_to_num(hi - mean), color,
                       6 if rule else 5, 1.6, 3, label=labels[sig])
        base = pooled[pooled["signal"] == signals[-1]].set_index("horizon").reindex(horizons)["uncond_mean"]
        p.diamonds(x + 0.35, base.to_numpy(), "#6b7280", math.sqrt(30), label="unconditional (every day)")
        p.hline(0.0, "#6b7280", 0.8)
        return p.svg("event study: mean forward return after each signal with 95% bootstrap intervals")


# ---------------------------------------------------------------------------------------------
# Sections


def _section(sid: str, body: str, note: str = "", note_html: str = "") -> str:
    """A section: `body` and `note_html` are HTML, `note` is plain text (escaped here)."""
    note_html = note_html or e(note)
    para = f'<p class="note">{note_html}</p>' if note_html else ""
    return f'<section id="{sid}"><h2>{e(dict(SECTIONS)[sid])}</h2>{para}{body}</section>'


def _header(out: RunOutput, record: dict) -> str:
    prep, cfg, s = out.prepared, out.prepared.cfg, out.stats
    data = record["data"]
    params = " ".join(f"<code>{e(k)}={e(str(v))}</code>" for k, v in record["params"].items())
    ex, xc, c = cfg.execution, cfg.exits, cfg.costs
    exits = ", ".join(f"{e(n)} {e(v)}" for n, v in (
        ("stop loss", pct(xc.stop_loss, 1) if xc.stop_loss else "off"),
        ("take profit", pct(xc.take_profit, 1) if xc.take_profit else "off"),
        ("trailing stop", pct(xc.trailing_stop, 1) if xc.trailing_stop else "off"),
        ("max hold", f"{xc.max_hold} bars" if xc.max_hold else "off")))
    costs = (f"HK schedule (dated), commission {num(c.commission_bps, 1)} bps, min HK${num(c.commission_min, 0)}"
             if c.model == "hk" else f"flat {num(c.flat_pct, 3)}%")
    if ex.mode == "portfolio":
        capital = f"portfolio: HK${ex.init_cash:,.0f} shared by at most {ex.max_positions} positions"
    else:
        capital = (f"independent: HK${ex.init_cash:,.0f} per symbol's account, from its first tradable bar "
                   f"({s.get('symbols', 0)} accounts)")
    items = [
        ("Parameters", params or "–"),
        ("Entry rule", f"<code>{e(record['entry_rule'])}</code>"),
        ("Exit rule", f"<code>{e(str(record['exit_rule'] or 'none'))}</code>"),
        ("Capital", e(capital)),
        ("Execution", e(f"fill {ex.fill}, slippage {ex.slippage_bps:g} bps"
                        + ("" if ex.board_lots else ", fractional shares"))),
        ("Exits", exits),
        ("Costs", e(costs)),
        ("Data", e(f"{data['source']} · {data['symbols']} symbols × {data['bars']} bars")
         + (" · <strong>SYNTHETIC</strong>" if data.get("synthetic") else "")),
        ("Fingerprint", f"<code>{e(data['fingerprint'])}</code>"),
        ("Period", e(f"{s['start']} to {s['end']} ({s['years']:.2f} calendar years)")),
        ("Risk-free rate", e(f"{cfg.report.risk_free:.2%} a year (report.risk_free)")),
        ("Run", e(f"{out.started or 'unknown'} · backtest {out.seconds:.2f} s")),
        ("Config", e(str(record["config"] or "(in memory)"))),
    ]
    meta = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    title = e(record["strategy"]) + (" · synthetic data" if data.get("synthetic") else "")
    banner = SYNTHETIC_BANNER if data.get("synthetic") else ""
    return (f'<header id="header">{banner}<div class="in"><h1>{title}</h1>'
            f'<p class="help">{e(str(getattr(prep.module, "HELP", "")))}</p><dl class="meta">{meta}</dl></div></header>')


def _bench_names(out: RunOutput) -> dict[str, str]:
    index = out.prepared.panel.index_name or "Index"
    return {"index": index, **BENCH_LABELS, "index_at_exposure": f"{index} × {pct(out.stats['exposure'], 1)} exposure"}


def _exposure_of(out: RunOutput, key: str) -> float:
    """Average share of capital at work: the strategy's, or a benchmark's (fully invested but the
    exposure-matched index)."""
    return out.stats["exposure"] if key in ("strategy", "index_at_exposure") else 1.0


def _metrics(out: RunOutput) -> str:
    s, b = out.stats, out.benchmark_stats or {}
    names = _bench_names(out)
    at_work = f"at {pct(s['exposure'], 1)} average exposure"
    cards = [("Total return", pct(s["total_return"]), s["total_return"], at_work),
             ("CAGR", pct(s["cagr"]), s["cagr"], at_work),
             ("Exposure", pct(s["exposure"], 1), None, "average share of capital invested"),
             ("Return on capital employed", pct(s["return_on_capital_employed"]), s["return_on_capital_employed"],
              "P&L a year / average HK$ invested"),
             ("Sharpe", num(s["sharpe"]), s["sharpe"], f"risk-free {pct(out.prepared.cfg.report.risk_free, 2)}"),
             ("Max drawdown", pct(s["max_drawdown"]), None, ""),
             ("Trades", f"{s['trades']:,}", None, f"{num(s['trades_per_year'], 1)} a year")]
    if out.per_symbol is not None:
        # Independent accounts: the headline is the spread of per-symbol results, not their sum.
        def spread(m, f):
            return f"quartiles {f(s[f'symbol_{m}_q1'])} to {f(s[f'symbol_{m}_q3'])}"

        cards = [("Median symbol total return", pct(s["symbol_total_return_median"]), s["symbol_total_return_median"],
                  spread("total_return", pct)),
                 ("Median symbol CAGR", pct(s["symbol_cagr_median"]), s["symbol_cagr_median"], spread("cagr", pct)),
                 ("Median symbol Sharpe", num(s["symbol_sharpe_median"]), s["symbol_sharpe_median"],
                  spread("sharpe", num)),
                 ("Symbols positive", pct(s["symbols_positive"], 0), None,
                  f"of {s['symbols_traded']} that traded ({s['symbols']} accounts)"),
                 ("Median symbol exposure", pct(s["symbol_exposure_median"], 1), None, "share of its account invested"),
                 ("Trades", f"{s['trades']:,}", None, f"{num(s['trades_per_year'], 1)} a year")]
    card_html = "".join(f'<div class="card"><div class="k">{k}</div><div class="v {sign_class(v)}">{t}</div>'
                        f'<div class="k">{e(sub)}</div></div>' for k, t, v, sub in cards)
    risk = [("Total return", "total_return", pct), ("CAGR", "cagr", pct), ("Annual volatility", "annual_volatility", pct),
            ("Sharpe", "sharpe", num), ("Sortino", "sortino", num), ("Max drawdown", "max_drawdown", pct),
            ("Max drawdown duration (trading days)", "max_drawdown_days", lambda v: f"{v:,}"),
            ("Longest drawdown (trading days)", "longest_drawdown_days", lambda v: f"{v:,}"),
            ("Calmar", "calmar", num)]
    rows = [f'<tr><td class="t">Exposure (average share of capital invested)</td>{td(pct(s["exposure"], 1))}'
            + "".join(td(pct(_exposure_of(out, n), 1)) for n in names) + "</tr>"]
    for label, key, f in risk:
        cells = [td(f(s[key]))] + [td(f(b[n][key])) if n in b else td("–") for n in names]
        rows.append(f'<tr><td class="t">{e(label)}</td>{"".join(cells)}</tr>')
    for label, key, f in (("Alpha vs benchmark (annualised)", "alpha", pct), ("Beta vs benchmark", "beta", num),
                          ("Excess total return vs benchmark", "excess_return", pct)):
        cells = [td("")] + [td(f(s.get(f"{key}_{n}", np.nan))) for n in names]
        rows.append(f'<tr><td class="t">{e(label)}</td>{"".join(cells)}</tr>')
    strategy = "All accounts pooled" if out.per_symbol is not None else "Strategy"
    t1 = html_table(["Returns and risk", strategy, *names.values()], rows)
    money = lambda v: "HK$" + num(v, 0)  # noqa: E731
    trading = [("Closed trades", f"{s['trades']:,}"), ("Open at the end", f"{s['open_trades']:,}"),
               ("Win rate", pct(s["win_rate"], 1)), ("Profit factor", num(s["profit_factor"])),
               ("Average trade", pct(s["avg_trade"])), ("Median trade", pct(s["median_trade"])),
               ("Trades per year", num(s["trades_per_year"], 1)),
               ("Exposure (average share of equity invested)", pct(s["exposure"])),
               ("Return on capital employed (P&L a year / average HK$ invested)",
                pct(s["return_on_capital_employed"])),
               ("Time in market (bars with a position)", pct(s["time_in_market"], 1)),
               ("Turnover (equity traded per year)", num(s["turnover"]) + "×"),
               ("Fees paid", money(s["fees_paid"])), ("Fees / starting equity", pct(s["fees_pct_of_start"])),
               ("Skipped entries", f"{s.get('skipped_entries', 0):,}")]
    t2 = html_table(["Trading", "Strategy"], [f'<tr><td class="t">{e(k)}</td>{td(v)}</tr>' for k, v in trading])
    rf = out.prepared.cfg.report.risk_free
    mode = out.prepared.cfg.execution.mode
    capital = ("the portfolio's equity (one account, shared cash)" if mode == "portfolio" else
               "all symbols' accounts pooled, each from its symbol's first tradable bar (time-weighted) in the table; "
               "the cards and the per-symbol table below give the spread of the symbols' own results, the headline "
               "of independent accounts")
    note = (f"Daily returns of {capital}; annualisation 252; CAGR over {s['years']:.2f} calendar years; "
            f"risk-free rate {rf:.2%} a year (report.risk_free) in Sharpe, Sortino and alpha. Exposure stands beside "
            f"every return: the strategy had {pct(s['exposure'], 1)} of its capital invested on average, the index and "
            "equal weight 100 %; the last column holds the index at the strategy's average exposure (rest in cash), "
            "the fair yardstick for a part-time strategy. Alpha and beta: daily CAPM regression on each benchmark, "
            "alpha compounded to a year (empyrical). Equal weight: all names of the universe, rebalanced daily. "
            "Definitions: docs/tearsheet.md.")
    side = _per_symbol(out) if out.per_symbol is not None else ""
    body = (f'<div class="cards">{card_html}</div>{t1}'
            f'<div class="two even" style="margin-top:14px"><div>{t2}</div><div>{side}</div></div>')
    return _section("metrics", body, note)


def _per_symbol(out: RunOutput) -> str:
    """Independent mode: the distribution of per-symbol results, not a sum counting idle cash."""
    s = out.stats
    rows = []
    for label, m, f in (("Total return", "total_return", pct), ("CAGR", "cagr", pct), ("Sharpe", "sharpe", num),
                        ("Max drawdown", "max_drawdown", pct), ("Exposure", "exposure", pct)):
        rows.append(f'<tr><td class="t">{e(label)}</td>'
                    + "".join(td(f(s[f"symbol_{m}_{q}"])) for q in ("q1", "median", "q3")) + "</tr>")
    head = ["Per symbol (symbols that traded)", "Lower quartile", "Median", "Upper quartile"]
    line = (f"{s['symbols_traded']:,} of {s['symbols']:,} symbols traded; {pct(s['symbols_positive'], 1)} of those "
            "ended with a positive total return. Each account counts from its symbol's first tradable bar; "
            "per_symbol.csv has every symbol.")
    return (f'<h3 style="margin-top:4px">Independent accounts: per-symbol results</h3><p class="note">{e(line)}</p>'
            f"{html_table(head, rows)}")


def _heat(v: float, scale: float) -> str:
    if not finite(v) or scale <= 0:
        return ""
    a = min(abs(v) / scale, 1.0) * 0.75
    r, g, b = UP if v > 0 else DOWN
    return f' style="background:rgba({r},{g},{b},{a:.2f})"'


def _monthly(returns: pd.Series) -> str:
    m = period_returns(returns, "M").unstack("month").reindex(columns=range(1, 13))
    y = period_returns(returns, "Y")
    vals = m.to_numpy()
    scale = float(np.nanpercentile(np.abs(vals), 95)) if np.isfinite(vals).any() else 0.0
    yscale = float(np.nanmax(np.abs(y.to_numpy()))) if len(y) else 0.0
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    rows = []
    for year, row in m.iterrows():
        cells = "".join(f"<td{_heat(v, scale)}>{pct(v, 1) if finite(v) else ''}</td>" for v in row.to_numpy())
        yv = y.loc[year]
        rows.append(f'<tr><td class="t">{year}</td>{cells}<td class="y"{_heat(yv, yscale)}>{pct(yv, 1)}</td></tr>')
    return _section("monthly", html_table(["Year", *months, "Year"], rows, cls="heat"),
                    "Compounded strategy return per calendar month; colour saturates at the 95th percentile of |monthly return|.")


def _drawdown_table(returns: np.ndarray, index: pd.DatetimeIndex, top: int = 5) -> str:
    p = drawdown_periods(returns).head(top)
    rows = []
    for i, r in enumerate(p.itertuples(index=False), 1):
        rec = _date(index[r.recovery + 1]) if r.recovery >= 0 else "not recovered"
        rows.append(f'<tr><td class="t">{i}</td><td class="t">{_date(index[r.peak + 1])}</td>'
                    f'<td class="t">{_date(index[r.trough + 1])}</td><td class="t">{rec}</td>'
                    f"{td(pct(r.depth))}{td(f'{r.bars:,}')}{td(f'{r.trough - r.peak:,}')}</tr>")
    head = ["#", "Start (peak)", "Trough", "Recovery", "Depth", "Length (trading days)", "Peak to trough (trading days)"]
    body = html_table(head, rows, left=4) if rows else "<p>No drawdown.</p>"
    return _section("top-drawdowns", body, "Length runs from the peak to the first close back at the peak (or to the last bar).")


def _trade_section(trades: pd.DataFrame, charts: _Charts) -> str:
    closed = trades[trades["reason"] != "open"]
    ret = closed["return"].to_numpy(dtype=np.float64)
    rows = []
    for reason, g in closed.groupby("reason", sort=False):
        r = g["return"].to_numpy()
        rows.append(f'<tr><td class="t">{e(str(reason))}</td>{td(f"{len(g):,}")}{td(pct(np.mean(r > 0), 1))}'
                    f'{td(pct(np.mean(r)))}{td(pct(np.median(r)))}{td(num(g["pnl"].sum(), 0))}</tr>')
    table = html_table(["Exit reason", "Trades", "Win rate", "Mean", "Median", "P&L (HK$)"], rows)
    body = f'<div class="two even"><div class="chart">{charts.trade_hist(ret)}</div><div>{table}</div></div>'
    return _section("trade-returns", body, "Closed trades; return = sale proceeds net of fees / purchase cost including fees − 1.")


def _trades(trades: pd.DataFrame, names: pd.Series) -> str:
    cols = [trades[c].to_numpy() for c in ("symbol", "entry_date", "exit_date", "bars", "shares", "entry_price",
                                           "exit_price", "entry_fees", "exit_fees", "pnl", "return", "reason")]
    rows = []
    for sym, d0, d1, bars, sh, p0, p1, f0, f1, pnl, ret, reason in zip(*cols):
        fees = f0 + f1
        rows.append(
            f'<tr><td class="t">{e(str(sym))}</td><td class="t">{e(str(names.get(sym, "")))}</td>'
            f'<td class="t">{_date(d0)}</td><td class="t">{_date(d1)}</td>'
            f"{td(f'{int(bars):,}', int(bars))}{td(num(sh, 0), float(sh))}{td(num(p0, 3), float(p0))}"
            f"{td(num(p1, 3), float(p1))}{td(num(fees, 0), float(fees))}"
            f"{td(num(pnl, 0), float(pnl), sign_class(pnl))}{td(pct(ret), float(ret), sign_class(ret))}"
            f'<td class="t">{e(str(reason))}</td></tr>')
    table = html_table(["Symbol", "Name", "Entry", "Exit", "Bars", "Shares", "Entry price", "Exit price", "Fees (HK$)",
                    "P&L (HK$)", "Return", "Exit reason"], rows, sortable=True, left=4)
    return _section("trades", f'<div class="scroll">{table}</div>',
                    f"{len(trades):,} trades; click a column header to sort. Prices include slippage; "
                    "a trade still open at the end is valued at the last close.")


def _event_rows(df: pd.DataFrame, labels: dict[str, str], with_symbol: bool) -> list[str]:
    rows = []
    for r in df.itertuples(index=False):
        ci = f"{pct(r.ci_low)} … {pct(r.ci_high)}" if finite(r.ci_low) else "–"
        sym = f'<td class="t">{e(str(r.symbol))}</td>' if with_symbol else ""
        rows.append(f'<tr><td class="t w">{e(labels[r.signal])}</td>{sym}{td(str(r.horizon), r.horizon)}'
                    f"{td(f'{r.n:,}', r.n)}{td(pct(r.mean), r.mean, sign_class(r.mean))}{td(pct(r.median), r.median)}"
                    f"{td(pct(r.hit_rate, 1), r.hit_rate)}{td(ci, r.ci_low)}{td(pct(r.uncond_mean), r.uncond_mean)}"
                    f"{td(pct(r.uncond_hit_rate, 1), r.uncond_hit_rate)}{td(pct(r.excess_mean), r.excess_mean, sign_class(r.excess_mean))}</tr>")
    return rows


def _event_study(out: RunOutput, charts: _Charts) -> str:
    ev = out.event_study
    if ev is None or ev.empty:
        return _section("event-study", "<p>No event study.</p>")
    signals = list(dict.fromkeys(ev["signal"]))
    labels = {s: s for s in signals[:-1]}
    labels[signals[-1]] = "entry rule"
    pooled = ev[ev["symbol"] == POOLED]
    head = ["Signal", "Days", "Signals", "Mean", "Median", "Hit rate", "95% interval of mean",
            "Unconditional mean", "Unconditional hit rate", "Excess mean"]
    per = ev[(ev["symbol"] != POOLED) & (ev["n"] > 0)]
    fill = out.prepared.cfg.execution.fill
    start = {"next_open": "the open of t+1", "next_close": "the close of t+1", "same_close": "the close of t"}[fill]
    end = "t+1+h" if fill == "next_close" else "t+h"
    note = (f"Forward return after a signal on day t: close of day {end} / fill price − 1, filled at {start} "
            f"(fill = {e(fill)}; no slippage or fees). Unconditional: the same forward return from every day of every "
            f"symbol. Interval: 2.5th–97.5th percentiles of {es.N_BOOT:,} circular block-bootstrap means (blocks of "
            f"{max(es.HORIZONS)} days, seeded). Entry rule: <code>{e(signals[-1])}</code>.")
    body = (f'<div class="chart">{charts.event_study(pooled, labels)}</div><h3>Pooled over symbols</h3>'
            f"{html_table(head, _event_rows(pooled, labels, False))}"
            f"<details><summary>Per symbol ({len(per):,} rows; sortable)</summary><div class=\"scroll\">"
            f"{html_table(head[:1] + ['Symbol'] + head[1:], _event_rows(per, labels, True), sortable=True, left=2)}"
            "</div></details>")
    return _section("event-study", body, note_html=note)


def render(out: RunOutput, record: dict, eq: pd.DataFrame) -> str:
    """The whole page as one string; every text from data or config is escaped."""
    charts = _Charts()
    index = pd.DatetimeIndex(eq.index)
    returns = eq["return"].iloc[1:]
    names = _bench_names(out)
    lines = {"Strategy": (eq["growth"].to_numpy(), COLORS["strategy"])}
    for key, label in names.items():
        col = f"bench_{key}"
        if col in eq and eq[col].notna().any():
            lines[label] = (eq[col].to_numpy() / eq[col].iloc[0], COLORS[key])
    eq_lin, eq_log = charts.equity(index, lines)
    dd_svg = charts.underwater(index, eq["drawdown"].to_numpy())
    bench = out.benchmarks if out.benchmarks is not None else pd.DataFrame(index=index)
    roll = {"Strategy": (np.concatenate([[np.nan], rolling_sharpe(returns)]), COLORS["strategy"])}
    for key, label in names.items():
        if key in bench:
            roll[label] = (np.concatenate([[np.nan], rolling_sharpe(bench[key].iloc[1:])]), COLORS[key])
    roll_svg = charts.rolling_sharpe(index, roll)
    exp_svg = charts.exposure(index, eq["exposure"].to_numpy())
    yearly = pd.DataFrame({"Strategy": period_returns(returns, "Y")})
    for key, label in names.items():
        if key in bench:
            yearly[label] = period_returns(bench[key].iloc[1:], "Y")
    yearly_svg = charts.yearly(yearly, [COLORS["strategy"], *(COLORS[k] for k in names if k in bench)])
    trade_html = _trade_section(out.result.trades, charts)
    event_html = _event_study(out, charts)
    expo = eq["exposure"].groupby(index.year).mean().reindex(yearly.index)
    yrows = [f'<tr><td class="t">{y}</td>{td(pct(row[0], 1), row[0], sign_class(row[0]))}{td(pct(x, 1), x)}'
             + "".join(td(pct(v, 1), v, sign_class(v)) for v in row[1:]) + "</tr>"
             for y, row, x in zip(yearly.index, yearly.to_numpy(), expo.to_numpy())]
    meta_names = out.prepared.panel.meta["name"] if "name" in out.prepared.panel.meta else pd.Series(dtype=object)
    toggle = ('<input class="scale" type="radio" name="scale" id="scale-lin">'
              '<input class="scale" type="radio" name="scale" id="scale-log" checked>'
              '<div class="toggle" role="group" aria-label="y-axis scale"><label for="scale-lin">linear</label>'
              '<label for="scale-log">log</label></div>'
              f'<div class="chart lin">{eq_lin}</div><div class="chart log">{eq_log}</div>')
    sections = [
        _metrics(out),
        _section("equity", toggle, "Value of 1 invested in the strategy (its daily returns, compounded), the benchmark "
                 "index, an equal-weight portfolio of the universe rebalanced daily, and the index at the strategy's "
                 "average exposure. Log scale by default, so equal percentage moves look equal whatever the level."),
        _section("underwater", f'<div class="chart">{dd_svg}</div>', "Strategy equity below its running peak."),
        _drawdown_table(returns.to_numpy(), index),
        _monthly(returns),
        _section("yearly", f'<div class="two"><div class="chart">{yearly_svg}</div><div>'
                 f'{html_table(["Year", "Strategy", "Its exposure", *yearly.columns[1:]], yrows)}</div></div>',
                 "Compounded return per calendar year; the strategy's average exposure that year beside it."),
        _section("rolling-sharpe", f'<div class="chart">{roll_svg}</div>',
                 f"Annualised Sharpe ratio of the trailing {ROLLING_WINDOW} trading days (about six months), risk-free 0 "
                 "(a chart of shape, not the key metrics' report.risk_free)."),
        trade_html,
        _section("exposure", f'<div class="chart">{exp_svg}</div>',
                 "Value of open positions / equity, per bar (in independent mode, the accounts that exist that day "
                 "together), its 60-day average and its average over the whole run."),
        event_html,
        _trades(out.result.trades, meta_names),
        _section("config", f"<pre>{e(out.prepared.cfg.text or '(no config text)')}</pre>",
                 f"Source: {record['config'] or '(in memory)'}"),
    ]
    nav = "".join(f'<a href="#{sid}">{e(title)}</a>' for sid, title in SECTIONS)
    title = e(f"{record['strategy']} · tear sheet")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,">
<style>{CSS}</style></head><body>
{_header(out, record)}
<nav aria-label="sections"><div class="in">{nav}</div></nav>
<main>
{chr(10).join(sections)}
<footer>{"SYNTHETIC DATA · " if record["data"].get("synthetic") else ""}dipflow tear sheet · data fingerprint {e(record['data']['fingerprint'])} · machine-readable twins: stats.json, equity.csv, trades.csv, orders.csv, event_study.csv{", per_symbol.csv" if out.per_symbol is not None else ""}</footer>
</main>
<script>{SORT_JS}</script>
</body></html>
"""
