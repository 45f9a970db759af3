"""The toy world's data: deterministic, well-formed, and long enough for the prefix study."""

from __future__ import annotations

import json
import random

import pytest
from engine_fixtures import merged_config

from prefix_opd.data import write_jsonl
from prefix_opd.grading import grade_response
from prefix_opd.toy.task import Question, apply_rule, noisy_chain, render_solution, sample_question
from prefix_opd.toy.tokenizer import build_tokenizer
from prefix_opd.toy.world import make_benchmark, make_pool

CONFIG = merged_config()


def _bytes(tmp_path, name, rows):
    path = tmp_path / name
    write_jsonl(path, rows)
    return path.read_bytes()


def test_same_seed_gives_byte_identical_files(tmp_path):
    toy, prompts = CONFIG["toy"], CONFIG["prompts"]
    for i in range(2):
        pool = _bytes(tmp_path, f"pool{i}.jsonl", make_pool(50, toy["pool_steps"], 0.02, 7, prompts))
        sets = [_bytes(tmp_path, f"{b}{i}.jsonl", make_benchmark(b, spec, 7, prompts))
                for b, spec in toy["benchmarks"].items()]
        if i == 0:
            first = (pool, sets)
    assert (pool, sets) == first
    other = _bytes(tmp_path, "pool_seed8.jsonl", make_pool(50, toy["pool_steps"], 0.02, 8, prompts))
    assert other != pool


def test_a_mistake_anywhere_changes_the_answer():
    q = Question("f", 42, 20)
    clean = q.chain()
    for position in (0, 10, 19):  # early, middle and last step
        wrong = clean[:position] + [(clean[position] + 1) % 100]
        n = wrong[-1]
        for _ in range(position + 1, q.steps):
            n = apply_rule("f", n)
            wrong.append(n)
        assert wrong[-1] != clean[-1]


def test_teacher_solutions_are_long_enough_for_the_prefix_study():
    """Mean solution length on the pool >= half of the scaled L_max (issue: toy world)."""
    tok = build_tokenizer()
    config = json.loads(json.dumps(CONFIG))
    pool = make_pool(300, config["toy"]["pool_steps"], 0.0, 0, config["prompts"])
    lengths = [len(tok(r["conversations"][1]["value"], add_special_tokens=False)["input_ids"]) for r in pool]
    assert sum(lengths) / len(lengths) >= config["training"]["l_max"] / 2


@pytest.mark.parametrize("options", [0, 4, 10])
def test_clean_solutions_grade_correct_and_noisy_ones_mostly_wrong(options):
    rng = random.Random(0)
    right = wrong = 0
    for _ in range(40):
        q = sample_question(rng, "f" if not options else "g", 8, 12, n_options=options)
        kind = "multiple_choice" if options else "math"
        assert grade_response(render_solution(q, q.chain()), q.gold(), kind, options).correct
        noisy = render_solution(q, noisy_chain(q, 0.5, rng))
        right += grade_response(noisy, q.gold(), kind, options).correct
        wrong += 1
    assert right / wrong < 0.5
