# Helpers shared by the rules: config checks, the run table, and every config -> path lookup.
import json
import re
import sys
from pathlib import Path

from prefix_opd import code_deps, hub, paths, tables
from prefix_opd.backends.verl_overrides import backend_for
from prefix_opd.runs import ConfigError, base_run, expand_runs
from prefix_opd.validate import MissingTool, check_environment, check_semantics

_gpu = workflow.global_resources.get("gpu")  # --resources gpu=N, if given
try:
    check_semantics(config, available_gpus=getattr(_gpu, "value", _gpu))
except ConfigError as err:
    sys.exit(f"Invalid config: {err}")
try:  # a dry run plans a study this machine cannot run (e.g. the paper world without verl); a run stops at start
    check_environment(config)
    MISSING_TOOL = None
except MissingTool as err:
    MISSING_TOOL = err
    print(f"Warning: {err} (a dry run plans anyway; a run stops before its first job)", file=sys.stderr)


onstart:
    if MISSING_TOOL is not None:
        sys.exit(f"Invalid config: {MISSING_TOOL}")

HUB_MODELS = hub.localize(config)  # hub ids in `models` -> results/models/hub/<owner>--<name> (rule download_model)
RUNS = expand_runs(config)
REPO = Path(workflow.basedir)  # the code; the working directory holds this world's results/ (config world_dir)
BENCHMARKS = config["benchmarks"]
DEV = config["dev_benchmark"]
STUDENTS = list(config["models"]["students"])
TOY = config["world"] == "toy"
PKG = "src/prefix_opd"
TOY_MODELS = ["teacher", "student_small", "student_large"]
# GPUs of an evaluation-type job (evaluation, probe, case study): vLLM's tensor-parallel size; the in-process
# samplers run where the job is (a GPU when the training jobs have them is the profile's choice)
EVAL_GPUS = config["eval"].get("tensor_parallel", 1) if config["eval"]["sampler"] == "vllm" else 0


wildcard_constraints:
    run=r"[A-Za-z0-9_.\-]+",
    step=r"\d+",
    bench="|".join(BENCHMARKS),
    student="|".join(STUDENTS),
    model="|".join(TOY_MODELS),


def script_code(name):
    """The package files workflow/scripts/<name>.py runs (its import closure): a rule's code inputs, so a change
    to any of them, and only to them, reruns the rule (Snakemake's code trigger does not see imports)."""
    return code_deps.script_code(REPO / "workflow" / "scripts" / f"{name}.py")


def toy_model_inputs(wildcards):
    """A toy model trains from the tokenizer, and from another toy model's weights when `init_from` says so."""
    init = config["toy"]["models"][wildcards.model].get("init_from")
    inputs = {"tokenizer": "results/models/tokenizer"}
    if init:
        inputs["init"] = f"results/models/{init}"
    return inputs


def local_models(paths):
    """The folders the workflow builds (toy models, downloaded hub models) are file inputs; a folder of the user's
    own is read as it is."""
    return [p for p in paths if p.startswith("results/")]


def run_settings(wildcards):
    return RUNS[wildcards.run].settings(config)


def train_priority(wildcards):
    """Longest runs first (their step count: SeqKD's hundreds before OPD's tens), so that no long run is left
    alone on one core at the end of the study while the other cores idle."""
    return RUNS[wildcards.run].steps


def train_gpus(wildcards):
    """GPUs one training job asks for: `training.gpus` on one node, whatever the engine (verl splits them
    between the teacher and the student; the native engine shards the student over them, one process per GPU:
    sharding.py); none on CPU."""
    return config["training"].get("gpus", 0)


def hub_folder_pattern():
    """The folder names rule download_model makes (`<owner>--<name>` of each hub model of the config)."""
    names = [Path(hub.local_dir(repo_id)).name for repo_id in HUB_MODELS]
    return "|".join(re.escape(n) for n in names) or "no-hub-model"


def train_nodes(wildcards):
    """Nodes one training job asks for: `training.nodes` for a verl run (Ray across them), one otherwise."""
    verl = backend_for(RUNS[wildcards.run].settings(config)) == "verl"
    return int(config["training"].get("nodes", 1)) if verl else 1


