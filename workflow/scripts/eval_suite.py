"""Snakemake adapter: the full benchmark suite at one checkpoint."""

from pathlib import Path

from prefix_opd.data import write_csv
from prefix_opd.evaluate import evaluate_checkpoint
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
files = {Path(f).stem: f for f in sm.input.benchmarks}
out_dir = str(Path(sm.output.summary).parent)
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    summaries = evaluate_checkpoint(sm.params.model, files, sm.params.eval_cfg["samples"], sm.params.eval_cfg,
                                    out_dir, sm.params.seed, sm.threads)
write_csv(sm.output.summary, list(summaries.values()))
