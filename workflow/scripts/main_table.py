"""Snakemake adapter: Table 1 or 2 (main results for one student)."""

from prefix_opd import tables
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
table = int(sm.wildcards.table)
rows = sm.params.rows
paper = tables.paper_reference(table)
ours = tables.main_table(rows, tables.read_chosen(sm.input.chosen), paper["student"].iloc[0], table)
title = f"Table {table}: mean accuracy and training cost, student '{sm.params.student}'"
tables.write_table(ours, (sm.output.csv, sm.output.md, sm.output.tex), tables.to_markdown(ours, paper, title),
                   tables.to_latex(ours, title))
