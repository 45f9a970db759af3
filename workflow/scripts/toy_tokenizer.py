"""Snakemake adapter: save the toy world's tokenizer."""

from prefix_opd.logs import to_file
from prefix_opd.toy.tokenizer import save_tokenizer

to_file(snakemake.log[0])  # noqa: F821
save_tokenizer(snakemake.output[0])  # noqa: F821
