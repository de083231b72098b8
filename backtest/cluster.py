"""Sweeps on Dask: the same chunks as the local engine, sent to a cluster.

`--scheduler ADDRESS` uses an existing cluster; otherwise a `LocalCluster` of `--workers`
processes (one numba thread each) is started for the run. Inputs are scattered once; each chunk
is a task, retried elsewhere if its worker dies (Dask reschedules the tasks of a lost worker),
and written by the caller exactly once, as it completes.
"""

from __future__ import annotations

from collections.abc import Iterator


def run_on_dask(task, inputs, sp, chunks: list[tuple[int, int, int]], workers: int | None,
                scheduler: str | None) -> Iterator[tuple[int, tuple]]:
    """Yield (chunk id, task(inputs, sp, start, stop, 1)) as chunks complete, in completion order
    (`task` is `backtest.sweep.run_chunk`, passed in so this module does not import the sweep)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        from backtest.errors import UserError

        raise UserError("the dask engine needs dask.distributed: pip install 'dask[distributed]'") from None
    if not chunks:
        return
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        inp, plan = client.scatter([inputs, sp], broadcast=True)
        futures = {client.submit(task, inp, plan, start, stop, 1, key=f"dipflow-chunk-{i}-{start}",
                                 retries=2, pure=False): i for i, start, stop in chunks}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
