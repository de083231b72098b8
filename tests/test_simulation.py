"""Hand-worked cases of DESIGN §5: fills, lots, stops, exit priority, time stop, skips, portfolio mode."""

import numpy as np
import pytest

from backtest.costs import CostModel, fees
from tests import simkit
from tests.simkit import dates

NAN = np.nan


def bar(o, h, lo, c):
    return o, h, lo, c


def ohlc(bars):
    a = np.array(bars, dtype=float)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3]


FLAT5 = [bar(100, 101, 99, 100)] * 5


def run(*args, **kw):
    """(cash, shares, equity) as (T, A) arrays, trades and orders with bar numbers, from the engine."""
    res = simkit.run(*args, **kw)
    idx = res.equity.index
    trades = res.trades.assign(entry_bar=idx.get_indexer(res.trades["entry_date"]),
                               exit_bar=idx.get_indexer(res.trades["exit_date"]))
    orders = res.orders.assign(bar=idx.get_indexer(res.orders["date"]),
                               col=res.shares.columns.get_indexer(res.orders["symbol"]))
    return res.cash.to_numpy(), res.shares.to_numpy(), res.equity.to_numpy(), trades, orders, None


def fills(orders):
    """(bar, side, shares, price, reason, status) of each logged order."""
    return [(int(r.bar), 1 if r.side == "buy" else -1, r.shares, r.price, r.reason, r.status)
            for r in orders.itertuples()]


def test_signal_fills_at_next_open_and_exit_signal_at_the_following_open():
    o, h, lo, c = ohlc([bar(10, 11, 9, 10), bar(12, 13, 11, 12), bar(14, 15, 13, 14), bar(16, 17, 15, 16)])
    _, shares, equity, trades, orders, _ = run(o, h, lo, c, [1, 0, 0, 0], [0, 1, 0, 0], cash=1200)
    assert fills(orders) == [(1, 1, 100.0, 12.0, "entry_signal", "filled"), (2, -1, 100.0, 14.0, "exit_signal", "filled")]
    assert list(shares[:, 0]) == [0, 100, 0, 0]
    assert list(equity[:, 0]) == [1200, 1200, 1400, 1400]


def test_same_close_and_next_close_fills():
    o, h, lo, c = ohlc([bar(10, 11, 9, 10.5), bar(12, 13, 11, 12.5), bar(14, 15, 13, 14.5)])
    *_, orders, _ = run(o, h, lo, c, [1, 0, 0], fill="same_close", cash=1050)
    assert fills(orders)[0][:4] == (0, 1, 100.0, 10.5)
    *_, orders, _ = run(o, h, lo, c, [1, 0, 0], fill="next_close", cash=1250)
    assert fills(orders)[0][:4] == (1, 1, 100.0, 12.5)


def test_board_lot_rounding_and_the_lot_dropped_when_fees_do_not_fit():
    o, h, lo, c = ohlc([bar(33, 33, 33, 33)] * 3)
    *_, orders, _ = run(o, h, lo, c, [1, 0, 0], lot=100, cash=100_000)
    assert orders.loc[0, "shares"] == 3000  # floor(100,000 / 33 / 100) lots
    hk = CostModel(kind="hk")
    day = dates(3)[1]
    cost_3000 = 3000 * 33 + fees(hk, day, 3000 * 33)["total"]
    assert cost_3000 > 99_050
    *_, orders, _ = run(o, h, lo, c, [1, 0, 0], lot=100, cash=99_050, costs=hk)
    assert orders.loc[0, "shares"] == 2900
    assert orders.loc[0, "fees"] == pytest.approx(fees(hk, day, 2900 * 33)["total"], abs=1e-9)


def test_entry_that_cannot_afford_one_lot_is_skipped_and_logged():
    o, h, lo, c = ohlc([bar(500, 500, 500, 500)] * 3)
    cash, *_, trades, orders, _ = run(o, h, lo, c, [1, 0, 0], lot=100, cash=40_000)
    assert fills(orders) == [(1, 1, 0.0, 500.0, "entry_signal", "skipped_no_cash")]
    assert len(trades) == 0 and (cash == 40_000).all()


