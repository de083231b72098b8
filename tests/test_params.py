"""Param declarations: a strategy's or feature's parameters are numbers with a numeric range and a
default inside it; anything else is refused when the strategy or feature is loaded, with the
parameter named (exit 2 through the CLI)."""

import pytest

from backtest.errors import ConfigError
from backtest.params import Param
from tests.helpers import run_cli


@pytest.mark.parametrize("args, says", [
    (("flag", bool, True, 0, 1), "needs a number type"),
    (("how", str, "a", 0, 1), "needs a number type"),
    (("w", int, 5, 0, 3), "lo <= default <= hi"),
    (("w", int, 2.5, 0, 3), "expects int, got 2.5"),
    (("x", float, 0.5, 0.0, float("nan")), "lo <= default <= hi"),
    (("x", float, 0.5, "0", 1.0), "lo <= default <= hi"),
])
def test_non_numeric_or_inconsistent_params_are_refused_with_their_name(args, says):
    with pytest.raises(ConfigError) as err:
        Param(*args, help="").validate("here")
    assert str(err.value).startswith("here") and repr(args[0]) in str(err.value) and says in str(err.value)


def test_numeric_params_pass_and_keep_their_values():
    p = Param("dip", float, 1, 0.0, 2.0, "")
    p.validate("here")
    assert p.check(1, "here") == 1.0 and isinstance(p.check(1, "here"), float)
    with pytest.raises(ConfigError, match="expects float, got True"):
        p.check(True, "here")


def test_a_strategy_with_a_bool_param_is_refused_at_load(tmp_path, monkeypatch):
    pkg = tmp_path / "mystrats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "switch.py").write_text(
        "from backtest.rules import feature\nfrom backtest.strategy import Param\n"
        "NAME = 'switch'\nHELP = 'a strategy with a switch'\n"
        "PARAMS = (Param('flag', bool, True, 0, 1, 'on or off'),)\n"
        "def entry(p):\n    return feature('drawdown', window=20) <= -0.1\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nsynthetic = { seed = 7, symbols = 3, years = 1 }\n[strategy]\nname = 'mystrats.switch'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = run_cli("validate", cfg)
    code, err = r.returncode, r.stderr
    assert code == 2 and "'flag'" in err and "needs a number type" in err and "Traceback" not in err
