"""Every script in docs/examples/ runs to the end (exit 0) from a clean working directory."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


def test_there_are_examples():
    assert any(p.name == "walkthrough.py" for p in EXAMPLES)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{script.name} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
