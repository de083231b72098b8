"""The sweep's plain-line progress (the first-run compile notice: tests/test_precompile.py)."""

import io
import sys

from backtest import sweep


def test_plain_progress_lines_when_not_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = sweep._progress(1000, 0, True)
    assert isinstance(bar, sweep._Lines)
    bar.every = 0.0  # every update prints
    bar.update(250)
    bar.update(750)
    bar.close()
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("sweep: 250 of 1,000 combinations (25%)")
    assert lines[-1].startswith("sweep: 1,000 of 1,000 combinations (100%)")
    quiet = sweep._progress(1000, 0, False)
    quiet.update(5)
    quiet.close()
    assert len(err.getvalue().splitlines()) == len(lines)
