"""Snakemake adapter: a run's dev curve, its dev-chosen step, and that checkpoint on the chosen benchmarks."""

import json

from prefix_opd.data import write_csv
from prefix_opd.engines import run_sampling
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
files = dict(zip(sm.params.benchmarks, sm.input.benchmarks, strict=True))
curve_files, chosen_files = ({b: files[b] for b in names} for names in (sm.params.curve, sm.params.chosen))
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    curve, choice, chosen = run_sampling(  # in vLLM's own environment for eval.sampler: vllm (engines.py)
        sm.params.eval_cfg["sampler"], "evaluate.evaluate_run", sm.log[0], checkpoint_root=sm.input.checkpoints,
        curve_benchmarks=curve_files, chosen_benchmarks=chosen_files,
        dev=sm.params.dev, samples=sm.params.eval_cfg["samples"], eval_cfg=sm.params.eval_cfg,
        curve_dir=sm.output.curve_samples, chosen_dir=sm.output.chosen_samples, seed=sm.params.seed,
        threads=sm.threads)
write_csv(sm.output.curve, curve)
write_csv(sm.output.chosen_summary, chosen)
with open(sm.output.chosen, "w") as f:
    json.dump(choice, f, indent=1)
