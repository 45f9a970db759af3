"""Snakemake adapter: the checkpoints of the lr sweep with matched dev accuracy (Table 4)."""

import json

import pandas as pd

from prefix_opd.logs import to_file
from prefix_opd.selection import matched_steps

sm = snakemake  # noqa: F821
to_file(sm.log[0])
curves = {run: pd.read_csv(path) for run, path in zip(sm.params.runs, sm.input.curves, strict=True)}
with open(sm.output[0], "w") as f:
    json.dump(matched_steps(curves, sm.params.dev, sm.params.tolerance), f, indent=1)
