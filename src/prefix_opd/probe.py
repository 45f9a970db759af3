"""The teacher-prefix probe (paper Section 2.3, Fig. 3): can an untrained student finish a teacher's start?

The teacher writes one full solution per dev question (temperature ``eval.temperature``, up to
``eval.max_new_tokens`` tokens). For each untrained student and each L in ``[0] + experiments.probe.lengths``
the student continues from the first ``L_p = min(L, L_r - answer_margin)`` tokens of the teacher's response
(``L_r`` = its length, stop token excluded; ``L_p`` clamped at 0), so the teacher's final answer is
unlikely to be in the prefix. ``k = experiments.probe.samples`` continuations per question, each with up to
``experiments.probe.max_new_tokens`` new tokens (default ``eval.max_new_tokens``; the paper raised the limit
for this probe to 32k so that continuing never runs out of room), graded on the full text (prefix +
continuation) by the evaluation's grader.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .evaluate import decode_response, evaluate_benchmark, make_sampler, read_jsonl, write_jsonl
from .grading import grade_response
from .models import encode_prompt, load_tokenizer, stop_token_ids

log = logging.getLogger(__name__)

PROBE_COLUMNS = ["student", "length", "mean_at_k", "std_over_samples", "n_questions", "samples"]


def prefix_length(length: int, response_length: int, answer_margin: int) -> int:
    """``L_p = min(L, L_r - answer_margin)``, never below 0 (paper: ``L_p <- min{L_p, L_r - 512}``)."""
    return max(0, min(int(length), int(response_length) - int(answer_margin)))


def probe_lengths(lengths: list[int]) -> list[int]:
    """The probed prefix lengths: 0 (no teacher prefix) and the configured ones, ascending, unique."""
    return sorted({0, *(int(n) for n in lengths)})


def strip_stop(ids: list[int], stops: list[int]) -> list[int]:
    return ids[:-1] if ids and ids[-1] in stops else list(ids)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def teacher_solutions(teacher_dir: str, records: list[dict[str, Any]], eval_cfg: dict[str, Any], seed: int
                      ) -> list[dict[str, Any]]:
    """One full teacher solution per record, with its token ids, length and grade."""
    sampler, tokenizer = make_sampler(eval_cfg["sampler"], teacher_dir, eval_cfg)
    stops = stop_token_ids(tokenizer)
    prompts = [encode_prompt(tokenizer, r["prompt"]) for r in records]
    rollouts = sampler.sample(prompts, 1, eval_cfg["max_new_tokens"], seed)
    out = []
    for rec, ids, finished in zip(records, rollouts.response_ids, rollouts.finished, strict=True):
        text = decode_response(tokenizer, ids, stops)
        grade = grade_response(text, rec["gold"], rec["kind"], rec.get("n_options", 0), truncated=not finished)
        body = strip_stop(ids, stops)
        out.append({"id": rec["id"], "response": text, "response_ids": body, "tokens": len(body),
                    "finished": bool(finished), "correct": grade.correct, "extracted": grade.extracted})
    del sampler
    free_memory()
    return out


def same_vocabulary(a: Any, b: Any) -> bool:
    return a is b or a.get_vocab() == b.get_vocab()


def teacher_prefixes(solutions: list[dict[str, Any]], length: int, answer_margin: int, teacher_tok: Any,
                     student_tok: Any) -> list[list[int]]:
    """The first ``L_p`` teacher tokens of each solution, in the student's token ids.

    With a shared tokenizer (the paper's Qwen3 family, the toy world) the ids are used as they are;
    otherwise the prefix text is re-encoded with the student's tokenizer.
    """
    shared = same_vocabulary(teacher_tok, student_tok)
    out = []
    for sol in solutions:
        ids = sol["response_ids"][: prefix_length(length, sol["tokens"], answer_margin)]
        if not shared and ids:
            text = teacher_tok.decode(ids, skip_special_tokens=False)
            ids = student_tok(text, add_special_tokens=False)["input_ids"]
        out.append(list(ids))
    return out


def probe_student(student: str, student_dir: str, records: list[dict[str, Any]], solutions: list[dict[str, Any]],
                  teacher_tok: Any, probe_cfg: dict[str, Any], eval_cfg: dict[str, Any], seed: int
                  ) -> list[dict[str, Any]]:
    """Every probed length for one student, from one model load; one row per length."""
    lengths = probe_lengths(probe_cfg["lengths"])
    # vLLM sizes its context from max_new_tokens: leave room for the longest prefix as well
    sampler, tokenizer = make_sampler(eval_cfg["sampler"], student_dir,
                                      eval_cfg | {"max_new_tokens": eval_cfg["max_new_tokens"] + max(lengths)})
    if not same_vocabulary(teacher_tok, tokenizer):
        log.warning("%s does not share the teacher's tokenizer: teacher prefixes are re-encoded as text", student)
    rows = []
    for length in lengths:
        t0 = time.perf_counter()
        prefixes = teacher_prefixes(solutions, length, probe_cfg["answer_margin"], teacher_tok, tokenizer)
        _, summary = evaluate_benchmark(sampler, tokenizer, records, probe_cfg["samples"],
                                        eval_cfg["max_new_tokens"], seed, prefixes=prefixes)
        mean_lp = sum(len(p) for p in prefixes) / max(1, len(prefixes))
        log.info("probe %s L=%d (mean L_p %.1f): mean@%d = %.3f (%.1fs)", student, length, mean_lp,
                 probe_cfg["samples"], summary["mean_at_k"], time.perf_counter() - t0)
        rows.append({"student": student, "length": length, "mean_at_k": summary["mean_at_k"],
                     "std_over_samples": summary["std_over_samples"], "n_questions": summary["n_questions"],
                     "samples": summary["k"]})
    del sampler
    free_memory()
    return rows


def run_probe(teacher_dir: str, students: dict[str, str], dev_path: str, probe_cfg: dict[str, Any],
              eval_cfg: dict[str, Any], seed: int, csv_out: str, solutions_out: str, threads: int = 1
              ) -> pd.DataFrame:
    """Fig. 3's data: teacher solutions, then each student at each prefix length; writes both outputs."""
    torch.set_num_threads(threads)
    records = read_jsonl(dev_path)
    solutions = teacher_solutions(teacher_dir, records, eval_cfg, seed)
    write_jsonl(solutions_out, solutions)
    n = len(solutions)
    log.info("teacher: %d solutions, accuracy %.3f, mean length %.1f tokens, %d truncated", n,
             sum(s["correct"] for s in solutions) / n, sum(s["tokens"] for s in solutions) / n,
             sum(not s["finished"] for s in solutions))
    teacher_tok = load_tokenizer(teacher_dir)
    rows = []
    for student, folder in students.items():
        rows += probe_student(student, folder, records, solutions, teacher_tok, probe_cfg, eval_cfg, seed)
    frame = pd.DataFrame(rows, columns=PROBE_COLUMNS)
    Path(csv_out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv_out, index=False)
    return frame
