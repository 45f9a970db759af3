"""`training.backend: verl` end to end without GPUs: the interpreter choice, the launch scripts, and publishing
verl's outputs in the native engine's layout; a fake `python -m verl.trainer.main_ppo` (a script that writes
what verl 0.9.1 writes: `global_step_N/actor/huggingface`, the file logger's JSONL, truncated on every start)
stands in for verl, so the launch, failure and resume paths run for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from engine_fixtures import build_world, run_settings, save_tiny_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefix_opd import engines, flops
from prefix_opd.backends import verl_launch, verl_run
from prefix_opd.checkpointing import KL_COLUMNS, METRIC_COLUMNS

FAKE_VERL = r'''
import json, os, shutil, sys

assert sys.argv[1:3] == ["-m", "verl.trainer.main_ppo"], sys.argv
args = dict(a.split("=", 1) for a in sys.argv[3:])
src = os.environ["FAKE_VERL_SRC"]
assert src in os.environ["PYTHONPATH"].split(os.pathsep), os.environ["PYTHONPATH"]
assert os.path.exists(args["actor_rollout_ref.rollout.agent.agent_loop_config_path"])
assert os.path.exists(args["data.train_files"])
ckpt = args["trainer.default_local_dir"]
steps, freq = int(args["trainer.total_training_steps"]), int(args["trainer.save_freq"])
latest = os.path.join(ckpt, "latest_checkpointed_iteration.txt")
start = int(open(latest).read()) if args["trainer.resume_mode"] == "auto" and os.path.exists(latest) else 0
fail_at = int(os.environ.get("FAKE_VERL_FAIL_AT", "0"))
tag = float(os.environ.get("FAKE_VERL_TAG", "0"))
print("fake verl from step", start + 1)
with open(os.environ["VERL_FILE_LOGGER_PATH"], "wb", buffering=0) as log:  # verl's FileLogger: "wb"
    for step in range(start + 1, steps + 1):
        data = {"actor/distillation/loss": 1000 * tag + step, "timing_s/step": 0.5,
                "response_length/mean": 6.0, "prompt_length/mean": 10.0}
        log.write((json.dumps({"step": step, "data": data}) + "\n").encode())
        if step == fail_at:
            print("fake verl dies at step", step)
            sys.exit(3)
        if step % freq == 0 or step == steps:
            hf = os.path.join(ckpt, f"global_step_{step}", "actor", "huggingface")
            shutil.copytree(os.environ["FAKE_VERL_MODEL"], hf)
            for shard in ("model", "optim", "extra_state"):  # FSDP resume state beside the HF export
                open(os.path.join(os.path.dirname(hf), f"{shard}_world_size_1_rank_0.pt"), "w").write(shard)
            open(latest, "w").write(str(step))
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("verl_world")
    return root, build_world(root)


def _settings(world, name: str = "small-opd-s0", **top) -> dict:
    _, config = world
    config = dict(config, training=dict(config["training"], backend="verl"))
    settings = run_settings(config, name)
    settings.update(top)
    return settings


def _shapes(settings: dict) -> tuple[flops.ModelShape, flops.ModelShape]:
    return verl_run._model_shape(settings["student_path"]), verl_run._model_shape(settings["teacher_path"])


# ---------------------------------------------------------------------------------------------- publish


def _fake_tree(work: Path, steps: dict[int, bool], seed: int = 3) -> None:
    """verl's checkpoint folders; steps maps N -> whether verl saved the tokenizer beside the weights."""
    for step, with_tokenizer in steps.items():
        hf = work / verl_run.CHECKPOINTS / f"global_step_{step}" / "actor" / "huggingface"
        save_tiny_model(hf, seed + step)
        if not with_tokenizer:
            for f in hf.iterdir():
                if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "vocab", "merges")):
                    f.unlink()
        (hf.parent / "model_world_size_1_rank_0.pt").write_text("fsdp shard")  # not published


