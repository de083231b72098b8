"""Hong Kong cost schedule: hand-computed fees for every item and both sides of every dated change.

Every expected number below is worked out by hand from the rate in docs/costs.md; the last tests
compare the numba kernel with an independent Decimal implementation on random orders.
"""

from __future__ import annotations

import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

import numba
import numpy as np
import pandas as pd
import pytest

from backtest import costs
from backtest.costs import (
    C_AFRC,
    C_COMM,
    C_COMM_MIN,
    C_FLAT,
    C_SETTLE,
    C_SETTLE_MAX,
    C_SETTLE_MIN,
    C_SFC,
    C_STAMP,
    C_TRADING,
    F_AFRC,
    F_COMM,
    F_FLAT,
    F_SETTLE,
    F_SFC,
    F_STAMP,
    F_TRADING,
    NCOST,
    NFEE,
    CostModel,
    cost_table,
    fees,
    order_fees,
)
from backtest.errors import ConfigError, UserError

HK = CostModel()


def fee(date: str, value: float, item: str, model: CostModel = HK) -> float:
    return fees(model, date, value)[item]


# ------------------------------------------------------------------------------- stamp duty
@pytest.mark.parametrize(
    "date, value, expected",
    [
        # 0.1 % until 2021-07-31
        ("2015-01-05", 38_020.0, 39.0),  # 38.02 -> 39
        ("2021-07-30", 38_020.0, 39.0),  # last trading day before the increase
        ("2021-07-31", 38_020.0, 39.0),
        # 0.13 % from 2021-08-01 (a Sunday; 2021-08-02 is the first trading day)
        ("2021-08-01", 38_020.0, 50.0),  # 49.426 -> 50
        ("2021-08-02", 38_020.0, 50.0),
        ("2023-11-16", 38_020.0, 50.0),
        # 0.1 % again from 2023-11-17
        ("2023-11-17", 38_020.0, 39.0),
        ("2026-01-02", 38_020.0, 39.0),
    ],
)
def test_stamp_duty_dated(date, value, expected):
    assert fee(date, value, "stamp") == expected


@pytest.mark.parametrize(
    "date, value, expected",
    [
        ("2024-03-01", 38_000.0, 38.0),  # exactly HK$38.00 stays 38
        ("2024-03-01", 38_000.01, 39.0),  # 38.00001 -> 39
        ("2024-03-01", 100.0, 1.0),  # 0.10 -> 1: a fraction of $1 counts as $1
        ("2022-06-01", 10_000.0, 13.0),  # 0.13 % of 10,000 = 13.00 exactly
        ("2022-06-01", 10_000.01, 14.0),  # 13.000013 -> 14
        ("2024-03-01", 1_234_567.0, 1235.0),  # 1,234.567 -> 1,235
        ("2019-06-03", 999.0, 1.0),  # 0.999 -> 1
    ],
)
def test_stamp_duty_rounds_up_to_whole_dollar(date, value, expected):
    assert fee(date, value, "stamp") == expected


# ------------------------------------------------------------------------------ trading fee
@pytest.mark.parametrize(
    "date, value, expected",
    [
        ("2022-12-30", 100_000.0, 5.00),  # 0.005 %
        ("2022-12-31", 100_000.0, 5.00),
        ("2023-01-01", 100_000.0, 5.65),  # 0.00565 %
        ("2023-01-03", 100_000.0, 5.65),
        ("2024-03-01", 38_020.0, 2.15),  # 2.14813 -> 2.15
        ("2021-09-01", 38_020.0, 1.90),  # 1.901 -> 1.90
        ("2024-03-01", 10_000.0, 0.57),  # 0.565 -> 0.57 (halves round up)
        ("2024-03-01", 1_000.0, 0.06),  # 0.0565 -> 0.06
    ],
)
def test_trading_fee(date, value, expected):
    assert fee(date, value, "trading") == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------- SFC levy
