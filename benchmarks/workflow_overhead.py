"""Snakemake's own overhead.

(a) a no-op `snakemake` after a complete default run (target: <= 5 s), (b) a dry run of
config/paper.yaml (target: <= 10 s). Each is the median of 3 runs; written to
results/bench/workflow_overhead.csv.

    python benchmarks/workflow_overhead.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

CASES = {
    "noop_after_complete_run": ["--cores", "2"],
    "dry_run_paper_config": ["-n", "--configfile", "config/paper.yaml"],
}
TARGETS = {"noop_after_complete_run": 5.0, "dry_run_paper_config": 10.0}


def timed(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--nolock", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0, proc.stdout + proc.stderr


def slurm_installed_but_down() -> bool:
    """Slurm's client is here but no controller answers: every `snakemake` call then waits ~10 s while the
    slurm executor plugin loads (its `scontrol show config` retries the controller)."""
    if shutil.which("scontrol") is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30).returncode != 0


def main() -> None:
    if slurm_installed_but_down():
        print("warning: Slurm is installed but its controller is down, which adds ~10 s to every snakemake call; "
              "start it first (bash tests/slurm/start.sh) or the figures below measure that wait")
    rows = []
    for case, args in CASES.items():
        runs = [timed(args) for _ in range(3)]
        if case.startswith("noop") and "Nothing to be done" not in runs[0][1]:
            print(f"warning: {case}: the workflow is not complete, so this is not a no-op run")
        seconds = statistics.median(t for t, _ in runs)
        rows.append({"case": case, "seconds": round(seconds, 2), "target_seconds": TARGETS[case],
                     "met": seconds <= TARGETS[case]})
    frame = pd.DataFrame(rows)
    Path("results/bench").mkdir(parents=True, exist_ok=True)
    frame.to_csv("results/bench/workflow_overhead.csv", index=False)
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
