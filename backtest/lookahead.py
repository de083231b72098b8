"""Look-ahead check (owners.md interface 7). STOP-GAP from the api branch so that backtest.lookahead
and docs/examples run; the features engineer's module replaces this file at merge.

Scramble every source strictly after a random cut bar, re-run, and report anything at or before
the cut (features, equity, cash, shares, orders) that changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from backtest.config import Config
from backtest.data.market import MarketData


@dataclass
class LookaheadReport:
    clean: bool
    findings: list = field(default_factory=list)
    cuts: list = field(default_factory=list)

    def __str__(self) -> str:
        cuts = ", ".join(str(c) for c in self.cuts)
        if self.clean:
            return f"clean: nothing at or before a cut changed when the data after it did (cuts: {cuts})"
        return "LOOK-AHEAD:\n" + "\n".join(f"  - {f}" for f in self.findings)


def _perturb_after(md: MarketData, cut, rng: np.random.Generator) -> MarketData:
    md = copy.deepcopy(md)
    for df in md.hk.values():
        after = df.index > cut
        df.loc[after] = df.loc[after] * rng.uniform(0.5, 1.5, size=df.loc[after].shape)
    after = md.southbound.index > cut
    md.southbound.loc[after] = rng.normal(0, 3e10, size=md.southbound.loc[after].shape)
    after = md.adr_close.index > cut
    md.adr_close.loc[after] = md.adr_close.loc[after] * rng.uniform(0.8, 1.2, size=md.adr_close.loc[after].shape)
    md.usdhkd.loc[md.usdhkd.index > cut] *= 1.01
    md.index_close.loc[md.index_close.index > cut] *= 3.0
    return md


def check(cfg: Config, market: MarketData | None = None, cuts: int = 5, seed: int = 0) -> LookaheadReport:
    from backtest.pipeline import load_market, run

    market = market if market is not None else load_market(cfg)
    base = run(cfg, market)
    dates = base.result.equity.index
    rng = np.random.default_rng(seed)
    report = LookaheadReport(True)
    refs = [str(r) for r in base.prepared.plan.refs]
    for t in sorted(rng.integers(len(dates) // 4, max(len(dates) // 4 + 1, len(dates) - 2), size=cuts)):
        cut = dates[t]
        report.cuts.append(cut.date())
        moved = run(cfg, _perturb_after(market, cut, rng))
        for i, ref in enumerate(refs):
            a, b = base.features[i, : t + 1], moved.features[i, : t + 1]
            diff = ~((a == b) | (np.isnan(a) & np.isnan(b)))
            if diff.any():
                report.findings.append(f"feature {ref} changed on {dates[np.argwhere(diff)[0][0]].date()} "
                                       f"when data after {cut.date()} changed")
        for name in ("equity", "cash", "shares"):
            a, b = getattr(base.result, name).iloc[: t + 1], getattr(moved.result, name).iloc[: t + 1]
            if not np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True):
                report.findings.append(f"{name} changed at or before {cut.date()} when data after it changed")
        ob, om = base.result.orders, moved.result.orders
        if not ob[ob["date"] <= cut].equals(om[om["date"] <= cut]):
            report.findings.append(f"orders at or before {cut.date()} changed when data after it changed")
    report.clean = not report.findings
    return report
