"""`results/models/toy_summary.csv`: how strong each toy model is, through the evaluation's own path."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..evaluate import evaluate_checkpoint

SUMMARY_SAMPLES = 4  # mean over 4 samples at temperature 1.0 (issue: toy world)


def summarize_models(models: dict[str, str], benchmarks: dict[str, str], eval_cfg: dict[str, Any],
                     out_csv: str, seed: int, threads: int) -> pd.DataFrame:
    rows = []
    for name, folder in models.items():
        samples = dict.fromkeys(benchmarks, SUMMARY_SAMPLES)
        out_dir = f"results/models/eval/{name}"
        for bench, s in evaluate_checkpoint(folder, benchmarks, samples, eval_cfg, out_dir, seed, threads).items():
            rows.append({"model": name, "benchmark": bench, "accuracy": s["mean_at_k"],
                         "answer_rate": s["answer_rate"], "mean_length": s["mean_length"]})
    frame = pd.DataFrame(rows)
    frame.to_csv(out_csv, index=False)
    return frame
