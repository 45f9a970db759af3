"""Snakemake adapter: one paper benchmark from the Hub, in the toy world's record format."""

import logging
import sys

from prefix_opd.benchmarks import BenchmarkSourceError, prepare_benchmark
from prefix_opd.data import write_jsonl
from prefix_opd.logs import to_file

sm = snakemake  # noqa: F821
to_file(sm.log[0])
try:
    records = prepare_benchmark(sm.wildcards.bench, sm.params.source, sm.params.prompts, sm.params.seed)
except BenchmarkSourceError as err:  # one line, in the log and on the console
    logging.getLogger("prepare_benchmark").error("%s", err)
    print(f"prepare_benchmark {sm.wildcards.bench}: {err}", file=sys.__stderr__)
    sys.exit(1)
write_jsonl(sm.output[0], records)
