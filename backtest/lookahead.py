"""Look-ahead checker: perturb the future, prove the past did not move (DESIGN §3, docs/timing.md).

For each of several random cut bars t the raw market is perturbed in two ways and run again
(align -> features -> rules -> simulate), and everything at or before the cut is compared bit for
bit with the unperturbed run:

- "after the open of t+1": every source dated after bar t changes (HK prices, volumes, board lots,
  index, southbound, per-stock flows, ADR closes, FX). Nothing on rows <= t may change: no
  feature, no entry or exit signal, no fill dated <= t, no equity value.
- "after the close of t": additionally the inputs published between the HK close of t and the next
  open change (southbound and per-stock flows of date t, the ADR close of US date t, the FX close
  of date t). A feature declared `known="close"` must not change on rows <= t; a `next_open`
  feature may change on row t, not before. Rules are re-evaluated on the moved `close` features
  and the unmoved `next_open` ones and must not change on rows <= t. Fills and equity <= t must not.

The second perturbation is what catches a feature built from flows or ADR closes that is declared
known at the close. Either finding names the feature, the cut and the first bar that moved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backtest.config import Config
from backtest.data.market import MarketData
from backtest.errors import UserError
from backtest.features import FEATURES, compute_features
from backtest.rules import evaluate
from backtest.strategy import StrategyPlan

CLOSE_HK_FIELDS = ("open", "high", "low", "close", "volume", "turnover")
KINDS = ("feature", "entry rule", "exit rule", "fills", "equity")
SETS = {"close": "published after the HK close of", "open": "dated after"}


@dataclass(frozen=True)
class Finding:
    """Something at or before the cut bar that changed when only later information did."""

    kind: str  # one of KINDS
    name: str  # the feature reference or rule text ("" for fills and equity)
    known: str  # the feature's declared `known` ("" for rules, fills, equity)
    perturbed: str  # "close" or "open": which information set was perturbed (SETS)
    cut: str  # date of the cut bar
    bar: str  # date of the first bar <= cut that changed
    bar_index: int

    def __str__(self) -> str:
        what = " ".join(filter(None, [self.kind, self.name]))
        what += f" (declared known at {self.known})" if self.known else ""
        why = ""
        if self.kind == "feature":
            why = ("; it reads data published only after the close (flows, ADR closes, FX): declare "
                   "known=\"next_open\"" if self.perturbed == "close" and self.bar == self.cut
                   else "; it uses data from after the bar it is dated on (look-ahead)")
        return (f"{what} changed on {self.bar} (bar {self.bar_index}) when only data {SETS[self.perturbed]} "
                f"the cut {self.cut} changed{why}")


@dataclass
class LookaheadReport:
    source: str
    cuts: list[str]
    checked: list[tuple[str, str, str]]  # (kind, name, known) of every feature, rule, fills, equity compared
    findings: list[Finding] = field(default_factory=list)
    reached: int = 0  # runs whose perturbation changed something after the cut (else the check is vacuous)
    runs: int = 0

    @property
    def clean(self) -> bool:
        return not self.findings

    def __str__(self) -> str:
        lines = [f"{self.source}: perturbed the data after {len(self.cuts)} cut bars ({', '.join(self.cuts)}), "
                 f"twice each (after the HK close, after the next open)"]
        for kind, name, known in self.checked:
            first = next((f for f in self.findings if (f.kind, f.name) == (kind, name)), None)
            status = "ok" if first is None else f"LEAK: changed on {first.bar} (cut {first.cut})"
            label = f"{kind} {name}".strip() + (f" [known: {known}]" if known else "")
            lines.append(f"  {label:<72} {status}")
        reach = f"the perturbation changed results after the cut in {self.reached} of {self.runs} runs"
        if self.clean:
            return "\n".join(lines + [f"clean: nothing at or before a cut changed ({reach})"])
        lines += [f"LOOK-AHEAD: {self.findings[0]}", f"{len(self.findings)} finding(s):"]
        lines += [f"  - {f}" for f in self.findings[:20]]
        if len(self.findings) > 20:
            lines.append(f"  ... and {len(self.findings) - 20} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Run:
    feats: np.ndarray  # (F, N, T)
    entry: np.ndarray  # (T, N) bool
    exit: np.ndarray
    orders: pd.DataFrame
    equity: np.ndarray  # (T, accounts)


def check(cfg: Config, market: MarketData | None = None, cuts: int = 5, seed: int = 0) -> LookaheadReport:
    """Perturb all data after `cuts` random bars and report anything at or before a cut that changed."""
    from backtest.pipeline import load_market, prepare

    md = market if market is not None else load_market(cfg)
    prep = prepare(cfg, md)
    plan = prep.plan
    base = _run(cfg, plan, md)
    dates = pd.DatetimeIndex(prep.panel.dates)
    n_t = len(dates)
    if n_t < 3 or cuts < 1:
        raise UserError(f"{cfg.source or 'config'}: the look-ahead check needs at least 3 bars and 1 cut "
                        f"(got {n_t} bars, cuts={cuts})")
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(np.arange(1, n_t - 1), size=min(cuts, n_t - 2), replace=False))
    known = [FEATURES[r.name].known for r in plan.refs]
    late = [i for i, k in enumerate(known) if k == "next_open"]
    index = {ref: i for i, ref in enumerate(plan.refs)}
    checked = [("feature", str(r), k) for r, k in zip(plan.refs, known)]
    checked += [("entry rule", str(plan.entry_rule), "")] + ([("exit rule", str(plan.exit_rule), "")] * (
        plan.exit_rule is not None)) + [("fills", "", ""), ("equity", "", "")]
    report = LookaheadReport(cfg.source or "config", [str(dates[t].date()) for t in picks], checked)
    for t in picks:
        for info in ("open", "close"):
            moved = _run(cfg, plan, _perturb(md, dates[t], info, rng))
            report.runs += 1
            report.reached += _changed_after(base, moved, t)
            cut = str(dates[t].date())

            def found(kind, name, k, bar):
                report.findings.append(Finding(kind, name, k, info, cut, str(dates[bar].date()), int(bar)))

            for i, ref in enumerate(plan.refs):
                upto = t if info == "open" or known[i] == "close" else t - 1
                bar = _first_diff(base.feats[i].T, moved.feats[i].T, upto)
                if bar is not None:
                    found("feature", str(ref), known[i], bar)
            # Rules: under "close", next_open features may move on bar t; evaluate the rules on the
            # moved close features and the unmoved next_open ones, so any change on bars <= t is the rule's.
            feats = moved.feats
            if info == "close" and late:
                feats = feats.copy()
                feats[late] = base.feats[late]
            for kind, a, rule in (("entry rule", base.entry, plan.entry_rule),
                                  ("exit rule", base.exit, plan.exit_rule)):
                bar = _first_diff(a, evaluate(rule, feats, index), t)
                if bar is not None:
                    found(kind, str(rule), "", bar)
            bar = _first_order_diff(base.orders, moved.orders, dates, t)
            if bar is not None:
                found("fills", "", "", bar)
            bar = _first_diff(base.equity, moved.equity, t)
            if bar is not None:
                found("equity", "", "", bar)
    report.findings.sort(key=lambda f: (KINDS.index(f.kind), f.bar_index, f.perturbed != "open"))
    return report


def _run(cfg: Config, plan: StrategyPlan, md: MarketData) -> _Run:
    """Align (as a run does), compute features, evaluate the rules and simulate."""
    from backtest.pipeline import prepare
    from backtest.simulate import simulate

    panel = prepare(cfg, md).panel
    feats = compute_features(panel, plan.refs)
    index = {ref: i for i, ref in enumerate(plan.refs)}
    res = simulate(panel, plan, feats, cfg)
    return _Run(feats, evaluate(plan.entry_rule, feats, index), evaluate(plan.exit_rule, feats, index),
                res.orders, res.equity.to_numpy())


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b


def _first_diff(a: np.ndarray, b: np.ndarray, upto: int) -> int | None:
    """First row <= upto of two (T, ...) arrays that differs (NaN equals NaN), or None."""
    if upto < 0:
        return None
    same = _same(a[: upto + 1], b[: upto + 1]).reshape(upto + 1, -1).all(axis=1)
    return None if same.all() else int(np.argmin(same))


def _first_order_diff(a: pd.DataFrame, b: pd.DataFrame, dates: pd.DatetimeIndex, t: int) -> int | None:
    """First bar <= t on which the orders (fills and skipped entries) differ, or None."""
    cut = dates[t]
    a, b = a[a["date"] <= cut].reset_index(drop=True), b[b["date"] <= cut].reset_index(drop=True)
    n = min(len(a), len(b))
    for i in range(n):
        ra, rb = a.iloc[i], b.iloc[i]
        if not all(x == y or (isinstance(x, float) and np.isnan(x) and np.isnan(y)) for x, y in zip(ra, rb)):
            return int(dates.get_loc(min(ra["date"], rb["date"])))
    if len(a) != len(b):
        return int(dates.get_loc((a if len(a) > n else b)["date"].iloc[n]))
    return None


def _changed_after(base: _Run, moved: _Run, t: int) -> bool:
    return bool(not _same(base.feats[:, :, t + 1:], moved.feats[:, :, t + 1:]).all()
                or not _same(base.equity[t + 1:], moved.equity[t + 1:]).all())


def _perturb(md: MarketData, cut: pd.Timestamp, info: str, rng: np.random.Generator) -> MarketData:
    """A copy of the market with every value known only after `info` of the cut bar scrambled.

    "open": sources dated after the cut. "close": also flows, ADR closes and FX dated on the cut
    (published after the HK close). Prices of one (date, symbol) share a factor, so bars stay valid.
    """
    after = lambda idx: idx > cut  # noqa: E731
    later = (lambda idx: idx >= cut) if info == "close" else after  # noqa: E731

    def scale(obj, mask, lo, hi):
        obj = obj.copy()
        f = rng.uniform(lo, hi, size=obj.loc[mask].shape)
        obj.loc[mask] = obj.loc[mask] * f
        return obj, f

    def flows(obj, mask):
        obj = obj.copy()
        part = obj.loc[mask]
        values = obj.to_numpy(dtype=float)
        spread = float(np.nanstd(values)) if np.isfinite(values).sum() > 1 else 0.0
        obj.loc[mask] = part + rng.normal(0.0, 3.0 * (spread or 1.0), size=part.shape)
        return obj

    hk = dict(md.hk)
    close = md.hk["close"]
    mask = after(close.index)
    factor = rng.uniform(0.7, 1.3, size=(int(mask.sum()), close.shape[1]))
    for name in CLOSE_HK_FIELDS:
        if name in hk:
            df = hk[name].copy()
            m = after(df.index)
            df.loc[m] = df.loc[m] * (factor if df.shape == close.shape else rng.uniform(0.7, 1.3, df.loc[m].shape))
            hk[name] = df
    if "board_lot" in hk:  # lots change over time; a future lot must not size a past order
        df = hk["board_lot"].copy()
        m = after(df.index)
        df.loc[m] = df.loc[m] * rng.choice([1.0, 2.0, 5.0], size=df.loc[m].shape)
        hk["board_lot"] = df
    if "sb_net_buy" in hk:
        hk["sb_net_buy"] = flows(hk["sb_net_buy"], later(hk["sb_net_buy"].index))
    index_close, _ = scale(md.index_close, after(md.index_close.index), 0.7, 1.3)
    adr, _ = scale(md.adr_close, later(md.adr_close.index), 0.8, 1.2)
    fx, _ = scale(md.usdhkd, later(md.usdhkd.index), 0.98, 1.02)
    return dataclasses.replace(md, hk=hk, southbound=flows(md.southbound, later(md.southbound.index)),
                               index_close=index_close, adr_close=adr, usdhkd=fx)
