"""Shared fixtures: the sample config and market, loaded once per session."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import settings

from tests.helpers import IN_CI, ROOT

# CI runs the same examples every time (a red run is reproducible, never noise); locally each run
# draws new ones and the example database replays past failures first.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if IN_CI:
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def dip_config():
    """configs/dip.toml, parsed (a frozen Config: derive variants with dataclasses.replace)."""
    from backtest.config import load_config

    return load_config(ROOT / "configs" / "dip.toml")


@pytest.fixture(scope="session")
def small_config(dip_config):
    """configs/dip.toml on a small seeded sample market (8 names, 4 years)."""
    from backtest.config import SynthConfig

    return dataclasses.replace(dip_config, data=dataclasses.replace(
        dip_config.data, synthetic=SynthConfig(seed=2, symbols=8, years=4)))


@pytest.fixture(scope="session")
def small_market(small_config):
    """The sample market of `small_config` (do not mutate: generate a fresh one to perturb)."""
    from backtest.pipeline import load_market

    return load_market(small_config)
