"""Snakemake adapter: one hub model at its pinned revision into results/models/hub/<owner>--<name>."""

from prefix_opd.hub import download
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
download(sm.params.repo_id, sm.params.revision, sm.output[0])
