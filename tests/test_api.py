"""The Python API (docs/api.md): cheap import, run/sweep with overrides validated like files,
simulate_signals against vectorbt's from_signals and against the engine's own strategy runs."""

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backtest
from backtest.config import load_config
from backtest.data.market import Panel
from backtest.errors import ConfigError, DataError, UserError
from backtest.pipeline import run as run_pipeline
from tests.helpers import ROOT, require

DIP = ROOT / "configs" / "dip.toml"
SMALL = {"data.synthetic.symbols": 6, "data.synthetic.years": 3}


@pytest.fixture(scope="module")
def market():
    return backtest.synthetic(seed=7, symbols=6, years=3)


def test_import_is_cheap_and_help_instant():
    code = ("import sys, backtest; backtest.__all__; dir(backtest); "
            "heavy = [m for m in ('numba', 'numpy', 'pandas', 'vectorbt', 'matplotlib', 'backtest.api') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_cli_help_stays_light():
    code = ("import runpy, sys; sys.argv = ['backtest', '--help']\n"
            "try:\n    runpy.run_module('backtest', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('numba', 'numpy', 'pandas', 'vectorbt', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_sweep_and_lookahead_modules_stay_modules():
    import backtest.sweep

    assert callable(backtest.sweep) and callable(backtest.sweep.run_sweep)
    assert backtest.sweep is sys.modules["backtest.sweep"]
    with pytest.raises(AttributeError):
        backtest.no_such_thing  # noqa: B018


def test_dotted_and_keyword_overrides_equal_an_edited_file(tmp_path, market):
    text = DIP.read_text().replace("dip = 0.10", "dip = 0.07").replace("max_hold = 20", "max_hold = 9")
    edited = tmp_path / "dip.toml"
    edited.write_text(text)
    want = run_pipeline(load_config(edited), market).result
    dotted = backtest.run(DIP, market=market, **{"strategy.params.dip": 0.07, "exits.max_hold": 9})
    keyword = backtest.run(str(DIP), market=market, strategy__params__dip=0.07, exits__max_hold=9)
    as_dict = backtest.run({"strategy": {"name": "southbound_dip", "params": {"dip": 0.07, "fade_z": -1.0}},
                            "execution": {"mode": "portfolio", "max_positions": 5, "slippage_bps": 5.0},
                            "exits": {"stop_loss": 0.1, "take_profit": 0.2, "max_hold": 9},
                            "costs": {"commission_bps": 3.0, "commission_min": 50.0}}, market=market)
    for got in (dotted, keyword, as_dict):
        pd.testing.assert_frame_equal(got.result.equity, want.equity, check_exact=True)
        pd.testing.assert_frame_equal(got.trades, want.trades, check_exact=True)
    assert dotted.stats["trades"] == len(want.trades) > 0
    # a Config with overrides on top keeps what the Config had
    again = backtest.run(dotted.config, market=market, **{"exits.max_hold": 20, "strategy.params.dip": 0.1})
    pd.testing.assert_frame_equal(again.result.equity, run_pipeline(load_config(DIP), market).result.equity,
                                  check_exact=True)


@pytest.mark.parametrize("override, message", [
    ({"strategy.parms.dip": 0.1}, "unknown key 'strategy.parms' (did you mean 'params'?)"),
    ({"exits__stop_los": 0.1}, "unknown key 'exits.stop_los' (did you mean 'stop_loss'?)"),
    ({"exits.stop_loss": 1.5}, "key 'exits.stop_loss' = 1.5 is out of range [0.0, 1.0]"),
    ({"execution.fill": "tomorrow"}, "key 'execution.fill': expected 'next_open' or 'next_close' or 'same_close'"),
    ({"execution.init_cash": "lots"}, "key 'execution.init_cash': expected float, got str 'lots'"),
    ({"execution.fill.when": 1}, "override 'execution.fill.when': 'execution.fill' is a value, not a table"),
    ({"sweep.blocks": 7}, "key 'sweep.blocks' = 7 must be even"),
    ({"strategy.params.dipp": 0.1}, "unknown parameter 'strategy.params.dipp' for strategy 'southbound_dip' "
                                    "(did you mean 'dip'?)"),
    ({"strategy.params.dip": 2.0}, "parameter 'dip' = 2.0 is out of range [0.0, 0.9]"),
])
def test_overrides_are_validated_like_the_file(override, message, market):
    with pytest.raises(ConfigError) as err:
        backtest.run(DIP, market=market, **override)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{DIP} + overrides: ")


def test_bad_config_arguments():
    with pytest.raises(UserError, match="expected a path, a dict or a Config, got int"):
        backtest.run(3)
    with pytest.raises(ConfigError, match="missing required table \\[strategy\\]"):
        backtest.make_config({"execution": {"fill": "next_open"}})
    with pytest.raises(ConfigError, match="cannot read config"):
        backtest.run("no/such/config.toml")


def test_run_result_frames_and_tearsheet(tmp_path, market):
    res = backtest.run(DIP, market=market)
    np.testing.assert_array_equal(res.equity["equity"].to_numpy(), res.result.equity.sum(axis=1).to_numpy())
    assert res.stats["trades"] == len(res.trades) and res.stats["start"] == f"{res.panel.dates[0]}"
    assert set(res.event_study["symbol"]) >= {"*"}
    assert res.shares.shape == res.panel.shape and list(res.cash.columns) == ["portfolio"]  # dip.toml: one fund
    assert list(res.features) == [str(r) for r in res.output.prepared.plan.refs]
    pd.testing.assert_frame_equal(res.panel.frame("close"), res.result.close, check_names=False)
    out = res.tearsheet(tmp_path / "ts")
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "event_study.csv", "orders.csv", "stats.json",
                                                     "tearsheet.html", "trades.csv"]
    written = pd.read_csv(out / "equity.csv", index_col=0, parse_dates=True)
    np.testing.assert_allclose(written["equity"].to_numpy(), res.equity["equity"].to_numpy(), rtol=1e-12)


def test_run_to_vectorbt(market):
    require("vectorbt", "the reference simulator")
    res = backtest.run(DIP, market=market)
    value = res.to_vectorbt().value()
    np.testing.assert_allclose(value.to_numpy(), res.result.equity["portfolio"].to_numpy(), rtol=1e-9)


def test_panel_frames(market):
    panel = backtest.align(market)
    close = panel.frame("close")
    assert close.shape == panel.shape and list(close.columns) == list(panel.symbols)
    pd.testing.assert_series_equal(close.iloc[:, 0], market.hk["close"].iloc[:, 0].rename(close.columns[0]),
                                   check_names=False, check_index_type=False, check_freq=False)
    series = panel.series_frame()
    np.testing.assert_array_equal(series["index_close"].to_numpy(), market.index_close.to_numpy())


# ---------------------------------------------------------------------------------------------
# sweep

GRID = {"dip": [0.05, 0.1], "exits.max_hold": [5, 15]}


@pytest.fixture(scope="module")
def api_sweep(tmp_path_factory):
    """dip.toml's GRID on the small market through backtest.sweep into a kept directory, run once for
    the tests below (they only read it; the resume test copies the directory first)."""
    return backtest.sweep(DIP, grid=GRID, out=tmp_path_factory.mktemp("api_sweep") / "s", progress=False, workers=1,
                          **SMALL)


def test_sweep_table_equals_single_runs_and_resumes(api_sweep, tmp_path):
    sw = api_sweep
    assert len(sw.table) == 4 and list(sw.table.columns[:3]) == ["combo", "dip", "exits.max_hold"]
    for p in range(4):
        single = sw.run(p)
        combo = sw.combo(p)
        assert single.config.strategy.params["dip"] == combo["dip"]
        assert single.config.exits.max_hold == combo["exits.max_hold"]
        assert sw.table.loc[p, "trades"] == len(single.trades)
    shutil.copytree(sw.raw.out_dir, tmp_path / "s")  # resuming rewrites the directory: a copy of the shared one
    again = backtest.sweep(DIP, grid=GRID, out=tmp_path / "s", resume=True, progress=False, **SMALL)
    assert again.raw.computed == 0
    pd.testing.assert_frame_equal(again.table, sw.table, check_exact=True)
    with pytest.raises(UserError, match="already holds a sweep"):
        backtest.sweep(DIP, grid=GRID, out=tmp_path / "s", progress=False, **SMALL)
    s = sw.summary
    best = int(s["best_combo"])
    assert best == int(sw.best(1)["combo"].iloc[0])
    assert s["dsr_best"] == sw.dsr.loc[best, "dsr"]
    assert 0.0 <= s["dsr_best"] <= 1.0 and 0.0 <= s["pbo"] <= 1.0
    assert np.isfinite(s["wf_sharpe"])
    page = sw.report(tmp_path / "report")
    assert page.name == "sweep.html" and (tmp_path / "report" / "results.parquet").exists()


def test_sweep_in_a_temporary_directory_equals_the_cli_store(api_sweep, market):
    mem = backtest.sweep(DIP, grid=GRID, progress=False, market=market)
    assert not Path(mem.raw.out_dir).exists()
    assert Path(api_sweep.raw.out_dir).exists()
    pd.testing.assert_frame_equal(mem.table, api_sweep.table, check_exact=True)
    pd.testing.assert_frame_equal(mem.raw.market.hk["close"], api_sweep.raw.market.hk["close"])  # the same data
    with pytest.raises(UserError, match="resume=True needs out="):
        backtest.sweep(DIP, grid=GRID, resume=True, **SMALL)
    with pytest.raises(ConfigError, match="unknown key 'sweep.grd'"):
        backtest.sweep(DIP, **{"sweep.grd": GRID}, **SMALL)


# ---------------------------------------------------------------------------------------------
# simulate_signals


def _arrays_panel(o, h, lo, c, start="2024-01-02"):
    n_t, n_s = c.shape
    dates = np.busday_offset(np.datetime64(start, "D"), np.arange(n_t), roll="forward")
    symbols = tuple(f"{i:04d}" for i in range(1, n_s + 1))
    nan = np.full((n_t, n_s), np.nan)
    fields = {"open": o, "high": h, "low": lo, "close": c, "volume": nan, "turnover": nan,
              "board_lot": np.ones((n_t, n_s)), "sb_net_buy": nan, "adr_close": nan, "adr_premium": nan,
              "adr_staleness": nan}
    series = {k: np.full(n_t, np.nan) for k in ("sb_net_buy", "sb_net_buy_sh", "sb_net_buy_sz", "usdhkd")}
    series["index_close"] = np.nanmean(np.where(np.isnan(c), 100.0, c), axis=1)
    meta = pd.DataFrame({"name": list(symbols), "board_lot": 1, "adr_ticker": "", "adr_ratio": np.nan},
                        index=pd.Index(symbols, name="symbol"))
    return Panel(dates, symbols, {k: np.asfortranarray(v) for k, v in fields.items()}, series, meta)


def _prices(rng, n_t, n_s, nan_frac):
    r = rng.standard_t(4, size=(n_t, n_s)) * 0.025
    c = 100 * np.exp(np.cumsum(r, 0))
    o = c * np.exp(rng.normal(0, 0.012, (n_t, n_s)))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.012, (n_t, n_s))))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.012, (n_t, n_s))))
    gaps = rng.random((n_t, n_s)) < nan_frac
    for a in (o, h, lo, c):
        a[gaps] = np.nan
    return o, h, lo, c


