"""The sweep's per-combination and per-symbol metrics against tests/oracle_sim.py: signals computed
here from the features (plain comparisons), each combination simulated by the plain-Python oracle,
metrics from its equity by their textbook definitions (numpy). Nothing shared with the kernels."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.config import load_config
from backtest.features import compute_features
from backtest.pipeline import load_market, prepare
from backtest.rules import feature
from backtest.sweep import run_sweep
from tests import oracle_sim as ref

STRATEGY = """
from backtest.rules import all_of, feature
from backtest.strategy import Param
NAME, HELP = "oracle_dip", "dip after a down day; exit after a bounce"
PARAMS = (Param("window", int, 20, 2, 100, ""), Param("dip", float, 0.05, 0.0, 0.9, ""),
          Param("bounce", float, 0.03, 0.0, 1.0, ""))
def entry(p):
    return all_of(feature("drawdown", window=p.window) <= -p.dip, feature("ret", window=1) <= 0.0)
def exit(p):
    return feature("ret", window=5) >= p.bounce
def rank(p):
    return feature("drawdown", window=p.window), "low_first"
"""

CONFIG = """
[data]
synthetic = {{ seed = {seed}, symbols = 4, years = 1.5 }}
[strategy]
name = "oracle_user.dip"
[execution]
mode = "{mode}"
max_positions = 2
fill = "{fill}"
slippage_bps = 7.0
board_lots = false
[costs]
model = "flat"
flat_pct = 0.15
[sweep]
blocks = 4
train_blocks = 2
chunk_size = 5
[sweep.grid]
{grid}
"""


def random_grid(rng) -> str:
    """Two values per key, drawn per test case (0 = off for the exits)."""
    pick = lambda lo, hi: sorted({round(float(x), 3) for x in rng.uniform(lo, hi, 2)})  # noqa: E731
    return "\n".join([f"window = {sorted(set(rng.integers(5, 40, 2).tolist()))}", f"dip = {pick(0.01, 0.1)}",
                      f"bounce = {pick(0.01, 0.08)}", f'"exits.stop_loss" = [0.0, {pick(0.03, 0.1)[0]}]',
                      f'"exits.trailing_stop" = [0.0, {pick(0.03, 0.1)[0]}]',
                      f'"exits.max_hold" = [0, {int(rng.integers(1, 10))}]'])


def textbook_metrics(eq: np.ndarray, cash: np.ndarray, trades: list[dict], days: list[str], first: int = 0) -> dict:
    """Metrics of an account that exists from bar `first` (docs/simulation.md, "Capital that exists");
    CAGR over the calendar span in years of 365.25 days (docs/tearsheet.md)."""
    eq, cash = eq[first:], cash[first:]
    years = (np.datetime64(days[-1]) - np.datetime64(days[first])).astype(int) / 365.25
    r = eq[1:] / eq[:-1] - 1.0
    n = len(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = r.std(ddof=1) if n >= 2 else np.nan
        mean = r.mean()
        downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
        sharpe = (np.float64(mean) / np.float64(sd) if sd > 1e-15 * abs(mean) else
                  (np.nan if mean == 0 else np.sign(mean) * np.inf)) * np.sqrt(252) if n >= 2 else np.nan
        sortino = (np.float64(mean * 252) / np.float64(downside * np.sqrt(252)) if n >= 2 else np.nan)
    peak = np.maximum.accumulate(eq)
    closed = [t for t in trades if t["exit_bar"] >= 0]
    wins = [t for t in closed if t["shares"] * t["exit_price"] - t["exit_fees"] > t["shares"] * t["entry_price"]
            + t["entry_fees"]]
    return {"total_return": eq[-1] / eq[0] - 1, "cagr": (eq[-1] / eq[0]) ** (1 / years) - 1, "sharpe": sharpe,
            "sortino": sortino, "max_drawdown": float((eq / peak - 1).min()),
            "exposure": float(np.mean((eq - cash) / eq)), "trades": len(closed),
            "win_rate": len(wins) / len(closed) if closed else np.nan}


@pytest.mark.parametrize("mode, fill, seed", [("independent", "next_open", 4), ("portfolio", "next_close", 6),
                                              ("independent", "same_close", 8), ("portfolio", "next_open", 9),
                                              ("independent", "next_close", 12), ("portfolio", "same_close", 15)])
def test_sweep_metrics_equal_the_oracle(tmp_path, monkeypatch, mode, fill, seed):
    pkg = tmp_path / "oracle_user"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "dip.py").write_text(STRATEGY)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "s.toml"
    path.write_text(CONFIG.format(mode=mode, fill=fill, seed=seed, grid=random_grid(np.random.default_rng(seed))))
    cfg = load_config(path)
    res = run_sweep(cfg, tmp_path / "out", progress=False)
    panel = prepare(cfg, load_market(cfg)).panel
    f = {k: panel.fields[k] for k in ("open", "high", "low", "close")}
    ex = cfg.execution
    days = [str(d)[:10] for d in panel.dates]
    n_t, n_s = panel.shape
    checked = 0
    for p in range(res.grid.size):
        combo = res.grid.combo(p)
        w = combo["window"]
        refs = [feature("drawdown", window=w), feature("ret", window=1), feature("ret", window=5)]
        dd, r1, r5 = (x.T for x in compute_features(panel, refs))  # (T, N) each
        with np.errstate(invalid="ignore"):
            en = (dd <= -combo["dip"]) & (r1 <= 0.0)
            xs = r5 >= combo["bounce"]
        setup = ref.Setup(open=f["open"].tolist(), high=f["high"].tolist(), low=f["low"].tolist(),
                          close=f["close"].tolist(), entries=en.tolist(), exits=xs.tolist(), days=days,
                          rank=dd.tolist(), rank_high_first=False, fill=fill, init_cash=ex.init_cash,
                          slippage=ex.slippage_bps / 1e4, stop_loss=combo["exits.stop_loss"],
                          trailing_stop=combo["exits.trailing_stop"], max_hold=combo["exits.max_hold"],
                          costs=ref.Costs("flat", flat_pct=cfg.costs.flat_pct),
                          max_positions=ex.max_positions if mode == "portfolio" else 0)
        out = ref.simulate(setup)
        eq, cash = np.array(out.equity), np.array(out.cash)
        want = textbook_metrics(eq.sum(1), cash.sum(1), out.trades, days)
        row = res.table.iloc[p]
        for name, value in want.items():
            np.testing.assert_allclose(row[name], value, rtol=1e-8, atol=1e-12, err_msg=f"combo {combo} {name}")
        if mode == "independent":
            sym = res.by_symbol[res.by_symbol["combo"] == p].set_index("symbol")
            listed = [j for j in range(n_s) if np.isfinite(f["close"][:, j]).any()]
            assert list(sym.index) == [panel.symbols[j] for j in listed]  # never-listed symbols have no account
            for j in listed:
                first = int(np.argmax(np.isfinite(f["close"][:, j])))
                want = textbook_metrics(eq[:, j], cash[:, j], [t for t in out.trades if t["col"] == j], days, first)
                got = sym.loc[panel.symbols[j]]
                for name, value in want.items():
                    np.testing.assert_allclose(got[name], value, rtol=1e-8, atol=1e-12,
                                               err_msg=f"combo {combo} {panel.symbols[j]} {name}")
        checked += want["trades"] > 0
    assert checked >= res.grid.size // 4, "too few combinations trade for this test to mean much"
