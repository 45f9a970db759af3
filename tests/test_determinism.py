"""Two runs of config/ci.yaml with the same seed give identical tables."""

from __future__ import annotations

import pandas as pd
from workflow_helpers import copy_repo, run_snakemake

TARGETS = ["results/tables/table1.csv", "results/tables/table5.csv"]
TIMING = ["hours"]  # wall-clock time differs between runs by nature; everything else must not


def test_same_seed_same_tables(tmp_path):
    frames = []
    for i in range(2):
        repo = copy_repo(tmp_path / f"run{i}")
        result = run_snakemake(repo, *TARGETS, "--cores", "2", "--configfile", "config/ci.yaml", timeout=1500)
        assert result.returncode == 0, result.output[-3000:]
        frames.append([pd.read_csv(repo / t) for t in TARGETS])
    for a, b in zip(*frames, strict=True):
        pd.testing.assert_frame_equal(a.drop(columns=[c for c in TIMING if c in a]),
                                      b.drop(columns=[c for c in TIMING if c in b]))
