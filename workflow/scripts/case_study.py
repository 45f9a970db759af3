"""Snakemake adapter: the case study page (Section 4.4, Appendix A)."""

from prefix_opd.engines import run_sampling
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    run_sampling(  # in vLLM's own environment for eval.sampler: vllm (engines.py)
        sm.params.eval_cfg["sampler"], "case_study.run_case_study", sm.log[0], student=sm.params.student,
        base_dir=sm.params.base, teacher_dir=sm.params.teacher, run=sm.params.run,
        checkpoints_dir=sm.input.checkpoints, chosen_json=sm.input.chosen, solutions_path=sm.input.solutions,
        dev_path=sm.input.dev, dev=sm.params.dev, case_cfg=sm.params.case, answer_margin=sm.params.answer_margin,
        opd_prefix=sm.params.opd_prefix, eval_cfg=sm.params.eval_cfg, seed=sm.params.seed, out_md=sm.output[0],
        threads=sm.threads)
