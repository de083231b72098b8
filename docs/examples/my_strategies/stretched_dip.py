"""A strategy with its own feature, used by walkthrough.py (config name: "my_strategies.stretched_dip").

Buy a name that closes `stretch` below its `window`-day mean while the index is calm; sell when it
is back above the mean. The feature is registered at import, so any config naming this module can
use it, in a run, a sweep or a look-ahead check.
"""

from backtest.features import register_feature
from backtest.rules import all_of, feature
from backtest.strategy import Param


@register_feature(params=(Param("window", int, 20, 2, 500, "bars in the mean"),), known="close",
                  help="close / its `window`-bar mean close - 1")
def close_vs_mean(panel, window):
    close = panel.frame("close")  # dates x symbols DataFrame
    return close / close.rolling(window, min_periods=window).mean() - 1.0


NAME = "stretched_dip"
HELP = "buy a close `stretch` below its mean after a dip; sell back at the mean"
PARAMS = (
    Param("window", int, 20, 5, 250, "bars in the mean"),
    Param("stretch", float, 0.08, 0.0, 0.5, "distance below the mean that counts as stretched"),
    Param("dip_window", int, 20, 2, 250, "bars in the rolling high"),
    Param("dip", float, 0.10, 0.0, 0.9, "drawdown from the rolling high"),
)


def entry(p):
    return all_of(feature("close_vs_mean", window=p.window) <= -p.stretch,
                  feature("drawdown", window=p.dip_window) <= -p.dip)


def exit(p):
    return feature("close_vs_mean", window=p.window) >= 0.0
