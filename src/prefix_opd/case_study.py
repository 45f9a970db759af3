"""The case study (paper Section 4.4, Appendix A): one dev problem, three responses.

The large student answers each dev question three ways, one fixed-seed sample each (``k = 1``, the study
seed): (1) the base student alone; (2) the base student continuing from the first ``L_p`` tokens of the
teacher's solution (``L_p = min(case_study.teacher_prefix, L_r - probe.answer_margin)``, the probe's rule
and the probe's teacher solutions); (3) the student after prefix OPD (run ``<student>-opd_prefix<L>`` with
``L = experiments.windows.prefix``, at its dev-chosen checkpoint) alone.

The problem is chosen by a stated rule, not by reading the responses: the first question in id order that
(1) gets wrong and both (2) and (3) get right; if there is none, the first one (1) gets wrong (and the page
says so); if (1) gets every question right, the first question.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from .evaluate import evaluate_benchmark, make_sampler, read_jsonl
from .models import build_prompt, load_tokenizer
from .probe import free_memory, teacher_prefixes

log = logging.getLogger(__name__)

RULE = ("the first dev question in id order that the base student gets wrong and that both the base student "
        "with the teacher prefix and the student after prefix OPD get right")
FALLBACK_WRONG = "fallback: no question meets the rule; the first question in id order the base student gets wrong"
FALLBACK_FIRST = "fallback: the base student gets every question right; the first question in id order"


def select_problem(base: dict[str, bool], prefixed: dict[str, bool], opd: dict[str, bool]) -> tuple[str, str]:
    """The chosen question id and which rule chose it (`RULE`, `FALLBACK_WRONG` or `FALLBACK_FIRST`).

    Each argument maps question id -> whether that response is correct; ids are taken in sorted order.
    """
    if not base:
        raise ValueError("case study: no questions to choose from")
    if set(base) != set(prefixed) or set(base) != set(opd):
        raise ValueError("case study: the three correctness tables cover different questions")
    order = sorted(base)
    for qid in order:
        if not base[qid] and prefixed[qid] and opd[qid]:
            return qid, RULE
    for qid in order:
        if not base[qid]:
            return qid, FALLBACK_WRONG
    return order[0], FALLBACK_FIRST


def chosen_checkpoint(checkpoints_dir: str, chosen_json: str) -> tuple[str, int]:
    """The run's dev-chosen checkpoint folder and step (rule eval_run's chosen.json)."""
    step = int(json.loads(Path(chosen_json).read_text())["step"])
    return str(Path(checkpoints_dir) / f"step_{step}"), step


def sample_once(model_dir: str, records: list[dict[str, Any]], eval_cfg: dict[str, Any], seed: int,
                prefix_sets: list[list[list[int]] | None]) -> tuple[Any, list[list[dict[str, Any]]]]:
    """One model load; one sample per question for each prefix set (None = no prefix). Returns the tokenizer."""
    longest = max((len(p) for ps in prefix_sets if ps for p in ps), default=0)
    sampler, tokenizer = make_sampler(eval_cfg["sampler"], model_dir,
                                      eval_cfg | {"max_new_tokens": eval_cfg["max_new_tokens"] + longest})
    out = []
    for prefixes in prefix_sets:
        rows, summary = evaluate_benchmark(sampler, tokenizer, records, 1, eval_cfg["max_new_tokens"], seed,
                                           prefixes=prefixes)
        log.info("%s%s: %d/%d correct", model_dir, " + teacher prefix" if prefixes else "",
                 round(summary["mean_at_k"] * len(records)), len(records))
        out.append(rows)
    del sampler
    free_memory()
    return tokenizer, out


def fence(text: str, info: str = "") -> str:
    """A fenced code block that survives any backticks inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def verdict(row: dict[str, Any]) -> str:
    state = "**correct**" if row["correct"] else "**incorrect**"
    return f"{state} (extracted answer: `{row['extracted']}`, {row['tokens']} new tokens" + (
        ", truncated)" if row["truncated"] else ")")


