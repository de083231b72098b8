"""vectorbt doing the benchmarks' work: `Portfolio.from_signals` mapped onto our semantics, the §8 sweep."""

from __future__ import annotations

import gc
import math
import os
import time
import warnings

import numpy as np
from numba import njit

from backtest.bench.data import FLAT_PCT, REF_N, REF_P, REF_T, _signal_panel, sweep_case
from backtest.bench.workloads import SINGLE, _simulate

VBT_BLOCK = int(os.environ.get("DIPFLOW_BENCH_VBT_BLOCK", "50"))  # combinations per vectorbt call
VBT_BUDGET = 60.0  # seconds: a longer full vectorbt run is timed on a subset and scaled


def vectorbt_from_signals(o, h, lo, c, en, ex, sl: float, tp: float, tsl: float, fee_pct: float, slip: float,
                          cash: float, fill: str = "next_open"):
    """Our semantics on (T, N) arrays expressed in vectorbt's `Portfolio.from_signals` (the mapping
    of docs/simulation.md): signals of row t fill at the open (or, `fill="next_close"`, the close)
    of t + 1; stops from the fill price; a signal exit at the open fills before any stop (the bar's
    high and low set to its open); one at the close comes after them, as in vectorbt."""
    import pandas as pd

    vbt = _import_vectorbt()
    env = np.zeros_like(en)
    env[1:] = en[:-1]
    exv = np.zeros_like(ex)
    exv[1:] = ex[:-1]
    hm, lm = h.copy(), lo.copy()
    if fill == "next_open":
        hm[exv], lm[exv] = o[exv], o[exv]
    elif fill != "next_close":
        raise ValueError(f"no vectorbt mapping for fill {fill!r}")
    df = pd.DataFrame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vbt.Portfolio.from_signals(
            df(c), df(env), df(exv), price=df(o if fill == "next_open" else c), open=df(o), high=df(hm), low=df(lm),
            fees=fee_pct / 100, slippage=slip, init_cash=cash, size=np.inf, sl_stop=tsl or sl or np.nan,
            sl_trail=tsl > 0, tp_stop=tp or np.nan, stop_entry_price="fillprice", stop_exit_price="stopmarket",
            freq="1D")


def _vectorbt_single(n_s: int):
    """vectorbt from_signals on the inputs of `_simulate` (`vectorbt_from_signals`)."""
    def setup():
        o, h, lo, c, en, ex = _signal_panel(REF_T, n_s)

        def call():
            return vectorbt_from_signals(o, h, lo, c, en, ex, SINGLE["stop_loss"], SINGLE["take_profit"], 0.0,
                                         SINGLE["fee_pct"], SINGLE["slippage"], SINGLE["cash"]).value().to_numpy()

        ours = _simulate(n_s)()()[2].T

        def verify(value):
            rel = float(np.max(np.abs(value - ours) / np.abs(ours)))
            return {"equal": bool(rel < 1e-9), "max_rel_diff_equity": rel}

        call()  # vectorbt compiles its kernels on first use (not timed)
        return call, {"verify": verify, "collect": True}
    return setup


def _import_vectorbt():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt
    vbt.settings.returns["year_freq"] = "252 days"  # the engine's annualisation (backtest.metrics)
    return vbt


