"""Where a warm `python -m backtest run configs/dip.toml` spends its CPU time, step by step
(docs/performance.md, "Warm run"). CPU time (time.process_time), so a loaded machine does not
inflate it. Run from the repository root with the kernels cached (run the config once first):

    PYTHONPATH=$PWD python benchmarks/warm_run_breakdown.py [CONFIG]
"""

import sys
import tempfile
import time

T = time.process_time
t0 = T()
marks = []


def mark(label):
    marks.append((label, T()))


import numpy  # noqa: E402,F401

mark("import numpy")
import pandas  # noqa: E402,F401

mark("import pandas")
import numba  # noqa: E402,F401

mark("import numba")
from backtest.config import load_config  # noqa: E402
from backtest.pipeline import load_market, prepare, run  # noqa: E402

mark("config, pipeline imports")
cfg = load_config(sys.argv[1] if len(sys.argv) > 1 else "configs/dip.toml")
market = load_market(cfg)
mark("market (the synthetic sample: read from its disk cache when warm)")
prep = prepare(cfg, market)
mark("prepare: strategy, align")
from backtest.features import compute_features  # noqa: E402

feats = compute_features(prep.panel, prep.plan.refs)
mark("features: first numba dispatch + cache loads")
from backtest.simulate import simulate  # noqa: E402

simulate(prep.panel, prep.plan, feats, cfg)
mark("simulate")
t_run = T()
out = run(cfg, market)
mark("run() again, all warm (features, simulate, stats, event study)")
from backtest.output import write_outputs  # noqa: E402

with tempfile.TemporaryDirectory() as d:
    write_outputs(out, d)
mark("write_outputs: tear sheet (SVG charts), CSV/JSON")
prev = t0
for label, t in marks:
    print(f"{label:58s} {t - prev:6.3f} s")
    prev = t
print(f"{'total (run() counted twice: subtract its second line for one run)':58s} {T() - t0:6.3f} s")
