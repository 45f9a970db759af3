"""Rerun only what changed: after one complete CI run, a dry run plans exactly the jobs an edit of config
or code invalidates.

One private copy of the repo runs config/ci.yaml end to end once (module fixture); every test then
dry-runs (`snakemake -n`, Snakemake's default rerun triggers: mtime, params, input, code, software-env)
and reads the planned jobs from Snakemake's job blocks (rule + wildcards), cross-checked against its
job-stats table. Expected runs come from the package itself (`expand_runs` on the merged config), so
the tests follow the run-naming scheme instead of hard-coding it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from workflow_helpers import (
    Plan,
    append_comment,
    copy_repo,
    fmt_jobs,
    merged_config,
    planned,
    rules_defined_in,
    run_names,
    run_snakemake,
    write_yaml,
)

FULL_RUN_TIMEOUT_S = 3600
RUN_JOB_RULES = {"run_settings", "train", "eval_run", "eval_suite"}


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A copy of the repo in which `snakemake --cores 2 --configfile config/ci.yaml` has completed."""
    copy = copy_repo(tmp_path_factory.mktemp("rerun") / "repo")
    res = run_snakemake(copy, "--cores", "2", "--configfile", "config/ci.yaml", timeout=FULL_RUN_TIMEOUT_S)
    assert res.returncode == 0 and not res.timed_out, f"the CI run failed:\n{res.tail(80)}"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"[test_rerun_planning] full CI run (--cores 2): {res.elapsed:.0f} s")
    return copy


def upstream_rules(copy: Path) -> set[str]:
    """Rules that build data, models, runs and evaluations (everything before aggregation)."""
    return rules_defined_in(copy, "data.smk", "train.smk", "eval.smk")


def plan_with(copy: Path, tmp_path: Path, override: dict[str, Any] | None = None) -> Plan:
    args = ["--configfile", "config/ci.yaml"]
    if override is not None:
        args.append(str(write_yaml(tmp_path / "override.yaml", override)))
    return planned(copy, *args)


def changed_runs(copy: Path, override: dict[str, Any]) -> set[str]:
    """Runs that are new, or whose effective settings (run.yaml) differ, under the override."""
    from prefix_opd.runs import expand_runs

    old_cfg, new_cfg = merged_config(copy), merged_config(copy, override)
    old, new = expand_runs(old_cfg), expand_runs(new_cfg)
    return {n for n, r in new.items() if n not in old or old[n].settings(old_cfg) != r.settings(new_cfg)}


def assert_only_runs(plan: Plan, copy: Path, runs: set[str]) -> None:
    """Exactly `runs` retrain; every other planned job is one of theirs or aggregation."""
    trained = {j.wc["run"] for j in plan.jobs_of("train")}
    assert trained == runs, f"train jobs planned for {sorted(trained)}, expected {sorted(runs)}:\n{fmt_jobs(plan.jobs)}"
    for job in plan.jobs:
        if "run" in job.wc:
            assert job.wc["run"] in runs, f"planned a job of an unchanged run: {job}\n{fmt_jobs(plan.jobs)}"
            assert job.rule in RUN_JOB_RULES | (set(plan.rules) - upstream_rules(copy)), job
        else:
            assert job.rule not in upstream_rules(copy), f"planned upstream job {job}\n{fmt_jobs(plan.jobs)}"


def test_second_run_plans_nothing(done: Path, tmp_path: Path) -> None:
    plan = plan_with(done, tmp_path)
    assert not plan.jobs, f"a second snakemake would run:\n{fmt_jobs(plan.jobs)}"
    assert "Nothing to be done" in plan.result.output


def test_eval_setting_change_retrains_nothing(done: Path, tmp_path: Path) -> None:
    cfg = merged_config(done)
    override = {"eval": {"samples": {"math500": cfg["eval"]["samples"]["math500"] + 1}}}
    assert changed_runs(done, override) == set()
    plan = plan_with(done, tmp_path, override)
    assert "train" not in plan.rules and "run_settings" not in plan.rules, fmt_jobs(plan.jobs)
    assert plan.rules & {"eval_run", "eval_suite"}, f"the evaluation change was not picked up:\n{fmt_jobs(plan.jobs)}"
    assert not plan.rules & (upstream_rules(done) - {"eval_run", "eval_suite", "toy_summary"}), (
        fmt_jobs(plan.jobs))


def test_new_prefix_length_plans_only_that_run(done: Path, tmp_path: Path) -> None:
    cfg = merged_config(done)
    lengths = cfg["experiments"]["main"]["prefix_lengths"]
    new_length = next(int(n) for n in sorted(cfg["toy"]["paper_lengths"]) if int(n) not in lengths)
    override = {"experiments": {"main": {"prefix_lengths": sorted([*lengths, new_length])}}}
    runs = changed_runs(done, override)
    assert runs and all(f"opd_prefix{new_length}" in r for r in runs), runs
    plan = plan_with(done, tmp_path, override)
    assert_only_runs(plan, done, runs)
    assert {"run_settings", "train", "eval_run"} <= plan.rules
    # of the outputs, only those that show the main arms: each rule's params hold only what it shows
    shown = {"main_table", "checkpoint_table", "fig4", "schedule_table", "schedules", "findings", "all"}
    aggregation = {j.rule for j in plan.jobs if "run" not in j.wc}
    assert {"main_table", "fig4", "schedule_table", "schedules", "findings"} <= aggregation <= shown, \
        fmt_jobs(plan.jobs)