@njit(cache=True)
def _vbt_time_sl(c, open_, n_s, hold):
    """vectorbt stop-loss adjuster giving the sweep's time stop: `hold` bars after the entry fill
    the position leaves at the open (as our kernel's time stop does): here through a stop at the
    entry price if the bar opens at or below it, else through the zero take profit below."""
    if c.position_now > 0 and c.i - c.init_i >= hold[c.col // n_s]:
        if open_[c.i, c.col % n_s] <= c.curr_price:
            return 0.0, False
        return np.nan, False
    return c.curr_stop, c.curr_trail


@njit(cache=True)
def _vbt_time_tp(c, hold, n_s):
    if c.position_now > 0 and c.i - c.init_i >= hold[c.col // n_s]:
        return 0.0
    return c.curr_stop


def _vectorbt_sweep():
    """The §8 sweep in vectorbt: per block of VBT_BLOCK combinations, entry and exit signals for
    every (combination, symbol) column, one `from_signals` call (stop loss, take profit, the time
    stop through stop adjusters, flat fees, slippage), then total return, Sharpe, max drawdown and
    closed-trade count per column. Blocks interleave the grid (block b = combinations b, b + B, ...),
    so each is representative and a subset of blocks scales linearly to the whole."""
    def setup():
        vbt = _import_vectorbt()
        inputs, sp = sweep_case(REF_T, REF_N, REF_P, "flat")
        o, h, lo, c = (np.ascontiguousarray(a.T) for a in inputs.market[:4])  # (T, N)
        feats = inputs.market.feats  # (F, N, T)
        n_t, n_s = c.shape
        n_p = sp.exits.shape[0]
        n_blocks = math.ceil(n_p / VBT_BLOCK)
        blocks = [np.arange(b, n_p, n_blocks) for b in range(n_blocks)]

        def rule(r):  # flat k-of-n (the shipped strategies), in numpy
            hits = np.zeros((n_s, n_t), np.int64)
            for i in range(r.feat.shape[0]):
                hits += r.sign[i] * feats[r.feat[i]] >= r.bound[i]
            return hits >= r.k if r.k > 0 else np.zeros((n_s, n_t), bool)

        phases = {"signals": 0.0, "from_signals": 0.0, "metrics": 0.0, "gc": 0.0}  # seconds, this call

        def block(idx):
            t0 = time.perf_counter()
            m = len(idx) * n_s
            en = np.zeros((n_t, m), bool)
            ex = np.zeros((n_t, m), bool)
            for i, p in enumerate(idx):  # signals on row t fill at the open of t + 1: shift by one bar
                en[1:, i * n_s:(i + 1) * n_s] = rule(sp.entry.row(p)).T[:-1]
                ex[1:, i * n_s:(i + 1) * n_s] = rule(sp.exit.row(p)).T[:-1]
            tile = lambda a: np.tile(a, (1, len(idx)))  # noqa: E731
            oo, hm, lm = tile(o), tile(h), tile(lo)
            hm[ex], lm[ex] = oo[ex], oo[ex]  # a signal exit fills at the open before any stop
            hold = sp.exits[idx, 3].astype(np.int64)
            ex_sl, ex_tp = sp.exits[idx, 0], sp.exits[idx, 1]
            t1 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pf = vbt.Portfolio.from_signals(
                    tile(c), en, ex, price=oo, open=oo, high=hm, low=lm, fees=FLAT_PCT / 100,
                    slippage=inputs.execution.slippage, init_cash=inputs.execution.init_cash, size=np.inf,
                    sl_stop=np.repeat(ex_sl, n_s)[None, :], tp_stop=np.repeat(ex_tp, n_s)[None, :],
                    stop_entry_price="fillprice", stop_exit_price="stopmarket",
                    adjust_sl_func_nb=_vbt_time_sl, adjust_sl_args=(o, n_s, hold),
                    adjust_tp_func_nb=_vbt_time_tp, adjust_tp_args=(hold, n_s), freq="1D")
                t2 = time.perf_counter()
                out = np.stack([pf.total_return().to_numpy(), pf.sharpe_ratio().to_numpy(),
                                pf.max_drawdown().to_numpy(), pf.trades.closed.count().to_numpy()], axis=-1)
            t3 = time.perf_counter()
            del pf
            gc.collect()  # vectorbt's objects hold their arrays in reference cycles: free them per call
            t4 = time.perf_counter()
            for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k] += dt
            return out.reshape(len(idx), n_s, 4)

        block(blocks[0][:2])  # vectorbt compiles its kernels on first use (not timed)
        t0 = time.perf_counter()
        block(blocks[0])
        per_block = time.perf_counter() - t0
        use = blocks
        info: dict = {"note": f"{n_blocks} calls of {VBT_BLOCK} combinations ({VBT_BLOCK * n_s} columns)"}
        if per_block * n_blocks > VBT_BUDGET:
            k = max(2, min(n_blocks, int(VBT_BUDGET / 2 / per_block)))
            use = blocks[:k]
            info["scale"] = n_blocks / k
            info["note"] = (f"timed {k} of {n_blocks} blocks ({sum(map(len, use))} of {n_p} combinations), "
                            f"scaled x{n_blocks / k:.2f}")

        def call():
            for k in phases:
                phases[k] = 0.0
            res = np.full((n_p, n_s, 4), np.nan)
            for idx in use:
                res[idx] = block(idx)
            return res

        def untimed():  # our gc.collect() calls: needed for memory, not vectorbt's work
            return phases["gc"]

        def verify(res):
            info["note"] += ("; last call: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
                             + " (gc not counted)")
            from backtest.kernels.metrics import M_MAX_DRAWDOWN, M_SHARPE, M_TOTAL_RETURN, M_TRADES
            from backtest.sweep import run_chunk

            ours = run_chunk(inputs, sp, 0, n_p)[0]
            done = ~np.isnan(res[:, 0, 0])
            a, b = ours[done], res[done]
            eq = lambda i, j: bool(np.allclose(a[..., i], b[..., j], rtol=1e-9, atol=1e-12))  # noqa: E731
            sharpe = float(np.nanmax(np.abs(a[..., M_SHARPE] - b[..., 1]) / np.abs(b[..., 1])))
            return {"columns_compared": int(done.sum() * n_s),
                    "equal": eq(M_TOTAL_RETURN, 0) and eq(M_MAX_DRAWDOWN, 2) and eq(M_TRADES, 3),
                    "total_return_equal": eq(M_TOTAL_RETURN, 0), "max_drawdown_equal": eq(M_MAX_DRAWDOWN, 2),
                    "trades_equal": eq(M_TRADES, 3), "sharpe_max_rel_diff": sharpe,
                    "sharpe_note": "vectorbt counts bar 0's zero return (T returns, ours T - 1)"}

        info.update(verify=verify, cells=n_t * n_s * n_p, warmup=False, untimed=untimed)
        return call, info
    return setup