def render_page(ctx: dict[str, Any]) -> str:
    """The Markdown page: rule, problem, teacher prefix, three responses and their grades."""
    rec, qid = ctx["record"], ctx["record"]["id"]
    base, pref, opd = (ctx[k][qid] for k in ("base_rows", "prefixed_rows", "opd_rows"))
    prefix_text = ctx["prefix_text"]
    continuation = pref["response"][len(prefix_text):] if pref["response"].startswith(prefix_text) else pref["response"]
    met = ctx["rule_used"] == RULE
    lines = [
        "# Case study (Section 4.4, Appendix A)",
        "",
        f"Student: `{ctx['student']}` (`{ctx['base_dir']}`); teacher: `{ctx['teacher_dir']}`; "
        f"dev set: `{ctx['dev']}` ({ctx['n_questions']} questions).",
        "",
        f"Student after prefix OPD: run `{ctx['run']}` (prefix L = experiments.windows.prefix = {ctx['opd_prefix']}; "
        "the paper's case study used its prefix-1024 run, the same role), at its dev-chosen checkpoint "
        f"step {ctx['step']} (`{ctx['checkpoint']}`, from `results/eval/{ctx['run']}/chosen.json`).",
        "",
        f"Sampling: one sample per question for each of the three responses (k = 1, seed = {ctx['seed']}, "
        f"temperature {ctx['temperature']}, top_p {ctx['top_p']}, up to {ctx['max_new_tokens']} new tokens); the "
        "three are drawn for every dev question before the problem is chosen.",
        "",
        "## Selection rule",
        "",
        f"Rule: {RULE}.",
        "",
        f"Chosen: `{qid}` — "
        + ("the rule is met." if met else f"**the rule is not met by any question**; {ctx['rule_used']}."),
        "",
        f"Over the dev set: base student {ctx['counts']['base']}/{ctx['n_questions']} correct, base student + "
        f"teacher prefix {ctx['counts']['prefixed']}/{ctx['n_questions']}, after prefix OPD "
        f"{ctx['counts']['opd']}/{ctx['n_questions']}; {ctx['counts']['rule']} question(s) meet the rule.",
        "",
        "## The problem",
        "",
        f"Gold answer: `{rec['gold']}` ({rec['kind']}).",
        "",
        "Model input (chat template, then `<think>`):",
        "",
        fence(ctx["prompt_text"]),
        "",
        "## Base student (no prefix)",
        "",
        verdict(base),
        "",
        fence(base["response"]),
        "",
        f"## Base student with a teacher prefix ({ctx['prefix_tokens']} tokens)",
        "",
        f"Teacher prefix: the first L_p = min({ctx['teacher_prefix']}, L_r - {ctx['answer_margin']}) = "
        f"{ctx['prefix_tokens']} tokens of the teacher's solution (L_r = {ctx['teacher_tokens']} tokens; the "
        f"teacher's full solution is {'correct' if ctx['teacher_correct'] else 'incorrect'}):",
        "",
        fence(prefix_text),
        "",
        "The student's continuation (graded on teacher prefix + continuation): " + verdict(pref),
        "",
        fence(continuation),
        "",
        "## Student after prefix OPD (no prefix)",
        "",
        verdict(opd),
        "",
        fence(opd["response"]),
        "",
        "## All dev questions",
        "",
        "| id | base | base + teacher prefix | after prefix OPD |",
        "|---|---|---|---|",
    ]
    for q in sorted(ctx["base_rows"]):
        marks = ["yes" if ctx[k][q]["correct"] else "no" for k in ("base_rows", "prefixed_rows", "opd_rows")]
        lines.append(f"| {q} | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"


def run_case_study(student: str, base_dir: str, teacher_dir: str, run: str, checkpoints_dir: str, chosen_json: str,
                   solutions_path: str, dev_path: str, dev: str, case_cfg: dict[str, Any], answer_margin: int,
                   opd_prefix: int, eval_cfg: dict[str, Any], seed: int, out_md: str, threads: int = 1) -> str:
    """Sample the three responses on the dev set, choose the problem by the rule, write the page."""
    torch.set_num_threads(threads)
    records = sorted(read_jsonl(dev_path), key=lambda r: r["id"])
    by_id = {s["id"]: s for s in read_jsonl(solutions_path)}
    missing = [r["id"] for r in records if r["id"] not in by_id]
    if missing:
        raise ValueError(f"{solutions_path} has no teacher solution for {missing[:3]}; rerun teacher_prefix_probe")
    solutions = [by_id[r["id"]] for r in records]
    checkpoint, step = chosen_checkpoint(checkpoints_dir, chosen_json)
    teacher_tok = load_tokenizer(teacher_dir)
    student_tok = load_tokenizer(base_dir)
    prefixes = teacher_prefixes(solutions, case_cfg["teacher_prefix"], answer_margin, teacher_tok, student_tok)
    tokenizer, (base_rows, prefixed_rows) = sample_once(base_dir, records, eval_cfg, seed, [None, prefixes])
    _, (opd_rows,) = sample_once(checkpoint, records, eval_cfg, seed, [None])
    tables = {name: {r["id"]: r for r in rows}
              for name, rows in (("base_rows", base_rows), ("prefixed_rows", prefixed_rows), ("opd_rows", opd_rows))}
    correct = {name: {q: bool(r["correct"]) for q, r in t.items()} for name, t in tables.items()}
    qid, rule_used = select_problem(correct["base_rows"], correct["prefixed_rows"], correct["opd_rows"])
    i = [r["id"] for r in records].index(qid)
    sol = solutions[i]
    n_rule = sum(not correct["base_rows"][q] and correct["prefixed_rows"][q] and correct["opd_rows"][q]
                 for q in correct["base_rows"])
    ctx = {
        "record": records[i], "student": student, "base_dir": base_dir, "teacher_dir": teacher_dir, "dev": dev,
        "n_questions": len(records), "run": run, "opd_prefix": opd_prefix, "step": step, "checkpoint": checkpoint,
        "seed": seed, "temperature": eval_cfg["temperature"], "top_p": eval_cfg["top_p"],
        "max_new_tokens": eval_cfg["max_new_tokens"], "rule_used": rule_used,
        "counts": {"base": sum(correct["base_rows"].values()), "prefixed": sum(correct["prefixed_rows"].values()),
                   "opd": sum(correct["opd_rows"].values()), "rule": n_rule},
        "prompt_text": build_prompt(tokenizer, records[i]["prompt"]),
        "prefix_text": tokenizer.decode(prefixes[i], skip_special_tokens=False),
        "prefix_tokens": len(prefixes[i]), "teacher_prefix": case_cfg["teacher_prefix"],
        "answer_margin": answer_margin, "teacher_tokens": sol["tokens"], "teacher_correct": sol["correct"],
        **tables,
    }
    page = render_page(ctx)
    Path(out_md).parent.mkdir(parents=True, exist_ok=True)
    Path(out_md).write_text(page)
    log.info("case study: %s (%s)", qid, rule_used)
    return qid
