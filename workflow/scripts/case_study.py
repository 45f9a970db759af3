"""Snakemake adapter: the case study page (Section 4.4, Appendix A)."""

from prefix_opd.case_study import run_case_study
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    run_case_study(sm.params.student, sm.params.base, sm.params.teacher, sm.params.run, sm.input.checkpoints,
                   sm.input.chosen, sm.input.solutions, sm.input.dev, sm.params.dev, sm.params.case,
                   sm.params.answer_margin, sm.params.opd_prefix, sm.params.eval_cfg, sm.params.seed, sm.output[0],
                   sm.threads)
