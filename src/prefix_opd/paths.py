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


def run_dir(run: str) -> str:
    """What the train rule publishes for a run: checkpoints/, metrics.csv, kl_by_position.csv."""
    return f"results/runs/{run}"


def eval_dir(run: str) -> str:
    """What the evaluation rules write for a run (or a base model's pseudo-run)."""
    return f"results/eval/{run}"


def settings_path(run: str) -> str:
    """run.yaml: everything the run's training depends on (rule run_settings)."""
    return f"{run_dir(run)}/run.yaml"


def checkpoints_dir(run: str) -> str:
    return f"{run_dir(run)}/checkpoints"


def metrics_path(run: str) -> str:
    return f"{run_dir(run)}/metrics.csv"


def kl_path(run: str) -> str:
    return f"{run_dir(run)}/kl_by_position.csv"


def curve_path(run: str) -> str:
    """The run's dev curve (rule eval_run): one row per (checkpoint, benchmark)."""
    return f"{eval_dir(run)}/curve.csv"


def curve_dir(run: str) -> str:
    return f"{eval_dir(run)}/curve"


def curve_samples_path(run: str, step: int, bench: str) -> str:
    return f"{curve_dir(run)}/step_{step}/{bench}.jsonl"


def chosen_path(run: str) -> str:
    """The dev-chosen step (rule eval_run); its summary and samples beside it."""
    return f"{eval_dir(run)}/chosen.json"


def chosen_summary_path(run: str) -> str:
    return f"{eval_dir(run)}/chosen.csv"


def chosen_samples_dir(run: str) -> str:
    return f"{eval_dir(run)}/chosen"


def chosen_samples_path(run: str, bench: str) -> str:
    return f"{chosen_samples_dir(run)}/{bench}.jsonl"


def suite_dir(run: str, step: int | str) -> str:
    """The full suite at a fixed step (rule eval_suite): summary.csv and one JSONL of samples per benchmark."""
    return f"{eval_dir(run)}/step_{step}"


def suite_summary_path(run: str, step: int | str) -> str:
    return f"{suite_dir(run, step)}/summary.csv"


def suite_samples_path(run: str, step: int | str, bench: str) -> str:
    return f"{suite_dir(run, step)}/{bench}.jsonl"
