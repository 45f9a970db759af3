"""The training engine end to end on a tiny world: every method, micro-batching, resume after SIGKILL, NaN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from engine_fixtures import build_world, run_settings
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefix_opd import tables
from prefix_opd.checkpointing import KL_COLUMNS, METRIC_COLUMNS
from prefix_opd.train import Trainer, TrainingError, train

TIMING = ["seconds", "seconds_cum"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("world")
    return root, build_world(root)


def _run(root: Path, settings: dict, tag: str) -> Path:
    out = root / f"out-{tag}"
    train(settings, str(root / "questions.jsonl"), str(root / "seqkd.jsonl"), str(root / f"work-{tag}"), str(out))
    return out


@pytest.mark.parametrize("name", [
    "small-opd-s0", "small-opd_prefix7-s0", "small-opd_schedule-s0", "large-opd_window28_56-s0",
    "large-opd_windowtail28-s0", "small-gkd7-lam0-beta0-lr1e-3-s0", "small-gkd7-lam1-beta1-lr1e-3-s0",
    "small-seqkd-s0", "large-seqkd_prefix56-s0",
])
def test_every_method_trains_and_publishes_loadable_checkpoints(world, name):
    root, config = world
    settings = run_settings(config, name)
    settings["steps"], settings["save_every"] = 2, 1
    out = _run(root, settings, name)
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == METRIC_COLUMNS
    assert metrics["step"].tolist() == [1, 2]
    assert (metrics["flops"] > 0).all() and metrics["flops_cum"].is_monotonic_increasing
    if settings["method"] == "opd_prefix":
        assert (metrics["response_tokens"] <= settings["l_train"] * metrics["rollouts"]).all()
    for step in (1, 2):
        folder = out / "checkpoints" / f"step_{step}"
        AutoModelForCausalLM.from_pretrained(folder)
        AutoTokenizer.from_pretrained(folder)


def test_schedule_grows_the_sampled_length(world):
    root, config = world
    settings = run_settings(config, "small-opd_schedule-s0")
    settings["steps"], settings["save_every"] = 3, 3
    metrics = pd.read_csv(_run(root, settings, "schedule") / "metrics.csv")
    sched = settings["schedule"]
    assert metrics["l_train"].tolist() == [sched["l0"] + s * sched["dl"] for s in range(3)]


def test_kl_log_keeps_each_diagnostic_rollout(world):
    """Prefix OPD logs the training batch's KL bins pooled (rollout -1) and each full-length diagnostic rollout's
    bins on its own; pooling the rollouts gives per-token means over all their tokens."""
    root, config = world
    settings = run_settings(config, "small-opd_prefix7-s0")
    settings["steps"], settings["save_every"] = 2, 2
    settings["training"] = dict(settings["training"], log_steps=[0, 1], diagnostic_rollouts=3)
    kl = pd.read_csv(_run(root, settings, "kl") / "kl_by_position.csv")
    assert list(kl.columns) == KL_COLUMNS
    assert set(kl.loc[kl["source"] == "train", "rollout"]) == {-1}
    diag = kl[kl["source"] == "diagnostic"]
    for step in (0, 1):
        assert set(diag.loc[diag["step"] == step, "rollout"]) == {0, 1, 2}
    assert (diag.groupby(["step", "rollout"])["n_tokens"].sum() > 0).all()
    pooled = tables.kl_bins(kl)
    first = pooled[(pooled["source"] == "diagnostic") & (pooled["step"] == 0) & (pooled["bin_start"] == 0)].iloc[0]
    rows = diag[(diag["step"] == 0) & (diag["bin_start"] == 0)]
    assert first["n_tokens"] == rows["n_tokens"].sum()
    assert first["kl_mean"] == pytest.approx((rows["kl_mean"] * rows["n_tokens"]).sum() / rows["n_tokens"].sum())


def test_update_does_not_depend_on_micro_batching(world):
    """One OPD step split into many micro-batches gives the same weights as one micro-batch."""
    root, config = world
    params = []
    for budget in (10**7, 60):
        settings = run_settings(config, "small-opd-s0", micro_batch_tokens=budget, batch_prompts=4)
        trainer = Trainer(settings, str(root / "questions.jsonl"), str(root / "seqkd.jsonl"), threads=1)
        trainer.step(0)
        params.append(torch.cat([p.detach().flatten() for p in trainer.student.parameters()]))
    assert torch.allclose(params[0], params[1], atol=1e-6, rtol=1e-5)


def _cli(root: Path, settings_path: Path, tag: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "prefix_opd.train", "--settings", str(settings_path),
           "--questions", str(root / "questions.jsonl"), "--seqkd", str(root / "seqkd.jsonl"),
           "--work", str(root / f"work-{tag}"), "--out", str(root / f"out-{tag}")]
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("phase,step,resume_from", [("sampling", 4, 2), ("update", 3, 2), ("checkpoint", 4, 2)])
def test_sigkill_then_resume_ends_identical(world, phase, step, resume_from):
    root, config = world
    settings = run_settings(config, "small-opd_prefix28-s0")
    settings["steps"], settings["save_every"] = 5, 2
    path = root / f"settings-{phase}.yaml"
    path.write_text(yaml.safe_dump(settings))
    ref = _cli(root, path, f"ref-{phase}")
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = _cli(root, path, f"kill-{phase}", {"PREFIX_OPD_KILL_AT": f"{phase}:{step}"})
    assert killed.returncode == -9  # SIGKILL
    work = root / f"work-kill-{phase}" / "checkpoints"
    assert not (root / f"out-kill-{phase}").exists()  # nothing published by a killed run
    resumed = _cli(root, path, f"kill-{phase}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"from step {resume_from} (of 5)" in resumed.stderr
    assert not [d for d in work.iterdir() if d.name.startswith(".")]  # no half-written checkpoint left
    ref_m = pd.read_csv(root / f"out-ref-{phase}" / "metrics.csv").drop(columns=TIMING)
    got_m = pd.read_csv(root / f"out-kill-{phase}" / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(ref_m, got_m)
    a = AutoModelForCausalLM.from_pretrained(root / f"out-ref-{phase}" / "checkpoints" / "step_5")
    b = AutoModelForCausalLM.from_pretrained(root / f"out-kill-{phase}" / "checkpoints" / "step_5")
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), n


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(world, tmp_path, monkeypatch):
    root, config = world
    settings = run_settings(config, "small-opd_prefix7-s0")
    settings["steps"], settings["save_every"] = 4, 2
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    killed = _cli(root, path, "nan", {"PREFIX_OPD_KILL_AT": "update:3"})
    assert killed.returncode == -9
    real = Trainer._micro_step

    def nan_loss(self, packed, normalizer, samp):  # the update of step 3 diverges
        loss, kl = real(self, packed, normalizer, samp)
        return loss * float("nan"), kl

    monkeypatch.setattr(Trainer, "_micro_step", nan_loss)
    with pytest.raises(TrainingError, match=r"step 3: loss is nan.*last good checkpoint is .*step_2"):
        train(settings, str(root / "questions.jsonl"), str(root / "seqkd.jsonl"), str(root / "work-nan"),
              str(root / "out-nan"))
    assert (root / "work-nan" / "checkpoints" / "step_2").is_dir()
    assert not (root / "work-nan" / "checkpoints" / "step_3").exists()
    assert not (root / "out-nan").exists()  # nothing published
