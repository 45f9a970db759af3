"""GPU check: native-backend OPD steps and one evaluation pass on the toy models.

Runs on CUDA in bf16 when a GPU is present, else on CPU in float32 (so CI keeps it working).
Needs the toy models and data (`results/models`, `results/data`, built by the workflow). Prints, for each
sampler (`hf` generate, then `torch`: qwen3_decode's KV-cache loop), rollout tokens/s, step time and the
evaluation suite's time, then peak GPU memory; under 5 minutes on one GPU.

    python tests/gpu/check.py [--steps 6] [--samplers hf torch] [--out results/bench/gpu_check.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from prefix_opd.evaluate import evaluate_checkpoint
from prefix_opd.runs import RunSpec, expand_runs
from prefix_opd.train import Trainer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32, help="prompts per step (x samples_per_prompt)")
    ap.add_argument("--out", default="results/bench/gpu_check.json")
    ap.add_argument("--samplers", nargs="+", default=["hf", "torch"], choices=["hf", "torch"])
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", "bfloat16") if cuda else ("cpu", "float32")
    config = yaml.safe_load(open("config/config.yaml"))
    settings = expand_runs(config)["large-opd-s0"].settings(config)
    settings["training"] |= {"dtype": dtype, "batch_prompts": args.batch}
    rollouts = args.batch * settings["training"]["samples_per_prompt"]
    report: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": dtype,
                    "torch": torch.__version__, "rollouts_per_step": rollouts}
    for sampler in args.samplers:  # the same steps (prompts, seeds) with each sampler
        settings["training"]["sampler"] = sampler
        trainer = Trainer(RunSpec.from_settings(settings), "results/data/opd_questions.jsonl",
                          "results/data/seqkd.jsonl", threads=2,
                          device=device)
        times, tokens = [], []
        for step in range(args.steps + 1):  # step 0 is the warm-up
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            result = trainer.step(step)
            if cuda:
                torch.cuda.synchronize()
            if step:
                times.append(time.perf_counter() - t0)
                tokens.append(result.response_tokens)
        report[sampler] = {"step_seconds_median": sorted(times)[len(times) // 2],
                           "rollout_tokens_per_s": sum(tokens) / sum(times)}
        del trainer
        eval_cfg = dict(config["eval"], sampler=sampler)
        benches = {b: f"results/data/benchmarks/{b}.jsonl" for b in config["benchmarks"]}
        t0 = time.perf_counter()
        summaries = evaluate_checkpoint(config["models"]["students"]["large"], benches, config["eval"]["samples"],
                                        eval_cfg, f"results/bench/gpu_check_eval_{sampler}", seed=0, threads=2)
        report[sampler]["eval_suite_seconds"] = time.perf_counter() - t0
        report[sampler]["eval_mean_at_k"] = {b: round(s["mean_at_k"], 3) for b, s in summaries.items()}
        print(sampler, json.dumps(report[sampler]), flush=True)
    if cuda:
        report["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
