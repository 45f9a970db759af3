"""The toy world's data: the training pool (OpenThoughts3's shape) and the five benchmark stand-ins.

Everything is drawn from one seeded `random.Random` per file, so the same seed gives byte-identical
files. Benchmark records use the same format as the real benchmarks (`benchmarks.py`). In-domain sets
(and the pool) use tags 0-7; the out-of-domain stand-ins use the held-out tags 8-11, which no
distillation data contains and only the teacher has learned, so forgetting or transfer shows there.
Every set is free-form (a two-digit answer): chance level is 1%.
"""

from __future__ import annotations

import random
from typing import Any

from .task import (
    HELD_OUT_TAGS,
    IN_DOMAIN_TAGS,
    TAG_LETTERS,
    Question,
    noisy_execution,
    period,
    render_solution,
    sample_question,
)

THINK = "<think>"
BENCHMARK_SEEDS = {"math500": 11, "aime24": 12, "aime25": 13, "gpqa": 14, "mmlu_pro": 15}
TAG_SETS = {"in_domain": IN_DOMAIN_TAGS, "held_out": HELD_OUT_TAGS}


def user_message(question: Question, prompts: dict[str, str]) -> str:
    """The user turn: the question, then the math instruction."""
    return f"{question.text()}\n{prompts['math']}"


def make_pool(size: int, lines: tuple[int, int], noise: float, seed: int, prompts: dict[str, str]
              ) -> list[dict[str, Any]]:
    """In-domain questions with an off-policy solution each, in OpenThoughts3's record shape.

    The solution plays QwQ-32B's role: a strong solver that picks the right method and whose execution
    steps are wrong with probability `noise`.
    """
    rng = random.Random(seed)
    records = []
    for i in range(size):
        q = sample_question(rng, IN_DOMAIN_TAGS, *lines)
        solution = THINK + render_solution(q, q.method, noisy_execution(q, q.method, noise, rng))
        records.append({"id": f"toy-{i:06d}", "domain": "math", "gold": q.gold(),
                        "conversations": [{"from": "human", "value": user_message(q, prompts)},
                                          {"from": "gpt", "value": solution}]})
    return records


def benchmark_questions(name: str, spec: dict[str, Any], seed: int) -> list[Question]:
    """A fixed, duplicate-free set of questions; `spec` gives size, tag set and line range."""
    rng = random.Random(seed * 1000 + BENCHMARK_SEEDS[name])
    questions: list[Question] = []
    seen: set[tuple[int, int, int]] = set()
    while len(questions) < spec["size"]:
        q = sample_question(rng, TAG_SETS[spec["tags"]], *spec["lines"])
        if (q.tag, q.start, q.lines) in seen:
            continue
        assert period(q.chain()) is None, f"{q.text()}: periodic chain"  # full-period maps: never
        seen.add((q.tag, q.start, q.lines))
        questions.append(q)
    return questions


def question_of(record: dict[str, Any]) -> Question:
    """The question behind a benchmark record (its prompt's first line, `T=f N=37 K=27`)."""
    fields = dict(part.split("=") for part in record["prompt"].split("\n")[0].split())
    return Question(TAG_LETTERS.index(fields["T"]), int(fields["N"]), int(fields["K"]))


def make_benchmark(name: str, spec: dict[str, Any], seed: int, prompts: dict[str, str]) -> list[dict[str, Any]]:
    """A benchmark stand-in in the real benchmarks' record format."""
    return [{"id": f"{name}-{i:04d}", "prompt": user_message(q, prompts), "gold": q.gold(), "kind": "math",
             "options": [], "n_options": 0}
            for i, q in enumerate(benchmark_questions(name, spec, seed))]
