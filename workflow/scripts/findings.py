"""Snakemake adapter: the paper's claims checked on this run's numbers."""

from prefix_opd import findings
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
findings.run(sm.params.config, sm.output.md, sm.output.csv)
