"""`results/models/toy_summary.csv`: how strong each toy model is, through the evaluation's own path.

One row per (model, benchmark): accuracy (mean over :data:`SUMMARY_SAMPLES` samples at the evaluation's
temperature), answer rate, mean response length, how often the opening names the tag's method
(`plan_right`), the benchmark's chance level and how many of its chains are periodic within their length.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..data import read_jsonl
from ..evaluate import evaluate_checkpoint
from .task import METHOD_OF_TAG, MODULUS, period, plan_line
from .world import question_of

SUMMARY_SAMPLES = 4


def plan_right(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> float:
    """Share of sampled responses whose plan line is the method the question's tag calls for."""
    tags = {r["id"]: question_of(r).tag for r in records}
    right = (r["response"].startswith(plan_line(tags[r["id"]], METHOD_OF_TAG[tags[r["id"]]])) for r in rows)
    return sum(right) / max(1, len(rows))


def periodic_chains(records: list[dict[str, Any]]) -> int:
    return sum(period(question_of(r).chain()) is not None for r in records)


def summarize_models(models: dict[str, str], benchmarks: dict[str, str], eval_cfg: dict[str, Any],
                     out_csv: str, eval_dir: str, seed: int, threads: int) -> pd.DataFrame:
    """Accuracy, answer rate and opening choice of each model on each benchmark (`eval_dir/<model>/`: the
    graded samples)."""
    rows = []
    for name, folder in models.items():
        samples = dict.fromkeys(benchmarks, SUMMARY_SAMPLES)
        out_dir = f"{eval_dir}/{name}"
        summaries = evaluate_checkpoint(folder, benchmarks, samples, eval_cfg, out_dir, seed, threads)
        for bench, s in summaries.items():
            records = read_jsonl(benchmarks[bench])
            rows.append({"model": name, "benchmark": bench, "accuracy": s["mean_at_k"],
                         "answer_rate": s["answer_rate"], "mean_length": s["mean_length"],
                         "plan_right": plan_right(read_jsonl(f"{out_dir}/{bench}.jsonl"), records),
                         "chance": 1 / MODULUS, "periodic_chains": periodic_chains(records)})
    frame = pd.DataFrame(rows)
    frame.to_csv(out_csv, index=False)
    return frame