STOPS = [(0.0, 0.0, 0.0), (0.08, 0.0, 0.0), (0.0, 0.15, 0.0), (0.1, 0.2, 0.0), (0.0, 0.0, 0.07), (0.0, 0.25, 0.1)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_t=st.integers(3, 120), n_s=st.integers(1, 4),
       nan_frac=st.sampled_from([0.0, 0.03, 0.15]), stops=st.sampled_from(STOPS),
       fee_pct=st.sampled_from([0.0, 0.1, 0.35]), slip=st.sampled_from([0.0, 0.001, 0.01]),
       p_entry=st.sampled_from([0.05, 0.2, 0.6]))
def test_simulate_signals_equals_vectorbt_from_signals(seed, n_t, n_s, nan_frac, stops, fee_pct, slip, p_entry):
    """Independent mode, flat costs, no lots: equity to 1e-9 and every trade equal to vectorbt's
    (the mapping and its two excluded corner cases: backtest.bench.vectorbt_from_signals,
    tests/test_vectorbt_agreement.py)."""
    require("vectorbt", "the reference simulator")
    from backtest.bench import vectorbt_from_signals

    rng = np.random.default_rng(seed)
    o, h, lo, c = _prices(rng, n_t, n_s, nan_frac)
    en = rng.random((n_t, n_s)) < p_entry
    ex = (rng.random((n_t, n_s)) < 0.15) & ~en
    ex[:-1] &= ~np.isnan(c[1:])
    panel = _arrays_panel(o, h, lo, c)
    frame = lambda a: pd.DataFrame(a, index=pd.DatetimeIndex(panel.dates), columns=list(panel.symbols))  # noqa: E731
    sl, tp, tsl = stops
    res = backtest.simulate_signals(panel, frame(en), frame(ex), fill="next_open", model="flat", flat_pct=fee_pct,
                                    slippage_bps=slip * 1e4, init_cash=1e5, board_lots=False, stop_loss=sl,
                                    take_profit=tp, trailing_stop=tsl)
    pf = vectorbt_from_signals(o, h, lo, c, en, ex, sl, tp, tsl, fee_pct, slip, 1e5)

    np.testing.assert_allclose(res.result.equity.to_numpy(), pf.value().to_numpy(), rtol=1e-9, atol=0)
    theirs = pd.DataFrame(pf.trades.records).sort_values(["col", "entry_idx"], kind="stable").reset_index(drop=True)
    ours = res.trades.assign(col=[panel.symbols.index(s) for s in res.trades["symbol"]],
                             entry_idx=pd.DatetimeIndex(panel.dates).get_indexer(res.trades["entry_date"]))
    ours = ours.sort_values(["col", "entry_idx"], kind="stable").reset_index(drop=True)
    assert len(ours) == len(theirs)
    np.testing.assert_array_equal(ours["col"], theirs["col"])
    np.testing.assert_array_equal(ours["entry_idx"], theirs["entry_idx"])
    for a, b in (("shares", "size"), ("entry_price", "entry_price"), ("entry_fees", "entry_fees")):
        np.testing.assert_allclose(ours[a], theirs[b], rtol=1e-9, atol=1e-9, err_msg=a)
    closed = ours["exit_date"].notna().to_numpy()
    np.testing.assert_array_equal(closed, theirs["status"].to_numpy() == 1)
    exit_idx = pd.DatetimeIndex(panel.dates).get_indexer(ours.loc[closed, "exit_date"])
    np.testing.assert_array_equal(exit_idx, theirs.loc[closed, "exit_idx"])
    for a, b in (("exit_price", "exit_price"), ("exit_fees", "exit_fees"), ("pnl", "pnl")):
        np.testing.assert_allclose(ours.loc[closed, a], theirs.loc[closed, b], rtol=1e-9, atol=1e-6, err_msg=a)


