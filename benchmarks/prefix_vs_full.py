"""Per-step wall time and FLOPs of prefix OPD against full OPD on the toy world.

Same student, teacher, prompts, batch and threads in one process; the median of `--steps` steps after a
warm-up step for each L_train. The measured speed-up should track the FLOP ratio; both are printed and
written to results/bench/prefix_vs_full.csv. Needs the toy models and data (`make run` or
`snakemake results/data/opd_questions.jsonl results/models/teacher`).

    python benchmarks/prefix_vs_full.py [--lengths 4 8 16 32 256] [--steps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from prefix_opd import methods
from prefix_opd.runs import RunSpec, expand_runs
from prefix_opd.train import Trainer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", type=int, nargs="+", default=[4, 8, 16, 32, 256])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--student", default="large")
    args = ap.parse_args()
    config = yaml.safe_load(open("config/config.yaml"))
    base = expand_runs(config)[f"{args.student}-opd-s0"].settings(config)
    rows = []
    for length in args.lengths:
        settings = dict(base, method="opd_prefix", l_train=length, name=f"bench-prefix{length}")
        trainer = Trainer(RunSpec.from_settings(settings), "results/data/opd_questions.jsonl",
                          "results/data/seqkd.jsonl", args.threads)
        seconds, flops, tokens = [], [], []
        for step in range(args.steps + 1):
            t0 = time.perf_counter()
            result = trainer.step(step, methods.generation_length(trainer.spec, step))
            if step:  # step 0 is the warm-up
                seconds.append(time.perf_counter() - t0)
                flops.append(trainer.step_flops(result.seq_lens))
                tokens.append(result.response_tokens)
        rows.append({"l_train": length, "step_seconds": statistics.median(seconds),
                     "step_flops": statistics.median(flops), "response_tokens": statistics.median(tokens)})
    frame = pd.DataFrame(rows)
    full = frame[frame["l_train"] == max(args.lengths)].iloc[0]
    frame["speedup_vs_full"] = full["step_seconds"] / frame["step_seconds"]
    frame["flop_ratio_vs_full"] = full["step_flops"] / frame["step_flops"]
    frame["machine"] = f"{platform.machine()} {torch.get_num_threads()} threads"
    frame["torch"] = torch.__version__
    Path("results/bench").mkdir(parents=True, exist_ok=True)
    frame.to_csv("results/bench/prefix_vs_full.csv", index=False)
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