def test_entry_on_a_bar_without_price_is_skipped_and_an_exit_waits_for_the_next_price():
    o, h, lo, c = ohlc([bar(10, 10, 10, 10), bar(NAN, NAN, NAN, NAN), bar(10, 10, 10, 10)])
    *_, orders, _ = run(o, h, lo, c, [1, 0, 0], cash=1000)
    (only,) = fills(orders)
    assert (only[0], only[2], only[5]) == (1, 0.0, "skipped_no_price")
    o, h, lo, c = ohlc([bar(10, 10, 10, 10), bar(10, 10, 10, 10), bar(NAN, NAN, NAN, NAN), bar(NAN, NAN, NAN, NAN),
                        bar(9, 9, 9, 9)])
    _, shares, equity, trades, orders, _ = run(o, h, lo, c, [1, 0, 0, 0, 0], [0, 1, 0, 0, 0], cash=1000)
    assert fills(orders)[1] == (4, -1, 100.0, 9.0, "exit_signal", "filled")
    assert list(shares[:, 0]) == [0, 100, 100, 100, 0]
    assert list(equity[:, 0]) == [1000, 1000, 1000, 1000, 900]  # suspended bars marked at the last close


def test_stop_loss_fills_at_the_level_or_at_a_gapping_open():
    base = [bar(100, 100, 100, 100), bar(100, 100, 100, 100)]
    o, h, lo, c = ohlc(base + [bar(95, 96, 88, 89)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0], stop_loss=0.10, cash=10_000)
    assert trades.loc[0, "exit_price"] == 90.0 and trades.loc[0, "reason"] == "stop_loss"
    o, h, lo, c = ohlc(base + [bar(85, 87, 80, 86)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0], stop_loss=0.10, cash=10_000)
    assert trades.loc[0, "exit_price"] == 85.0


def test_take_profit_fills_at_the_level_or_at_a_gapping_open_and_slippage_applies():
    base = [bar(100, 100, 100, 100), bar(100, 100, 100, 100)]
    o, h, lo, c = ohlc(base + [bar(105, 125, 104, 110)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0], take_profit=0.20, cash=10_000)
    assert trades.loc[0, "exit_price"] == 120.0 and trades.loc[0, "reason"] == "take_profit"
    o, h, lo, c = ohlc(base + [bar(130, 131, 129, 130)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0], take_profit=0.20, slippage=0.01, cash=20_000)
    assert trades.loc[0, "entry_price"] == pytest.approx(101.0)
    assert trades.loc[0, "exit_price"] == pytest.approx(130 * 0.99)


def test_exit_priority_on_one_bar():
    base = [bar(100, 100, 100, 100), bar(100, 100, 100, 100)]
    # Both stop loss (90) and take profit (120) inside the bar's range, open between: stop loss first.
    o, h, lo, c = ohlc(base + [bar(100, 125, 85, 100)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0], stop_loss=0.1, take_profit=0.2, cash=10_000)
    assert (trades.loc[0, "exit_price"], trades.loc[0, "reason"]) == (90.0, "stop_loss")
    # The bar opens through the take profit: that fills first, at the open.
    o, h, lo, c = ohlc(base + [bar(125, 126, 85, 100)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0], stop_loss=0.1, take_profit=0.2, cash=10_000)
    assert (trades.loc[0, "exit_price"], trades.loc[0, "reason"]) == (125.0, "take_profit")
    # A signal exit at the open comes before any intrabar stop.
    o, h, lo, c = ohlc(base + [bar(100, 101, 99, 100), bar(97, 98, 80, 85)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0, 0], [0, 0, 1, 0], stop_loss=0.1, cash=10_000)
    assert (trades.loc[0, "exit_price"], trades.loc[0, "reason"]) == (97.0, "exit_signal")
    # Stop loss and trailing stop together: the higher level is the one hit first.
    o, h, lo, c = ohlc(base + [bar(100, 120, 100, 118), bar(110, 111, 80, 85)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0, 0], stop_loss=0.1, trailing_stop=0.1, cash=10_000)
    assert (trades.loc[0, "exit_price"], trades.loc[0, "reason"]) == (108.0, "trailing_stop")


