"""OPD step throughput of the native engine against TRL 1.16's DistillationTrainer.

Throughput = generated response tokens per second over the WHOLE step (on-policy sampling, teacher scoring,
backward, clipping and the AdamW update). Both engines get the same toy teacher and student
(results/models/teacher, results/models/student_large), the same prompts in the same order (the native
engine's per-step slices of results/data/opd_questions.jsonl, each prompt repeated `samples_per_prompt`
times for TRL), the same batch (batch_prompts x samples_per_prompt rollouts), the same `max_new_tokens`
(training.l_max), temperature 1.0, top_p 1.0, top_k off, the same stop tokens, fp32, the same learning rate,
AdamW betas, weight decay and gradient clip, and the same torch thread count.

* native: `prefix_opd.train.Trainer.step` of run `large-opd-s0` (Hugging Face `generate` with the KV cache, then
  per-token reverse KL on the sampled tokens, the paper's OPD loss).
* trl: `trl.DistillationTrainer` (TRL 1.16 stable API): fully on-policy (it always samples its own
  completions, one per dataset row: there is no lambda), `beta=1` = reverse KL over the full vocabulary,
  sampled with its own transformers `generate` path (`use_vllm=False`). Its default gradient checkpointing is
  turned off (the native engine does not recompute activations either), which can only make TRL faster.
  Step time is taken between its `on_step_begin` and `on_step_end` callbacks: generation, loss, backward,
  clipping and the optimiser step; dataloading and logging are outside. Rollout tokens are counted as ours:
  the completion tokens up to and including the first stop token.

Each engine runs in its own subprocess: the native one with this interpreter, TRL with `.venv-trl/bin/python`
(envs/trl.txt; TRL never enters the main venv). Both load their models at the same time, then take turns in
lock-step: native step k, then TRL step k, each started only while the other waits idle at its gate, so they
never share the CPU and a drift of the machine's speed (up to 1.5x between minutes on the shared 2-core machine)
hits both alike. Each reports the median of `--steps` steps after one warm-up step. Writes
results/bench/opd_vs_trl.csv and prints the ratio and whether the target (native >= 2x TRL's tokens/s) is met.

If results/models/{teacher,student_large} or the prompts are missing, random-initialised Qwen3 models of the
configured toy shapes (`toy.models`) and a fresh toy question pool stand in; the CSV's `models` and `prompts`
columns say so.

    python benchmarks/opd_vs_trl.py [--steps 7] [--threads 1] [--lr 0] [--trl-python .venv-trl/bin/python]

One thread is the default, as the workflow's `train` rule uses: on a shared 2-core machine, 2 threads per process
made `generate` up to 30x slower and swing by 5x between runs (OpenMP threads waiting on each other's cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = 2.0
REPLY_FD = "OPD_BENCH_REPLY_FD"  # the worker's end of the pipe on which it tells the driver "ready" / "done"


class Gate:
    """A worker's side of the lock-step turns: say `ready`, wait for the driver's go (a line on stdin), run one
    step, say `done`. Without the driver's pipe (a worker run by hand) it never waits."""

    def __init__(self) -> None:
        fd = os.environ.get(REPLY_FD)
        self.reply = os.fdopen(int(fd), "w", buffering=1) if fd else None

    def wait(self) -> None:
        if self.reply:
            self.reply.write("ready\n")
            sys.stdin.readline()

    def done(self) -> None:
        if self.reply:
            self.reply.write("done\n")


