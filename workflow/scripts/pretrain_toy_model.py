"""Snakemake adapter: pretrain one toy model."""

from prefix_opd.logs import to_file
from prefix_opd.toy.pretrain import pretrain

sm = snakemake  # noqa: F821
to_file(sm.log[0])
pretrain(sm.params.spec, sm.params.toy, sm.params.prompts, sm.input.tokenizer, sm.output[0], sm.params.seed,
         sm.threads, init_from=sm.input.get("init"))
