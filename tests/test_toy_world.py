"""The toy world's data: deterministic, decided by its opening, aperiodic, and measured in lines."""

from __future__ import annotations

import random

import pytest
from engine_fixtures import merged_config

from prefix_opd.data import write_jsonl
from prefix_opd.grading import grade_response
from prefix_opd.models import encode_prompt
from prefix_opd.toy.task import (
    HABIT_OF_TAG,
    HELD_OUT_TAGS,
    IN_DOMAIN_TAGS,
    LINE,
    METHOD_OF_TAG,
    METHODS,
    Question,
    execute,
    noisy_execution,
    period,
    plan_line,
    render_solution,
    sample_question,
    step,
)
from prefix_opd.toy.tokenizer import build_tokenizer
from prefix_opd.toy.world import benchmark_questions, make_benchmark, make_pool, question_of

CONFIG = merged_config()
DEFAULT = merged_config(ci=False)
PAPER_TOKENS_PER_LINE = 256
TOK = build_tokenizer()


def _tokens(text: str) -> list[int]:
    return TOK(text, add_special_tokens=False)["input_ids"]


def _bytes(tmp_path, name, rows):
    path = tmp_path / name
    write_jsonl(path, rows)
    return path.read_bytes()


def test_same_seed_gives_byte_identical_files(tmp_path):
    toy, prompts = CONFIG["toy"], CONFIG["prompts"]
    for i in range(2):
        pool = _bytes(tmp_path, f"pool{i}.jsonl", make_pool(50, toy["pool_lines"], 0.02, 7, prompts))
        sets = [_bytes(tmp_path, f"{b}{i}.jsonl", make_benchmark(b, spec, 7, prompts))
                for b, spec in toy["benchmarks"].items()]
        if i == 0:
            first = (pool, sets)
    assert (pool, sets) == first
    other = _bytes(tmp_path, "pool_seed8.jsonl", make_pool(50, toy["pool_lines"], 0.02, 8, prompts))
    assert other != pool


def test_every_method_has_full_period_and_no_benchmark_chain_is_periodic():
    for m in METHODS:
        assert sorted(execute(m, 0, 100)) == list(range(100))  # visits every value before repeating
    assert period([1, 2, 1, 2, 1]) == 2 and period([3, 3, 3]) == 1 and period([1, 2, 3, 1, 2, 4]) is None
    for config in (CONFIG, DEFAULT):
        for name, spec in config["toy"]["benchmarks"].items():
            for q in benchmark_questions(name, spec, config["seed"]):
                assert period(q.chain()) is None, (name, q)


def test_the_opening_decides_the_answer_and_each_step_matters():
    """A wrong method (executed perfectly) and a wrong value anywhere both end on a wrong answer."""
    rng = random.Random(0)
    for _ in range(300):
        q = sample_question(rng, tuple(range(12)), 1, 40)
        for m in METHODS:
            assert (execute(m, q.start, q.lines)[-1] == int(q.gold())) == (m == q.method)
        values = q.chain()
        at = rng.randrange(q.lines)
        n = (values[at] + rng.randrange(1, 100)) % 100
        wrong = values[:at] + [n]
        for _ in range(at + 1, q.lines):
            n = step(q.method, n)
            wrong.append(n)
        assert wrong[-1] != values[-1]


def test_held_out_tags_are_absent_from_the_distillation_pool_and_present_in_the_ood_sets():
    pool = make_pool(400, DEFAULT["toy"]["pool_lines"], 0.02, 0, DEFAULT["prompts"])
    pool_tags = {question_of({"prompt": r["conversations"][0]["value"]}).tag for r in pool}
    assert pool_tags == set(range(8))
    for name, spec in DEFAULT["toy"]["benchmarks"].items():
        tags = {q.tag for q in benchmark_questions(name, spec, 0)}
        assert tags <= (set(range(8)) if spec["tags"] == "in_domain" else set(range(8, 12)))
    assert {DEFAULT["toy"]["benchmarks"][b]["tags"] for b in ("gpqa", "mmlu_pro")} == {"held_out"}


