"""The sweep's per-symbol table is streamed to by_symbol.parquet chunk by chunk (docs/performance.md):
the chunks' raw per-symbol arrays, each symbol rebased to its listing, one row group per chunk, never all in memory."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from backtest.data.align import align
from backtest.kernels.metrics import METRIC_NAMES
from backtest.metrics import first_tradable
from backtest.pipeline import load_market
from backtest.ranking import rebase_symbols


def test_by_symbol_is_streamed_from_the_chunks_unchanged(shared_sweep):
    cfg, res = shared_sweep
    chunks = sorted((res.out_dir / "chunks").glob("chunk_*.npz"))
    assert len(chunks) == -(-res.grid.size // cfg.sweep.chunk_size) > 1
    assert pq.ParquetFile(res.by_symbol_path).num_row_groups == len(chunks)
    raw = np.concatenate([np.load(f)["per_symbol"] for f in chunks])  # (P, N, M), the kernel's output
    n_p, n_s, _ = raw.shape
    panel = align(load_market(cfg))
    whole = pd.DataFrame(raw.reshape(n_p * n_s, -1), columns=list(METRIC_NAMES))
    whole.insert(0, "symbol", np.tile(np.asarray(panel.symbols, dtype=object), n_p))
    whole.insert(0, "combo", np.repeat(np.arange(n_p), n_s))
    whole["trades"] = whole["trades"].astype(np.int64)
    want = rebase_symbols(whole, first_tradable(panel.fields["close"]), panel.dates).reset_index(drop=True)
    got = res.by_symbol  # the same rows, rebased chunk by chunk
    assert list(got.columns) == ["combo", "symbol", *METRIC_NAMES]
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["trades"].dtype == np.int64
