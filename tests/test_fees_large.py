"""`order_fees` on amounts far beyond any real order (an account compounded to 1e20 by a perturbed
look-ahead run, or a sweep of a runaway strategy): every component stays the schedule's, against
tests/oracle_sim.py's exact decimal fees. numba's math.floor / math.ceil return an int64, which
wrapped to large negative fees once value x rate x 100 passed 2**63 (commission from ~3e20 HK$)."""

import numpy as np
from hypothesis import given, settings, strategies as st

from backtest.costs import NFEE, CostModel, cost_table, order_fees
from tests import oracle_sim as ref


@settings(max_examples=200, deadline=None)
@given(value=st.floats(1e12, 1e24), bps=st.floats(0.0, 30.0), minimum=st.floats(0.0, 200.0),
       day=st.sampled_from(["2016-06-01", "2021-09-01", "2024-03-01", "2025-08-01"]))
def test_huge_orders_are_charged_the_schedule(value, bps, minimum, day):
    row = cost_table(CostModel(kind="hk", commission_bps=bps, commission_min=minimum),
                     np.array([np.datetime64(day, "D")]))[0]
    out = np.zeros(NFEE)
    total = order_fees(value, row, out)
    want = ref.Costs("hk", 0.0, bps, minimum).fees(value, day)
    # A float product of this size is off by an ulp, which can move the stamp duty's rounding up by
    # a dollar and a cent rounding by a cent: the components agree to that and to float precision.
    np.testing.assert_allclose(out, [want[k] for k in ref.FEE_KINDS], rtol=1e-12, atol=1.01)
    assert total >= 0.0 and total == sum(out)
