"""Where the workflow writes each output, in one place: the rules declare these paths and the aggregation reads
them back through the same functions. Paths are relative to the world's working directory (config
`world_dir`), whose `results/` is that world's tree.
"""

from __future__ import annotations

OPD_QUESTIONS = "results/data/opd_questions.jsonl"
SEQKD = "results/data/seqkd.jsonl"
TOY_SUMMARY = "results/models/toy_summary.csv"
PROBE = "results/probe/probe.csv"
LR_MATCH = "results/eval/lr_match.json"


def metrics_path(run: str) -> str:
    return f"results/runs/{run}/metrics.csv"


def kl_path(run: str) -> str:
    return f"results/runs/{run}/kl_by_position.csv"


def curve_path(run: str) -> str:
    """The run's dev curve (rule eval_run): one row per (checkpoint, benchmark)."""
    return f"results/eval/{run}/curve.csv"


def curve_dir(run: str) -> str:
    return f"results/eval/{run}/curve"


def curve_samples_path(run: str, step: int, bench: str) -> str:
    return f"{curve_dir(run)}/step_{step}/{bench}.jsonl"


def chosen_path(run: str) -> str:
    """The dev-chosen step (rule eval_run)."""
    return f"results/eval/{run}/chosen.json"


def chosen_summary_path(run: str) -> str:
    """The run's dev-chosen checkpoint on its chosen benchmarks (rule eval_run)."""
    return f"results/eval/{run}/chosen.csv"


def chosen_samples_dir(run: str) -> str:
    return f"results/eval/{run}/chosen"


def chosen_samples_path(run: str, bench: str) -> str:
    return f"{chosen_samples_dir(run)}/{bench}.jsonl"


def suite_summary_path(run: str, step: int) -> str:
    """The full suite at a fixed step (rule eval_suite)."""
    return f"results/eval/{run}/step_{step}/summary.csv"


def suite_samples_path(run: str, step: int, bench: str) -> str:
    return f"results/eval/{run}/step_{step}/{bench}.jsonl"
