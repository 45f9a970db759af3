"""Invalid configs fail before any job runs, fast, with one line that names the offending key.

Each case is a small YAML override merged over config/ci.yaml (`--configfile config/ci.yaml bad.yaml`,
merged in turn over config/config.yaml by the Snakefile). A merge cannot delete a key, so cases that
need a key *absent* delete it from the copy's config/config.yaml for that case only.

Snakemake runs for real (not `-n`) in a private copy of the repo: if a bad config slipped through,
the first jobs would start and write under results/, which the test catches (a dry run writes
nothing either way, so it could not tell); the run is killed as soon as results/ gets a file.

Time limit: 10 s of wall-clock time. On an oversubscribed machine (load average above the core
count: parallel CI jobs) wall-clock time measures the neighbours, so there the same 10 s limit
applies to the CPU time of Snakemake and its children instead, which the load does not inflate.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_helpers import copy_repo, files_under, run_snakemake, snakemake_env, write_yaml

TIME_LIMIT_S = 10.0
KILL_AFTER_S = 90.0
ERROR_WORDS = ("invalid", "error", "not", "must", "unknown", "missing", "exceed", "longer", "unexpected",
               "does not", "more than", "required", "less than", "duplicate", "both named")


def _schedules(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"experiments": {"main": {"schedules": list(entries)}}}


@dataclass(frozen=True)
class Case:
    id: str
    override: dict[str, Any]
    key: str  # dotted path of the offending key, e.g. training.lr or benchmarks[2]
    also: tuple[str, ...] = ()  # other acceptable ways a message may name it
    delete: tuple[str, ...] = ()  # dotted keys removed from config/config.yaml for this case
    args: tuple[str, ...] = ()  # extra command-line arguments
    extra_phrase: str | None = None  # a phrase the naming line must also contain
    meta: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # extra environment variables


CASES = [
    Case("wrong_type", {"training": {"steps": "ten"}}, "training.steps"),
    Case("unknown_top_level_key", {"trainnig": {"steps": 3}}, "trainnig", also=("'trainnig' was unexpected",)),
    Case("unknown_method_key", {"experiments": {"opd_reverse": {"student": "large", "prefix": 4}}},
         "experiments.opd_reverse", also=("'opd_reverse' was unexpected",)),
    Case("unknown_key_in_training", {"training": {"lrr": 1.0e-3}}, "training.lrr",
         also=("'lrr' was unexpected",)),
    Case("unknown_benchmark", {"benchmarks": ["math500", "aime24", "hle"]}, "benchmarks[2]",
         also=("'hle' is not one of",)),
    Case("negative_lr", {"training": {"lr": -1.0e-3}}, "training.lr"),
    Case("zero_lr", {"training": {"lr": 0}}, "training.lr"),
    Case("zero_lr_in_sweep", {"experiments": {"gkd": {"lrs": [0.0]}}}, "experiments.gkd.lrs[0]"),
    Case("prefix_longer_than_l_max", {"experiments": {"main": {"prefix_lengths": [4, 512]}}},
         "experiments.main.prefix_lengths[1]"),
    Case("schedule_missing_step_parameter", _schedules({"name": "lin", "kind": "linear", "l0": 1}),
         "experiments.main.schedules[0].dl"),
    Case("unknown_schedule", _schedules({"name": "cos", "kind": "cosine"}), "experiments.main.schedules[0].kind"),
    Case("schedule_unknown_parameter", _schedules({"name": "kl", "kind": "kl_frontier", "l0": 7, "grow": 7, "hold": 3,
                                            "width": 7, "ratio": 1.0, "probes": 4, "patience": 2}),
         "experiments.main.schedules[0].patience"),
    Case("schedule_ratio_a_string", _schedules({"name": "kl", "kind": "kl_frontier", "l0": 7, "grow": 7, "hold": 3,
                                         "width": 7, "ratio": "1", "probes": 4}),
         "experiments.main.schedules[0].ratio"),
    Case("schedule_names_repeat", _schedules({"name": "a", "kind": "linear", "l0": 1, "dl": 5},
                                       {"name": "a", "kind": "linear", "l0": 1, "dl": 9}),
         "experiments.main.schedules[1].name"),
    Case("adaptive_schedule_on_verl", {"training": {"backend": "verl", "gpus": 2, "sampler": "hf"}, **_schedules(
        {"name": "gap", "kind": "boundary_gap", "l0": 7, "grow": 7, "hold": 3, "width": 7, "threshold": 0.5})},
         "experiments.main.schedules[0].kind", extra_phrase="native engine"),
    Case("window_outside_range", {"experiments": {"windows": {"windows": [[300, 400]]}}},
         "experiments.windows.windows[0]"),
    Case("teacher_path_absent", {}, "models.teacher", also=("'teacher' is a required property",),
         delete=("models.teacher",)),
    Case("teacher_path_empty", {"models": {"teacher": ""}}, "models.teacher"),
    Case("vocab_smaller_than_tokenizer", {"toy": {"models": {"student_small": {"vocab": 8}}}},
         "toy.models.student_small.vocab", extra_phrase="does not fit the tokenizer"),
    Case("teacher_student_vocab_differ", {"toy": {"models": {"teacher": {"vocab": 4096}}}},
         "toy.models.teacher.vocab"),
    Case("more_gpus_than_available", {"training": {"gpus": 16}}, "training.gpus", args=("--resources", "gpu=8")),
    Case("verl_on_one_gpu", {"training": {"backend": "verl", "gpus": 1}}, "training.gpus"),
    Case("duplicate_run_names", {"experiments": {"lr_sweep": {"lrs": [2.0e-3, 1.0e-3, 1.04e-3]}}},
         "experiments.lr_sweep.lrs", also=("both named 'large-opd_prefix28-lr1e-3-s0'",)),
    Case("no_training_seeds", {"seeds": []}, "seeds"),
    Case("repeated_training_seed", {"seeds": [0, 1, 0]}, "seeds"),
    Case("benchmark_set_size_zero", {"toy": {"benchmarks": {"math500": {"size": 0}}}}, "toy.benchmarks.math500.size"),
    Case("hidden_not_divisible_by_heads", {"toy": {"models": {"student_small": {"hidden": 18, "heads": 4}}}},
         "toy.models.student_small"),
    Case("dev_benchmark_not_evaluated", {"benchmarks": ["math500", "gpqa"]}, "dev_benchmark"),
    Case("schedule_step_zero", _schedules({"name": "lin", "kind": "linear", "l0": 1, "dl": 0}),
         "experiments.main.schedules[0].dl"),
    Case("schedule_step_negative", _schedules({"name": "lin", "kind": "linear", "l0": 1, "dl": -4}),
         "experiments.main.schedules[0].dl"),
    Case("schedule_step_a_string", _schedules({"name": "lin", "kind": "linear", "l0": 1, "dl": "4"}),
         "experiments.main.schedules[0].dl"),
    Case("save_every_not_dividing_steps", {"training": {"save_every": 3}}, "training.save_every"),
    Case("log_step_beyond_steps", {"training": {"log_steps": [0, 4]}}, "training.log_steps[1]"),
    Case("window_step_between_checkpoints", {"experiments": {"windows": {"steps": [2, 3]}}},
         "experiments.windows.steps[1]"),
    Case("prefix_without_paper_length", {"experiments": {"main": {"prefix_lengths": [7, 30]}}},
         "experiments.main.prefix_lengths[1]", extra_phrase="toy.paper_lengths"),
    Case("model_path_missing", {"models": {"students": {"small": "models/no-such-student"}}},
         "models.students.small", extra_phrase="no such folder"),
    Case("fused_sampler_without_c_compiler", {"eval": {"sampler": "torch"}}, "training.sampler",
         env={"CC": "no-such-cc"}, extra_phrase="C compiler"),
]


def bracket_form(dotted: str) -> str:
    """training.lr -> ['training']['lr'];  benchmarks[2] -> ['benchmarks'][2] (jsonschema's path)."""
    out = ""
    for part in dotted.split("."):
        name, _, rest = part.partition("[")
        out += f"['{name}']" + (f"[{rest}" if rest else "")
    return out


def naming_lines(output: str, case: Case) -> list[str]:
    """Lines of the error output that name the key (dotted or jsonschema's form) and read as an error."""
    needles = (case.key, bracket_form(case.key), *case.also)
    hits = []
    for line in output.splitlines():
        if any(n in line for n in needles) and len(line) < 400:
            low = line.lower()
            if any(w in low for w in ERROR_WORDS) or line.strip().startswith("On instance"):
                if case.extra_phrase is None or case.extra_phrase in line:
                    hits.append(line.strip())
    return hits


def _delete(config: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = config
    for p in parents:
        node = node[p]
    del node[last]


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("validation") / "repo")


def _clean(copy: Path) -> None:
    for name in ("results", ".snakemake"):
        shutil.rmtree(copy / name, ignore_errors=True)


def _run_case(copy: Path, bad: Path, case: Case):
    return run_snakemake(copy, "--cores", "1", "--configfile", "config/ci.yaml", str(bad), *case.args,
                         timeout=KILL_AFTER_S, stop_when=lambda: bool(files_under(copy / "results")),
                         env=dict(snakemake_env(copy), **case.env) if case.env else None)


def _overloaded() -> bool:
    return os.getloadavg()[0] > (os.cpu_count() or 1)


def _slow(res) -> bool:
    return res.cpu >= TIME_LIMIT_S or (res.elapsed >= TIME_LIMIT_S and not _overloaded())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_config_fails_fast_naming_the_key(case: Case, repo_copy: Path, tmp_path: Path) -> None:
    bad = write_yaml(tmp_path / f"{case.id}.yaml", case.override)
    config_yaml = repo_copy / "config" / "config.yaml"
    original = config_yaml.read_text()
    _clean(repo_copy)
    try:
        if case.delete:
            config = yaml.safe_load(original)
            for key in case.delete:
                _delete(config, key)
            config_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
        res = _run_case(repo_copy, bad, case)
        created = files_under(repo_copy / "results")
        if _slow(res) and res.returncode != 0 and not res.timed_out and not created:
            res = _run_case(repo_copy, bad, case)  # once more: a loaded CI machine, not the check, was slow
            created = files_under(repo_copy / "results")
    finally:
        config_yaml.write_text(original)
        _clean(repo_copy)

    context = f"\n--- snakemake output (last lines) ---\n{res.tail(40)}"
    assert not res.timed_out, f"{case.id}: no verdict after {KILL_AFTER_S} s{context}"
    assert not created and not res.stopped, (
        f"{case.id}: not rejected before jobs ran; they wrote {[str(p) for p in created[:5]]}{context}")
    assert res.returncode != 0, f"{case.id}: the invalid config was accepted (exit 0){context}"
    hits = naming_lines(res.output, case)
    assert hits, (f"{case.id}: no error line names the key '{case.key}' (or {bracket_form(case.key)!r}"
                  f"{', ' + ', '.join(map(repr, case.also)) if case.also else ''}){context}")
    assert res.cpu < TIME_LIMIT_S, f"{case.id}: rejection took {res.cpu:.1f} s of CPU (limit {TIME_LIMIT_S} s)"
    if not _overloaded():
        assert res.elapsed < TIME_LIMIT_S, f"{case.id}: rejected after {res.elapsed:.1f} s (limit {TIME_LIMIT_S} s)"


def test_valid_ci_config_is_accepted(repo_copy: Path) -> None:
    """The control: the same command without an override plans the study (so failures above are the override's)."""
    res = run_snakemake(repo_copy, "-n", "--cores", "1", "--configfile", "config/ci.yaml", timeout=120)
    _clean(repo_copy)
    assert res.returncode == 0, res.tail(40)
    assert "Job stats:" in res.output


def test_at_least_fourteen_cases() -> None:
    assert len(CASES) >= 14
    assert len({c.id for c in CASES}) == len(CASES)


def test_paper_config_states_the_papers_settings() -> None:
    """config/paper.yaml as the paper: GKD 512 prompts x 1 rollout per step, probe responses (prefix +
    continuation) within 32k tokens, verl's default weight decay where the paper is silent."""
    from prefix_opd.runs import gkd_runs
    from prefix_opd.validate import merge_configs

    root = Path(__file__).resolve().parents[1]
    config = merge_configs(*(yaml.safe_load((root / "config" / f).read_text()) for f in ("config.yaml", "paper.yaml")))
    for run in gkd_runs(config).values():
        assert (run.training["batch_prompts"], run.training["samples_per_prompt"]) == (512, 1), run.name
    probe = config["experiments"]["probe"]
    assert probe["max_new_tokens"] + max(probe["lengths"]) <= 32768
    assert config["training"]["weight_decay"] == 0.01
