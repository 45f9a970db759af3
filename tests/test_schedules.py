"""Prefix schedules' decision rules on synthetic signals: fixed kinds read the step, adaptive kinds the history."""

from __future__ import annotations

import math

import pytest

from prefix_opd.schedules import length_at, parameters

L_MAX = 40


def _rows(lengths: list[int], signals: list[float]) -> list[dict]:
    return [{"l_train": n, "signal": s} for n, s in zip(lengths, signals, strict=True)]


def _replay(schedule: dict, signals: list[float]) -> list[int]:
    """The lengths a run would train at, feeding each step's signal back as the trainer does."""
    rows: list[dict] = []
    for step, signal in enumerate(signals):
        rows.append({"l_train": length_at(schedule, step, L_MAX, rows), "signal": signal})
    return [r["l_train"] for r in rows]


def test_fixed_kinds_read_the_step():
    assert [length_at({"name": "p", "kind": "linear", "l0": 1, "dl": 5}, s, L_MAX) for s in (0, 1, 8, 9)] == \
        [1, 6, 40, 40]
    assert [length_at({"name": "s", "kind": "step", "l0": 7, "grow": 7, "every": 2}, s, L_MAX) for s in range(5)] == \
        [7, 7, 14, 14, 21]
    assert length_at({"name": "c", "kind": "constant", "length": 99}, 3, L_MAX) == L_MAX


def test_kl_frontier_grows_when_the_ratio_falls_below_after_hold_steps():
    s = {"name": "k", "kind": "kl_frontier", "l0": 7, "grow": 7, "hold": 2, "width": 7, "ratio": 1.0, "probes": 4}
    # step 0 ready but hold 2 not met; step 1 ready -> 14; at 14 the count restarts (2.0 not ready, then 0.5
    # after 2 steps -> 21); a nan signal never reads ready
    assert _replay(s, [0.5, 0.5, 2.0, 0.5, 0.5, math.nan, math.nan, 0.5]) == [7, 7, 14, 14, 21, 21, 21, 21]


def test_boundary_gap_caps_at_l_max():
    s = {"name": "b", "kind": "boundary_gap", "l0": 30, "grow": 7, "hold": 1, "width": 7, "threshold": 0.1}
    assert _replay(s, [0.0, 0.0, 0.0, 0.0]) == [30, 37, 40, 40]


def test_dev_plateau_waits_for_patience_evaluations_without_gain():
    s = {"name": "d", "kind": "dev_plateau", "l0": 7, "grow": 7, "hold": 1, "every": 1, "questions": 4,
         "samples": 2, "patience": 2, "min_gain": 0.05}
    # rising scores keep the length; two scores within 0.05 of the best before them grow it, and the
    # evaluations before the growth do not count at the new length
    scores = [0.1, 0.3, 0.5, 0.52, 0.54, 0.6, 0.61, 0.62]
    assert _replay(s, scores) == [7, 7, 7, 7, 7, 14, 14, 14]
    nan_between = [math.nan, 0.3, math.nan, 0.3, math.nan, 0.3]  # scored every other step
    assert _replay(dict(s, every=2), nan_between) == [7, 7, 7, 7, 7, 7]
    assert _replay(dict(s, every=2, patience=1), nan_between) == [7, 7, 7, 7, 14, 14]


def test_a_decision_depends_only_on_the_rows_before_it():
    """Resuming at step k replays the same lengths: step k's length reads rows 1..k only."""
    s = {"name": "k", "kind": "kl_frontier", "l0": 7, "grow": 7, "hold": 1, "width": 7, "ratio": 1.0, "probes": 4}
    rows = _rows([7, 14, 14, 21], [0.5, 3.0, 0.2, 0.9])
    for k in range(5):
        assert length_at(s, k, L_MAX, rows[:k] + _rows([99], [0.0])) == length_at(s, k, L_MAX, rows[:k])
    with pytest.raises(ValueError, match="rows of all 3 earlier steps"):
        length_at(s, 3, L_MAX, rows[:2])


def test_parameters_follow_the_kind():
    assert parameters("linear") == ["l0", "dl"]
    assert parameters("kl_frontier") == ["l0", "grow", "hold", "width", "ratio", "probes"]