def test_publish_makes_native_outputs(world, tmp_path):
    settings = _settings(world, steps=10, save_every=5)
    work, out = tmp_path / "work", tmp_path / "out"
    _fake_tree(work, {5: False, 10: True})
    n = settings["training"]["batch_prompts"] * settings["training"]["samples_per_prompt"]
    lines = [json.dumps({"step": k, "data": {"actor/distillation/loss": 3.0 * k, "timing_s/step": 2.0,
                                             "response_length/mean": 7.0, "prompt_length/mean": 11.0,
                                             "training/epoch": 0}}) for k in range(1, 11)]
    (work / verl_run.METRICS_LOG).write_text("\n".join(lines) + "\n")
    (out / "checkpoints" / "step_99").mkdir(parents=True)  # a stale earlier publication goes
    verl_run.publish(settings, work, out)

    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_10", "step_5"]
    for step in (5, 10):
        folder = out / "checkpoints" / f"step_{step}"
        model = AutoModelForCausalLM.from_pretrained(folder)
        tok = AutoTokenizer.from_pretrained(folder)
        assert model.config.vocab_size >= len(tok) and not (folder / "model_world_size_1_rank_0.pt").exists()
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == METRIC_COLUMNS and metrics["step"].tolist() == list(range(1, 11))
    student, teacher = _shapes(settings)
    step_flops = flops.opd_step_flops(student, teacher, [7] * n)  # response tokens only (Appendix B)
    with_prompt = flops.opd_step_flops(student, teacher, [18] * n)
    assert metrics["flops_with_prompt"].tolist() == pytest.approx([with_prompt] * 10)
    assert metrics["flops"].tolist() == pytest.approx([step_flops] * 10)
    assert metrics["flops_cum"].tolist() == pytest.approx([step_flops * k for k in range(1, 11)])
    assert metrics["seconds_cum"].tolist() == pytest.approx([2.0 * k for k in range(1, 11)])
    assert metrics["loss"].tolist() == pytest.approx([3.0 * k for k in range(1, 11)])
    assert (metrics["rollouts"] == n).all() and (metrics["response_tokens"] == 7 * n).all()
    assert (metrics["l_train"] == settings["training"]["l_max"]).all() and (metrics["diag_flops"] == 0).all()
    kl = pd.read_csv(out / "kl_by_position.csv")
    assert list(kl.columns) == KL_COLUMNS and kl.empty


def test_publish_uses_exact_lengths_and_refuses_unfinished_runs(world, tmp_path):
    settings = _settings(world, "small-opd_prefix7-s0", steps=2, save_every=1)
    work, out = tmp_path / "work", tmp_path / "out"
    _fake_tree(work, {1: True})
    n = settings["training"]["batch_prompts"] * settings["training"]["samples_per_prompt"]
    (work / verl_run.METRICS_LOG).write_text("".join(
        json.dumps({"step": k, "data": {"actor/distillation/loss": 1.0}}) + "\n" for k in (1, 2)))
    with pytest.raises(RuntimeError, match="without a checkpoint of the last step"):
        verl_run.publish(settings, work, out)
    _fake_tree(work, {2: True})
    (work / verl_run.LENGTHS_LOG).write_text("".join(
        json.dumps({"step": k, "prompt": 9, "response": 4, "loss_tokens": 4}) + "\n" for k in (1, 2) for _ in range(n)))
    verl_run.publish(settings, work, out)
    metrics = pd.read_csv(out / "metrics.csv")
    student, teacher = _shapes(settings)
    assert metrics["flops"].tolist() == pytest.approx([flops.opd_step_flops(student, teacher, [4] * n)] * 2)
    with_prompt = flops.opd_step_flops(student, teacher, [13] * n)
    assert metrics["flops_with_prompt"].tolist() == pytest.approx([with_prompt] * 2)
    # the logged loss is per rollout (seq-mean-token-sum): x rollouts / loss tokens = KL per token
    assert metrics["kl_mean"].tolist() == pytest.approx([1.0 * n / (4 * n)] * 2)
    assert (metrics["l_train"] == settings["l_train"]).all()


def test_pruning_keeps_resume_state_only_in_the_newest_complete_save(tmp_path):
    ckpt = tmp_path / verl_run.CHECKPOINTS
    for step in (2, 4, 6):
        hf = ckpt / f"global_step_{step}" / "actor" / "huggingface"
        hf.mkdir(parents=True)
        save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, hf / "model.safetensors")
        (hf.parent / "optim_world_size_1_rank_0.pt").write_text("adam")
        (hf.parent / "extra").mkdir()
    assert verl_run.prune_resume_state(ckpt) == []  # no complete save recorded yet: nothing goes
    (ckpt / verl_run.TRACKER).write_text("4")  # step 6 is still being written
    removed = verl_run.prune_resume_state(ckpt)
    assert sorted(p.relative_to(ckpt).as_posix() for p in removed) == [
        "global_step_2/actor/extra", "global_step_2/actor/optim_world_size_1_rank_0.pt"]
    assert (ckpt / "global_step_2" / "actor" / "huggingface" / "model.safetensors").exists()
    for step in (4, 6):
        assert (ckpt / f"global_step_{step}" / "actor" / "optim_world_size_1_rank_0.pt").exists()


