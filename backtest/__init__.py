"""dipflow: look-ahead-safe backtests of buy-the-dip flow strategies on HK-listed Chinese stocks.

Importing this package is cheap: numba kernels, vectorbt and plotting load only where used.
"""

__version__ = "0.1.0"
