"""Snakemake adapter: Table 5 or 6 (the dev-chosen checkpoint of every run of one student)."""

import json
from pathlib import Path

import pandas as pd

from prefix_opd import tables
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
rows = [{"run": run, **json.loads(Path(p).read_text())} for run, p in zip(sm.params.runs, sm.input.chosen, strict=True)]
frame = pd.DataFrame(rows)[["run", "step", "dev_benchmark", "dev_mean_at_k"]]
title = f"Table {sm.wildcards.table}: checkpoint chosen on the dev set for each run"
md = f"### {title}\n\n" + frame.to_markdown(index=False, floatfmt=".3f") + "\n"
tables.write_table(frame, (sm.output.csv, sm.output.md, sm.output.tex), md, frame.to_latex(index=False, caption=title))
