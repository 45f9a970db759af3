"""What each training method does, in one place for the native engine and verl's agent loop: the data it trains
on, how many tokens it generates at a step, which response positions enter its loss, and which loss.

Both engines read a run through its rollout spec (`rollout_spec(run)`: plain JSON data, which is also what
verl's agent loop receives), so a method's behaviour is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import losses, schedules
from .runs import RunSpec


@dataclass(frozen=True)
class Method:
    loss: str  # "opd" (sampled-token reverse KL), "gkd" (full-vocabulary divergence) or "sft" (SeqKD)
    offpolicy_data: bool  # trains on the off-policy solutions (SeqKD) instead of sampling from the prompts
    kl_log: bool  # logs KL by position (Figs. 2, 5) at training.log_steps
    diagnostics: bool  # also draws full-length diagnostic rollouts there (the runs that generate less than L_max)


METHODS = {
    "opd": Method("opd", False, True, False),
    "opd_prefix": Method("opd", False, True, True),
    "opd_schedule": Method("opd", False, True, True),
    "opd_window": Method("opd", False, True, True),
    "gkd": Method("gkd", False, False, False),  # lambda 0 reads the dataset's responses (`Trainer.step`)
    "seqkd": Method("sft", True, False, False),
    "seqkd_prefix": Method("sft", True, False, False),
}


def method(run: RunSpec) -> Method:
    return METHODS[run.method]


def rollout_spec(run: RunSpec) -> dict[str, Any]:
    """The part of a run that decides what it generates and which positions it trains on (plain JSON data)."""
    return {"method": run.method, "l_max": int(run.training["l_max"]), "l_train": run.l_train,
            "schedule": run.schedule, "window": list(run.window) if run.window else None, "tail": run.tail}


def generation_length(spec: dict[str, Any], step: int, history: Sequence[dict[str, Any]] = ()) -> int:
    """New tokens the sampler may generate at 0-based `step`: L_train for prefix OPD and prefix GKD,
    L_train(step) for a schedule (an adaptive one reads `history`, the metrics rows of the earlier steps), the
    window's end for a window [a, b), L_max otherwise."""
    name, l_max = spec["method"], spec["l_max"]
    if name in ("opd_prefix", "gkd"):
        return int(spec["l_train"])
    if name == "opd_schedule":
        return schedules.length_at(spec["schedule"], step, l_max, history)
    if name == "opd_window" and spec.get("window"):
        return int(spec["window"][1])
    return int(l_max)


def max_generation_length(spec: dict[str, Any]) -> int:
    """The longest generation over the run (verl's `data.max_response_length`): the schedule's is L_max."""
    return int(spec["l_max"]) if spec["method"] == "opd_schedule" else generation_length(spec, 0)


def loss_mask(spec: dict[str, Any], response_mask_BT: torch.Tensor) -> torch.Tensor:
    """Which response positions enter the loss: inside [a, b) or the last W tokens for a window (Table 3);
    every response token otherwise (prefixes are cut at sampling)."""
    if spec["method"] != "opd_window":
        return response_mask_BT
    if spec.get("window"):
        return losses.window_mask(response_mask_BT, *spec["window"])
    return losses.tail_mask(response_mask_BT, int(spec["tail"]))
