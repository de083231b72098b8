"""dipflow from Python, start to finish (docs/api.md). Run it: `python docs/examples/walkthrough.py`.

Each block below is a notebook cell: data, a custom feature, a run, a small sweep, your own signal
frames, and a look-ahead check. Files go to out/walkthrough/. It uses a small synthetic market so it finishes in seconds once
the kernels are compiled (the first run ever compiles them, about a minute).
"""

from pathlib import Path

import backtest

out = Path("out/walkthrough")  # relative to the working directory, like report.out in configs

# --- 1. Data: generate (or load) a market and look at it as DataFrames -------------------------
market = backtest.synthetic(seed=7, symbols=6, years=3)          # or backtest.load_market("my_data/")
panel = backtest.align(market)                                   # on the HK calendar, no look-ahead
close = panel.frame("close")                                     # dates x symbols
print(f"{close.shape[0]} bars x {close.shape[1]} symbols, {close.index[0]:%Y-%m-%d} to {close.index[-1]:%Y-%m-%d}")
print(panel.series_frame()[["index_close", "sb_net_buy"]].tail(3))

from backtest.data.write import write_market                     # the same market through the on-disk format
write_market(market, out / "market")
assert backtest.load_market(out / "market").fingerprint() == market.fingerprint()

# --- 2. A custom feature: my_strategies/stretched_dip.py registers `close_vs_mean` (15 lines) ----
#        and a strategy that uses it; configs name the module by import path
from my_strategies import stretched_dip                           # noqa: E402  (next to this file)

print(stretched_dip.close_vs_mean(panel, window=20).iloc[-1].round(3).to_dict())

# --- 3. One run: a config as a dict (a TOML path works the same), overrides as dotted keys -------
config = {
    "data": {"synthetic": {"seed": 7, "symbols": 6, "years": 3}},
    "strategy": {"name": "my_strategies.stretched_dip", "params": {"window": 20, "stretch": 0.06, "dip": 0.08}},
    "execution": {"mode": "portfolio", "max_positions": 3, "slippage_bps": 5.0},
    "exits": {"stop_loss": 0.1, "max_hold": 20},
}
res = backtest.run(config, market=market)
print(res)
print(res.stats[["total_return", "sharpe", "max_drawdown", "exposure", "trades"]])
print(res.trades[["symbol", "entry_date", "exit_date", "return", "reason"]].head())
print("tear sheet:", res.tearsheet(out / "run") / "tearsheet.html")

looser = backtest.run(config, market=market, **{"strategy.params.stretch": 0.04}, exits__max_hold=10)
print(f"stretch 0.04, max_hold 10: {looser.stats['trades']} trades, total return {looser.stats['total_return']:.2%}")

# --- 4. A small sweep (8 combinations) and its robustness summary --------------------------------
sw = backtest.sweep(config, grid={"stretch": [0.04, 0.06, 0.08, 0.1], "exits.max_hold": [10, 20]},
                    **{"sweep.blocks": 6, "sweep.train_blocks": 3})
print(sw.best(3)[["combo", "stretch", "exits.max_hold", "sharpe", "total_return", "trades"]])
print(sw.summary[["best_combo", "dsr_best", "pbo", "wf_sharpe", "wf_lookahead_sharpe"]])
print("sweep page:", sw.report(out / "sweep"))

# --- 5. Your own signals: boolean frames (dates x symbols), same kernel, costs and stops ----------
low20 = close.rolling(20).min().shift(1)
entries = close < low20                                           # a new 20-day low, known at the close
exits = close > close.rolling(10).mean()
mine = backtest.simulate_signals(market, entries, exits, stop_loss=0.08, max_hold=15, slippage_bps=5.0)
print(mine)
print(mine.equity[["equity", "exposure"]].tail(2))

# --- 6. Look-ahead check: perturb the future, nothing before it may change -----------------------
report = backtest.lookahead(config, market=market, cuts=3)
print(report)
assert report.clean
