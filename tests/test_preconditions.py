"""The precondition rows: each predicate passes on a world that has the property and fails on one without."""

from __future__ import annotations

import math

import pandas as pd

from prefix_opd import preconditions as pc


def _summary(teacher: float = 0.95, student: float = 0.2, answer: float = 1.0, periodic: int = 0) -> pd.DataFrame:
    rows = []
    for model, acc in (("teacher", teacher), ("student_small", student), ("student_large", student)):
        for bench in ("math500", "aime24", "aime25", "gpqa", "mmlu_pro"):
            rows.append({"model": model, "benchmark": bench, "accuracy": acc, "answer_rate": answer,
                         "chance": 0.01, "periodic_chains": periodic})
    return pd.DataFrame(rows)


def test_teacher_and_base_student_rows():
    assert pc.teacher_strong(_summary()).status == pc.MET
    assert pc.teacher_strong(_summary(teacher=0.85)).status == pc.NOT_MET
    chance = _summary()
    chance.loc[chance["benchmark"] == "gpqa", "chance"] = 0.25 + 1e-9  # a 4-option lookup would not do
    assert pc.teacher_strong(chance).status == pc.NOT_MET
    assert pc.base_students_weak(_summary(), ["small", "large"]).status == pc.MET
    assert pc.base_students_weak(_summary(student=0.4), ["small", "large"]).status == pc.NOT_MET
    assert pc.base_students_weak(_summary(answer=0.8), ["small", "large"]).status == pc.NOT_MET
    assert pc.base_students_weak(_summary(), ["medium"]).status == pc.NOT_MEASURED


def _kl(first: float, later: float, step: int = 0) -> pd.DataFrame:
    rows = [{"step": step, "source": "train", "bin_start": 0, "bin_end": 7, "kl_mean": first, "n_tokens": 70}]
    rows += [{"step": step, "source": "train", "bin_start": b, "bin_end": b + 7, "kl_mean": later * (1 + i % 2),
              "n_tokens": 70 - i} for i, b in enumerate(range(7, 140, 7))]
    return pd.DataFrame(rows)


def test_kl_first_over_rest_is_token_weighted_and_reads_step_zero():
    first, rest = pc.kl_first_over_rest(_kl(1.0, 0.1))
    frame = _kl(1.0, 0.1).iloc[1:]
    assert first == 1.0
    assert rest == (frame["kl_mean"] * frame["n_tokens"]).sum() / frame["n_tokens"].sum()
    assert math.isnan(pc.kl_first_over_rest(_kl(1.0, 0.1, step=10))[0])  # only the base students' rollouts count


def _probe(accs: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"student": "small", "length": [0, 7, 14, 28, 56][:len(accs)], "mean_at_k": accs})


def test_probe_shape_needs_concavity_and_an_early_lift():
    assert pc.probe_concave(_probe([0.1, 0.5, 0.55, 0.6, 0.6])).status == pc.MET  # the paper's shape
    assert pc.probe_concave(_probe([0.1, 0.12, 0.15, 0.3, 0.6])).status == pc.NOT_MET  # convex
    assert pc.probe_concave(_probe([0.1, 0.2, 0.4, 0.45, 0.5])).status == pc.NOT_MET  # concave, slow start
    assert pc.probe_concave(_probe([0.1, 0.1, 0.1, 0.1, 0.1])).status == pc.NOT_MET  # no lift at all
    concave, early, _ = pc.probe_shape(_probe([0.1, 0.5, 0.49, 0.6, 0.6]))
    assert concave and early  # within the tolerance of sampling noise


def test_aperiodic_row_counts_periodic_chains():
    assert pc.aperiodic(_summary()).status == pc.MET
    assert pc.aperiodic(_summary(periodic=1)).status == pc.NOT_MET
