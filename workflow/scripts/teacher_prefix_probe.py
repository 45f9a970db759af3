"""Snakemake adapter: the teacher-prefix probe (Section 2.3, Fig. 3)."""

from prefix_opd.engines import run_sampling
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    run_sampling(  # in vLLM's own environment for eval.sampler: vllm (engines.py)
        sm.params.eval_cfg["sampler"], "probe.run_probe", sm.log[0], teacher_dir=sm.params.teacher,
        students=dict(sm.params.students), dev_path=sm.input.dev, probe_cfg=sm.params.probe,
        eval_cfg=sm.params.eval_cfg, seed=sm.params.seed, csv_out=sm.output.csv, solutions_out=sm.output.solutions,
        threads=sm.threads)
