"""A self-contained HTML tear sheet: inline SVG charts, no scripts or network requests."""

from __future__ import annotations

import html
import io

import numpy as np
import pandas as pd

from backtest.metrics import drawdown
from backtest.pipeline import RunOutput

PCT = {"total_return", "cagr", "annual_volatility", "max_drawdown", "exposure", "win_rate", "avg_trade",
       "median_trade", "fees_pct_of_start", "benchmark_total_return"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555} table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right} th{background:#f6f6f6}
td:first-child,th:first-child{text-align:left} .grid{display:grid;grid-template-columns:repeat(3,1fr);gap:0 24px}
pre{background:#f6f6f6;padding:10px;overflow:auto} svg{max-width:100%;height:auto}
.scroll{max-height:420px;overflow:auto}
"""


def _fmt(key: str, value) -> str:
    if isinstance(value, float):
        if not np.isfinite(value):
            return "–"
        return f"{value:.2%}" if key in PCT else f"{value:,.3f}"
    return html.escape(str(value))


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _charts(eq: pd.DataFrame) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(eq.index, eq["equity"] / eq["equity"].iloc[0], label="strategy", lw=1.2)
    bench = eq["benchmark"]
    if bench.notna().any():
        ax.plot(eq.index, bench / bench.dropna().iloc[0], label="benchmark index", lw=1, alpha=0.7)
    ax.set_yscale("log")
    ax.set_ylabel("growth of 1 (log)")
    ax.legend(loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    equity_svg = _svg(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(10, 2.2))
    dd = drawdown(eq["equity"].pct_change().fillna(0.0).to_numpy())
    ax.fill_between(eq.index, dd, 0, color="#c0392b", alpha=0.5, lw=0)
    ax.set_ylabel("drawdown")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    dd_svg = _svg(fig)
    plt.close(fig)
    return equity_svg, dd_svg


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f"<td>{v:,.4g}</td>" if np.isfinite(v) else "<td>–</td>")
            elif isinstance(v, pd.Timestamp):
                cells.append(f"<td>{v.date()}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render(out: RunOutput, record: dict, eq: pd.DataFrame) -> str:
    """The whole page as one string; every text from data or config is escaped."""
    equity_svg, dd_svg = _charts(eq)
    metrics = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(k, v)}</td></tr>" for k, v in out.stats.items())
    params = ", ".join(f"{html.escape(k)}={html.escape(str(v))}" for k, v in record["params"].items())
    data = record["data"]
    trades = out.result.trades.copy()
    trades["return"] = trades["return"].map(lambda r: f"{r:.2%}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(record['strategy'])} tear sheet</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>{CSS}</style></head><body>
<h1>{html.escape(record['strategy'])}</h1>
<div class="meta">{params}<br>entry: {html.escape(record['entry_rule'])}; exit: {html.escape(str(record['exit_rule']))}<br>
data: {html.escape(data['source'])} · fingerprint {html.escape(data['fingerprint'])} · {data['bars']} bars × {data['symbols']} symbols ·
{html.escape(out.stats['start'])} to {html.escape(out.stats['end'])} · run {out.seconds:.2f} s</div>
<h2>Key metrics</h2><table class="grid-table">{metrics}</table>
<h2>Equity vs benchmark</h2>{equity_svg}
<h2>Underwater</h2>{dd_svg}
<h2>Trades ({len(trades)})</h2><div class="scroll">{_table(trades)}</div>
<h2>Config</h2><pre>{html.escape(out.prepared.cfg.text)}</pre>
</body></html>
"""
