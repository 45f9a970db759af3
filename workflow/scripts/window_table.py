"""Snakemake adapter: Table 3 (the masking-window ablation)."""


from prefix_opd import tables
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
tables.write_window_table(sm.params.spec, (sm.output.csv, sm.output.md, sm.output.tex))
