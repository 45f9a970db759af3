"""Standing checks: `snakemake --lint` is clean, ruff is clean, and the shipped configs pass validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from engine_fixtures import merged_config

from prefix_opd.validate import check_config

ROOT = Path(__file__).resolve().parents[1]


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--nolock"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in out, out[-3000:]


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "workflow/scripts", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize("name", ["config.yaml", "ci.yaml"])
def test_shipped_toy_configs_are_valid(name):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text()) if name == "config.yaml" else merged_config()
    check_config(config, name)
