"""Training-prefix schedules: L_train as a function of the step (Section 3, "Prefix Scheduling").

A schedule is one function `(step, l_max, **params) -> int`; register it under a name and it becomes
a config value (`experiments.main.schedule.name`). Steps count from 0 (the first update).
"""

from __future__ import annotations

from collections.abc import Callable

Schedule = Callable[..., int]
SCHEDULES: dict[str, Schedule] = {}


def register(name: str) -> Callable[[Schedule], Schedule]:
    def wrap(fn: Schedule) -> Schedule:
        SCHEDULES[name] = fn
        return fn

    return wrap


@register("constant")
def constant(step: int, l_max: int, length: int) -> int:
    """Fixed prefix OPD: the same L_train every step."""
    return min(length, l_max)


@register("linear")
def linear(step: int, l_max: int, l0: int, dl: int) -> int:
    """The paper's schedule: L_train = L0 + step * dL, capped at L_max (paper: L0 = 1, dL = 256)."""
    return min(l0 + step * dl, l_max)


def get_schedule(name: str) -> Schedule:
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule '{name}'; choose from {sorted(SCHEDULES)}")
    return SCHEDULES[name]


def l_train_at(schedule: dict, step: int, l_max: int) -> int:
    """L_train at `step` for a schedule given as config: {name: ..., **params}."""
    params = {k: v for k, v in schedule.items() if k != "name"}
    return get_schedule(schedule["name"])(step, l_max, **params)