# ------------------------------------------------------------------------------------------- preparation
def _model_ready(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def _random_model(folder: Path, spec: dict[str, Any], seed: int) -> None:
    import torch
    from transformers import Qwen3ForCausalLM

    from prefix_opd.toy.pretrain import model_config
    from prefix_opd.toy.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    Qwen3ForCausalLM(model_config(spec, len(tokenizer), tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Everything both workers need, resolved once: settings, model paths and each step's prompt rows."""
    from types import SimpleNamespace

    import yaml

    from prefix_opd.data import write_jsonl
    from prefix_opd.models import build_prompt, encode_prompt, load_tokenizer, stop_token_ids
    from prefix_opd.runs import expand_runs
    from prefix_opd.toy.world import make_pool
    from prefix_opd.train import Trainer, read_jsonl

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    settings = expand_runs(config)[args.run].settings(config)
    if args.lr is not None:
        settings["lr"] = args.lr
    paths = {"teacher": ROOT / settings["teacher_path"], "student": ROOT / settings["student_path"]}
    if all(_model_ready(p) for p in paths.values()):
        models = f"{settings['student_path']} + {settings['teacher_path']} (trained toy models)"
        for role, path in list(paths.items()):  # a private copy: a concurrent workflow run may rebuild them
            paths[role] = Path(shutil.copytree(path, work / role))
    else:
        shapes = config["toy"]["models"]
        student_key = Path(settings["student_path"]).name
        for seed, (role, key) in enumerate((("teacher", "teacher"), ("student", student_key))):
            paths[role] = work / role
            _random_model(paths[role], shapes[key], seed + 1)
        models = f"random-init Qwen3 of toy shapes {student_key} + teacher (results/models missing)"
    settings["teacher_path"], settings["student_path"] = str(paths["teacher"]), str(paths["student"])

    questions = ROOT / "results" / "data" / "opd_questions.jsonl"
    if questions.is_file():
        prompts = "results/data/opd_questions.jsonl"
    else:
        toy = config["toy"]
        questions = work / "questions.jsonl"
        write_jsonl(questions, make_pool(config["data"]["opd_questions"], toy["pool_lines"], 0.0, config["seed"],
                                         config["prompts"]))
        prompts = "toy pool generator (results/data/opd_questions.jsonl missing)"
    records = read_jsonl(questions)
    tokenizer = load_tokenizer(settings["student_path"])
    t = settings["training"]
    view = SimpleNamespace(t=t, s=settings, records=records)
    steps = []
    for step in range(args.steps + 1):  # the same slices the native Trainer takes at each step
        idx = Trainer.batch_indices(view, step)
        rows = [records[i]["prompt"] for i in idx for _ in range(t["samples_per_prompt"])]
        steps.append({"texts": [build_prompt(tokenizer, r) for r in rows],
                      "ids": [encode_prompt(tokenizer, r) for r in rows]})
    return {"settings": settings, "questions": str(questions), "threads": args.threads, "steps": args.steps,
            "batch_prompts": t["batch_prompts"], "samples_per_prompt": t["samples_per_prompt"],
            "max_new_tokens": t["l_max"], "temperature": 1.0, "top_p": 1.0,
            "stop_ids": stop_token_ids(tokenizer), "pad_id": tokenizer.pad_token_id, "step_rows": steps,
            "models": models, "prompts": prompts, "work": str(work)}


# ------------------------------------------------------------------------------------------- workers
def native_worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import transformers

    from prefix_opd import methods
    from prefix_opd.runs import RunSpec
    from prefix_opd.train import Trainer

    trainer = Trainer(RunSpec.from_settings(spec["settings"]), spec["questions"], spec["questions"], spec["threads"])
    gate = Gate()
    seconds, tokens, longest = [], [], []
    for step in range(spec["steps"] + 1):
        expected = spec["step_rows"][step]["ids"][:: spec["samples_per_prompt"]]
        if [trainer.prompts[i] for i in trainer.batch_indices(step)] != expected:
            raise RuntimeError(f"native step {step}: prompts differ from the prepared ones")
        gate.wait()
        t0 = time.perf_counter()
        result = trainer.step(step, methods.generation_length(trainer.spec, step))
        seconds.append(time.perf_counter() - t0)
        gate.done()
        tokens.append(result.response_tokens)
        prompt_lens = [len(p) for p in spec["step_rows"][step]["ids"]]
        longest.append(max(n - p for n, p in zip(result.seq_lens, prompt_lens, strict=True)))
    sampler = spec["settings"]["training"]["sampler"]
    return {"seconds": seconds, "tokens": tokens, "longest": longest, "torch_threads": torch.get_num_threads(),
            "implementation": f"prefix_opd.train.Trainer.step ({sampler} sampler + sampled-token reverse KL, OPD loss)",
            "versions": f"torch {torch.__version__}; transformers {transformers.__version__}", "note": ""}


def trl_worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DistillationConfig, DistillationTrainer

    from prefix_opd.runs import training_seed

    torch.set_num_threads(spec["threads"])
    s, t = spec["settings"], spec["settings"]["training"]
    tokenizer = AutoTokenizer.from_pretrained(s["student_path"], padding_side="left")
    for step, rows in enumerate(spec["step_rows"]):  # TRL tokenises the prompt text itself: check it agrees
        if tokenizer(rows["texts"])["input_ids"] != rows["ids"]:
            raise RuntimeError(f"trl step {step}: TRL's prompt tokens differ from the native engine's")

    def load(path: str) -> torch.nn.Module:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, t["dtype"]), attn_implementation="sdpa")
        model.generation_config.eos_token_id = list(spec["stop_ids"])  # the native engine's stop tokens
        model.generation_config.pad_token_id = spec["pad_id"]
        return model

    student, teacher = load(s["student_path"]), load(s["teacher_path"])
    per_step = spec["batch_prompts"] * spec["samples_per_prompt"]
    texts = [text for rows in spec["step_rows"] for text in rows["texts"]]
    config = DistillationConfig(
        output_dir=str(Path(spec["work"]) / "trl"), max_steps=spec["steps"] + 1, per_device_train_batch_size=per_step,
        gradient_accumulation_steps=1, shuffle_dataset=False, seed=training_seed(s),
        max_completion_length=spec["max_new_tokens"], temperature=spec["temperature"], top_p=spec["top_p"], top_k=0,
        beta=1.0, use_vllm=False, learning_rate=s["lr"], lr_scheduler_type="constant", warmup_steps=0,
        optim="adamw_torch", adam_beta1=t["betas"][0], adam_beta2=t["betas"][1], weight_decay=t["weight_decay"],
        max_grad_norm=t["grad_clip"], bf16=False, fp16=False, use_cpu=True, gradient_checkpointing=False,
        report_to="none", save_strategy="no", logging_steps=10**6, disable_tqdm=True, dataloader_num_workers=0,
    )

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.t0, self.seconds, self.gate = 0.0, [], Gate()

        def on_step_begin(self, *_: Any, **__: Any) -> None:
            self.gate.wait()
            self.t0 = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            self.seconds.append(time.perf_counter() - self.t0)
            self.gate.done()

    class Counted(DistillationTrainer):
        """DistillationTrainer unchanged; it only records each step's rollout tokens and checks its prompts."""

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            step = len(tokens)
            if [x["prompt"] for x in inputs] != spec["step_rows"][step]["texts"]:
                raise RuntimeError(f"trl step {step}: prompts differ from the prepared ones")
            out = super()._generate_and_score_completions(inputs)
            tokens.append(int(out["completion_mask"].sum()))
            longest.append(int(out["completion_mask"].sum(1).max()))
            return out

    timer, tokens, longest = Timer(), [], []
    trainer = Counted(model=student, teacher_model=teacher, args=config, processing_class=tokenizer,
                      train_dataset=Dataset.from_dict({"prompt": texts}), callbacks=[timer])
    trainer.train()
    if len(timer.seconds) != spec["steps"] + 1 or len(tokens) != spec["steps"] + 1:
        raise RuntimeError(f"trl ran {len(timer.seconds)} steps, generated {len(tokens)} batches")
    return {"seconds": timer.seconds, "tokens": tokens, "longest": longest, "torch_threads": torch.get_num_threads(),
            "implementation": "trl.DistillationTrainer (transformers generate, beta=1 full-vocab reverse KL, "
                              "gradient_checkpointing=False)",
            "versions": f"torch {torch.__version__}; transformers {transformers.__version__}; trl {trl.__version__}",
            "note": "DistillationTrainer has no lambda (always on-policy, one completion per row): each prompt is "
                    "repeated samples_per_prompt times in its dataset, unshuffled, to give the native batch"}


# ------------------------------------------------------------------------------------------- driver
def run_lockstep(pythons: dict[str, str], spec_path: Path, threads: int, steps: int, timeout: int
                 ) -> dict[str, dict[str, Any]]:
    """Start one worker per engine, then give them turns: for each step, each engine in order runs its step
    while every other worker waits at its gate. Returns each worker's result (its JSON file)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TOKENIZERS_PARALLELISM="false")
    workers = {}
    t0 = time.perf_counter()
    for engine, python in pythons.items():
        read_fd, write_fd = os.pipe()
        log = open(spec_path.with_name(f"{engine}.log"), "w+")
        cmd = [python, str(Path(__file__).resolve()), "--worker", engine, "--spec", str(spec_path),
               "--result", str(spec_path.with_name(f"{engine}.json"))]
        proc = subprocess.Popen(cmd, env=dict(env, **{REPLY_FD: str(write_fd)}), cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT, text=True, pass_fds=(write_fd,))
        os.close(write_fd)
        workers[engine] = (proc, read_fd, log)

    def expect(engine: str, word: str) -> None:
        proc, reply_fd, log = workers[engine]
        line = b""
        while not line.endswith(b"\n"):  # byte by byte on the raw pipe: nothing read ahead of select's back
            if not select.select([reply_fd], [], [], timeout)[0]:
                line += b" (timed out)\n"
                break
            byte = os.read(reply_fd, 1)
            line += byte or b" (worker exited)\n"
        said = line.strip().decode()
        if said != word:
            proc.kill()
            log.seek(0)
            raise RuntimeError(f"{engine} worker: expected {word!r}, got {said!r} (rc {proc.poll()}):\n"
                               f"{log.read()[-4000:]}")

    for engine in workers:
        expect(engine, "ready")
    for step in range(steps + 1):
        for engine, (proc, _, _) in workers.items():
            proc.stdin.write("go\n")
            proc.stdin.flush()
            expect(engine, "done")
            if step < steps:
                expect(engine, "ready")  # idle at its next gate before the other engine's turn
    for engine, (proc, reply_fd, log) in workers.items():
        proc.stdin.close()
        if proc.wait(timeout=timeout) != 0:
            log.seek(0)
            raise RuntimeError(f"{engine} worker failed (rc {proc.returncode}):\n{log.read()[-4000:]}")
        os.close(reply_fd)
        log.close()
    wall = time.perf_counter() - t0  # the lock-step run's, shared by both workers
    return {engine: json.loads(spec_path.with_name(f"{engine}.json").read_text()) | {"wall_seconds": wall}
            for engine in workers}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}; {os.cpu_count()} cores; {platform.system()} {platform.release()}"


def summarise(engine: str, spec: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    seconds, tokens = res["seconds"][1:], res["tokens"][1:]  # step 1 is the warm-up
    rates = [k / s for k, s in zip(tokens, seconds, strict=True)]
    s = spec["settings"]
    return {
        "engine": engine, "tokens_per_s": round(statistics.median(rates), 2),
        "step_seconds_median": round(statistics.median(seconds), 4),
        "response_tokens_median": statistics.median(tokens),
        "tokens_per_s_pooled": round(sum(tokens) / sum(seconds), 2),
        "steps_measured": len(seconds), "warmup_steps": 1, "batch_prompts": spec["batch_prompts"],
        "samples_per_prompt": spec["samples_per_prompt"],
        "rollouts_per_step": spec["batch_prompts"] * spec["samples_per_prompt"],
        "max_new_tokens": spec["max_new_tokens"], "temperature": spec["temperature"], "top_p": spec["top_p"],
        "threads": res["torch_threads"], "dtype": s["training"]["dtype"], "lr": s["lr"], "run": s["name"],
        "models": spec["models"], "prompts": spec["prompts"], "implementation": res["implementation"],
        "versions": f"python {platform.python_version()}; {res['versions']}", "machine": machine(),
        "step_seconds_all": " ".join(f"{x:.3f}" for x in res["seconds"]),
        "response_tokens_all": " ".join(str(x) for x in res["tokens"]),
        "longest_response_all": " ".join(str(x) for x in res["longest"]),
        "worker_wall_seconds": round(res["wall_seconds"], 1),
        "schedule": "lock-step: the engines take turns step by step, each idle while the other runs",
        "note": res["note"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=7, help="measured steps per engine (after 1 warm-up step)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads, the same for both engines (1 = the workflow's train rule)")
    ap.add_argument("--run", default="large-opd-s0", help="the native run whose settings both engines use")
    ap.add_argument("--lr", type=float, help="override the run's learning rate in both engines (0: the policy stays "
                    "the initial student, so both engines sample the same workload every step)")
    ap.add_argument("--trl-python", default=str(ROOT / ".venv-trl" / "bin" / "python"))
    ap.add_argument("--timeout", type=int, default=300, help="seconds a worker may take to load or to run one step")
    ap.add_argument("--out", default="results/bench/opd_vs_trl.csv")
    ap.add_argument("--worker", choices=["native", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        res = (native_worker if args.worker == "native" else trl_worker)(spec)
        Path(args.result).write_text(json.dumps(res))
        return
    if not Path(args.trl_python).exists():
        sys.exit(f"{args.trl_python} not found: build the TRL venv first (see envs/trl.txt)")
    with tempfile.TemporaryDirectory(prefix="opd_vs_trl-") as tmp:
        work = Path(tmp)
        spec = prepare(args, work)
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec))
        print(f"running native and trl in lock-step ({args.steps} + 1 steps each) ...", flush=True)
        results = run_lockstep({"native": sys.executable, "trl": args.trl_python}, spec_path, args.threads,
                               args.steps, args.timeout)
        rows = [summarise(engine, spec, res) for engine, res in results.items()]
    native, trl_row = rows
    ratio = native["tokens_per_s"] / trl_row["tokens_per_s"]
    step_ratio = trl_row["step_seconds_median"] / native["step_seconds_median"]
    for row in rows:
        row["speedup_vs_trl"] = round(ratio if row["engine"] == "native" else 1.0, 3)
        row["target_met"] = ratio >= TARGET
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(f"{row['engine']:>6}: {row['tokens_per_s']:9.1f} tokens/s, "
              f"median step {row['step_seconds_median']:.3f} s, median {row['response_tokens_median']} rollout "
              f"tokens/step ({row['implementation']})")
    print(f"config: {native['batch_prompts']} prompts x {native['samples_per_prompt']} samples, max_new_tokens "
          f"{native['max_new_tokens']}, temperature 1.0, top_p 1.0, {native['threads']} threads; models: "
          f"{native['models']}; prompts: {native['prompts']}")
    print(f"native / trl tokens/s = {ratio:.2f}x (median step time ratio {step_ratio:.2f}x); target >= {TARGET:.0f}x: "
          f"{'MET' if ratio >= TARGET else 'NOT met'}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
