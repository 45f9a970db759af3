"""Training-prefix schedules: L_train at each step (Section 3, "Prefix Scheduling", and adaptive ones of our own).

A study holds several schedules (`experiments.main.schedules`, a list of named entries `{name, kind, **params}`);
each becomes its own run per student and training seed. Two families of kinds:

* **fixed** kinds are one function `(step, l_max, **params) -> int` (the paper's `linear`; `constant`; `step`);
* **adaptive** kinds decide L_train from what training sees. Each starts at `l0`, and after at least `hold`
  steps at one length grows it by `grow` (capped at L_max, never shrinking) when its rule reads the signal of
  the step just done as "ready":

  - `kl_frontier`: a few probe rollouts run `width` tokens past L_train; the signal is the per-token KL on the
    trained positions over the KL just beyond them (probe cost counted in the run's FLOPs); ready when it has
    fallen below `ratio`;
  - `boundary_gap`: the signal is the teacher-student gap (per-token sampled KL) of the training batch on the
    last `width` trained positions, which the step computes anyway (no extra cost); ready below `threshold`;
  - `dev_plateau`: every `every` steps the student is scored on `questions` dev questions (`samples` each,
    cost in FLOPs); the signal is that score, ready when it has not improved by more than `min_gain` over the
    best one `patience` evaluations ago.

A step's L_train depends only on the previous steps' rows of `metrics.csv` (`l_train` and `signal`), so a resumed
run replays its decisions exactly (`length_at`). Steps count from 0 (the first update).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

FixedSchedule = Callable[..., int]
FIXED: dict[str, FixedSchedule] = {}


def fixed(kind: str) -> Callable[[FixedSchedule], FixedSchedule]:
    def wrap(fn: FixedSchedule) -> FixedSchedule:
        FIXED[kind] = fn
        return fn

    return wrap


@fixed("constant")
def constant(step: int, l_max: int, length: int) -> int:
    """Fixed prefix OPD: the same L_train every step."""
    return min(length, l_max)


@fixed("linear")
def linear(step: int, l_max: int, l0: int, dl: int) -> int:
    """The paper's schedule: L_train = L0 + step * dL, capped at L_max (paper: L0 = 1, dL = 256)."""
    return min(l0 + step * dl, l_max)


@fixed("step")
def staircase(step: int, l_max: int, l0: int, grow: int, every: int) -> int:
    """L0, grown by `grow` every `every` steps: the fixed counterpart of the adaptive kinds."""
    return min(l0 + (step // every) * grow, l_max)


@dataclass(frozen=True)
class Adaptive:
    """An adaptive kind: its rule's own parameters (besides l0, grow, hold) and whether a signal reads "ready"."""

    params: tuple[str, ...]
    ready: Callable[[list[float], dict[str, Any]], bool]  # (signals so far at this length, params) -> grow?
    signal: str  # what the trainer measures: "kl_frontier", "boundary_gap" or "dev_score"


def _last_below(key: str) -> Callable[[list[float], dict[str, Any]], bool]:
    return lambda signals, p: bool(signals) and math.isfinite(signals[-1]) and signals[-1] < p[key]


def _plateau(signals: list[float], p: dict[str, Any]) -> bool:
    """No dev score of the last `patience` evaluations beats the best one before them by more than min_gain."""
    scores = [s for s in signals if math.isfinite(s)]
    if len(scores) <= p["patience"]:
        return False
    before, recent = scores[: -p["patience"]], scores[-p["patience"]:]
    return max(recent) <= max(before) + p["min_gain"]


ADAPTIVE_COMMON = ("l0", "grow", "hold")
ADAPTIVE: dict[str, Adaptive] = {
    "kl_frontier": Adaptive(("width", "ratio", "probes"), _last_below("ratio"), "kl_frontier"),
    "boundary_gap": Adaptive(("width", "threshold"), _last_below("threshold"), "boundary_gap"),
    "dev_plateau": Adaptive(("every", "questions", "samples", "patience", "min_gain"), _plateau, "dev_score"),
}
FLOAT_PARAMS = ("ratio", "threshold", "min_gain")


def kinds() -> list[str]:
    return sorted(FIXED) + sorted(ADAPTIVE)


def is_adaptive(schedule: dict[str, Any]) -> bool:
    return schedule["kind"] in ADAPTIVE


def parameters(kind: str) -> list[str]:
    """The parameters a kind takes (a fixed kind's from its signature)."""
    if kind in ADAPTIVE:
        return [*ADAPTIVE_COMMON, *ADAPTIVE[kind].params]
    return [p for p in inspect.signature(FIXED[kind]).parameters if p not in ("step", "l_max")]


def params_of(schedule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schedule.items() if k not in ("name", "kind")}


def signal_kind(schedule: dict[str, Any]) -> str | None:
    """What the trainer must measure for this schedule (None for a fixed kind)."""
    return ADAPTIVE[schedule["kind"]].signal if is_adaptive(schedule) else None


def length_at(schedule: dict[str, Any], step: int, l_max: int, history: Sequence[dict[str, Any]] = ()) -> int:
    """L_train at 0-based `step`. A fixed kind reads the step; an adaptive kind reads `history`, the metrics rows
    of steps 1..step (`l_train`, and the `signal` measured at that step)."""
    kind, p = schedule["kind"], params_of(schedule)
    if kind in FIXED:
        return int(FIXED[kind](step, l_max, **p))
    if kind not in ADAPTIVE:
        raise ValueError(f"Unknown schedule kind '{kind}'; choose from {kinds()}")
    if len(history) < step:
        raise ValueError(f"an adaptive schedule needs the rows of all {step} earlier steps, got {len(history)}")
    current, stretch = min(int(p["l0"]), l_max), []  # stretch: the signals measured at `current`
    for row in history[:step]:
        if int(row["l_train"]) != current:
            current, stretch = int(row["l_train"]), []
        stretch.append(float(row["signal"]))
        if current < l_max and len(stretch) >= p["hold"] and ADAPTIVE[kind].ready(stretch, p):
            current, stretch = min(current + int(p["grow"]), l_max), []
    return current


def describe(schedule: dict[str, Any]) -> str:
    """A short legend for tables and figures: `kl_frontier (l0=7, grow=7, ...)`."""
    params = ", ".join(f"{k}={v}" for k, v in params_of(schedule).items())
    return f"{schedule['name']}: {schedule['kind']} ({params})"
