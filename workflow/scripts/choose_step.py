"""Snakemake adapter: pick a run's checkpoint on the dev set (Appendix E)."""

import json

import pandas as pd

from prefix_opd.logs import to_file
from prefix_opd.selection import choose_step

sm = snakemake  # noqa: F821
to_file(sm.log[0])
curve = pd.read_csv(sm.input.curve)
with open(sm.output[0], "w") as f:
    json.dump(choose_step(curve, sm.params.dev), f, indent=1)
