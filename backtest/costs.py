"""Hong Kong cash-equity transaction costs as a dated schedule, in arrays a numba kernel reads.

Two halves, split like the rest of the engine (arrays in, arrays out):

* `cost_table(model, dates)` (plain Python, run once per backtest) turns a `CostModel` and the bar
  dates into a float64 table of shape (T, NCOST): row t holds every rate, minimum and maximum in
  force on bar t's date. Columns are named by the module constants `C_*`.
* `order_fees(value, row, out)` (numba, called inside the simulation loop for every fill) charges
  one order of trade value `value` HK$ against one row of that table, writes each component into
  `out` (indices `F_*`) and returns the total. Buys and sells pay the same fees (HK stamp duty is
  charged on both the bought and the sold note).

`fees(model, date, value)` wraps both for docs, tests and interactive checks.

Rates, rounding, effective dates and sources are in docs/costs.md. Summary per side, on value V:

=========  =================================================  ==================================
item       rate                                               rounding
=========  =================================================  ==================================
stamp      0.1 % ; 0.13 % from 2021-08-01 ; 0.1 % from         up to the whole HK$ (a fraction of
           2023-11-17                                         $1 counts as $1)
trading    0.005 % ; 0.00565 % from 2023-01-01                 nearest cent, half up
SFC levy   0.005 % ; 0.004 % from 2006-12-01 ; 0.003 % from    nearest cent, half up
           2010-10-01 ; 0.0027 % from 2014-11-01
AFRC levy  0 ; 0.00015 % from 2022-01-01                       nearest cent, half up
settle     0.002 % min HK$2 max HK$100 ; 0.0042 % without      nearest cent, half up
           min/max from 2025-06-30
commission commission_bps, at least commission_min per order   nearest cent, half up
flat       flat_pct % of V (kind "flat" only)                  none (matches vectorbt `fees`)
=========  =================================================  ==================================

The schedule starts on 2005-12-19 (the day the investor compensation levy was suspended); dates
before that raise `UserError`. Dates after the last known change use the latest rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

import backtest.kernels  # noqa: F401  sets numba's cache directory before the @njit below
from backtest.errors import ConfigError, UserError

# --------------------------------------------------------------------------------------------
# Cost-table columns (one row per bar date). Rates are fractions of trade value (0.001 = 0.1 %);
# minima/maxima are HK$ per order; 0.0 in C_SETTLE_MIN / C_SETTLE_MAX means "no minimum/maximum".
C_STAMP = 0  # stamp duty rate, charged on each side, rounded up to the whole HK$
C_TRADING = 1  # HKEX (SEHK) trading fee rate
C_SFC = 2  # SFC transaction levy rate
C_AFRC = 3  # FRC / AFRC transaction levy rate (0 before 2022-01-01)
C_SETTLE = 4  # HKSCC stock settlement fee rate
C_SETTLE_MIN = 5  # settlement fee minimum per order, HK$ (0 = none)
C_SETTLE_MAX = 6  # settlement fee maximum per order, HK$ (0 = none)
C_COMM = 7  # broker commission rate (commission_bps / 10_000)
C_COMM_MIN = 8  # broker commission minimum per order, HK$
C_FLAT = 9  # flat cost rate (flat_pct / 100), kind "flat" only
NCOST = 10
COST_COLUMNS = (
    "stamp",
    "trading",
    "sfc",
    "afrc",
    "settle",
    "settle_min",
    "settle_max",
    "commission",
    "commission_min",
    "flat",
)

# Fee components written by `order_fees` into `out`.
F_STAMP = 0
F_TRADING = 1
F_SFC = 2
F_AFRC = 3
F_SETTLE = 4
F_COMM = 5
F_FLAT = 6
NFEE = 7
FEE_NAMES = ("stamp", "trading", "sfc", "afrc", "settle", "commission", "flat")

KINDS = ("hk", "flat")

# First date the HK schedule covers. Before it the investor compensation levy (0.002 % per side)
# was still collected; it has been suspended since 2005-12-19 and is not modelled.
SCHEDULE_START = np.datetime64("2005-12-19", "D")


def _pct(x: float) -> float:
    return x / 100.0


# Column -> ((effective-from date, value), ...), oldest first; the first entry starts on
# SCHEDULE_START. Each value holds from its date (inclusive) until the next entry's date.
# Sources and confidence: docs/costs.md.
HK_SCHEDULE: dict[int, tuple[tuple[str, float], ...]] = {
    # Stamp Duty Ordinance (Cap. 117) First Schedule head 2(1), per bought note and sold note.
    C_STAMP: (
        ("2005-12-19", _pct(0.1)),
        ("2021-08-01", _pct(0.13)),  # Revenue (Stamp Duty) Ordinance 2021
        ("2023-11-17", _pct(0.1)),  # Stamp Duty (Amendment) (Stock Transfers) Ordinance 2023
    ),
    # SEHK trading fee; the HK$0.50 per-trade trading tariff (to 2022-12-31) is not modelled.
    C_TRADING: (
        ("2005-12-19", _pct(0.005)),
        ("2023-01-01", _pct(0.00565)),
    ),
    # Securities and Futures (Levy) Order (Cap. 571Z) and its amendment orders.
    C_SFC: (
        ("2005-12-19", _pct(0.005)),
        ("2006-12-01", _pct(0.004)),
        ("2010-10-01", _pct(0.003)),
        ("2014-11-01", _pct(0.0027)),
    ),
    # Financial Reporting Council Ordinance (Cap. 588) Part 4A / Schedule 7 (FRC, renamed AFRC).
    C_AFRC: (
        ("2005-12-19", 0.0),
        ("2022-01-01", _pct(0.00015)),
    ),
    # HKSCC CCASS Operational Procedures section 21, stock settlement fee for Exchange trades.
    C_SETTLE: (
        ("2005-12-19", _pct(0.002)),
        ("2025-06-30", _pct(0.0042)),
    ),
    C_SETTLE_MIN: (
        ("2005-12-19", 2.0),
        ("2025-06-30", 0.0),
    ),
    C_SETTLE_MAX: (
        ("2005-12-19", 100.0),
        ("2025-06-30", 0.0),
    ),
}


@dataclass(frozen=True)
class CostModel:
    """What an order costs.

    kind:            "hk" = the dated Hong Kong schedule plus broker commission;
                     "flat" = `flat_pct` percent of trade value and nothing else (for comparisons
                     with vectorbt, whose `fees=flat_pct / 100`).
    flat_pct:        percent of trade value per order (0.1 means 0.1 %), kind "flat" only.
    commission_bps:  broker commission in basis points of trade value (3 means 0.03 %), kind "hk".
    commission_min:  broker commission minimum, HK$ per order, kind "hk". With commission_bps = 0
                     it is a fixed fee per order.
    """

    kind: str = "hk"
    flat_pct: float = 0.0
    commission_bps: float = 0.0
    commission_min: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"costs.model must be one of {KINDS}, got {self.kind!r}")
        for name in ("flat_pct", "commission_bps", "commission_min"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"costs.{name} must be a number, got {v!r}")
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"costs.{name} must be a finite number >= 0, got {v!r}")
        if self.kind == "flat" and (self.commission_bps or self.commission_min):
            raise ConfigError(
                "costs.commission_bps / costs.commission_min apply to costs.model = 'hk' only; "
                "with costs.model = 'flat' put the whole cost into costs.flat_pct"
            )
        if self.kind == "hk" and self.flat_pct:
            raise ConfigError("costs.flat_pct applies to costs.model = 'flat' only; set costs.model = 'flat'")


def _as_days(dates) -> np.ndarray:
    d = np.asarray(dates)
    if d.ndim != 1:
        raise ValueError(f"dates must be 1-D, got shape {d.shape}")
    if not np.issubdtype(d.dtype, np.datetime64):
        d = d.astype("datetime64[D]")
    d = d.astype("datetime64[D]")
    if np.isnat(d).any():
        raise ValueError("dates contain NaT")
    return d


def cost_table(model: CostModel, dates: np.ndarray) -> np.ndarray:
    """Cost parameters in force on each date: float64 array (len(dates), NCOST), columns `C_*`.

    The simulator charges a fill on bar t with row t (the fill's trade date picks the rates).
    """
    d = _as_days(dates)
    table = np.zeros((d.shape[0], NCOST), dtype=np.float64)
    if model.kind == "flat":
        table[:, C_FLAT] = model.flat_pct / 100.0
        return table
    if d.shape[0] and d.min() < SCHEDULE_START:
        raise UserError(
            f"the Hong Kong cost schedule starts on {SCHEDULE_START}; the data begins on "
            f"{d.min()}. Trim the data or set costs.model = 'flat'"
        )
    for col, steps in HK_SCHEDULE.items():
        starts = np.array([s for s, _ in steps], dtype="datetime64[D]")
        values = np.array([v for _, v in steps], dtype=np.float64)
        table[:, col] = values[np.searchsorted(starts, d, side="right") - 1]
    table[:, C_COMM] = model.commission_bps / 10_000.0
    table[:, C_COMM_MIN] = model.commission_min
    return table


# Float products like 38000 * 0.001 can land a hair above or below the exact decimal; these
# tolerances (far below any real fraction of a cent or dollar) keep exact amounts exact.
_EPS = 1e-7


@numba.njit(cache=True)
def _round_cent(x):
    """Nearest cent, halves up (0.565 -> 0.57). np.floor, not math.floor: numba's math.floor
    returns an int64, which wraps for amounts beyond ~9e16 HK$ (an account compounded to 1e20)."""
    return np.floor(x * 100.0 + 0.5 + _EPS) / 100.0


@numba.njit(cache=True)
def _ceil_dollar(x):
    """Up to the whole HK$; an exact whole dollar stays (np.ceil: see `_round_cent`)."""
    return np.ceil(x - _EPS)


@numba.njit(cache=True, inline="always")
def flat_only(row):
    """Row `row` charges the flat rate and nothing else (every row of a "flat" cost table)."""
    for c in range(NCOST):
        if c != C_FLAT and row[c] != 0.0:
            return False
    return True


@numba.njit(cache=True, _nrt=False)
def order_fees(value, row, out):
    """Charge one order of trade value `value` (HK$) against cost-table row `row`.

    Writes each component into `out[F_*]` (length NFEE) and returns their sum. The same for buys
    and sells. A non-positive value costs nothing (all components 0). A flat row costs one
    multiply; components whose rates are 0 are left at 0 without rounding (the same result, as
    the rounding of 0 is 0).
    """
    for i in range(NFEE):
        out[i] = 0.0
    if not value > 0.0:
        return 0.0
    if row[C_FLAT] > 0.0 and flat_only(row):
        out[F_FLAT] = value * row[C_FLAT]  # the sum below of six zeros and this, exactly
        return out[F_FLAT]
    if row[C_STAMP] > 0.0:
        out[F_STAMP] = _ceil_dollar(value * row[C_STAMP])
    if row[C_TRADING] > 0.0:
        out[F_TRADING] = _round_cent(value * row[C_TRADING])
    if row[C_SFC] > 0.0:
        out[F_SFC] = _round_cent(value * row[C_SFC])
    if row[C_AFRC] > 0.0:
        out[F_AFRC] = _round_cent(value * row[C_AFRC])
    settle = value * row[C_SETTLE]
    if row[C_SETTLE_MIN] > 0.0 and settle < row[C_SETTLE_MIN]:
        settle = row[C_SETTLE_MIN]
    if row[C_SETTLE_MAX] > 0.0 and settle > row[C_SETTLE_MAX]:
        settle = row[C_SETTLE_MAX]
    out[F_SETTLE] = _round_cent(settle)
    comm = value * row[C_COMM]
    if comm < row[C_COMM_MIN]:
        comm = row[C_COMM_MIN]
    out[F_COMM] = _round_cent(comm)
    out[F_FLAT] = value * row[C_FLAT]
    total = 0.0
    for i in range(NFEE):
        total += out[i]
    return total


def fees(model: CostModel, date, value: float) -> dict[str, float]:
    """Fees for one order on one date: {"stamp", "trading", "sfc", "afrc", "settle",
    "commission", "flat", "total"} in HK$. `date` is anything numpy reads as a day
    ("2024-03-01", datetime.date, pandas Timestamp, numpy datetime64)."""
    if hasattr(date, "to_datetime64"):  # pandas Timestamp
        date = date.to_datetime64()
    day = np.datetime64(date, "D")
    row = cost_table(model, np.array([day]))[0]
    out = np.zeros(NFEE, dtype=np.float64)
    total = order_fees(float(value), row, out)
    result = {name: float(out[i]) for i, name in enumerate(FEE_NAMES)}
    result["total"] = float(total)
    return result
