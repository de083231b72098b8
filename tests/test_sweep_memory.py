"""The sweep's per-symbol table is streamed to by_symbol.parquet chunk by chunk (docs/performance.md):
the same rows as the chunks' raw per-symbol arrays, one row group per chunk, never all in memory."""

import numpy as np
import pyarrow.parquet as pq

from backtest.kernels.metrics import METRIC_NAMES
from backtest.sweep import run_sweep
from test_sweep import _config


def test_by_symbol_is_streamed_from_the_chunks_unchanged(tmp_path):
    cfg = _config(tmp_path, "dip = [0.03, 0.06, 0.09]\nflow_z = [0.5, 1.5]\n", chunk=4)
    res = run_sweep(cfg, tmp_path / "out", progress=False)
    chunks = sorted((tmp_path / "out" / "chunks").glob("chunk_*.npz"))
    assert len(chunks) == 2 and pq.ParquetFile(res.by_symbol_path).num_row_groups == 2
    raw = np.concatenate([np.load(f)["per_symbol"] for f in chunks])  # (P, N, M), the kernel's output
    n_p, n_s, _ = raw.shape
    got = res.by_symbol
    assert list(got.columns) == ["combo", "symbol", *METRIC_NAMES] and len(got) == n_p * n_s
    assert got["combo"].tolist() == np.repeat(np.arange(n_p), n_s).tolist()
    assert got["symbol"].tolist() == got["symbol"].tolist()[:n_s] * n_p
    flat = raw.reshape(n_p * n_s, -1)
    for j, name in enumerate(METRIC_NAMES):
        want = flat[:, j].astype(np.int64) if name == "trades" else flat[:, j]
        np.testing.assert_array_equal(got[name].to_numpy(), want, err_msg=name)
    assert got["trades"].dtype == np.int64
