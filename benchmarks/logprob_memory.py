"""Peak host memory of full-vocabulary computations: naive (whole [tokens, V] logits) vs chunked.

Cases (bf16 hidden states and output weight, hidden size 64, Qwen3 vocabulary 151,936):

* ``logprob``: per-token log-probs of sampled tokens at 16,384 tokens (one long response), as used by
  the OPD / SFT losses. naive = ``log_softmax(h @ W^T)`` in bf16 then ``gather``;
  chunked = ``prefix_opd.losses.chunked_token_logprobs`` (float32 normaliser).
* ``kl``: GKD full-vocabulary reverse KL (beta = 1) at 4,096 tokens between a student and a teacher.
  naive = bf16 logits of both, float32 ``log_softmax``, ``sum q (log q - log p)``;
  chunked = ``prefix_opd.losses.chunked_full_vocab_kl``.

By default each case runs the forward pass with autograd recording (what a training step holds
before its backward); ``--passes fwdbwd`` adds the backward (slower: ~3.5 min on 2 CPU cores, and the
naive log-prob case then needs roughly 20 GB).

Method of measurement: every (case, method) runs in its own fresh subprocess (this script re-invoked
with ``--worker``). The worker allocates the inputs, runs a tiny warm-up of the same code path (so
that lazily initialised kernels and thread pools are not counted), then reads its current resident
set size from ``/proc/self/statm`` as the baseline. After the measured computation it reads the
lifetime peak resident set size ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux) and
reports ``peak_mb = (ru_maxrss - baseline) / 2^20``: the extra memory that the computation needed on
top of its inputs. No tracemalloc (it does not see torch's allocator).

Writes ``results/bench/logprob_memory.csv`` (columns ``case, method, tokens, vocab, hidden, dtype,
passes, chunk_tokens, peak_mb, ratio_to_naive, seconds, machine, torch_version``) and prints a table
and whether the target ``chunked <= naive / 4`` is met for each case.

Usage: ``python benchmarks/logprob_memory.py [--passes fwd|fwdbwd] [--cases logprob kl] [--out PATH]``
(default: about 1.5 minutes and ~12 GB RAM on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

VOCAB = 151_936
HIDDEN = 64
CASES = {"logprob": 16_384, "kl": 4_096}
CHUNK_TOKENS = 1024
TARGET_RATIO = 0.25
REPO = Path(__file__).resolve().parents[1]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}; {os.cpu_count()} cpus; {platform.system()}"


def worker(case: str, method: str, tokens: int, passes: str, chunk_tokens: int) -> dict:
    """Run one measurement in this (fresh) process and return its figures."""
    sys.path.insert(0, str(REPO / "src"))
    import torch

    from prefix_opd.losses import chunked_full_vocab_kl, chunked_token_logprobs

    torch.manual_seed(0)
    dt = torch.bfloat16

    def make(n: int):
        s_h = torch.randn(1, n, HIDDEN, dtype=dt).requires_grad_(True)
        t_h = torch.randn(1, n, HIDDEN, dtype=dt)
        tgt = torch.randint(0, VOCAB, (1, n))
        return s_h, t_h, tgt

    s_w = (0.5 * torch.randn(VOCAB, HIDDEN, dtype=dt)).requires_grad_(True)
    t_w = 0.5 * torch.randn(VOCAB, HIDDEN, dtype=dt)

    def run(s_h, t_h, tgt):
        n = tgt.shape[1]
        if case == "logprob":
            if method == "naive":
                out = torch.log_softmax(s_h @ s_w.T, dim=-1).gather(-1, tgt[..., None]).squeeze(-1)
            else:
                out = chunked_token_logprobs(s_h, s_w, tgt, chunk_tokens=chunk_tokens)
            loss = -out.float().sum() / n
        else:
            if method == "naive":
                log_q = torch.log_softmax((s_h @ s_w.T).float(), dim=-1)
                with torch.no_grad():
                    log_p = torch.log_softmax((t_h @ t_w.T).float(), dim=-1)
                loss = (log_q.exp() * (log_q - log_p)).sum() / n
            else:
                mask = torch.ones(1, n, dtype=torch.bool)
                loss, _ = chunked_full_vocab_kl(
                    s_h, s_w, t_h, t_w, mask, 1, float(n), chunk_tokens=chunk_tokens
                )
        if passes == "fwdbwd":
            loss.backward()
        return float(loss.detach())

    run(*make(8))  # warm-up: kernels, thread pools, allocator arenas
    s_w.grad = None
    inputs = make(tokens)
    baseline = _rss_bytes()
    start = time.perf_counter()
    loss = run(*inputs)
    seconds = time.perf_counter() - start
    peak = _peak_bytes() - baseline
    return {
        "case": case,
        "method": method,
        "tokens": tokens,
        "vocab": VOCAB,
        "hidden": HIDDEN,
        "dtype": "bfloat16",
        "passes": passes,
        "chunk_tokens": chunk_tokens if method == "chunked" else "",
        "peak_mb": round(peak / 2**20, 1),
        "seconds": round(seconds, 2),
        "loss": loss,
        "machine": _machine(),
        "torch_version": torch.__version__,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", choices=["fwd", "fwdbwd"], default="fwd")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--chunk-tokens", type=int, default=CHUNK_TOKENS)
    ap.add_argument("--out", default=str(REPO / "results/bench/logprob_memory.csv"))
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        case, method = args.worker
        print(json.dumps(worker(case, method, CASES[case], args.passes, args.chunk_tokens)))
        return 0

    rows = []
    for case in args.cases:
        for method in ("naive", "chunked"):
            cmd = [sys.executable, __file__, "--worker", case, method, "--passes", args.passes]
            cmd += ["--chunk-tokens", str(args.chunk_tokens)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"worker {case}/{method} failed with code {proc.returncode}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    naive = {r["case"]: r["peak_mb"] for r in rows if r["method"] == "naive"}
    for r in rows:
        r["ratio_to_naive"] = round(r["peak_mb"] / naive[r["case"]], 4)

    cols = ["case", "method", "tokens", "vocab", "hidden", "dtype", "passes", "chunk_tokens", "peak_mb"]
    cols += ["ratio_to_naive", "seconds", "machine", "torch_version"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    print(f"machine: {rows[0]['machine']}; torch {rows[0]['torch_version']}; passes: {args.passes}")
    print(
        f"{'case':8} {'method':8} {'tokens':>7} {'vocab':>7} {'chunk':>6} "
        f"{'peak_mb':>9} {'ratio':>7} {'sec':>7}"
    )
    for r in rows:
        print(
            f"{r['case']:8} {r['method']:8} {r['tokens']:>7} {r['vocab']:>7} {r['chunk_tokens']!s:>6} "
            f"{r['peak_mb']:>9.1f} {r['ratio_to_naive']:>7.3f} {r['seconds']:>7.2f}"
        )
    all_met = True
    for r in rows:
        if r["method"] == "chunked":
            met = r["ratio_to_naive"] <= TARGET_RATIO
            all_met &= met
            print(
                f"target chunked <= naive/4 for {r['case']}: {'MET' if met else 'NOT MET'} "
                f"(ratio {r['ratio_to_naive']:.3f})"
            )
    print(f"wrote {out}")
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