@pytest.mark.parametrize("mode", ["independent", "portfolio"])
def test_simulate_signals_equals_the_strategy_run(mode, market):
    """The strategy's own signals, handed in as frames, give the strategy's run exactly (HK costs,
    board lots, stops, portfolio ranking)."""
    over = {"execution.mode": mode, "execution.max_positions": 3}
    ref = backtest.run(DIP, market=market, **over)
    p = ref.output.prepared.params
    dd = ref.features[f"drawdown(window={p.dip_window})"]
    sbz = ref.features[f"sb_z(window={p.flow_window})"]
    cfg = ref.config
    got = backtest.simulate_signals(
        market, (dd <= -p.dip) & (sbz >= p.flow_z), sbz <= p.fade_z, rank=-dd, mode=mode, max_positions=3,
        slippage_bps=cfg.execution.slippage_bps, stop_loss=cfg.exits.stop_loss, take_profit=cfg.exits.take_profit,
        max_hold=cfg.exits.max_hold, commission_bps=cfg.costs.commission_bps, commission_min=cfg.costs.commission_min)
    assert len(ref.trades) > 5
    pd.testing.assert_frame_equal(got.result.equity, ref.result.equity, check_exact=True)
    pd.testing.assert_frame_equal(got.orders, ref.orders, check_exact=True)
    pd.testing.assert_frame_equal(got.trades, ref.trades, check_exact=True)
    assert got.stats.equals(ref.stats)


