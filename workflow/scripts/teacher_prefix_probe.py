"""Snakemake adapter: the teacher-prefix probe (Section 2.3, Fig. 3)."""

from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file
from prefix_opd.probe import run_probe

sm = snakemake  # noqa: F821
to_file(sm.log[0])
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    run_probe(sm.params.teacher, dict(sm.params.students), sm.input.dev, sm.params.probe, sm.params.eval_cfg,
              sm.params.seed, sm.output.csv, sm.output.solutions, sm.threads)
