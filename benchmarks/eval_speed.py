"""Issue 4's speed target: evaluating one checkpoint on the whole toy suite, on 2 cores (target <= 30 s).

Times `evaluate_checkpoint` (model load + every benchmark at the configured samples) on a toy model,
the median of `--repeats` runs; writes results/bench/eval_speed.csv.

    python benchmarks/eval_speed.py [--model results/models/student_large] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from prefix_opd.evaluate import evaluate_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="results/models/student_large")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    config = yaml.safe_load(open("config/config.yaml"))
    files = {b: f"results/data/benchmarks/{b}.jsonl" for b in config["benchmarks"]}
    seconds = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            evaluate_checkpoint(args.model, files, config["eval"]["samples"], config["eval"], out, 0, args.threads)
            seconds.append(time.perf_counter() - t0)
    rollouts = sum(config["eval"]["samples"][b] * sum(1 for _ in open(f)) for b, f in files.items())
    row = {"model": args.model, "rollouts": rollouts, "seconds_median": statistics.median(seconds),
           "seconds_all": " ".join(f"{s:.1f}" for s in seconds), "threads": args.threads, "target_seconds": 30,
           "met": statistics.median(seconds) <= 30, "machine": platform.processor() or platform.machine(),
           "torch": torch.__version__}
    Path("results/bench").mkdir(parents=True, exist_ok=True)
    pd.DataFrame([row]).to_csv("results/bench/eval_speed.csv", index=False)
    print(pd.DataFrame([row]).to_string(index=False))


if __name__ == "__main__":
    main()
