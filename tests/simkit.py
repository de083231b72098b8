"""Drive the simulation kernel from plain boolean entry/exit arrays (rules: feature >= 0.5).

Takes and returns (T, N) arrays; transposes to and from the kernel's symbol-major layout."""

import numpy as np

from backtest.costs import CostModel, cost_table
from backtest.kernels import simulate as nb
from backtest.rules import compile_rule, feature

FILLS = {"next_open": nb.FILL_NEXT_OPEN, "next_close": nb.FILL_NEXT_CLOSE, "same_close": nb.FILL_SAME_CLOSE}


def dates(n, start="2024-01-02"):
    return np.busday_offset(np.datetime64(start, "D"), np.arange(n), roll="forward")


def run(o, h, l, c, entries, exits=None, *, lot=None, rank=None, fill="next_open", cash=1e6, slippage=0.0,
        stop_loss=0.0, take_profit=0.0, trailing_stop=0.0, max_hold=0, costs=None, max_positions=0,
        start="2024-01-02"):
    o, h, l, c = (np.ascontiguousarray(np.asarray(a, dtype=np.float64)) for a in (o, h, l, c))
    if o.ndim == 1:
        o, h, l, c = (a[:, None].copy() for a in (o, h, l, c))
    entries = np.asarray(entries, dtype=bool).reshape(c.shape)
    exits = np.zeros(c.shape, bool) if exits is None else np.asarray(exits, dtype=bool).reshape(c.shape)
    feats = [entries.astype(float), exits.astype(float)]
    r_feat = -1
    if rank is not None:
        feats.append(np.asarray(rank, dtype=np.float64).reshape(c.shape))
        r_feat = 2
    feats = np.ascontiguousarray(np.stack(feats))
    one = lambda i: compile_rule(feature(f"signal{i}") >= 0.5, {feature(f"signal{i}"): i})  # noqa: E731
    use_lots = lot is not None
    lot_arr = np.broadcast_to(np.asarray(lot if use_lots else 1.0, dtype=np.float64), c.shape).copy()
    table = cost_table(costs or CostModel(kind="flat"), dates(c.shape[0], start))
    sym = lambda a: np.ascontiguousarray(a.T)  # noqa: E731  kernels are symbol-major
    market = nb.Market(sym(o), sym(h), sym(l), sym(c), sym(lot_arr), np.ascontiguousarray(feats.transpose(0, 2, 1)),
                       table)
    ex = nb.Execution(FILLS[fill], float(cash), float(slippage), use_lots, int(max_positions), float(stop_loss),
                      float(take_profit), float(trailing_stop), int(max_hold))
    out = nb.simulate(market, one(0), one(1), r_feat, 1.0, ex)
    cash_, shares, equity, trades, orders, ofees = out
    return cash_.T, shares.T, equity.T, trades, orders, ofees
