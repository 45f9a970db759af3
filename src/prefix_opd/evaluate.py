"""Evaluating a checkpoint: sample k responses per question, grade them, summarise (mean@k, pass@k).

One model load serves every benchmark (and every checkpoint of a dev curve) of a job, because
process and model start-up dominate at toy scale: a run's dev curve, its dev-chosen step and that step's
full suite are one job (`evaluate_run`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import engines
from .data import read_jsonl, write_jsonl
from .eval_stats import summarize
from .grading import grade_response
from .models import encode_prompt, load_model, load_tokenizer, stop_token_ids
from .sampling import Sampler, VLLMSampler, local_sampler, vllm_available
from .selection import choose_step

log = logging.getLogger(__name__)


def load_for_sampling(model_dir: str, device: str | None = None) -> torch.nn.Module:
    """A checkpoint as the evaluation samples from it: bf16 on the job's GPU when it has one, else fp32 on the
    CPU (`device` overrides where it goes: vLLM takes its weights from the CPU)."""
    on_gpu = torch.cuda.is_available()
    return load_model(model_dir, dtype="bfloat16" if on_gpu else "float32",
                      device=device or ("cuda" if on_gpu else "cpu")).eval()


def make_sampler(kind: str, model_dir: str, eval_cfg: dict[str, Any]) -> tuple[Sampler, Any]:
    """The configured sampler (vLLM must be importable: jobs reach its environment through `engines.run_sampling`).

    The Hugging Face path runs on the GPU the job was given (CUDA_VISIBLE_DEVICES), else on the CPU.
    """
    tokenizer = load_tokenizer(model_dir)
    stops = stop_token_ids(tokenizer)
    if kind == "vllm" and not vllm_available():
        raise RuntimeError(engines.missing_message("vllm", "eval.sampler: 'vllm'"))
    if kind == "vllm":
        sampler = VLLMSampler(model_dir, stops, eval_cfg["temperature"], eval_cfg["top_p"],
                              tensor_parallel_size=eval_cfg.get("tensor_parallel", 1),
                              max_model_len=eval_cfg["max_new_tokens"] + 2048)
        return sampler, tokenizer
    return local_sampler(kind, load_for_sampling(model_dir), stops, tokenizer.pad_token_id, eval_cfg["temperature"],
                         eval_cfg["top_p"], eval_cfg.get("max_batch_tokens", 65536)), tokenizer


def decode_response(tokenizer: Any, ids: list[int], stops: list[int]) -> str:
    if ids and ids[-1] in stops:
        ids = ids[:-1]
    return tokenizer.decode(ids, skip_special_tokens=False)


def evaluate_benchmark(sampler: Sampler, tokenizer: Any, records: list[dict[str, Any]], k: int,
                       max_new_tokens: int, seed: int, prefixes: list[list[int]] | None = None
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sample `k` responses per record and grade them; `prefixes` (token ids) continue a given start."""
    stops = stop_token_ids(tokenizer)
    prompts = [encode_prompt(tokenizer, r["prompt"]) for r in records]
    if prefixes is not None:
        prompts = [p + q for p, q in zip(prompts, prefixes, strict=True)]
    rollouts = sampler.sample(prompts, k, max_new_tokens, seed)
    rows, q = [], len(records)
    correct, lengths, truncated, answered = (np.zeros((q, k)) for _ in range(4))
    for j, (ids, finished) in enumerate(zip(rollouts.response_ids, rollouts.finished, strict=True)):
        i, s = divmod(j, k)
        rec = records[i]
        prefix_text = tokenizer.decode(prefixes[i], skip_special_tokens=False) if prefixes is not None else ""
        text = prefix_text + decode_response(tokenizer, ids, stops)
        grade = grade_response(text, rec["gold"], rec["kind"], rec.get("n_options", 0), truncated=not finished)
        correct[i, s], lengths[i, s], truncated[i, s] = grade.correct, len(ids), not finished
        answered[i, s] = grade.has_answer
        rows.append({"id": rec["id"], "sample": s, "response": text, "extracted": grade.extracted,
                     "correct": grade.correct, "tokens": len(ids), "truncated": not finished})
    summary = summarize(correct.astype(bool), lengths, truncated.astype(bool), answered.astype(bool))
    return rows, summary


