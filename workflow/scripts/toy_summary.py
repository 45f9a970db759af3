"""Snakemake adapter: accuracy and answer rate of the three toy models on every benchmark."""

from prefix_opd.logs import to_file
from prefix_opd.toy.summary import summarize_models

sm = snakemake  # noqa: F821
to_file(sm.log[0])
summarize_models(dict(zip(sm.params.names, sm.input.models, strict=True)),
                 {b: f for b, f in zip(sm.params.benchmarks, sm.input.benchmarks, strict=True)},
                 sm.params.eval_cfg, sm.output.csv, sm.output.samples, sm.params.seed, sm.threads)
