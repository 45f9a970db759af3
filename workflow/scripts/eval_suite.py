"""Snakemake adapter: the full benchmark suite at one checkpoint."""

from pathlib import Path

from prefix_opd.data import write_csv
from prefix_opd.engines import run_sampling
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
files = {Path(f).stem: f for f in sm.input.benchmarks}
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    summaries = run_sampling(  # in vLLM's own environment for eval.sampler: vllm (engines.py)
        sm.params.eval_cfg["sampler"], "evaluate.evaluate_checkpoint", sm.log[0], model_dir=sm.params.model,
        benchmarks=files, samples=sm.params.eval_cfg["samples"], eval_cfg=sm.params.eval_cfg,
        out_dir=str(Path(sm.output.summary).parent), seed=sm.params.seed, threads=sm.threads)
write_csv(sm.output.summary, list(summaries.values()))
