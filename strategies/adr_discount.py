"""Buy the Hong Kong line when its US ADR trades at an extreme discount to it, and hold until the
premium mean-reverts.

The ADR premium on row t compares the HK close of t with the ADR close of the same US date (known
before the next HK open, docs/timing.md), so the signal fills at the next open at the earliest.
Only dual-listed names have a premium; on every other name the features are NaN and never hold.
"""

from backtest.rules import all_of, feature
from backtest.strategy import Param

NAME = "adr_discount"
HELP = "buy the HK share when its ADR trades at an extreme discount to it; sell when the premium reverts"
PARAMS = (
    Param("adr_window", int, 60, 10, 500, "bars of premium history for the z-score"),
    Param("discount_z", float, -2.0, -10.0, 0.0, "ADR premium z-score at or below which the discount is extreme"),
    Param("min_discount", float, 0.01, 0.0, 0.5, "the premium must also be at or below -min_discount (0: any discount)"),
    Param("max_stale", int, 0, 0, 10, "most weekdays the ADR close may lag the HK date (0: same-date US close)"),
    Param("exit_z", float, 0.0, -10.0, 10.0, "sell when the premium z-score recovers to this level (above discount_z)"),
)


def entry(p):
    return all_of(
        feature("adr_z", window=p.adr_window) <= p.discount_z,
        feature("adr_premium") <= -p.min_discount,
        feature("adr_staleness") <= p.max_stale,
    )


def exit(p):
    return feature("adr_z", window=p.adr_window) >= p.exit_z


def rank(p):
    """Portfolio mode, several entries on one bar: the deepest discount (lowest z-score) first."""
    return feature("adr_z", window=p.adr_window), "low_first"
