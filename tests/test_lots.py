"""Board-lot sizing (`affordable_shares`): the most whole lots whose value plus fees fit the cash.

Oracle: the definition itself, checked with `order_fees` on the bought quantity and on one lot
more; the two counterexamples of issue 15 item 4 worked by hand."""

import numpy as np
from hypothesis import given, settings, strategies as st

from backtest.costs import NFEE, CostModel, cost_table, order_fees
from backtest.kernels.simulate import affordable_shares

HK = CostModel(kind="hk", commission_bps=3.0, commission_min=50.0)
FLAT = CostModel(kind="flat", flat_pct=0.2)


def _row(model, date="2024-03-01"):
    return cost_table(model, np.array([np.datetime64(date, "D")]))[0]


def _total(value, row):
    return value + order_fees(value, row, np.zeros(NFEE))


def test_hk_counterexample_buys_every_lot_that_fits():
    # 5,736,900 x 0.31 = 1,778,439.00; fees 2,499.27 (stamp 1,779, commission 533.53, ...).
    row = _row(HK)
    shares, fees = affordable_shares(1_780_940.85, 0.31, 100.0, row, np.zeros(NFEE))
    assert shares == 5_736_900
    assert round(fees, 2) == 2499.27
    assert _total(5_736_900 * 0.31, row) <= 1_780_940.85 < _total(5_737_000 * 0.31, row)


def test_flat_counterexample_buys_every_lot_that_fits():
    # 801,200 x 2.35 = 1,882,820.00 plus 0.2 % = 3,765.64: 1,886,585.64 <= 1,886,592.27.
    row = _row(FLAT)
    shares, fees = affordable_shares(1_886_592.27, 2.35, 200.0, row, np.zeros(NFEE))
    assert shares == 801_200
    assert abs(fees - 3765.64) < 1e-6


def test_fee_components_are_those_of_the_bought_order():
    row = _row(HK)
    buf = np.zeros(NFEE)
    shares, fees = affordable_shares(1_780_940.85, 0.31, 100.0, row, buf)
    expect = np.zeros(NFEE)
    assert fees == order_fees(shares * 0.31, row, expect)
    assert np.array_equal(buf, expect)


@settings(max_examples=400, deadline=None)
@given(cash=st.floats(0.0, 5e7), price=st.floats(0.01, 800.0), lot=st.sampled_from([1, 10, 50, 100, 200, 400, 500,
                                                                                     1000, 2000]),
       hk=st.booleans(), bps=st.floats(0.0, 30.0), minimum=st.floats(0.0, 200.0), pct=st.floats(0.0, 2.0),
       date=st.sampled_from(["2016-06-01", "2021-09-01", "2024-03-01", "2025-08-01"]))
def test_bought_lots_fit_and_one_more_does_not(cash, price, lot, hk, bps, minimum, pct, date):
    model = CostModel(kind="hk", commission_bps=bps, commission_min=minimum) if hk else CostModel(kind="flat",
                                                                                                 flat_pct=pct)
    row = _row(model, date)
    shares, fees = affordable_shares(cash, price, float(lot), row, np.zeros(NFEE))
    assert shares % lot == 0 and shares >= 0
    if shares > 0:
        assert shares * price + fees <= cash
        assert fees == order_fees(shares * price, row, np.zeros(NFEE))
    else:
        assert fees == 0.0
    more = shares + lot
    assert _total(more * price, row) > cash


@settings(max_examples=200, deadline=None)
@given(cash=st.floats(1e16, 1e21), price=st.floats(0.0001, 800.0), lot=st.floats(1.0, 5000.0),
       date=st.sampled_from(["2016-06-01", "2025-08-01"]))
def test_counts_beyond_two_to_the_53_are_found_at_once_and_fit(cash, price, lot, date):
    """An account compounded to 1e20 (a perturbed look-ahead test found one) buys more than 2**53
    lots, where a float step is many lots: the search must not walk them one step at a time (it
    hung for minutes), and what it buys must fit."""
    row = _row(HK, date)
    buf = np.zeros(NFEE)
    shares, fees = affordable_shares(cash, price, lot, row, buf)
    value = shares * price
    assert shares > 0 and value + fees <= cash and fees == order_fees(value, row, np.zeros(NFEE))
    assert np.array_equal(buf, _fees(value, row))
    # Beyond 2**53 the next count up is the next float, and float rounding of count x lot x price
    # makes "the largest count that fits" exact only to an ulp: what is left over is a lot or two,
    # or a few parts in 1e16 of the cash.
    assert cash - (value + fees) <= 1e-12 * cash + 2.02 * lot * price


def _fees(value, row):
    out = np.zeros(NFEE)
    order_fees(value, row, out)
    return out
