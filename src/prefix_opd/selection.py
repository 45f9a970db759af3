"""Checkpoint choice on the dev set (Appendix E) and matched-accuracy selection (Table 4)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def choose_step(curve: pd.DataFrame, dev: str) -> dict[str, Any]:
    """The step with the best dev mean@k; ties go to the earliest step (less compute)."""
    rows = curve[curve["benchmark"] == dev].sort_values("step")
    if rows.empty:
        raise ValueError(f"no '{dev}' rows in the dev curve; was the run evaluated on dev_benchmark?")
    best = rows.loc[rows["mean_at_k"].idxmax()]
    return {"step": int(best["step"]), "dev_benchmark": dev, "dev_mean_at_k": float(best["mean_at_k"]),
            "rule": "argmax dev mean@k over saved checkpoints, earliest on ties"}


def matched_steps(curves: dict[str, pd.DataFrame], dev: str, tolerance: float) -> dict[str, dict[str, Any]]:
    """Table 4's rule: target = the lowest of the runs' best dev accuracies; for each run the earliest
    checkpoint whose dev accuracy is within `tolerance` of the target (or, failing that, the closest)."""
    dev_rows = {run: c[c["benchmark"] == dev].sort_values("step") for run, c in curves.items()}
    target = min(float(r["mean_at_k"].max()) for r in dev_rows.values())
    out = {}
    for run, rows in dev_rows.items():
        near = rows[(rows["mean_at_k"] - target).abs() <= tolerance]
        pick = near.iloc[0] if not near.empty else rows.loc[(rows["mean_at_k"] - target).abs().idxmin()]
        out[run] = {"step": int(pick["step"]), "dev_mean_at_k": float(pick["mean_at_k"]), "target": target}
    return out
