"""The trade ledger by hand (Decimal): pnl, return, bars and every fee column of trades.csv, with
board lots that change between trades and the HK schedule plus a commission minimum."""

from decimal import Decimal as D

import numpy as np
import pytest

from backtest.costs import CostModel
from tests.simkit import run


def test_trade_ledger_by_hand():
    # bars: 2024-03-01 (Fri), 03-04, 03-05, 03-06; one name; signals read on row t fill at t+1's open
    o = np.array([10.0, 10.5, 11.2, 12.0])
    c = np.array([10.0, 10.5, 11.2, 12.3])
    h = np.maximum(o, c)
    lot = np.array([500.0, 500.0, 500.0, 1000.0])
    res = run(o, h, np.minimum(o, c), c, [1, 0, 1, 0], [0, 1, 0, 0], lot=lot, cash=100_000, start="2024-03-01",
              costs=CostModel(kind="hk", commission_bps=3, commission_min=50))
    tr = res.trades

    # Trade 1: 19 lots of 500 at 10.50 on 03-04 (20 lots would cost 105,000): value 99,750.
    #   stamp 0.1 % = 99.75 -> 100 (up to the dollar); trading 0.00565 % = 5.635875 -> 5.64; SFC 0.0027 %
    #   = 2.69325 -> 2.69; AFRC 0.00015 % = 0.149625 -> 0.15; settlement 0.002 % = 1.995 -> min 2.00;
    #   commission 3 bps = 29.925 -> min 50.00.  Sum 160.48; cost 99,910.48.
    # Sold at 11.20 on 03-05: value 106,400: stamp 106.4 -> 107; trading 6.0116 -> 6.01; SFC 2.8728 -> 2.87;
    #   AFRC 0.1596 -> 0.16; settlement 2.128 -> 2.13; commission 31.92 -> 50.  Sum 168.17.
    buy1 = {"stamp": D("100"), "trading": D("5.64"), "sfc": D("2.69"), "afrc": D("0.15"), "settlement": D("2.00"),
            "commission": D("50")}
    sell1 = {"stamp": D("107"), "trading": D("6.01"), "sfc": D("2.87"), "afrc": D("0.16"), "settlement": D("2.13"),
             "commission": D("50")}
    cost1 = D(9500) * D("10.5") + sum(buy1.values())
    proceeds1 = D(9500) * D("11.2") - sum(sell1.values())
    assert cost1 == D("99910.48") and proceeds1 == D("106231.83")
    # Trade 2: cash 89.52 + 106,231.83 = 106,321.35; lots are now 1,000: 8 lots at 12.00 on 03-06, value 96,000:
    #   stamp 96 (a whole dollar stays); trading 5.424 -> 5.42; SFC 2.592 -> 2.59; AFRC 0.144 -> 0.14;
    #   settlement 1.92 -> min 2.00; commission 28.8 -> 50.  Sum 156.15.  Still open: marked at the last close.
    buy2 = {"stamp": D("96"), "trading": D("5.42"), "sfc": D("2.59"), "afrc": D("0.14"), "settlement": D("2.00"),
            "commission": D("50")}
    cost2 = D(8000) * D(12) + sum(buy2.values())
    value2 = D(8000) * D("12.3")

    assert list(tr["shares"]) == [9500, 8000]
    assert list(tr["entry_price"]) == [10.5, 12.0] and list(tr["exit_price"]) == [11.2, 12.3]
    assert list(tr["reason"]) == ["exit_signal", "open"]
    assert list(tr["bars"]) == [1, 0]
    assert tr.loc[0, "entry_fees"] == pytest.approx(float(sum(buy1.values())), abs=1e-9)
    assert tr.loc[0, "exit_fees"] == pytest.approx(float(sum(sell1.values())), abs=1e-9)
    assert (tr.loc[1, "entry_fees"], tr.loc[1, "exit_fees"]) == (pytest.approx(float(sum(buy2.values())), abs=1e-9), 0)
    assert tr.loc[0, "pnl"] == pytest.approx(float(proceeds1 - cost1), abs=1e-8)
    assert tr.loc[0, "return"] == pytest.approx(float(proceeds1 / cost1 - 1), abs=1e-14)
    assert tr.loc[1, "pnl"] == pytest.approx(float(value2 - cost2), abs=1e-8)
    assert tr.loc[1, "return"] == pytest.approx(float(value2 / cost2 - 1), abs=1e-14)
    for kind in buy1:
        assert tr.loc[0, f"fee_{kind}"] == pytest.approx(float(buy1[kind] + sell1[kind]), abs=1e-9), kind
        assert tr.loc[1, f"fee_{kind}"] == pytest.approx(float(buy2[kind]), abs=1e-9), kind
    assert (tr["fee_flat"] == 0).all()

    cash2 = D(100_000) - cost1 + proceeds1 - cost2
    assert cash2 == D("10165.20")
    np.testing.assert_allclose(res.cash.iloc[:, 0], [100_000, float(D(100_000) - cost1),
                                                     float(D(100_000) - cost1 + proceeds1), float(cash2)], rtol=1e-12)
    np.testing.assert_allclose(res.equity.iloc[:, 0], [100_000, float(D(100_000) - cost1 + 9500 * D("10.5")),
                                                       float(D(100_000) - cost1 + proceeds1), float(cash2 + value2)],
                               rtol=1e-12)