@pytest.mark.parametrize(
    "date, value, expected",
    [
        ("2005-12-19", 100_000.0, 5.00),  # 0.005 % (first day of the schedule)
        ("2006-11-30", 100_000.0, 5.00),
        ("2006-12-01", 100_000.0, 4.00),  # 0.004 %
        ("2010-09-30", 100_000.0, 4.00),
        ("2010-10-01", 100_000.0, 3.00),  # 0.003 %
        ("2014-10-31", 100_000.0, 3.00),
        ("2014-11-01", 100_000.0, 2.70),  # 0.0027 %
        ("2024-03-01", 100_000.0, 2.70),
        ("2024-03-01", 38_020.0, 1.03),  # 1.02654 -> 1.03
        ("2024-03-01", 10_000.0, 0.27),
        ("2024-03-01", 1_000.0, 0.03),  # 0.027 -> 0.03
    ],
)
def test_sfc_levy(date, value, expected):
    assert fee(date, value, "sfc") == pytest.approx(expected, abs=1e-12)


# -------------------------------------------------------------------------------- AFRC levy
@pytest.mark.parametrize(
    "date, value, expected",
    [
        ("2021-12-31", 1_000_000.0, 0.00),  # no FRC levy before 2022
        ("2022-01-01", 1_000_000.0, 1.50),  # 0.00015 %
        ("2022-01-03", 1_000_000.0, 1.50),
        ("2024-03-01", 38_020.0, 0.06),  # 0.05703 -> 0.06
        ("2024-03-01", 10_000.0, 0.02),  # 0.015 -> 0.02 (half up)
        ("2024-03-01", 3_000.0, 0.00),  # 0.0045 -> 0.00
    ],
)
def test_afrc_levy(date, value, expected):
    assert fee(date, value, "afrc") == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------- settlement fee
@pytest.mark.parametrize(
    "date, value, expected",
    [
        # 0.002 %, min HK$2, max HK$100 per side
        ("2024-03-01", 38_020.0, 2.00),  # 0.7604 -> minimum 2
        ("2024-03-01", 100_000.0, 2.00),  # exactly 2.00
        ("2024-03-01", 200_000.0, 4.00),  # between min and max
        ("2024-03-01", 123_456.0, 2.47),  # 2.46912 -> 2.47
        ("2024-03-01", 5_000_000.0, 100.00),  # exactly 100
        ("2024-03-01", 10_000_000.0, 100.00),  # 200 -> maximum 100
        ("2025-06-27", 38_020.0, 2.00),  # last trading day of the old structure
        ("2025-06-29", 10_000_000.0, 100.00),
        # 0.0042 %, no minimum, no maximum from 2025-06-30
        ("2025-06-30", 38_020.0, 1.60),  # 1.59684 -> 1.60, below the old minimum
        ("2025-06-30", 10_000_000.0, 420.00),  # above the old maximum
        ("2025-07-02", 1_000.0, 0.04),  # 0.042 -> 0.04
        ("2026-01-02", 200_000.0, 8.40),
    ],
)
def test_settlement_fee(date, value, expected):
    assert fee(date, value, "settle") == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------- commission
@pytest.mark.parametrize(
    "bps, minimum, value, expected",
    [
        (3.0, 50.0, 38_020.0, 50.00),  # 11.406 < 50 -> minimum
        (3.0, 50.0, 1_000_000.0, 300.00),  # above the minimum
        (3.0, 0.0, 38_020.0, 11.41),  # 11.406 -> 11.41
        (3.0, 3.0, 38_020.0, 11.41),
        (0.0, 5.0, 38_020.0, 5.00),  # zero rate + minimum = fixed fee per order
        (0.0, 0.0, 38_020.0, 0.00),
        (25.0, 100.0, 40_000.0, 100.00),  # exactly at the minimum
    ],
)
def test_commission(bps, minimum, value, expected):
    model = CostModel(commission_bps=bps, commission_min=minimum)
    assert fee("2024-03-01", value, "commission", model) == pytest.approx(expected, abs=1e-12)


def test_commission_is_not_dated():
    model = CostModel(commission_bps=3.0, commission_min=50.0)
    assert fee("2006-01-03", 1_000_000.0, "commission", model) == 300.0
    assert fee("2026-01-02", 1_000_000.0, "commission", model) == 300.0


# ------------------------------------------------------------------------- worked examples
def test_worked_example_2024_03_01():
    """docs/costs.md: 100 shares at HK$380.20 (V = 38,020) on 2024-03-01, commission 3 bps min $3."""
    f = fees(CostModel(commission_bps=3.0, commission_min=3.0), "2024-03-01", 100 * 380.20)
    assert f["stamp"] == 39.0
    assert f["trading"] == pytest.approx(2.15)
    assert f["sfc"] == pytest.approx(1.03)
    assert f["afrc"] == pytest.approx(0.06)
    assert f["settle"] == pytest.approx(2.00)
    assert f["commission"] == pytest.approx(11.41)
    assert f["flat"] == 0.0
    assert f["total"] == pytest.approx(55.65)


