"""Snakemake adapter: train one run (resumes from its work folder)."""

import yaml

from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file
from prefix_opd.train import train

sm = snakemake  # noqa: F821
to_file(sm.log[0])
settings = yaml.safe_load(open(sm.input.settings))
with gpu_lease(sm.resources.get("gpu", 0)) as device:
    train(settings, sm.input.questions, sm.input.seqkd, sm.params.work, f"results/runs/{sm.wildcards.run}",
          threads=sm.threads, device=device)