def test_complete_exports_are_rewritten_in_bf16(tmp_path):
    """verl's HF export holds the fp32 master weights; once a save is complete it becomes bf16, loadable, with
    the same values rounded."""
    ckpt = tmp_path / verl_run.CHECKPOINTS
    for step in (2, 4):
        save_tiny_model(ckpt / f"global_step_{step}" / "actor" / "huggingface", step)
    (ckpt / verl_run.TRACKER).write_text("2")  # step 4 not complete yet
    before = AutoModelForCausalLM.from_pretrained(ckpt / "global_step_2" / "actor" / "huggingface")
    verl_run.prune_resume_state(ckpt)
    after = AutoModelForCausalLM.from_pretrained(ckpt / "global_step_2" / "actor" / "huggingface")
    assert after.dtype == torch.bfloat16
    for (name, p), (_, q) in zip(before.state_dict().items(), after.state_dict().items(), strict=True):
        assert torch.equal(p.to(torch.bfloat16), q), name
    untouched = AutoModelForCausalLM.from_pretrained(ckpt / "global_step_4" / "actor" / "huggingface")
    assert untouched.dtype == torch.float32


def test_publish_refuses_checkpoints_without_weights(world, tmp_path):
    settings = _settings(world, steps=1, save_every=1)
    hf = tmp_path / "work" / verl_run.CHECKPOINTS / "global_step_1" / "actor" / "huggingface"
    hf.mkdir(parents=True)
    (hf / "config.json").write_text("{}")
    with pytest.raises(RuntimeError, match="hf_model"):
        verl_run.publish(settings, tmp_path / "work", tmp_path / "out")


# ---------------------------------------------------------------------------------------------- interpreter


def test_interpreter_choice(monkeypatch, tmp_path):
    monkeypatch.setenv(engines.env_var("verl"), "/opt/verl/bin/python")
    assert verl_run.verl_python() == "/opt/verl/bin/python"
    monkeypatch.delenv(engines.env_var("verl"))
    venv_python = tmp_path / ".venv-verl" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.touch()
    monkeypatch.setattr(engines, "REPO", tmp_path)
    assert verl_run.verl_python() == str(venv_python)
    monkeypatch.setattr(engines, "REPO", tmp_path / "absent")
    monkeypatch.setitem(sys.modules, "verl", None)  # `import verl` raises ImportError
    monkeypatch.setattr(engines, "importable", lambda module: False)
    with pytest.raises(RuntimeError) as err:
        verl_run.verl_python()
    message = str(err.value)
    assert "\n" not in message and "make .venv-verl/.installed" in message and engines.env_var("verl") in message


# ---------------------------------------------------------------------------------------------- launch


def _prepared(world, settings: dict, work: Path) -> dict:
    root, _ = world
    return verl_launch.prepare(settings, root / "questions.jsonl", work)


def test_slurm_path_writes_a_valid_script(world, tmp_path, monkeypatch):
    settings = _settings(world)
    prepared = _prepared(world, settings, tmp_path)
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    with pytest.raises(RuntimeError, match="SLURM_JOB_NODELIST"):
        verl_run.launch_script(settings, prepared, tmp_path, 4, 2, "/venv/bin/python")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "node[01-02]")
    script = verl_run.launch_script(settings, prepared, tmp_path, 4, 2, "/venv/bin/python")
    assert script == tmp_path / "verl_slurm.sh"
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = script.read_text()
    assert "#SBATCH --nodes=2" in text and "ray start --head" in text and "/venv/bin/python -m verl.trainer" in text
    assert "trainer.nnodes=2" in text and "trainer.n_gpus_per_node=2" in text
    local = verl_run.launch_script(settings, prepared, tmp_path, 4, 1, "/venv/bin/python")
    assert local == tmp_path / "verl_local.sh"
    assert subprocess.run(["bash", "-n", str(local)]).returncode == 0


