"""The teacher-prefix probe's L_p rule and the case study's selection rule, without trained models."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from prefix_opd import case_study as cs
from prefix_opd import probe
from prefix_opd.models import encode_prompt
from prefix_opd.sampling import Rollouts
from prefix_opd.toy.tokenizer import build_tokenizer

# ------------------------------------------------------------------------------------------------ L_p rule


@pytest.mark.parametrize(("length", "response", "margin", "expected"), [
    (32, 200, 8, 32),     # long response: the configured length
    (128, 100, 8, 92),    # L_r - margin is shorter: the answer's last tokens stay out
    (32, 40, 8, 32),      # exactly L_r - margin
    (32, 39, 8, 31),
    (32, 5, 8, 0),        # response shorter than the margin: no prefix at all (clamped at 0)
    (0, 200, 8, 0),       # L = 0 is the no-prefix baseline
    (16, 16, 0, 16),      # margin 0: the whole response may be given
])
def test_prefix_length_clamp(length, response, margin, expected):
    assert probe.prefix_length(length, response, margin) == expected


def test_probe_lengths_always_include_zero():
    assert probe.probe_lengths([64, 32, 32]) == [0, 32, 64]
    assert probe.probe_lengths([]) == [0]


class CharTok:
    """A minimal tokenizer: one id per character, with a configurable offset (a different vocabulary)."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def get_vocab(self) -> dict[str, int]:
        return {chr(c): c + self.offset for c in range(32, 127)}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i - self.offset) for i in ids)

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) + self.offset for c in text]}


def test_teacher_prefixes_cut_at_l_p_and_reencode_across_tokenizers():
    tok = CharTok()
    sols = [{"response_ids": tok("abcdefghij")["input_ids"], "tokens": 10},
            {"response_ids": tok("xyz")["input_ids"], "tokens": 3}]
    assert [tok.decode(p) for p in probe.teacher_prefixes(sols, 4, 2, tok, tok)] == ["abcd", "x"]
    assert [tok.decode(p) for p in probe.teacher_prefixes(sols, 9, 2, tok, tok)] == ["abcdefgh", "x"]
    assert probe.teacher_prefixes(sols, 0, 2, tok, tok) == [[], []]
    other = CharTok(offset=1000)
    assert [other.decode(p) for p in probe.teacher_prefixes(sols, 4, 2, tok, other)] == ["abcd", "x"]


# ----------------------------------------------------------------------------- the probe with a fake sampler


class ScriptedSampler:
    """Returns scripted responses (text per prompt index) and records what it was asked to continue."""

    def __init__(self, tokenizer, responses: list[str]) -> None:
        self.tokenizer, self.responses, self.calls = tokenizer, responses, []

    def sample(self, prompts, n, max_new_tokens, seed):
        self.calls.append((prompts, n, max_new_tokens, seed))
        out = Rollouts([], [], [])
        for i, p in enumerate(prompts):
            ids = self.tokenizer(self.responses[i] + "<|im_end|>", add_special_tokens=False)["input_ids"]
            for _ in range(n):
                out.prompt_ids.append(p)
                out.response_ids.append(ids)
                out.finished.append(True)
        return out

    def update_weights(self, model):
        pass


DEV = [{"id": "aime24-0001", "prompt": "f N=01 K=03\nBox the answer.", "gold": "7", "kind": "math",
        "options": [], "n_options": 0},
       {"id": "aime24-0000", "prompt": "f N=02 K=03\nBox the answer.", "gold": "9", "kind": "math",
        "options": [], "n_options": 0}]
EVAL = {"sampler": "hf", "max_new_tokens": 64, "temperature": 1.0, "top_p": 1.0}


def test_run_probe_feeds_l_p_teacher_tokens_and_grades_the_full_text(tmp_path, monkeypatch):
    tok = build_tokenizer()
    teacher = ScriptedSampler(tok, ["step one. step two.</think> \\boxed{7}", "short</think> \\boxed{9}"])
    student = ScriptedSampler(tok, ["", ""])  # the student stops at once: only the prefix can be right
    samplers = iter([(teacher, tok), (student, tok)])
    monkeypatch.setattr(probe, "make_sampler", lambda *a, **kw: next(samplers))
    monkeypatch.setattr(probe, "load_tokenizer", lambda path: tok)
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps(r) + "\n" for r in DEV))
    cfg = {"lengths": [4, 100], "answer_margin": 0, "samples": 3}
    frame = probe.run_probe("teacher", {"large": "student"}, str(dev), cfg, EVAL, 0, str(tmp_path / "probe.csv"),
                            str(tmp_path / "sol.jsonl"))
    assert list(frame.columns) == probe.PROBE_COLUMNS
    assert list(pd.read_csv(tmp_path / "probe.csv").columns) == probe.PROBE_COLUMNS
    assert frame["length"].tolist() == [0, 4, 100] and set(frame["samples"]) == {3}
    assert set(frame["n_questions"]) == {2}
    # margin 0 and L = 100 hand over the whole solution, answer included: graded on prefix + continuation
    assert frame["mean_at_k"].tolist() == [0.0, 0.0, 1.0]
    sols = [json.loads(line) for line in (tmp_path / "sol.jsonl").read_text().splitlines()]
    assert [s["id"] for s in sols] == [r["id"] for r in DEV] and all(s["correct"] for s in sols)
    assert sols[0]["tokens"] == len(tok(teacher.responses[0])["input_ids"])  # the stop token is not counted
    assert teacher.calls[0][1] == 1 and teacher.calls[0][2] == EVAL["max_new_tokens"]
    for (prompts, n, max_new, _), length in zip(student.calls, [0, 4, 100], strict=True):
        assert n == 3 and max_new == EVAL["max_new_tokens"]
        for prompt, rec, sol in zip(prompts, DEV, sols, strict=True):
            base = encode_prompt(tok, rec["prompt"])
            lp = probe.prefix_length(length, sol["tokens"], 0)
            assert prompt == base + sol["response_ids"][:lp]


