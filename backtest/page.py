"""Building blocks of dipflow's self-contained HTML pages (the tear sheet and the sweep report):
styles, the Content-Security-Policy, number formats and table cells (charts: `backtest.charts`).
Every text from data or config goes through `e` (html.escape).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math

import numpy as np

e = html.escape

CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--accent:#1d4ed8}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:0 20px 40px}
header#header{background:#0f172a;color:#e2e8f0;padding:18px 0 14px}
header#header .in{max-width:1180px;margin:0 auto;padding:0 20px}
header h1{font-size:22px;margin:0 0 2px;color:#fff} header .help{color:#94a3b8;margin:0 0 12px}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:6px 24px;margin:0}
.meta div{min-width:0} .meta dt{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#94a3b8}
.meta dd{margin:0;overflow-wrap:anywhere} .meta code{color:#f8fafc}
nav{position:sticky;top:0;z-index:5;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line)}
nav .in{max-width:1180px;margin:0 auto;padding:6px 20px;display:flex;flex-wrap:wrap;gap:2px 14px;font-size:13px}
nav a{color:var(--accent);text-decoration:none} nav a:hover{text-decoration:underline}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0;scroll-margin-top:44px;overflow-x:auto}
h2{font-size:17px;margin:0 0 10px} h3{font-size:14px;margin:14px 0 6px}
p.note{color:var(--muted);margin:4px 0 10px;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;margin-bottom:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 12px;background:var(--bg)}
.card .k{font-size:12px;color:var(--muted)} .card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.pos{color:#15803d} .neg{color:#b91c1c}
.two{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:18px;align-items:start}
.two.even{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
@media (max-width:900px){.two,.two.even{grid-template-columns:1fr}}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;width:100%;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#f1f5f9;font-weight:600;white-space:normal;vertical-align:bottom}
.scroll th{position:sticky;top:0;z-index:1}
td.t,th.t{text-align:left} td.w{white-space:normal;min-width:210px}
tbody tr:hover{background:#f8fafc}
table.sortable th{cursor:pointer;user-select:none} table.sortable th:hover{background:#e2e8f0}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:9px} th[aria-sort=descending]::after{content:" \\25BC";font-size:9px}
.scroll{max-height:460px;overflow:auto;border:1px solid var(--line);border-radius:6px}
.heat td{min-width:52px} .heat td.y{font-weight:600;border-left:2px solid var(--line)}
.chart svg{width:100%;height:auto;display:block}
.toggle{display:flex;gap:4px;margin:0 0 6px}
input.scale{position:absolute;opacity:0;pointer-events:none}
.toggle label{border:1px solid var(--line);border-radius:5px;padding:2px 10px;cursor:pointer;font-size:13px;color:var(--muted)}
#scale-lin:checked~.toggle label[for=scale-lin],#scale-log:checked~.toggle label[for=scale-log]{background:var(--accent);color:#fff;border-color:var(--accent)}
#scale-lin:focus-visible~.toggle label[for=scale-lin],#scale-log:focus-visible~.toggle label[for=scale-log]{outline:2px solid var(--accent)}
#scale-lin:checked~.log,#scale-log:checked~.lin{display:none}
details summary{cursor:pointer;color:var(--accent);margin:10px 0 6px}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:6px;overflow:auto;font-size:12px}
.synthetic{background:#b91c1c;color:#fff;font-weight:700;letter-spacing:.04em;text-align:center;padding:6px 12px;font-size:14px}
.warn{background:#fef3c7;border:1px solid #f59e0b;border-radius:6px;padding:8px 12px;margin:8px 0;color:#78350f}
footer{color:var(--muted);font-size:12px;text-align:center;margin:20px 0}
"""

SORT_JS = """(function(){
function key(td){var v=td.getAttribute("data-v");if(v===null)return td.textContent;return v===""?-Infinity:parseFloat(v);}
document.querySelectorAll("table.sortable").forEach(function(t){
var ths=t.tHead.rows[0].cells;
Array.prototype.forEach.call(ths,function(th,i){
th.tabIndex=0;
function sort(){
var asc=th.getAttribute("aria-sort")!=="ascending";
Array.prototype.forEach.call(ths,function(h){h.removeAttribute("aria-sort");});
th.setAttribute("aria-sort",asc?"ascending":"descending");
var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
rows.sort(function(x,y){var a=key(x.cells[i]),c=key(y.cells[i]);return (a<c?-1:a>c?1:0)*(asc?1:-1);});
rows.forEach(function(r){b.appendChild(r);});
}
th.addEventListener("click",sort);
th.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();sort();}});
});
});
})();"""

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
       "script-src 'sha256-{}'").format(base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode())


def is_synthetic(source: str | None, names=None) -> bool:
    """Data from the generator (backtest.data.synth), straight or written to disk by `data synth`
    (every name then ends in " (synthetic)"): its prices are invented."""
    if str(source or "").startswith("synthetic"):
        return True
    names = [str(n) for n in (names if names is not None else [])]
    return bool(names) and all(n.endswith(" (synthetic)") for n in names)


SYNTHETIC_BANNER = ('<div class="synthetic" role="note">SYNTHETIC DATA · generated sample market: prices, flows '
                    'and names are invented and are not the history of any real company</div>')


def finite(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(x)


def _number(x, spec: str) -> str:
    """x formatted by `spec` with a true minus sign, never "−0.00"; ∞ for infinities, – if missing."""
    if isinstance(x, (float, np.floating)) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if not finite(x):
        return "–"
    text = format(x, spec)
    return text.lstrip("-") if float(text.replace(",", "")) == 0 else text.replace("-", "−")


def pct(x, digits: int = 2) -> str:
    return _number(x * 100, f".{digits}f") + "%" if finite(x) else _number(x, "")


def num(x, digits: int = 2) -> str:
    return _number(x, f",.{digits}f")


def sign_class(x) -> str:
    return "pos" if finite(x) and x > 0 else "neg" if finite(x) and x < 0 else ""


def td(text: str, value=None, cls: str = "") -> str:
    """A cell: `text` is already HTML; `value` (a number) sorts it."""
    v = "" if value is None else f' data-v="{value!r}"' if finite(value) else ' data-v=""'
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}{v}>{text}</td>"


def html_table(head: list[str], rows: list[str], sortable: bool = False, left: int = 1, cls: str = "") -> str:
    """head: plain column titles (escaped here); rows: '<tr>...</tr>' HTML; the first `left` columns are text."""
    ths = "".join(f'<th class="t">{e(h)}</th>' if i < left else f"<th>{e(h)}</th>" for i, h in enumerate(head))
    classes = " ".join(c for c in (cls, "sortable" if sortable else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<table{attr}><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
