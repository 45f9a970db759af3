"""Snakemake adapter: sample the OPD questions and the SeqKD examples (toy pool or OpenThoughts3)."""

from prefix_opd.data import sample_training_data
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
sample_training_data(sm.params.data, sm.input.get("pool"), sm.output.questions, sm.output.seqkd, sm.params.seed)
