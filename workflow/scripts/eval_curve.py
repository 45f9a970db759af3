"""Snakemake adapter: the dev set at every saved checkpoint of a run."""

from prefix_opd.data import write_csv
from prefix_opd.evaluate import evaluate_curve
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
names = sm.params.benchmarks
files = {b: f"results/data/benchmarks/{b}.jsonl" for b in names}
samples = {b: sm.params.eval_cfg["samples"][b] for b in names}
rows = evaluate_curve(sm.input.checkpoints, files, samples, sm.params.eval_cfg, sm.output.samples,
                      sm.params.seed, sm.threads)
write_csv(sm.output.curve, rows)
