"""Where the workflow writes each output, in one place: the rules declare these paths (templates whose
`{run}`, `{step}` and `{bench}` are Snakemake wildcards) and the aggregation reads them back through the same
templates (`at(METRICS, run=name)`). Paths are relative to the world's working directory (config `world_dir`),
whose `results/` is that world's tree.
"""

from __future__ import annotations

OPD_QUESTIONS = "results/data/opd_questions.jsonl"
SEQKD = "results/data/seqkd.jsonl"
TOY_SUMMARY = "results/models/toy_summary.csv"
PROBE = "results/probe/probe.csv"
LR_MATCH = "results/eval/lr_match.json"

# What the train rule publishes for a run, and its settings (rule run_settings: all its training depends on).
RUN = "results/runs/{run}"
SETTINGS = f"{RUN}/run.yaml"
CHECKPOINTS = f"{RUN}/checkpoints"
METRICS = f"{RUN}/metrics.csv"
KL = f"{RUN}/kl_by_position.csv"

# What the evaluation rules write for a run (or a base model's pseudo-run).
EVAL = "results/eval/{run}"
CURVE = f"{EVAL}/curve.csv"  # rule eval_run: the dev set at every checkpoint, one row per (step, benchmark)
CURVE_DIR = f"{EVAL}/curve"
CURVE_SAMPLES = CURVE_DIR + "/step_{step}/{bench}.jsonl"
CHOSEN = f"{EVAL}/chosen.json"  # the dev-chosen step; its summary and samples beside it
CHOSEN_SUMMARY = f"{EVAL}/chosen.csv"
CHOSEN_DIR = f"{EVAL}/chosen"
CHOSEN_SAMPLES = CHOSEN_DIR + "/{bench}.jsonl"
SUITE_DIR = EVAL + "/step_{step}"  # rule eval_suite: the full suite at a fixed step
SUITE_SUMMARY = f"{SUITE_DIR}/summary.csv"
SUITE_SAMPLES = SUITE_DIR + "/{bench}.jsonl"


def at(template: str, **wildcards: object) -> str:
    """A template with its wildcards filled in: `at(METRICS, run="small-opd-s0")`."""
    return template.format(**wildcards)
