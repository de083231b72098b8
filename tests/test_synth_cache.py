"""The on-disk cache of the synthetic market (backtest/data/synth_cache.py): a cached market is
bit-identical to a freshly generated one, and any doubt regenerates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.data import synth, synth_cache
from backtest.data.market import MarketData


def _frames(md: MarketData) -> dict:
    out = {f"hk.{k}": v for k, v in md.hk.items()}
    out.update(southbound=md.southbound, index_close=md.index_close, adr_close=md.adr_close,
               usdhkd=md.usdhkd, symbols=md.symbols)
    return out


def _assert_identical(a: MarketData, b: MarketData) -> None:
    assert (a.index_name, a.source) == (b.index_name, b.source)
    fa, fb = _frames(a), _frames(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        x, y = fa[k], fb[k]
        assert type(x) is type(y), k
        assert x.index.equals(y.index) and x.index.dtype == y.index.dtype and x.index.name == y.index.name, k
        if isinstance(x, pd.DataFrame):
            assert list(x.columns) == list(y.columns) and list(x.dtypes) == list(y.dtypes), k
        else:
            assert x.dtype == y.dtype and x.name == y.name, k
        for xc, yc in zip(*((v.items() if isinstance(v, pd.DataFrame) else [(v.name, v)]) for v in (x, y))):
            xv, yv = xc[1].to_numpy(), yc[1].to_numpy()
            if xv.dtype.kind == "f":  # bit for bit, NaNs included
                assert np.array_equal(xv.view(np.uint64), yv.view(np.uint64)), (k, xc[0])
            else:
                pd.testing.assert_series_equal(xc[1], yc[1], check_exact=True)
    assert a.fingerprint() == b.fingerprint()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DIPFLOW_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("seed,symbols,years", [(7, 25, 10.0), (3, 4, 1.5)])
def test_cached_market_equals_a_fresh_one_bit_for_bit(cache_dir, seed, symbols, years):
    first = synth_cache.generate_cached(seed, symbols, years)  # miss: generates and writes
    assert synth_cache.cache_path(seed, symbols, years).is_file()
    second = synth_cache.generate_cached(seed, symbols, years)  # hit: read back
    fresh = synth.generate(seed=seed, symbols=symbols, years=years)
    _assert_identical(first, fresh)
    _assert_identical(second, fresh)


def test_a_hit_does_not_generate_and_other_arguments_miss(cache_dir, monkeypatch):
    synth_cache.generate_cached(5, 3, 1.0)
    calls = []
    real = synth.generate
    monkeypatch.setattr(synth, "generate", lambda **kw: calls.append(kw) or real(**kw))
    synth_cache.generate_cached(5, 3, 1.0)
    assert calls == []
    other = synth_cache.generate_cached(6, 3, 1.0)
    assert calls == [{"seed": 6, "symbols": 3, "years": 1.0}]
    _assert_identical(other, real(seed=6, symbols=3, years=1.0))


def test_a_damaged_or_foreign_cache_file_regenerates(cache_dir):
    path = synth_cache.cache_path(5, 3, 1.0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    _assert_identical(synth_cache.generate_cached(5, 3, 1.0), synth.generate(seed=5, symbols=3, years=1.0))
    # A file whose stored key differs (e.g. renamed by hand) is not trusted either.
    import pickle

    path.write_bytes(pickle.dumps((("other",), synth.generate(seed=9, symbols=3, years=1.0))))
    _assert_identical(synth_cache.generate_cached(5, 3, 1.0), synth.generate(seed=5, symbols=3, years=1.0))


def test_the_key_covers_the_generator_sources():
    digest = synth_cache.generator_digest()
    assert len(digest) == 16
    names = {p.name for p in synth_cache.Path(synth_cache.__file__).parent.iterdir()}
    assert {"synth.py", "calendars.py", "closures.csv", "symbols.csv"} <= names


def test_an_unwritable_cache_still_returns_the_market(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DIPFLOW_CACHE_DIR", str(blocker))  # a file, so no directory can be made under it
    _assert_identical(synth_cache.generate_cached(5, 3, 1.0), synth.generate(seed=5, symbols=3, years=1.0))


def test_old_markets_of_other_generator_versions_are_pruned(cache_dir):
    import os
    import time

    markets = cache_dir / "markets"
    markets.mkdir()
    old, recent = markets / "synth-0000000000000000-seed1-symbols2-years1.0.pkl", markets / "synth-1111111111111111-x.pkl"
    for p in (old, recent):
        p.write_bytes(b"x")
    week = time.time() - (synth_cache.STALE_DAYS + 1) * 86400
    os.utime(old, (week, week))
    synth_cache.generate_cached(5, 3, 1.0)
    current = synth_cache.cache_path(5, 3, 1.0)
    os.utime(current, (week, week))  # the current version's file is kept however old
    synth_cache.generate_cached(6, 3, 1.0)
    assert not old.exists() and recent.exists() and current.exists()


@pytest.mark.parametrize("seed,symbols,years", [("../../x", 3, 1.0), (True, 3, 1.0), (5, 3.0, 1.0),
                                                 (5, 3, float("nan")), (np.int64(5), 3, "1")])
def test_arguments_that_are_not_plain_numbers_never_touch_the_cache(cache_dir, monkeypatch, seed, symbols, years):
    calls = []
    monkeypatch.setattr(synth, "generate", lambda **kw: calls.append(kw) or "generated")
    assert synth_cache.generate_cached(seed, symbols, years) == "generated"
    assert calls == [{"seed": seed, "symbols": symbols, "years": years}]
    assert not (cache_dir / "markets").exists()


def test_numpy_integers_share_the_plain_integers_file(cache_dir):
    synth_cache.generate_cached(np.int64(5), np.int32(3), 1)
    assert [p.name for p in (cache_dir / "markets").iterdir()] == [synth_cache.cache_path(5, 3, 1.0).name]
