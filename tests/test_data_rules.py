"""Loader and alignment rules that real data needed (docs/data.md): OHLC float noise, total-only
southbound, capped ADR staleness. Oracles: hand-written files and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.data.align import align
from backtest.data.load import load_market
from backtest.errors import DataError
from test_data_files import BASE, dataset, sub


def test_ohlc_float_noise_is_not_a_violation(tmp_path):
    hk = sub(BASE["hk_daily.csv"], "2024-01-02,0700,298.0,303.0,297.0,300.0",
             "2024-01-02,0700,3.9793601036071777,4.0,3.979360103607178,3.99")
    md = load_market(dataset(tmp_path, hk_daily__csv=hk))
    assert md.hk["low"].loc["2024-01-02", "0700"] == 3.979360103607178


def test_ohlc_violation_message_shows_two_different_numbers(tmp_path):
    hk = sub(BASE["hk_daily.csv"], "2024-01-02,0700,298.0,303.0,297.0,300.0",
             "2024-01-02,0700,22.84,23.5,22.93,23.0")
    with pytest.raises(DataError) as e:
        load_market(dataset(tmp_path, hk_daily__csv=hk))
    (p,) = [p for p in e.value.problems if p.column == "low"]
    assert p.row == 2 and "low 22.93 is above min(open, close) = 22.84" in p.message
    # a violation just beyond the tolerance still shows two distinct numbers
    hk = sub(BASE["hk_daily.csv"], "2024-01-02,0700,298.0,303.0,297.0,300.0",
             "2024-01-02,0700,3.9793601,4.0,3.9793602,3.99")
    with pytest.raises(DataError) as e:
        load_market(dataset(tmp_path / "b", hk_daily__csv=hk))
    (p,) = [p for p in e.value.problems if p.column == "low"]
    assert "low 3.9793602 is above min(open, close) = 3.9793601;" in p.message
    nums = [t.rstrip(";") for t in p.message.split() if t[0].isdigit()]
    assert len(set(nums[:2])) == 2


def test_southbound_total_only(tmp_path):
    sb = "date,total\n2024-01-02,1300.5\n2024-01-04,1100\n"
    md = load_market(dataset(tmp_path, southbound__csv=sb))
    assert list(md.southbound.columns) == ["total"]
    panel = align(md)
    assert panel.series["sb_net_buy"][0] == 1300.5e6
    assert np.isnan(panel.series["sb_net_buy"][1])  # Connect closed: missing
    assert np.isnan(panel.series["sb_net_buy_sh"]).all() and np.isnan(panel.series["sb_net_buy_sz"]).all()


def _adr_market(tmp_path, last_adr: str):
    days = pd.bdate_range("2024-01-02", "2024-01-31")
    hk = ["date,symbol,open,high,low,close,volume,turnover"]
    hk += [f"{d.date()},9988,72,73,71,72,1,72" for d in days]
    adr = ["date,adr_ticker,close"] + [f"{d.date()},BABA,73.84" for d in days if d <= pd.Timestamp(last_adr)]
    fx = ["date,usdhkd"] + [f"{d.date()},7.8" for d in days]
    idx = ["date,close"] + [f"{d.date()},100" for d in days]
    sb = ["date,total"] + [f"{d.date()},1" for d in days]
    sym = "symbol,name,board_lot,adr_ticker,adr_ratio\n9988,Alibaba Group,100,BABA,8\n"
    return load_market(dataset(tmp_path, hk_daily__csv="\n".join(hk) + "\n", adr__csv="\n".join(adr) + "\n",
                               fx__csv="\n".join(fx) + "\n", index__csv="\n".join(idx) + "\n",
                               southbound__csv="\n".join(sb) + "\n", symbols__csv=sym)), days


@pytest.mark.parametrize("cap", [0, 3, 5])
def test_adr_staleness_cap(tmp_path, cap):
    md, days = _adr_market(tmp_path, "2024-01-10")
    panel = align(md, max_adr_staleness=cap)
    stale = panel.frame("adr_staleness")["9988"]
    prem = panel.frame("adr_premium")["9988"]
    close = panel.frame("adr_close")["9988"]
    # hand-computed: 73.84 * 7.8 / 8 / 72 - 1
    assert prem.loc["2024-01-10"] == pytest.approx(73.84 * 7.8 / 8 / 72 - 1)
    expected_known = stale <= cap
    assert (prem.notna() == expected_known).all() and (close.notna() == expected_known).all()
    assert stale.loc["2024-01-31"] == np.busday_count("2024-01-10", "2024-01-31")


def test_adr_staleness_default_and_config_key(tmp_path):
    from backtest.config import load_config
    from backtest.data.align import MAX_ADR_STALENESS

    assert MAX_ADR_STALENESS == 5
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nmax_adr_staleness = 2\n[strategy]\nname = "adr_discount"\n')
    assert load_config(cfg).data.max_adr_staleness == 2
    cfg.write_text('[data]\npath = "x"\nmax_adr_staleness = 3\n[strategy]\nname = "adr_discount"\n')
    assert load_config(cfg).data.max_adr_staleness == 3  # kept when the path is resolved
