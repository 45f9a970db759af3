"""Snakemake adapter: Table 4 (learning rate vs out-of-domain accuracy at matched dev accuracy)."""

import json
from pathlib import Path

from prefix_opd import tables
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
match = json.loads(Path(sm.input.match).read_text())
tables.write_lr_table(sm.params.spec, match, (sm.output.csv, sm.output.md, sm.output.tex))