def test_signal_frames_align_and_nan_is_false(market):
    panel = backtest.align(market)
    rng = np.random.default_rng(3)
    full = pd.DataFrame(rng.random(panel.shape) < 0.05, index=pd.DatetimeIndex(panel.dates),
                        columns=list(panel.symbols))
    ref = backtest.simulate_signals(panel, full, max_hold=5)
    part = full.iloc[100:, [2, 0, 1]].where(full.iloc[100:, [2, 0, 1]])  # True or NaN, columns shuffled
    rest = full.copy()
    rest.iloc[:100] = False
    rest.iloc[:, 3:] = False
    got = backtest.simulate_signals(panel, part, max_hold=5)
    want = backtest.simulate_signals(panel, rest, max_hold=5)
    pd.testing.assert_frame_equal(got.result.equity, want.result.equity, check_exact=True)
    assert len(want.trades) < len(ref.trades)
    as_int = backtest.simulate_signals(panel, full.astype(int), exits__max_hold=5)  # section-qualified works too
    nullable = backtest.simulate_signals(panel, full.astype("boolean").mask(~full), max_hold=5)
    for other in (as_int, nullable):
        pd.testing.assert_frame_equal(other.result.equity, ref.result.equity, check_exact=True)


def test_signal_frames_are_validated(market):
    panel = backtest.align(market)
    idx = pd.DatetimeIndex(panel.dates)
    good = pd.DataFrame(False, index=idx, columns=list(panel.symbols))
    bad = good.astype(float)
    bad.iloc[7, 2] = 2.0
    with pytest.raises(DataError, match=rf"entries, date {idx[7]:%Y-%m-%d}, symbol {panel.symbols[2]}: "
                                        r"value 2\.0 is not boolean"):
        backtest.simulate_signals(panel, bad)
    words = good.astype(object)
    words.iloc[0, 0] = "yes"
    with pytest.raises(DataError, match="value 'yes' is not boolean"):
        backtest.simulate_signals(panel, good, exits=words)
    with pytest.raises(DataError, match=r"column '070': symbol is not in the market \(did you mean '0700'\?\)"):
        backtest.simulate_signals(panel, good.rename(columns={"0700": "070"}))
    weekend = good.rename(index={idx[3]: pd.Timestamp("2023-01-01")})
    with pytest.raises(DataError, match="date 2023-01-01: date is not a trading day of the market"):
        backtest.simulate_signals(panel, weekend)
    with pytest.raises(UserError, match="expected a DataFrame of dates x symbols, got list"):
        backtest.simulate_signals(panel, [[True]])
    with pytest.raises(UserError, match="must have the panel's shape"):
        backtest.simulate_signals(panel, np.zeros((3, 3), bool))
    with pytest.raises(UserError, match="index must be dates"):
        backtest.simulate_signals(panel, good.reset_index(drop=True).set_axis([f"x{i}" for i in range(len(idx))]))
    with pytest.raises(UserError, match="entries: the index holds 1 missing date"):
        backtest.simulate_signals(panel, good.set_axis(idx[:-1].append(pd.DatetimeIndex([pd.NaT]))))
    twice = good.set_axis(idx[:-1].append(idx[:1]))
    with pytest.raises(DataError, match=f"entries, date {idx[0]:%Y-%m-%d}: date appears more than once"):
        backtest.simulate_signals(panel, twice)
    with pytest.raises(ConfigError, match="unknown setting 'stop_los' \\(did you mean 'stop_loss'\\?\\)"):
        backtest.simulate_signals(panel, good, stop_los=0.1)
    with pytest.raises(ConfigError, match="unknown setting 'execution.stop_loss' \\(did you mean 'stop_loss'\\?\\)"):
        backtest.simulate_signals(panel, good, **{"execution.stop_loss": 0.1})
    with pytest.raises(ConfigError, match="simulate_signals: key 'exits.stop_loss' = -0.1 is out of range"):
        backtest.simulate_signals(panel, good, stop_loss=-0.1)
    with pytest.raises(ConfigError, match="fill = 'same_close' would trade at the close"):
        backtest.simulate_signals(panel, good, known="next_open", fill="same_close")
    backtest.simulate_signals(panel, good, fill="same_close")  # signals known at the close may fill there