def model_inputs(wildcards):
    """The folders a run trains from: its student and (for distillation) the teacher."""
    settings = RUNS[wildcards.run].settings(config)
    return local_models([settings["student_path"], settings["teacher_path"]])


def train_data(wildcards):
    """What a run trains from beside its models: the OPD questions, the SeqKD solutions, and the dev set when its
    schedule reads dev scores (dev_plateau)."""
    inputs = {"questions": paths.OPD_QUESTIONS, "seqkd": paths.SEQKD}
    schedule = RUNS[wildcards.run].schedule
    if schedule and schedule["kind"] == "dev_plateau":
        inputs["dev"] = benchmark_files([DEV])[DEV]
    return inputs


def is_base(run):
    return any(run == base_run(s) for s in STUDENTS)


def model_dir(wildcards):
    """The folder evaluated for (run, step): a base model or one of a run's checkpoints."""
    if is_base(wildcards.run):
        return config["models"]["students"][wildcards.run.removesuffix("-base")]
    return paths.at(paths.CHECKPOINTS, run=wildcards.run)


def benchmark_files(names=None):
    return {b: f"results/data/benchmarks/{b}.jsonl" for b in (names or BENCHMARKS)}


def curve_benchmarks(run):
    """The dev set at every checkpoint; Fig. 7's runs also need the easy in-domain set."""
    fig7 = set(tables.fig7_runs(config, RUNS))
    return [DEV, "math500"] if run in fig7 and "math500" in BENCHMARKS and DEV != "math500" else [DEV]


def chosen_benchmarks(run):
    """The dev-chosen checkpoint on the full suite for the runs Tables 1-2 and the claims compare, else on the
    curve's benchmarks (copied from the curve)."""
    return BENCHMARKS if run in CHOSEN_SUITE_RUNS else curve_benchmarks(run)


CHOSEN_SUITE_RUNS = set(tables.chosen_suite_runs(config))


STUDENTS_BY_TABLE = {1 + i: s for i, s in enumerate(config["experiments"]["main"]["students"])}


def curve_runs_of_table(table):
    """Tables 5 / 6: every run of the student (all methods, not only the paper's list)."""
    student = STUDENTS_BY_TABLE[int(table) - 4]
    return [name for name in tables.curve_runs(config) if RUNS[name].student == student]


PROBE = config["experiments"]["probe"]
CASE = config["experiments"]["case_study"]
CASE_RUN = tables.prefix_run(config, RUNS, CASE["student"], config["experiments"]["windows"]["prefix"])


def case_study_inputs(wildcards):
    """The base student, the prefix-OPD run's checkpoints and its dev-chosen step."""
    if CASE_RUN is None:
        raise ValueError(
            f"experiments.case_study: no prefix-OPD run of student '{CASE['student']}' at windows.prefix in the "
            "study; add windows.prefix to experiments.main.prefix_lengths or set case_study.student to a "
            "student of experiments.main.students"
        )
    return {
        "models": local_models([config["models"]["students"][CASE["student"]], config["models"]["teacher"]]),
        "checkpoints": paths.at(paths.CHECKPOINTS, run=CASE_RUN),
        "chosen": paths.at(paths.CHOSEN, run=CASE_RUN),
        "solutions": "results/probe/teacher_solutions.jsonl",
        "dev": benchmark_files([DEV])[DEV],
    }


def all_outputs():
    """Everything `snakemake` builds by default."""
    out = [f"results/tables/table{t}.{ext}" for t in STUDENTS_BY_TABLE for ext in ("csv", "md", "tex")]
    out += [f"results/tables/table{t + 4}.csv" for t in STUDENTS_BY_TABLE]
    out += [f"results/tables/table{t}.{ext}" for t in (3, 4) for ext in ("csv", "md", "tex")]
    out += [f"results/tables/schedules.{ext}" for ext in ("csv", "md", "tex")]
    # Fig. 3 reads the teacher-prefix probe's output
    figs = [f for f in figures.FIGURES if f != "fig3" or rules.has("teacher_prefix_probe")]
    out += [f"results/figures/{fig}.{ext}" for fig in figs for ext in ("png", "pdf")]
    out += ["results/findings.md", "results/findings.csv"]
    out += [paths.PROBE, "results/case_study.md"]
    if TOY:
        out.append(paths.TOY_SUMMARY)
    return out
