"""Snakemake adapter: one of the paper's figures (png + pdf)."""

from prefix_opd import figures
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
figures.draw(sm.params.figure, sm.params.spec, sm.output.png)
