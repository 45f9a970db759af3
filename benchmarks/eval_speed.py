"""Speed target: evaluating one checkpoint on the whole toy suite, on 2 cores (target <= 30 s).

Times `evaluate_checkpoint` (model load + every benchmark at the configured samples) on a toy model, the
median of `--repeats` runs, once per sampler (`hf`: transformers `generate`, the baseline; `torch`:
qwen3_decode's KV-cache loop; `fused`: fused_decode.c, the toy default), in this one process; writes
results/bench/eval_speed.csv and prints the speed-up of each sampler over the first.

    python benchmarks/eval_speed.py [--model results/models/student_large] [--threads 2] [--samplers hf torch fused]
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

TARGET_S = 30.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="results/models/student_large")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samplers", nargs="+", default=["hf", "torch", "fused"], choices=["hf", "torch", "fused"])
    args = ap.parse_args()
    config = yaml.safe_load(open("config/config.yaml"))
    files = {b: f"results/data/benchmarks/{b}.jsonl" for b in config["benchmarks"]}
    missing = [f for f in files.values() if not Path(f).is_file()]
    if missing or not Path(args.model, "config.json").is_file():
        raise SystemExit(f"eval_speed: {missing or args.model} missing: build the toy world first (snakemake "
                         "--cores all results/models/student_large results/data/benchmarks/math500.jsonl ...)")
    rollouts = sum(config["eval"]["samples"][b] * sum(1 for _ in open(f)) for b, f in files.items())
    rows = []
    for sampler in args.samplers:
        eval_cfg = dict(config["eval"], sampler=sampler)
        seconds = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                evaluate_checkpoint(args.model, files, config["eval"]["samples"], eval_cfg, out, 0, args.threads)
                seconds.append(time.perf_counter() - t0)
        median = statistics.median(seconds)
        rows.append({"sampler": sampler, "model": args.model, "rollouts": rollouts, "seconds_median": median,
                     "rollouts_per_s": rollouts / median, "seconds_all": " ".join(f"{s:.1f}" for s in seconds),
                     "threads": args.threads, "target_seconds": TARGET_S, "met": median <= TARGET_S,
                     "machine": platform.processor() or platform.machine(), "torch": torch.__version__})
    for row in rows:
        row["speedup_vs_" + rows[0]["sampler"]] = rows[0]["seconds_median"] / row["seconds_median"]
    Path("results/bench").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv("results/bench/eval_speed.csv", index=False)
    print(pd.DataFrame(rows).drop(columns=["model", "machine", "torch"]).to_string(index=False))
    print(f"configured sampler '{config['eval']['sampler']}': target <= {TARGET_S:.0f} s per checkpoint on the "
          f"whole toy suite")


if __name__ == "__main__":
    main()
