"""Snakemake adapter: a run's dev curve, its dev-chosen step, and that checkpoint on the chosen benchmarks."""

import json

from prefix_opd.data import write_csv
from prefix_opd.evaluate import evaluate_run
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
files = dict(zip(sm.params.benchmarks, sm.input.benchmarks, strict=True))
with gpu_lease(int(sm.resources.get("gpu", 0))):  # disjoint GPU ids for concurrent jobs (gpus.py)
    curve, choice, chosen = evaluate_run(
        sm.input.checkpoints, {b: files[b] for b in sm.params.curve}, {b: files[b] for b in sm.params.chosen},
        sm.params.dev, sm.params.eval_cfg["samples"], sm.params.eval_cfg, sm.output.curve_samples,
        sm.output.chosen_samples, sm.params.seed, sm.threads)
write_csv(sm.output.curve, curve)
write_csv(sm.output.chosen_summary, chosen)
with open(sm.output.chosen, "w") as f:
    json.dump(choice, f, indent=1)