def test_every_line_is_one_line_of_tokens_and_the_opening_line_holds_only_the_decision():
    q = Question(5, 37, 12)
    ids = _tokens(render_solution(q, q.method, q.chain()))
    text = TOK.decode(ids)
    lines = text.split("</think>")[0].splitlines(keepends=True)
    assert [len(_tokens(line)) for line in lines] == [LINE] * (1 + q.lines)
    assert lines[0] == plan_line(5, METHOD_OF_TAG[5]) == f"tag=f{METHOD_OF_TAG[5]}\n"  # the tag, then the method
    # the decision is a bigram: the method's token comes right after the tag's own token
    assert TOK.convert_ids_to_tokens(_tokens(lines[0]))[-3:-1] == ["f", METHOD_OF_TAG[5]]
    assert question_of({"prompt": q.text() + "\nBox the answer."}) == q


@pytest.mark.parametrize("config", [DEFAULT, CONFIG], ids=["default", "ci"])
def test_lengths_follow_lines(config):
    """Every prefix, window, probe, case-study length and KL bin is whole lines; the shortest prefix is the
    plan line and nothing more; the paper's lengths are 256 tokens a line."""
    ex, t = config["experiments"], config["training"]
    table = {int(k): v for k, v in config["toy"]["paper_lengths"].items()}
    assert all(toy % LINE == 0 and paper == toy // LINE * PAPER_TOKENS_PER_LINE for toy, paper in table.items())
    lengths = [*ex["main"]["prefix_lengths"], *(n for w in ex["windows"]["windows"] for n in w),
               ex["windows"]["tail"], ex["windows"]["prefix"], ex["lr_sweep"]["prefix"], ex["gkd"]["prefix"],
               ex["seqkd_prefix"]["prefix"], *ex["probe"]["lengths"], ex["probe"]["answer_margin"],
               ex["case_study"]["teacher_prefix"], t["kl_bin"]]
    assert all(n % LINE == 0 for n in lengths), lengths
    assert min(ex["main"]["prefix_lengths"]) == LINE == t["kl_bin"] == ex["case_study"]["teacher_prefix"]
    assert ex["gkd"]["prefix"] == LINE  # the paper's 256: the opening decision
    assert all(n in table for n in [*ex["main"]["prefix_lengths"], ex["windows"]["tail"],
                                    *(n for w in ex["windows"]["windows"] for n in w)])


def test_responses_fill_about_half_of_l_max_and_fit_in_it():
    """Mean response / L_max near the paper's ~8k / 16k; the longest solution fits (no truncation)."""
    pool = make_pool(400, DEFAULT["toy"]["pool_lines"], 0.0, 0, DEFAULT["prompts"])
    lengths = [len(_tokens(r["conversations"][1]["value"].removeprefix("<think>"))) + 1 for r in pool]  # + stop
    ratio = sum(lengths) / len(lengths) / DEFAULT["training"]["l_max"]
    assert 0.45 <= ratio <= 0.65, ratio
    longest = max(spec["lines"][1] for spec in DEFAULT["toy"]["benchmarks"].values())
    q = Question(0, 0, longest)
    assert len(_tokens(render_solution(q, q.method, q.chain()))) + 1 <= DEFAULT["eval"]["max_new_tokens"]
    assert len(encode_prompt(TOK, "T=f N=37 K=27\nBox the answer.")) < 64


def test_clean_solutions_grade_correct_and_wrong_openings_or_noise_grade_wrong():
    rng = random.Random(0)
    noisy_right = 0
    for _ in range(60):
        q = sample_question(rng, tuple(range(8)), 8, 20)
        assert grade_response(render_solution(q, q.method, q.chain()), q.gold(), "math", 0).correct
        other = next(m for m in METHODS if m != q.method)
        assert not grade_response(render_solution(q, other, q.chain(other)), q.gold(), "math", 0).correct
        noisy = render_solution(q, q.method, noisy_execution(q, q.method, 0.5, rng))
        noisy_right += grade_response(noisy, q.gold(), "math", 0).correct
    assert noisy_right / 60 < 0.2


def test_habits_are_wrong_and_undoing_the_in_domain_habit_does_not_fix_a_held_out_opening():
    """Distillation sees in-domain tags only: if it learns to move every habit one letter back, held-out openings
    must stay wrong (their habit is two letters on), so out-of-domain rows measure forgetting, not that shift."""
    letters = "ABCD"
    for tag, (right, habit) in enumerate(zip(METHOD_OF_TAG, HABIT_OF_TAG, strict=True)):
        assert habit != right
        shift = (letters.index(habit) - letters.index(right)) % 4
        assert shift == (2 if tag in HELD_OUT_TAGS else 1), tag
        undone = letters[(letters.index(habit) - 1) % 4]  # the in-domain correction applied to this tag
        assert (undone == right) == (tag in IN_DOMAIN_TAGS), tag