def test_worked_example_2021_09_01():
    f = fees(CostModel(commission_bps=3.0, commission_min=3.0), "2021-09-01", 100 * 380.20)
    assert f["stamp"] == 50.0
    assert f["trading"] == pytest.approx(1.90)
    assert f["sfc"] == pytest.approx(1.03)
    assert f["afrc"] == 0.0
    assert f["settle"] == pytest.approx(2.00)
    assert f["commission"] == pytest.approx(11.41)
    assert f["total"] == pytest.approx(66.34)


def test_worked_example_2025_07_02():
    f = fees(CostModel(), "2025-07-02", 100 * 380.20)
    assert f["settle"] == pytest.approx(1.60)
    assert f["total"] == pytest.approx(39 + 2.15 + 1.03 + 0.06 + 1.60)


def test_total_is_sum_of_components():
    f = fees(CostModel(commission_bps=2.5, commission_min=15.0), "2023-05-02", 987_654.32)
    assert f["total"] == pytest.approx(sum(v for k, v in f.items() if k != "total"), abs=1e-9)


# ------------------------------------------------------------------------------- flat model
def test_flat_model_only_sets_flat_column():
    dates = np.array(["1999-01-04", "2021-08-02", "2025-07-02"], dtype="datetime64[D]")
    table = cost_table(CostModel(kind="flat", flat_pct=0.1), dates)
    assert table.shape == (3, NCOST)
    assert np.all(table[:, C_FLAT] == 0.001)
    others = np.delete(table, C_FLAT, axis=1)
    assert np.all(others == 0.0)


def test_flat_model_fees():
    f = fees(CostModel(kind="flat", flat_pct=0.1), "2024-03-01", 38_020.0)
    assert f["flat"] == pytest.approx(38.02, rel=1e-15)  # no rounding (vectorbt parity)
    assert f["total"] == pytest.approx(38.02, rel=1e-15)
    for k in ("stamp", "trading", "sfc", "afrc", "settle", "commission"):
        assert f[k] == 0.0
    f = fees(CostModel(kind="flat", flat_pct=0.25), "2024-03-01", 12_345.67)
    assert f["flat"] == pytest.approx(12_345.67 * 0.0025, rel=1e-15)


def test_flat_zero_costs_nothing():
    assert fees(CostModel(kind="flat"), "2024-03-01", 1e6)["total"] == 0.0


# ------------------------------------------------------------------------------- cost_table
def test_column_constants():
    cols = [C_STAMP, C_TRADING, C_SFC, C_AFRC, C_SETTLE, C_SETTLE_MIN, C_SETTLE_MAX, C_COMM,
            C_COMM_MIN, C_FLAT]
    assert sorted(cols) == list(range(NCOST))
    assert len(costs.COST_COLUMNS) == NCOST
    fcols = [F_STAMP, F_TRADING, F_SFC, F_AFRC, F_SETTLE, F_COMM, F_FLAT]
    assert sorted(fcols) == list(range(NFEE))
    assert len(costs.FEE_NAMES) == NFEE


def test_cost_table_rows_follow_dates():
    dates = np.array(
        ["2020-06-01", "2021-08-02", "2022-01-03", "2023-01-03", "2023-11-17", "2025-06-30"],
        dtype="datetime64[D]",
    )
    t = cost_table(CostModel(commission_bps=3.0, commission_min=50.0), dates)
    assert t.shape == (6, NCOST)
    assert t.dtype == np.float64
    assert t.flags.c_contiguous
    np.testing.assert_allclose(t[:, C_STAMP], [0.001, 0.0013, 0.0013, 0.0013, 0.001, 0.001])
    np.testing.assert_allclose(
        t[:, C_TRADING], [5e-5, 5e-5, 5e-5, 5.65e-5, 5.65e-5, 5.65e-5]
    )
    np.testing.assert_allclose(t[:, C_SFC], 2.7e-5)
    np.testing.assert_allclose(t[:, C_AFRC], [0, 0, 1.5e-6, 1.5e-6, 1.5e-6, 1.5e-6])
    np.testing.assert_allclose(t[:, C_SETTLE], [2e-5] * 5 + [4.2e-5])
    np.testing.assert_array_equal(t[:, C_SETTLE_MIN], [2.0] * 5 + [0.0])
    np.testing.assert_array_equal(t[:, C_SETTLE_MAX], [100.0] * 5 + [0.0])
    np.testing.assert_allclose(t[:, C_COMM], 3e-4)
    np.testing.assert_array_equal(t[:, C_COMM_MIN], 50.0)
    np.testing.assert_array_equal(t[:, C_FLAT], 0.0)