def test_a_single_table_target_sees_a_new_run(done: Path, tmp_path: Path) -> None:
    """`snakemake results/tables/table2.md` after adding a prefix length plans the new runs of Table 2's student,
    their evaluation and the table: its inputs are known before any job runs (no checkpoint in between)."""
    cfg = merged_config(done)
    lengths = cfg["experiments"]["main"]["prefix_lengths"]
    new_length = next(int(n) for n in sorted(cfg["toy"]["paper_lengths"]) if int(n) not in lengths)
    override = {"experiments": {"main": {"prefix_lengths": sorted([*lengths, new_length])}}}
    student = cfg["experiments"]["main"]["students"][1]
    runs = {r for r in changed_runs(done, override) if r.startswith(f"{student}-")}
    assert runs, "the override adds no run of Table 2's student"
    plan = planned(done, "results/tables/table2.md", "--configfile", "config/ci.yaml",
                   str(write_yaml(tmp_path / "override.yaml", override)))
    assert {j.wc["run"] for j in plan.jobs_of("train")} == runs, fmt_jobs(plan.jobs)
    assert {j.wc["run"] for j in plan.jobs_of("eval_run")} == runs, fmt_jobs(plan.jobs)
    assert [j.wc["table"] for j in plan.jobs_of("main_table")] == ["2"], fmt_jobs(plan.jobs)


def test_one_learning_rate_change_retrains_only_that_run(done: Path, tmp_path: Path) -> None:
    cfg = merged_config(done)
    lrs = cfg["experiments"]["seqkd_prefix"]["lrs"]
    override = {"experiments": {"seqkd_prefix": {"lrs": [*lrs[:-1], 5.0e-4]}}}
    runs = changed_runs(done, override)
    assert len(runs) == 1, f"the override should change exactly one run, changes {runs}"
    plan = plan_with(done, tmp_path, override)
    assert_only_runs(plan, done, runs)


def _plan_schedules(done: Path, tmp_path: Path, schedules: list[dict[str, Any]], name: str) -> tuple[Plan, set[str]]:
    """Plan with experiments.main.schedules replaced; check that exactly schedule `name`'s runs (every student
    and seed) change and only they are planned among the runs."""
    override = {"experiments": {"main": {"schedules": schedules}}}
    runs = changed_runs(done, override)
    cfg = merged_config(done)
    students, seeds = cfg["experiments"]["main"]["students"], cfg["seeds"]
    expected = {f"{s}-opd_schedule_{name}-s{seed}" for s in students for seed in seeds}
    assert runs == expected, runs
    plan = plan_with(done, tmp_path, override)
    assert_only_runs(plan, done, runs)
    return plan, runs


def test_schedule_change_retrains_the_schedule_runs_under_the_same_names(done: Path, tmp_path: Path) -> None:
    """A run's settings file is the train job's input: same name, new settings -> that run retrains."""
    first, *rest = merged_config(done)["experiments"]["main"]["schedules"]
    plan, runs = _plan_schedules(done, tmp_path, [{**first, "dl": first["dl"] * 2}, *rest], first["name"])
    assert {j.wc["run"] for j in plan.jobs_of("run_settings")} == runs


def test_new_schedule_plans_only_its_runs_and_the_outputs_that_show_it(done: Path, tmp_path: Path) -> None:
    """Appending a schedule to experiments.main.schedules trains it per student and seed, evaluates it, and
    redraws only the accuracy-per-FLOP table and figure, the checkpoint tables and the findings; Tables 1-2 and
    Fig. 4 show the first schedule only."""
    entries = merged_config(done)["experiments"]["main"]["schedules"]
    added = {"name": "stairs", "kind": "step", "l0": 7, "grow": 7, "every": 2}
    plan, _runs = _plan_schedules(done, tmp_path, [*entries, added], "stairs")
    aggregation = {j.rule for j in plan.jobs if "run" not in j.wc}
    assert {"schedule_table", "schedules", "findings"} <= aggregation, fmt_jobs(plan.jobs)
    assert aggregation <= {"schedule_table", "schedules", "checkpoint_table", "findings", "all"}, fmt_jobs(plan.jobs)


class _Touched:
    """Append a comment to a module of the copy; put content and mtime back afterwards."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        self.text = self.path.read_text()
        st = self.path.stat()
        self.times = (st.st_atime_ns, st.st_mtime_ns)
        time.sleep(0.05)
        append_comment(self.path)
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.path.write_text(self.text)
        os.utime(self.path, ns=self.times)


def test_editing_the_loss_code_retrains_every_run(done: Path, tmp_path: Path) -> None:
    all_runs = run_names(merged_config(done))
    with _Touched(done / "src" / "prefix_opd" / "losses.py"):
        plan = plan_with(done, tmp_path)
    assert {j.wc["run"] for j in plan.jobs_of("train")} == all_runs, fmt_jobs(plan.jobs)
    # toy pretraining computes its loss through losses.py too; the data files do not import it
    assert "pretrain_toy_model" in plan.rules, fmt_jobs(plan.jobs)
    assert not plan.rules & {"toy_pool", "toy_benchmark", "toy_tokenizer", "sample_prompts"}, (
        f"data rebuilt:\n{fmt_jobs(plan.jobs)}")
    assert "run_settings" not in plan.rules
    assert plan_with(done, tmp_path).jobs == [], "restoring losses.py did not restore the plan"


def test_editing_the_table_code_reruns_only_aggregation(done: Path, tmp_path: Path) -> None:
    with _Touched(done / "src" / "prefix_opd" / "tables.py"):
        plan = plan_with(done, tmp_path)
    assert plan.jobs, "editing tables.py planned nothing (tables are not rebuilt)"
    assert "main_table" in plan.rules, fmt_jobs(plan.jobs)
    assert not plan.rules & upstream_rules(done), (
        f"editing tables.py reruns training or evaluation:\n{fmt_jobs(plan.jobs)}")