def test_answer_margin_keeps_the_teacher_answer_out(tmp_path, monkeypatch):
    tok = build_tokenizer()
    teacher = ScriptedSampler(tok, ["step one. step two.</think> \\boxed{7}", "short</think> \\boxed{9}"])
    student = ScriptedSampler(tok, ["", ""])
    samplers = iter([(teacher, tok), (student, tok)])
    monkeypatch.setattr(probe, "make_sampler", lambda *a, **kw: next(samplers))
    monkeypatch.setattr(probe, "load_tokenizer", lambda path: tok)
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps(r) + "\n" for r in DEV))
    cfg = {"lengths": [100], "answer_margin": 12, "samples": 1}
    frame = probe.run_probe("t", {"s": "s"}, str(dev), cfg, EVAL, 0, str(tmp_path / "p.csv"), str(tmp_path / "s.jsonl"))
    assert frame["mean_at_k"].tolist() == [0.0, 0.0]


# -------------------------------------------------------------------------------------- case-study selection


def table(**marks: str) -> dict[str, bool]:
    return {qid: m == "1" for qid, m in marks.items()}


def test_selection_takes_the_first_id_meeting_the_rule():
    base = table(q3="0", q1="0", q2="0", q0="1")
    prefixed = table(q3="1", q1="1", q2="1", q0="1")
    opd = table(q3="1", q1="0", q2="1", q0="1")
    assert cs.select_problem(base, prefixed, opd) == ("q2", cs.RULE)  # q1 fails OPD, q2 < q3


def test_selection_needs_both_the_prefixed_and_the_opd_response_right():
    base = table(a="0", b="0", c="1")
    assert cs.select_problem(base, table(a="1", b="0", c="1"), table(a="0", b="1", c="1")) == ("a", cs.FALLBACK_WRONG)


def test_selection_fallback_when_no_question_meets_the_rule():
    base = table(b="1", c="0", d="0")
    prefixed = table(b="1", c="0", d="1")
    opd = table(b="1", c="1", d="0")
    qid, rule = cs.select_problem(base, prefixed, opd)
    assert (qid, rule) == ("c", cs.FALLBACK_WRONG) and "fallback" in rule


def test_selection_when_the_base_student_is_always_right():
    assert cs.select_problem(table(z="1", y="1"), table(z="0", y="0"), table(z="0", y="0")) == ("y", cs.FALLBACK_FIRST)


def test_selection_rejects_mismatched_or_empty_tables():
    with pytest.raises(ValueError):
        cs.select_problem({}, {}, {})
    with pytest.raises(ValueError):
        cs.select_problem(table(a="0"), table(b="1"), table(a="1"))


def test_fence_survives_backticks():
    block = cs.fence("a ```` b")
    assert block.startswith("`````\n") and block.endswith("\n`````")


# ------------------------------------------------------------------------- the case-study page, tiny models


def tiny_model(folder, tok, seed):
    torch.manual_seed(seed)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=8, intermediate_size=32, max_position_embeddings=512,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    Qwen3ForCausalLM(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return str(folder)


def test_case_study_page_end_to_end_on_tiny_random_models(tmp_path):
    tok = build_tokenizer()
    base = tiny_model(tmp_path / "base", tok, 0)
    teacher = tiny_model(tmp_path / "teacher", tok, 1)
    ckpts = tmp_path / "run" / "checkpoints"
    tiny_model(ckpts / "step_2", tok, 2)
    chosen = tmp_path / "chosen.json"
    chosen.write_text(json.dumps({"step": 2}))
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps(r) + "\n" for r in DEV))
    sols = tmp_path / "sol.jsonl"
    body = tok("abc ~~ def</think> \\boxed{7}", add_special_tokens=False)["input_ids"]
    sols.write_text("".join(json.dumps({"id": r["id"], "response_ids": body, "tokens": len(body),
                                        "correct": True}) + "\n" for r in DEV))
    out = tmp_path / "case_study.md"
    eval_cfg = EVAL | {"max_new_tokens": 8}
    qid = cs.run_case_study("large", base, teacher, "large-opd_prefix28", str(ckpts), str(chosen), str(sols),
                            str(dev), "aime24", {"student": "large", "teacher_prefix": 6}, 2, 16, eval_cfg, 0,
                            str(out))
    page = out.read_text()
    assert qid == "aime24-0000"  # random models answer nothing: the fallback, first wrong in id order
    assert "the rule is not met by any question" in page and cs.FALLBACK_WRONG in page
    assert "step 2" in page and "large-opd_prefix28" in page and "seed = 0" in page
    assert "L_p = min(6, L_r - 2) = 6 tokens" in page
    assert "```\nabc ~~\n```" in page  # the 6-token teacher prefix
    assert page.count("**incorrect**") == 3
    assert "| aime24-0000 | no | no | no |" in page and "| aime24-0001 | no | no | no |" in page