def evaluate_checkpoint(model_dir: str, benchmarks: dict[str, str], samples: dict[str, int],
                        eval_cfg: dict[str, Any], out_dir: str, seed: int, threads: int,
                        sampler: tuple[Sampler, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate one model folder on each benchmark file; writes `<bench>.jsonl` and `<bench>.json`."""
    torch.set_num_threads(threads)
    sampler_, tokenizer = sampler or make_sampler(eval_cfg["sampler"], model_dir, eval_cfg)
    out: dict[str, dict[str, Any]] = {}
    for name, path in benchmarks.items():
        t0 = time.perf_counter()
        rows, summary = evaluate_benchmark(sampler_, tokenizer, read_jsonl(path), samples[name],
                                           eval_cfg["max_new_tokens"], seed)
        summary |= {"benchmark": name, "seconds": time.perf_counter() - t0}
        write_jsonl(Path(out_dir) / f"{name}.jsonl", rows)
        (Path(out_dir) / f"{name}.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        log.info("%s %s: mean@%d = %.3f (%.1fs)", model_dir, name, samples[name], summary["mean_at_k"],
                 summary["seconds"])
        out[name] = summary
    return out


class JobSampler:
    """One sampler for all the checkpoints a job evaluates: built on the first, given each later one's weights
    (`update_weights`). vLLM keeps its engine (and its GPU memory) for the whole job instead of starting one per
    checkpoint; the in-process samplers are the same either way."""

    def __init__(self, eval_cfg: dict[str, Any]) -> None:
        self.eval_cfg = eval_cfg
        self.current: tuple[Sampler, Any] | None = None
        self.model_dir: str | None = None

    def at(self, model_dir: str) -> tuple[Sampler, Any]:
        """The sampler and tokenizer, holding the weights of `model_dir`."""
        if model_dir != self.model_dir:
            if self.current is None:
                log.info("starting the %s sampler on %s", self.eval_cfg["sampler"], model_dir)
                self.current = make_sampler(self.eval_cfg["sampler"], model_dir, self.eval_cfg)
            else:
                log.info("loading the weights of %s into the running %s sampler", model_dir, self.eval_cfg["sampler"])
                sampler = self.current[0]
                sampler.update_weights(load_for_sampling(model_dir, "cpu" if isinstance(sampler, VLLMSampler)
                                                         else None))
            self.model_dir = model_dir
        return self.current


def evaluate_curve(checkpoint_root: str, benchmarks: dict[str, str], samples: dict[str, int],
                   eval_cfg: dict[str, Any], out_dir: str, seed: int, threads: int,
                   sampler: JobSampler | None = None) -> list[dict[str, Any]]:
    """Every saved checkpoint of a run on the curve benchmarks (the dev set), one model at a time."""
    sampler = sampler or JobSampler(eval_cfg)
    rows = []
    steps = sorted(int(p.name.removeprefix("step_")) for p in Path(checkpoint_root).glob("step_*"))
    for step in steps:
        model_dir = str(Path(checkpoint_root) / f"step_{step}")
        summaries = evaluate_checkpoint(model_dir, benchmarks, samples, eval_cfg, str(Path(out_dir) / f"step_{step}"),
                                        seed, threads, sampler=sampler.at(model_dir))
        rows += [{"step": step, **summaries[name]} for name in benchmarks]
    return rows


def evaluate_chosen(checkpoint_root: str, step: int, benchmarks: dict[str, str], curve: list[dict[str, Any]],
                    curve_dir: str, samples: dict[str, int], eval_cfg: dict[str, Any], out_dir: str, seed: int,
                    threads: int, sampler: JobSampler | None = None) -> list[dict[str, Any]]:
    """The run's dev-chosen checkpoint on `benchmarks`: those of the curve are copied from it (same model, same
    seed: the same samples), the others sampled now. Writes `<bench>.jsonl` / `.json` under `out_dir`."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    done = {r["benchmark"]: r for r in curve if r["step"] == step and r["benchmark"] in benchmarks}
    for name in done:
        for ext in ("jsonl", "json"):
            shutil.copyfile(Path(curve_dir) / f"step_{step}" / f"{name}.{ext}", Path(out_dir) / f"{name}.{ext}")
    todo = {name: path for name, path in benchmarks.items() if name not in done}
    model_dir = str(Path(checkpoint_root) / f"step_{step}")
    fresh = evaluate_checkpoint(model_dir, todo, samples, eval_cfg, out_dir, seed, threads,
                                sampler=(sampler or JobSampler(eval_cfg)).at(model_dir)) if todo else {}
    summaries = {name: {k: v for k, v in row.items() if k != "step"} for name, row in done.items()} | fresh
    return [summaries[name] for name in benchmarks]


def evaluate_run(checkpoint_root: str, curve_benchmarks: dict[str, str], chosen_benchmarks: dict[str, str],
                 dev: str, samples: dict[str, int], eval_cfg: dict[str, Any], curve_dir: str, chosen_dir: str,
                 seed: int, threads: int) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """A run's evaluation in one process: the dev curve over its checkpoints, the dev-chosen step
    (`selection.choose_step`), and the chosen checkpoint on `chosen_benchmarks` (the full suite for the runs
    the tables compare). Returns (curve rows, choice, chosen-step summaries)."""
    sampler = JobSampler(eval_cfg)
    curve = evaluate_curve(checkpoint_root, curve_benchmarks, samples, eval_cfg, curve_dir, seed, threads, sampler)
    choice = choose_step(pd.DataFrame(curve), dev)
    chosen = evaluate_chosen(checkpoint_root, choice["step"], chosen_benchmarks, curve, curve_dir, samples,
                             eval_cfg, chosen_dir, seed, threads, sampler)
    return curve, choice, chosen
