"""The toy world's models have the properties the study rests on, at CI size.

A small version of the default world (short chains, small benchmark sets, short pretraining) is built
through the pipeline's own code: pretraining, benchmark files, the toy summary (evaluation's sampler and
grader) and the teacher-prefix probe. On it the precondition rows must read "met":

* P1: the teacher solves every benchmark stand-in (>= 0.90), out-of-domain ones included, chance <= 0.25;
* P2: both base students are weak in domain (<= 0.35) yet answer (answer rate >= 0.90);
* P5: a teacher prefix lifts the large student, concavely, with most of the lift from the opening line;
* P6: no benchmark chain is periodic.

(P3 and P4 need distillation runs and are checked on the full study's outputs.) The small student's
pretraining here only teaches the format; the probe uses the large student, which can already execute.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from prefix_opd import preconditions as pc
from prefix_opd.data import write_jsonl
from prefix_opd.probe import run_probe
from prefix_opd.toy.pretrain import pretrain
from prefix_opd.toy.summary import summarize_models
from prefix_opd.toy.tokenizer import save_tokenizer
from prefix_opd.toy.world import make_benchmark

PROMPTS = {"math": "Box the answer.", "multiple_choice": "Box the letter."}
SHORT = [2, 6]
BENCHMARKS = {"math500": {"size": 24, "tags": "in_domain", "lines": [2, 4]},
              "aime24": {"size": 24, "tags": "in_domain", "lines": [5, 6]},
              "aime25": {"size": 24, "tags": "in_domain", "lines": [5, 6]},
              "gpqa": {"size": 24, "tags": "held_out", "lines": [2, 4]},
              "mmlu_pro": {"size": 24, "tags": "held_out", "lines": [5, 6]}}
SHAPE = {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 256}
MODELS = {
    "teacher": SHAPE | {"plan_right": 1.0, "override": 0.5, "noise": 0.0, "steps": 700},
    "student_large": SHAPE | {"plan_right": 0.0, "plan_habit": 0.5, "noise": 0.003, "steps": 40},
    "student_small": {"hidden": 48, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 192,
                      "plan_right": 0.0, "plan_habit": 0.5, "noise": 0.003, "steps": 300},
}
TOY = {"pretrain": {"batch": 64, "lr": 1.0e-2, "warmup": 50, "lines": [1, 6]}}
EVAL = {"sampler": "fused", "max_new_tokens": 64, "temperature": 1.0, "top_p": 1.0, "max_batch_tokens": 262144}
PROBE = {"lengths": [7, 14, 21], "answer_margin": 7, "samples": 8}
SEED = 0


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy_models")
    cwd, cache = os.getcwd(), os.environ.get("PREFIX_OPD_MODEL_CACHE")
    os.chdir(root)  # the summary writes its samples under results/
    os.environ["PREFIX_OPD_MODEL_CACHE"] = "off"  # train them here, whatever a machine has cached
    try:
        save_tokenizer(root / "tokenizer")
        for name, spec in BENCHMARKS.items():
            write_jsonl(root / f"{name}.jsonl", make_benchmark(name, spec, SEED, PROMPTS))
        for name in ("teacher", "student_small", "student_large"):
            init = str(root / "teacher") if name == "student_large" else None
            pretrain(MODELS[name], TOY, PROMPTS, str(root / "tokenizer"), str(root / name), SEED, threads=2,
                     init_from=init)
        summarize_models({m: str(root / m) for m in MODELS}, {b: str(root / f"{b}.jsonl") for b in BENCHMARKS},
                         EVAL, str(root / "toy_summary.csv"), str(root / "eval"), SEED, threads=2)
        run_probe(str(root / "teacher"), {"large": str(root / "student_large")}, str(root / "aime24.jsonl"),
                  PROBE, EVAL, SEED, str(root / "probe.csv"), str(root / "solutions.jsonl"), threads=2)
    finally:
        os.chdir(cwd)
        if cache is None:
            os.environ.pop("PREFIX_OPD_MODEL_CACHE", None)
        else:
            os.environ["PREFIX_OPD_MODEL_CACHE"] = cache
    return root


def _row(row: pc.Precondition) -> str:
    return f"{row.key}: {row.status}; {row.measured}"


def test_teacher_solves_every_stand_in(world):
    row = pc.teacher_strong(pd.read_csv(world / "toy_summary.csv"))
    assert row.status == pc.MET, _row(row)


def test_base_students_are_weak_but_answer(world):
    row = pc.base_students_weak(pd.read_csv(world / "toy_summary.csv"), ["small", "large"])
    assert row.status == pc.MET, _row(row)


def test_teacher_prefix_lift_is_concave_and_early(world):
    row = pc.probe_concave(pd.read_csv(world / "probe.csv"))
    assert row.status == pc.MET, _row(row)


def test_no_benchmark_chain_is_periodic(world):
    summary = pd.read_csv(world / "toy_summary.csv")
    row = pc.aperiodic(summary)
    assert row.status == pc.MET and (summary["periodic_chains"] == 0).all(), _row(row)
