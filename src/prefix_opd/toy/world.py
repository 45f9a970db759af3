"""The toy world's data: the training pool (OpenThoughts3's shape) and the five benchmark stand-ins.

Everything is drawn from one seeded `random.Random` per file, so the same seed gives byte-identical
files. Benchmark records use the same format as the real benchmarks (`benchmarks.py`).
"""

from __future__ import annotations

import random
from typing import Any

from .task import Question, noisy_chain, render_solution, sample_question

THINK = "<think>"
BENCHMARK_SEEDS = {"math500": 11, "aime24": 12, "aime25": 13, "gpqa": 14, "mmlu_pro": 15}


def user_message(question: Question, prompts: dict[str, str]) -> str:
    """The user turn: the question, then the math or multiple-choice instruction."""
    instruction = prompts["multiple_choice"] if question.options else prompts["math"]
    return f"{question.text()}\n{instruction}"


def make_pool(size: int, steps: tuple[int, int], noise: float, seed: int, prompts: dict[str, str]
              ) -> list[dict[str, Any]]:
    """In-domain questions with an off-policy solution each, in OpenThoughts3's record shape.

    The solution plays QwQ-32B's role: a strong solver whose steps are wrong with probability `noise`.
    """
    rng = random.Random(seed)
    records = []
    for i in range(size):
        q = sample_question(rng, "f", *steps)
        solution = THINK + render_solution(q, noisy_chain(q, noise, rng))
        records.append({"id": f"toy-{i:06d}", "domain": "math", "gold": q.gold(),
                        "conversations": [{"from": "human", "value": user_message(q, prompts)},
                                          {"from": "gpt", "value": solution}]})
    return records


def make_benchmark(name: str, spec: dict[str, Any], seed: int, prompts: dict[str, str]) -> list[dict[str, Any]]:
    """A fixed test set: `spec` gives size, rule, chain lengths and the number of options."""
    rng = random.Random(seed * 1000 + BENCHMARK_SEEDS[name])
    records, seen = [], set()
    while len(records) < spec["size"]:
        q = sample_question(rng, spec["rule"], *spec["steps"], n_options=spec["options"])
        if (q.start, q.steps) in seen:  # no duplicate questions inside a set
            continue
        seen.add((q.start, q.steps))
        records.append({
            "id": f"{name}-{len(records):04d}", "prompt": user_message(q, prompts), "gold": q.gold(),
            "kind": "multiple_choice" if q.options else "math",
            "options": [f"{v:02d}" for v in q.options], "n_options": len(q.options),
        })
    return records
