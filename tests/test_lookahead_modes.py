"""DESIGN §3 by direct perturbation, independent of the checker in backtest.lookahead: changing any data after bar t never changes a signal, fill or equity value at or before t, in every mode and fill."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from backtest.config import SynthConfig, load_config
from backtest.data.synth import generate
from backtest.pipeline import run
from tests.helpers import ROOT

CONFIGS = sorted(ROOT.glob("configs/*.toml"))


def _perturb_after(md, cut, rng):
    """Scramble every source strictly after `cut`: prices, volumes, lots, flows, ADR closes, FX.

    Prices after the cut follow another random walk (open = high = low = close): plausible prices.
    Independent daily factors instead would be a money machine for a same-close dip buyer (buy the
    scrambled low, sell the next scrambled high), compounding the account to 1e20 and beyond, a
    range no market reaches (and where the affordable-lots search of the simulation kernel crawls)."""
    for name, df in md.hk.items():
        if name not in ("open", "high", "low", "close"):
            after = df.index > cut
            df.loc[after] = df.loc[after] * rng.uniform(0.5, 1.5, size=df.loc[after].shape)
    after = md.hk["close"].index > cut
    walk = np.exp(np.cumsum(rng.normal(0.0, 0.03, size=md.hk["close"].loc[after].shape), axis=0))
    close = md.hk["close"].loc[after] * walk
    for name in ("open", "high", "low", "close"):
        md.hk[name].loc[after] = close.to_numpy()
    after = md.southbound.index > cut
    md.southbound.loc[after] = rng.normal(0, 3e10, size=md.southbound.loc[after].shape)
    after = md.adr_close.index > cut
    md.adr_close.loc[after] = md.adr_close.loc[after] * rng.uniform(0.8, 1.2, size=md.adr_close.loc[after].shape)
    md.usdhkd.loc[md.usdhkd.index > cut] = 7.76
    md.index_close.loc[md.index_close.index > cut] *= 3.0


PRICE_ONLY = """
from backtest.rules import all_of, feature
NAME, HELP, PARAMS = "price_dip", "price features only (for same_close fills)", ()
def entry(p):
    return all_of(feature("drawdown", window=20) <= -0.08, feature("ret_z", window=3, vol_window=40) <= -0.5)
def exit(p):
    return feature("ret", window=5) >= 0.04
def rank(p):
    return feature("ret_z", window=3, vol_window=40), "low_first"
"""
# (config, mode, fill): every shipped config as it is, and the other modes and fills
VARIANTS = [(c.stem, None, None) for c in CONFIGS] + [
    ("dip", "portfolio", "next_open"), ("dip", "independent", "next_close"), ("dip", "portfolio", "next_close"),
    ("price_dip", "independent", "same_close"), ("price_dip", "portfolio", "same_close"),
    ("price_dip", "portfolio", "next_close")]


@pytest.mark.parametrize("config, mode, fill", VARIANTS, ids=["-".join(filter(None, v)) for v in VARIANTS])
@pytest.mark.parametrize("seed", [1, 2])
def test_future_data_never_changes_the_past(config, mode, fill, seed, tmp_path, monkeypatch):
    if config == "price_dip":
        (tmp_path / "lookahead_user").mkdir()
        (tmp_path / "lookahead_user" / "__init__.py").write_text("")
        (tmp_path / "lookahead_user" / "price_dip.py").write_text(PRICE_ONLY)
        monkeypatch.syspath_prepend(str(tmp_path))
        cfg = load_config(ROOT / "configs" / "dip.toml")
        cfg = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name="lookahead_user.price_dip", params={}))
    else:
        cfg = load_config(ROOT / "configs" / f"{config}.toml")
    ex = cfg.execution
    cfg = dataclasses.replace(cfg, execution=dataclasses.replace(ex, mode=mode or ex.mode, fill=fill or ex.fill,
                                                                 max_positions=3))
    if cfg.data.path is not None:
        pytest.skip("runs on the embedded sample market only")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic=SynthConfig(seed=seed, symbols=8, years=4)))
    s = cfg.data.synthetic
    base = run(cfg, generate(seed=s.seed, symbols=s.symbols, years=s.years))
    rng = np.random.default_rng(seed)
    dates = base.result.equity.index
    t = int(rng.integers(len(dates) // 4, len(dates) - 5))
    md = generate(seed=s.seed, symbols=s.symbols, years=s.years)
    _perturb_after(md, dates[t], rng)
    moved = run(cfg, md)

    upto = dates[: t + 1]
    np.testing.assert_array_equal(base.features[:, : t + 1], moved.features[:, : t + 1], err_msg="features")
    for name in ("equity", "cash", "shares"):
        a, b = getattr(base.result, name), getattr(moved.result, name)
        np.testing.assert_array_equal(a.loc[upto].to_numpy(), b.loc[upto].to_numpy(), err_msg=name)
    ob, om = base.result.orders, moved.result.orders
    pd.testing.assert_frame_equal(ob[ob["date"] <= dates[t]], om[om["date"] <= dates[t]], check_exact=True)
    # The perturbation really reaches the future (or this test could not fail).
    assert not np.array_equal(base.result.equity.to_numpy(), moved.result.equity.to_numpy())
