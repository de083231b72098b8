"""What a sweep keeps in memory and what it leaves on disk (docs/sweeps.md, docs/performance.md):
block sums memory-mapped from chunks/block_sums.npy, equal to the chunk files' own; results.parquet
written in row groups, equal to the table; automatic chunk sizes."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import backtest.sweep as S
from backtest.sweep import auto_chunk, run_sweep, write_results
from test_sweep import _config


def test_block_sums_are_the_chunks_sums_memory_mapped_and_results_parquet_is_the_table(tmp_path, monkeypatch):
    cfg = _config(tmp_path, 'dip = [0.03, 0.06, 0.09]\nflow_z = [0.5, 1.5]\n"exits.max_hold" = [0, 4]\n', chunk=5)
    res = run_sweep(cfg, tmp_path / "out", workers=1, progress=False)
    chunks = sorted((tmp_path / "out" / "chunks").glob("chunk_*.npz"))
    assert len(chunks) == 3
    fine = np.concatenate([np.load(f)["sums"] for f in chunks])  # (P, S', 5), as the kernel wrote them
    assert isinstance(res.fine_sums, np.memmap) and not res.fine_sums.flags.writeable
    assert res.fine_sums.tobytes() == fine.tobytes() and res.fine_sums.shape == fine.shape
    m = fine.shape[1] // cfg.sweep.blocks
    want = fine.reshape(len(fine), cfg.sweep.blocks, m, 5).sum(axis=2)
    assert res.sums.shape == want.shape and np.asarray(res.sums).tobytes() == want.tobytes()
    monkeypatch.setattr(S, "RESULT_ROWS", 5)
    write_results(res)
    f = pq.ParquetFile(tmp_path / "out" / "results.parquet")
    assert f.num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "results.parquet"), res.table, check_exact=True)
    back = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(back.columns) == list(res.table.columns) and len(back) == 12


def test_automatic_chunks_hold_enough_work_and_bounded_memory():
    assert auto_chunk(500, 2458, 25) >= 500  # the reference sweep (~3e7 cells): one chunk, not 20
    assert auto_chunk(50_000, 2458, 25) == 2500  # P / 20
    assert auto_chunk(1_000_000, 2458, 25) == 5000  # at most 5,000 (memory per chunk)
    assert auto_chunk(10, 100_000, 1_000) == 16  # at least 16
    assert auto_chunk(200_000, 10, 10) == 5000
