"""Snakemake adapter: the accuracy-per-FLOP table of every schedule, fixed prefix, full OPD and SeqKD."""


from prefix_opd import efficiency
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
efficiency.write(sm.params.spec, (sm.output.csv, sm.output.md, sm.output.tex))
