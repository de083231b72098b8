"""Buy the names mainland investors buy most while the whole market slumps.

Three facts from the same sell-off: the benchmark index is well off its recent high (a
market-wide slump), southbound money has poured in over the last few Connect days (cumulative net
buying high against its own history), and this stock is among the top names by southbound net buy
that day. The first is known at the HK close, the other two before the next HK open
(docs/timing.md), so the signal fills at the next open at the earliest. Sell when the index has
recovered to near its high.
"""

from backtest.rules import all_of, feature
from backtest.strategy import Param

NAME = "slump_flow"
HELP = "buy the top southbound names while the index slumps and cumulative southbound buying is heavy"
PARAMS = (
    Param("slump_window", int, 20, 2, 250, "bars in the index's rolling high"),
    Param("slump", float, 0.10, 0.0, 0.9, "index drawdown from that high that counts as a slump"),
    Param("cum_days", int, 5, 1, 60, "Connect days of cumulative southbound net buying"),
    Param("cum_window", int, 250, 20, 1000, "bars of history for the cumulative buying's z-score"),
    Param("cum_z", float, 1.0, -5.0, 20.0, "z-score of the cumulative buying that counts as heavy"),
    Param("top", int, 3, 1, 50, "buy only names ranked this high or better by the day's southbound net buy"),
    Param("recover", float, 0.02, 0.0, 0.9, "sell when the index is back within this fraction of its high"),
)


def entry(p):
    return all_of(
        feature("index_dd", window=p.slump_window) <= -p.slump,
        feature("sb_cum_z", window=p.cum_days, z_window=p.cum_window) >= p.cum_z,
        feature("sb_rank") <= p.top,
    )


def exit(p):
    return feature("index_dd", window=p.slump_window) >= -p.recover


def rank(p):
    """Portfolio mode, several entries on one bar: the largest southbound net buy (rank 1) first."""
    return feature("sb_rank"), "low_first"