@pytest.mark.parametrize("fill, lag, price", [("next_open", 1, "open"), ("next_close", 1, "close"),
                                              ("same_close", 0, "close")])
def test_signal_timing_by_hand(fill, lag, price, market, tmp_path):
    """A signal on row t fills on bar t + lag at that bar's open or close, plus slippage; a flat fee
    of 0.2 % on the value; no lots: init_cash buys init_cash / (price x 1.002) shares."""
    panel = backtest.align(market)
    idx = pd.DatetimeIndex(panel.dates)
    sym = panel.symbols[1]
    t = 50
    entries = pd.DataFrame({sym: idx == idx[t]}, index=idx)
    exits = pd.DataFrame({sym: idx == idx[t + 10]}, index=idx)
    res = backtest.simulate_signals(market, entries, exits, fill=fill, slippage_bps=10, model="flat",
                                    flat_pct=0.2, board_lots=False, init_cash=1e5)
    (trade,) = res.trades.itertuples()
    px = panel.frame(price)[sym]
    assert trade.entry_date == idx[t + lag] and trade.exit_date == idx[t + 10 + lag]
    assert trade.entry_price == pytest.approx(px.iloc[t + lag] * 1.001, rel=1e-12)
    assert trade.exit_price == pytest.approx(px.iloc[t + 10 + lag] * 0.999, rel=1e-12)
    assert trade.shares == pytest.approx(1e5 / (trade.entry_price * 1.002), rel=1e-12)
    assert trade.entry_fees == pytest.approx(trade.shares * trade.entry_price * 0.002, rel=1e-12)
    others = [s for s in panel.symbols if s != sym]
    assert (res.result.equity[others] == 1e5).all().all()
    written = res.tearsheet(tmp_path / "signals")
    assert "signals" in (written / "tearsheet.html").read_text()


