"""`python -m backtest data import SPEC --out DIR`: vendor files -> a validated dataset (docs/data.md)."""

from backtest.data.importers.build import ImportReport, import_dataset

__all__ = ["import_dataset", "ImportReport"]