def test_stops_start_the_bar_after_the_entry_and_the_trailing_peak_lags_one_bar():
    # Entry at the open of bar 1; bar 1 trades far below the stop but stops are not checked on it.
    o, h, lo, c = ohlc([bar(100, 100, 100, 100), bar(100, 100, 50, 100), bar(100, 100, 100, 100)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0], stop_loss=0.1, cash=10_000)
    assert trades.loc[0, "reason"] == "open"
    # The peak takes bar 2's high only after bar 2's own check: level 90 on bar 2, 180 on bar 3.
    o, h, lo, c = ohlc([bar(100, 100, 100, 100), bar(100, 100, 100, 100), bar(100, 200, 91, 190),
                        bar(190, 195, 170, 175)])
    *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0, 0], trailing_stop=0.1, cash=10_000)
    assert (trades.loc[0, "exit_bar"], trades.loc[0, "exit_price"]) == (3, 180.0)


def test_time_stop_exits_max_hold_bars_after_the_entry_fill():
    o, h, lo, c = ohlc([bar(100, 100, 100, 100)] * 8)
    for fill, entry_bar in (("next_open", 1), ("next_close", 1), ("same_close", 0)):
        *_, trades, _, _ = run(o, h, lo, c, [1, 0, 0, 0, 0, 0, 0, 0], max_hold=3, fill=fill, cash=10_000)
        assert (trades.loc[0, "entry_bar"], trades.loc[0, "exit_bar"]) == (entry_bar, entry_bar + 3), fill
        assert trades.loc[0, "reason"] == "time_stop"


def test_portfolio_ranks_entries_and_logs_those_without_a_slot():
    o, h, lo, c = (np.full((3, 3), 10.0) for _ in range(4))
    entries = np.array([[1, 1, 1], [0, 0, 0], [0, 0, 0]])
    rank = np.array([[0.5, 2.0, 1.0]] * 3)
    _, shares, equity, _, orders, _ = run(o, h, lo, c, entries, rank=rank, max_positions=2, cash=3000)
    assert list(shares[1]) == [0, 150, 150]  # strongest two, 1/2 of equity each
    skipped = [f for f in fills(orders) if f[5] == "skipped_no_slot"]
    assert len(skipped) == 1 and orders.loc[orders["status"] == "skipped_no_slot", "col"].tolist() == [0]
    assert equity.shape == (3, 1)


def test_portfolio_exits_before_entries_free_a_slot_on_the_same_bar():
    o, h, lo, c = (np.full((4, 2), 10.0) for _ in range(4))
    entries = np.array([[1, 0], [0, 1], [0, 0], [0, 0]])
    exits = np.array([[0, 0], [1, 0], [0, 0], [0, 0]])
    _, shares, *_ = run(o, h, lo, c, entries, exits, max_positions=1, cash=1000)
    assert list(shares[:, 0]) == [0, 100, 0, 0]
    assert list(shares[:, 1]) == [0, 0, 100, 100]


def test_independent_accounts_do_not_share_cash():
    o, h, lo, c = (np.full((3, 2), 10.0) for _ in range(4))
    cash, shares, *_ = run(o, h, lo, c, np.array([[1, 1], [0, 0], [0, 0]]), cash=1000)
    assert list(shares[1]) == [100, 100] and list(cash[1]) == [0, 0]


@pytest.mark.parametrize("mode", ["independent", "portfolio"])
def test_to_vectorbt_replays_our_fills_with_equal_value(mode, small_config, small_market):
    import dataclasses

    from backtest.pipeline import run as run_pipeline

    cfg = dataclasses.replace(small_config, execution=dataclasses.replace(small_config.execution, mode=mode,
                                                                          max_positions=3))
    result = run_pipeline(cfg, small_market).result
    pf = result.to_vectorbt()
    value = pf.value()
    ours = result.equity["portfolio"] if mode == "portfolio" else result.equity
    np.testing.assert_allclose(np.asarray(value), np.asarray(ours), rtol=1e-9)
    assert len(pf.orders.records) == int((result.orders["status"] == "filled").sum()) > 0