def test_cost_table_unsorted_and_other_units():
    ns = pd.DatetimeIndex(["2023-11-17", "2021-08-02"]).values  # datetime64[ns], not sorted
    t = cost_table(HK, ns)
    np.testing.assert_allclose(t[:, C_STAMP], [0.001, 0.0013])


def test_cost_table_empty():
    t = cost_table(HK, np.array([], dtype="datetime64[D]"))
    assert t.shape == (0, NCOST)


def test_cost_table_rejects_nat_and_2d():
    with pytest.raises(ValueError, match="NaT"):
        cost_table(HK, np.array(["2024-03-01", "NaT"], dtype="datetime64[D]"))
    with pytest.raises(ValueError, match="1-D"):
        cost_table(HK, np.array([["2024-03-01"]], dtype="datetime64[D]"))


def test_dates_before_schedule_raise():
    assert fee("2005-12-19", 100_000.0, "sfc") == 5.0
    with pytest.raises(UserError, match="2005-12-19"):
        cost_table(HK, np.array(["2005-12-16", "2024-03-01"], dtype="datetime64[D]"))


def test_fees_accepts_date_types():
    expected = fees(HK, "2024-03-01", 38_020.0)
    for d in (datetime.date(2024, 3, 1), pd.Timestamp("2024-03-01"),
              np.datetime64("2024-03-01"), np.datetime64("2024-03-01T09:30")):
        assert fees(HK, d, 38_020.0) == expected


# ------------------------------------------------------------------------------ CostModel
@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "HK"},
        {"kind": "bps"},
        {"commission_bps": -1.0},
        {"commission_min": float("nan")},
        {"commission_bps": "3"},
        {"kind": "flat", "flat_pct": float("inf")},
        {"kind": "flat", "flat_pct": 0.1, "commission_bps": 3.0},  # flat means flat
        {"kind": "hk", "flat_pct": 0.1},
    ],
)
def test_cost_model_rejects(kwargs):
    with pytest.raises(ConfigError):
        CostModel(**kwargs)


def test_cost_model_is_frozen_and_hashable():
    m = CostModel(commission_bps=3.0, commission_min=50.0)
    with pytest.raises(AttributeError):
        m.kind = "flat"  # type: ignore[misc]
    assert hash(m) == hash(CostModel(commission_bps=3.0, commission_min=50.0))


# ----------------------------------------------------------------------------- numba kernel
def test_order_fees_overwrites_out_and_returns_total():
    row = cost_table(CostModel(commission_bps=3.0), np.array(["2024-03-01"], "datetime64[D]"))[0]
    out = np.full(NFEE, 123.0)
    total = order_fees(38_020.0, row, out)
    np.testing.assert_allclose(out, [39.0, 2.15, 1.03, 0.06, 2.0, 11.41, 0.0])
    assert total == pytest.approx(out.sum())


def test_order_fees_non_positive_value_costs_nothing():
    row = cost_table(CostModel(commission_min=50.0), np.array(["2024-03-01"], "datetime64[D]"))[0]
    out = np.full(NFEE, 7.0)
    assert order_fees(0.0, row, out) == 0.0
    assert np.all(out == 0.0)


@numba.njit
def _charge_all(values, table, bar):
    out = np.empty(NFEE)
    total = 0.0
    for i in range(values.shape[0]):
        total += order_fees(values[i], table[bar[i]], out)
    return total


def test_order_fees_callable_from_a_kernel():
    dates = np.array(["2021-09-01", "2024-03-01"], dtype="datetime64[D]")
    table = cost_table(HK, dates)
    total = _charge_all(np.array([38_020.0, 38_020.0]), table, np.array([0, 1]))
    assert total == pytest.approx(54.93 + 44.24)


