"""Snakemake adapter: write the toy training pool (OpenThoughts3's record shape)."""

from prefix_opd.data import write_jsonl
from prefix_opd.logs import to_file
from prefix_opd.toy.world import make_pool

sm = snakemake  # noqa: F821
to_file(sm.log[0])
toy = sm.params.toy
write_jsonl(sm.output[0], make_pool(toy["pool_size"], toy["pool_lines"], toy["offpolicy_noise"],
                                    sm.params.seed, sm.params.prompts))
