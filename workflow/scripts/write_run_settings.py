"""Snakemake adapter: write a run's effective settings (the training job's input)."""

import yaml

from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
with open(sm.output[0], "w") as f:
    yaml.safe_dump(dict(sm.params.settings), f, sort_keys=True)
