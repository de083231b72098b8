"""Southbound spike, ADR discount and price dip, combined k-of-n.

Three conditions, each a reason to buy a Hong Kong tech name in a sell-off: mainland money is
pouring in through Stock Connect (aggregate southbound z-score), the name's US ADR trades at an
extreme discount to its HK line (premium z-score), and the price is down from its recent high.
Entry needs at least `k` of them (k = 3: all; k = 1: any). The exit fires when the flow fades or
the premium has reverted, whichever comes first.

A NaN feature never holds: names without an ADR can only enter on the other two conditions, so
with k = 3 only dual-listed names trade. The rule does not gate on the ADR close's staleness or
an absolute discount floor (on US holidays the ADR condition reads a stale premium). Rules nest
(docs/rules.md), so such a gate could wrap the count rather than join it, e.g.
`all_of(k_of(p.k, ...), feature("adr_staleness") <= 0)`; the shipped rule leaves it out
(`adr_discount` has those gates).
"""

from backtest.rules import any_of, feature, k_of
from backtest.strategy import Param

NAME = "flow_discount"
HELP = "buy when k of {southbound spike, ADR discount, dip} hold; sell when the flow fades or the premium reverts"
PARAMS = (
    Param("k", int, 2, 1, 3, "how many of the 3 conditions (flow spike, ADR discount, dip) must hold"),
    Param("flow_window", int, 60, 5, 500, "bars of history for the southbound z-score"),
    Param("flow_z", float, 2.0, -5.0, 20.0, "aggregate southbound net-buy z-score that counts as a spike"),
    Param("adr_window", int, 60, 10, 500, "bars of premium history for the ADR z-score"),
    Param("discount_z", float, -2.0, -10.0, 0.0, "ADR premium z-score at or below which the discount is extreme"),
    Param("dip_window", int, 20, 2, 250, "bars in the rolling high the dip is measured from"),
    Param("dip", float, 0.10, 0.0, 0.9, "drawdown from the rolling high that counts as a dip"),
    Param("fade_z", float, -1.0, -20.0, 20.0, "sell when the southbound z-score falls to this level"),
    Param("exit_z", float, 0.0, -10.0, 10.0, "sell when the ADR premium z-score recovers to this level"),
)


def entry(p):
    return k_of(
        p.k,
        feature("sb_z", window=p.flow_window) >= p.flow_z,
        feature("adr_z", window=p.adr_window) <= p.discount_z,
        feature("drawdown", window=p.dip_window) <= -p.dip,
    )


def exit(p):
    return any_of(
        feature("sb_z", window=p.flow_window) <= p.fade_z,
        feature("adr_z", window=p.adr_window) >= p.exit_z,
    )


def rank(p):
    """Portfolio mode, several entries on one bar: the deepest dip first (the flow z-score is
    market-wide and the ADR z-score is NaN for names without an ADR, so neither can rank)."""
    return feature("drawdown", window=p.dip_window), "low_first"
