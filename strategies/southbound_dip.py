"""Buy a dip while mainland investors buy Hong Kong hard through Stock Connect."""

from backtest.rules import all_of, feature
from backtest.strategy import Param

NAME = "southbound_dip"
HELP = "buy names down `dip` from their recent high on days of a southbound net-buy spike"
PARAMS = (
    Param("dip_window", int, 20, 2, 250, "bars in the rolling high the dip is measured from"),
    Param("dip", float, 0.10, 0.0, 0.9, "drawdown from the rolling high that counts as a dip"),
    Param("flow_window", int, 60, 5, 500, "bars of history for the southbound z-score"),
    Param("flow_z", float, 2.0, -5.0, 20.0, "aggregate southbound net-buy z-score that counts as a spike"),
    Param("fade_z", float, -1.0, -20.0, 20.0, "exit when the southbound z-score falls to this level"),
)


def entry(p):
    return all_of(
        feature("drawdown", window=p.dip_window) <= -p.dip,
        feature("sb_z", window=p.flow_window) >= p.flow_z,
    )


def exit(p):
    return feature("sb_z", window=p.flow_window) <= p.fade_z
