"""Snakemake adapter: write one toy benchmark stand-in."""

from prefix_opd.data import write_jsonl
from prefix_opd.logs import to_file
from prefix_opd.toy.world import make_benchmark

sm = snakemake  # noqa: F821
to_file(sm.log[0])
write_jsonl(sm.output[0], make_benchmark(sm.wildcards.bench, sm.params.spec, sm.params.seed, sm.params.prompts))