# ----------------------------------------------------------------- independent Decimal oracle
# Rates typed in again from docs/costs.md (not imported), so a slip in either place shows.
_ORACLE = [  # (from, stamp %, trading %, sfc %, afrc %, settle %, settle min, settle max)
    ("2005-12-19", "0.1", "0.005", "0.005", "0", "0.002", "2", "100"),
    ("2006-12-01", "0.1", "0.005", "0.004", "0", "0.002", "2", "100"),
    ("2010-10-01", "0.1", "0.005", "0.003", "0", "0.002", "2", "100"),
    ("2014-11-01", "0.1", "0.005", "0.0027", "0", "0.002", "2", "100"),
    ("2021-08-01", "0.13", "0.005", "0.0027", "0", "0.002", "2", "100"),
    ("2022-01-01", "0.13", "0.005", "0.0027", "0.00015", "0.002", "2", "100"),
    ("2023-01-01", "0.13", "0.00565", "0.0027", "0.00015", "0.002", "2", "100"),
    ("2023-11-17", "0.1", "0.00565", "0.0027", "0.00015", "0.002", "2", "100"),
    ("2025-06-30", "0.1", "0.00565", "0.0027", "0.00015", "0.0042", None, None),
]
CENT = Decimal("0.01")


def _oracle(date: str, value: Decimal, bps: Decimal, cmin: Decimal) -> dict[str, Decimal]:
    row = [r for r in _ORACLE if r[0] <= date][-1]
    pct = [Decimal(x) / 100 for x in row[1:6]]
    stamp = (value * pct[0]).to_integral_value(ROUND_CEILING)
    out = {"stamp": stamp}
    for name, rate in zip(("trading", "sfc", "afrc"), pct[1:4]):
        out[name] = (value * rate).quantize(CENT, ROUND_HALF_UP)
    settle = value * pct[4]
    if row[6] is not None:
        settle = min(max(settle, Decimal(row[6])), Decimal(row[7]))
    out["settle"] = settle.quantize(CENT, ROUND_HALF_UP)
    out["commission"] = max(value * bps / 10_000, cmin).quantize(CENT, ROUND_HALF_UP)
    return out


def test_kernel_matches_decimal_oracle_on_random_orders():
    rng = np.random.default_rng(20240301)
    days = pd.bdate_range("2005-12-19", "2026-12-31")
    n = 4000
    picks = rng.integers(0, len(days), n)
    # Board lots x prices on HK tick sizes: cents of value from HK$10 to HK$50m, log-uniform.
    cents = np.exp(rng.uniform(np.log(1_000), np.log(5_000_000_000), n)).astype(np.int64)
    bps = Decimal("2.5")
    cmin = Decimal("15")
    model = CostModel(commission_bps=2.5, commission_min=15.0)
    table = cost_table(model, days.values[picks])
    out = np.empty(NFEE)
    for i in range(n):
        value = Decimal(int(cents[i])) / 100
        got_total = order_fees(float(value), table[i], out)
        want = _oracle(str(days[picks[i]].date()), value, bps, cmin)
        for name, d in want.items():
            got = out[costs.FEE_NAMES.index(name)]
            assert got == pytest.approx(float(d), abs=1e-9), (name, str(days[picks[i]]), value)
        assert got_total == pytest.approx(float(sum(want.values())), abs=1e-8)


def test_kernel_matches_oracle_on_exact_ties():
    """Values whose fees land exactly on a half cent or a whole dollar."""
    cases = [
        ("2024-03-01", "10000"),  # trading 0.565, afrc 0.015
        ("2024-03-01", "30000"),  # afrc 0.045, sfc 0.81
        ("2024-03-01", "50000"),  # sfc 1.35, trading 2.825
        ("2022-06-01", "50000"),  # stamp 65 exactly, trading 2.5
        ("2021-08-02", "1000000"),  # stamp 1300 exactly
        ("2025-07-02", "12500"),  # settle 0.525
        ("2025-07-02", "37500"),  # settle 1.575
    ]
    for date, v in cases:
        value = Decimal(v)
        f = fees(CostModel(commission_bps=3.0), date, float(value))
        for name, d in _oracle(date, value, Decimal(3), Decimal(0)).items():
            assert f[name] == pytest.approx(float(d), abs=1e-9), (date, v, name)