@pytest.fixture
def fake_verl(tmp_path, monkeypatch) -> Path:
    template = tmp_path / "template"
    save_tiny_model(template, 7)
    script = tmp_path / "fake-verl-python"
    script.write_text(f"#!{sys.executable}\n{FAKE_VERL}")
    script.chmod(0o755)
    monkeypatch.setenv(engines.env_var("verl"), str(script))
    monkeypatch.setenv("FAKE_VERL_MODEL", str(template))
    monkeypatch.setenv("FAKE_VERL_SRC", str(engines.SRC_DIR))
    return script


def test_train_with_verl_fails_resumes_and_publishes(world, tmp_path, monkeypatch, fake_verl):
    root, _ = world
    settings = _settings(world, steps=4, save_every=2)
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "stale").mkdir(parents=True)  # another run's leftovers are wiped

    monkeypatch.setenv("FAKE_VERL_FAIL_AT", "3")
    monkeypatch.setenv("FAKE_VERL_TAG", "1")
    with pytest.raises(RuntimeError, match=r"status 3; see .*verl\.log"):
        verl_run.train_with_verl(settings, root / "questions.jsonl", work, out, gpus_per_node=2, nnodes=1)
    assert not (work / "stale").exists() and (work / "verl_local.sh").exists()
    assert "fake verl dies at step 3" in (work / verl_run.VERL_LOG).read_text()
    assert sorted(verl_run._checkpoint_steps(work / verl_run.CHECKPOINTS)) == [2]

    monkeypatch.delenv("FAKE_VERL_FAIL_AT")
    monkeypatch.setenv("FAKE_VERL_TAG", "2")
    verl_run.train_with_verl(settings, root / "questions.jsonl", work, out, gpus_per_node=2, nnodes=1)
    assert "fake verl from step 3" in (work / verl_run.VERL_LOG).read_text()
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["step"].tolist() == [1, 2, 3, 4]
    assert metrics["loss"].tolist() == [1001, 1002, 2003, 2004]  # step 3 from the relaunch, 1-2 kept
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_2", "step_4"]
    ckpt = work / verl_run.CHECKPOINTS  # only the newest save keeps verl's resume state (disk)
    assert [p.name for p in (ckpt / "global_step_2" / "actor").iterdir()] == ["huggingface"]
    assert (ckpt / "global_step_4" / "actor" / "optim_world_size_1_rank_0.pt").exists()
    for step in (2, 4):
        AutoModelForCausalLM.from_pretrained(out / "checkpoints" / f"step_{step}")
        AutoTokenizer.from_pretrained(out / "checkpoints" / f"step_{step}")

    # a finished run is published again without relaunching verl; other settings start afresh
    monkeypatch.setenv("FAKE_VERL_FAIL_AT", "1")
    verl_run.train_with_verl(settings, root / "questions.jsonl", work, tmp_path / "out2", 2, 1)
    assert pd.read_csv(tmp_path / "out2" / "metrics.csv")["loss"].tolist() == [1001, 1002, 2003, 2004]
    with pytest.raises(RuntimeError, match="status 3"):
        verl_run.train_with_verl(dict(settings, lr=1e-4), root / "questions.jsonl", work, out, 2, 1)
    assert verl_run._checkpoint_steps(work / verl_run.CHECKPOINTS) == {}

    # the run's identity is the native engine's: settings and input files, so a rebuilt input starts afresh too
    questions = tmp_path / "questions.jsonl"
    shutil.copy(root / "questions.jsonl", questions)
    monkeypatch.delenv("FAKE_VERL_FAIL_AT")
    verl_run.train_with_verl(settings, questions, work, out, 2, 1)
    assert sorted(verl_run._checkpoint_steps(work / verl_run.CHECKPOINTS)) == [2, 4]
    questions.write_text(questions.read_text())  # same text, rebuilt
    os.utime(questions, ns=(questions.stat().st_atime_ns, questions.stat().st_mtime_ns + 10**9))
    monkeypatch.setenv("FAKE_VERL_FAIL_AT", "1")
    with pytest.raises(RuntimeError, match="status 3"):
        verl_run.train_with_verl(settings, questions, work, out, 2, 1)
    assert verl_run._checkpoint_steps(work / verl_run.CHECKPOINTS) == {}