def _scalar_keys():
    """Every scalar config key as "table.key" (strategy and the data tables aside)."""
    import dataclasses as dc

    from backtest.config import Config

    return [f"{top.name}.{f.name}" for top in dc.fields(Config)
            if top.name not in ("strategy", "data", "source", "text")
            for f in dc.fields(top.default_factory()) if f.name != "grid"]


def _toml(value):
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(_scalar_keys()),
       value=st.one_of(st.floats(-1e3, 1e7, allow_nan=False), st.integers(-5, 10**6), st.booleans(),
                       st.sampled_from(["portfolio", "next_close", "flat", "hk", "sortino", "x"])))
def test_an_override_is_checked_exactly_like_the_file(tmp_path_factory, key, value):
    """Any scalar key with any value: the override and the same key in a file give the same Config
    or the same error (after the source)."""
    section, name = key.split(".")
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(f'[strategy]\nname = "southbound_dip"\n[{section}]\n{name} = {_toml(value)}\n')
    outcomes = []
    for build in (lambda: load_config(path), lambda: backtest.make_config({"strategy": {"name": "southbound_dip"}},
                                                                          **{key: value})):
        try:
            cfg = build()
            outcomes.append(("ok", dataclasses.replace(cfg, source="", text="")))
        except ConfigError as exc:
            outcomes.append(("error", str(exc).split(": ", 1)[1]))
    assert outcomes[0] == outcomes[1]


def test_sweep_passes_engine_workers_and_scheduler_on(monkeypatch, market):
    """backtest.sweep hands engine, workers and scheduler to run_sweep unchanged (that the Dask engine
    and a scheduler give the local results: tests/test_sweep.py, tests/test_cli_paths.py)."""
    import backtest.sweep as sweep_module

    seen = []
    monkeypatch.setattr(sweep_module, "run_sweep", lambda cfg, out, **kw: seen.append(kw) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        backtest.sweep(DIP, grid=GRID, progress=False, market=market, engine="dask", workers=2, scheduler="tcp://x:1")
    assert seen[0]["engine"] == "dask" and seen[0]["workers"] == 2 and seen[0]["scheduler"] == "tcp://x:1"
    with pytest.raises(UserError, match="engine must be 'local' or 'dask', got 'spark'"):
        backtest.sweep(DIP, grid=GRID, engine="spark")
