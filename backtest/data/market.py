"""The two in-memory forms of market data.

`MarketData` is what a loader reads or the generator makes: every source on its own calendar.
`Panel` is what the engine consumes: one HK trading-day calendar x symbols, float64 arrays, built
by `backtest.data.align.align` under the timing rules of DESIGN §3.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PRICE_FIELDS = ("open", "high", "low", "close")
HK_REQUIRED = (*PRICE_FIELDS, "volume", "turnover")
HK_OPTIONAL = ("sb_net_buy", "board_lot")
SOUTHBOUND_LINKS = ("sh", "sz")
SOUTHBOUND_TOTAL = "total"  # the only column when a source publishes the two links summed
SYMBOL_COLUMNS = ("name", "board_lot", "adr_ticker", "adr_ratio")


@dataclass
class MarketData:
    """Raw inputs, each indexed by its own calendar's dates (tz-naive, normalised to midnight).

    hk:          field -> DataFrame (HK trading days x symbols); HK$ prices, shares, HK$ turnover.
                 Optional `sb_net_buy` is the per-stock southbound net buy (HK$) by CCASS record
                 date; optional `board_lot` overrides the static lot when lots change.
    southbound:  Stock Connect southbound trading days x ("sh", "sz"), or x ("total",) when only
                 the sum of the two links is published: aggregate net buy, HK$.
                 Only days southbound traded appear; closed days are absent, never zero.
    index_close: HK trading days; benchmark index level (e.g. Hang Seng Tech).
    adr_close:   US trading days x ADR tickers; USD closes.
    usdhkd:      FX dates; HK$ per US$ close.
    symbols:     index = HK symbol (str, e.g. "0700"); columns name, board_lot (int),
                 adr_ticker ("" if none), adr_ratio (HK shares per ADR; NaN if none).
    """

    hk: dict[str, pd.DataFrame]
    southbound: pd.DataFrame
    index_close: pd.Series
    adr_close: pd.DataFrame
    usdhkd: pd.Series
    symbols: pd.DataFrame
    index_name: str = "HSTECH"
    source: str = ""

    def fingerprint(self) -> str:
        """SHA-256 over every value and label, so a tear sheet names exactly the data it used."""
        h = hashlib.sha256()

        def add(obj: pd.DataFrame | pd.Series) -> None:
            h.update(pd.util.hash_pandas_object(obj, index=True).values.tobytes())
            cols = obj.columns if isinstance(obj, pd.DataFrame) else [obj.name]
            h.update("|".join(map(str, cols)).encode())

        for name in sorted(self.hk):
            h.update(name.encode())
            add(self.hk[name])
        for obj in (self.southbound, self.index_close, self.adr_close, self.usdhkd, self.symbols):
            add(obj)
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Panel:
    """Aligned market: HK trading days (rows) x symbols (columns).

    Row t of every array holds what is known by the HK open of bar t+1 (prices: at the close of t;
    ADR closes, FX and southbound flows: before the next open). See docs/timing.md.
    fields: (T, N) float64 in Fortran order (so `.T` is the kernels' symbol-major layout) — open, high, low, close, volume, turnover, board_lot, sb_net_buy,
            adr_close (USD), adr_premium, adr_staleness (weekdays since the ADR close used; close and
            premium are NaN once it exceeds max_adr_staleness),
            adr_overnight_hkd (HK$ per HK share: the ADR close between the HK close of t-1 and the
            HK open of t; known before the open of t).
    series: (T,) float64 — sb_net_buy (sh + sz, or the published total; NaN when Connect was
            closed), sb_net_buy_sh, sb_net_buy_sz (NaN when only the total exists), index_close, usdhkd.
    """

    dates: np.ndarray
    symbols: tuple[str, ...]
    fields: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    meta: pd.DataFrame
    index_name: str = "HSTECH"
    fingerprint: str = ""
    source: str = field(default="", compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dates), len(self.symbols)

    def frame(self, name: str) -> pd.DataFrame:
        """A field as a labelled DataFrame, for reports and tests."""
        return pd.DataFrame(self.fields[name], index=pd.DatetimeIndex(self.dates, name="date"),
                            columns=list(self.symbols))

    def series_frame(self) -> pd.DataFrame:
        """The market-wide series (index close, southbound flows, FX) as one DataFrame by date."""
        return pd.DataFrame(self.series, index=pd.DatetimeIndex(self.dates, name="date"))
