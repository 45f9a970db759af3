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
from prefix_opd.runs import RunSpec
from prefix_opd.train import Trainer, TrainingError, train

TIMING = ["seconds", "seconds_cum"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("world")
    return root, build_world(root)


def _run(root: Path, settings: dict, tag: str) -> Path:
    out = root / f"out-{tag}"
    train(RunSpec.from_settings(settings), str(root / "questions.jsonl"), str(root / "seqkd.jsonl"),
          str(root / f"work-{tag}"), str(out))
    return out


@pytest.mark.parametrize("name", [
    "small-opd-s0", "small-opd_prefix7-s0", "small-opd_schedule_linear-s0", "large-opd_window28_56-s0",
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
    settings = run_settings(config, "small-opd_schedule_linear-s0")
    settings["steps"], settings["save_every"] = 3, 3
    metrics = pd.read_csv(_run(root, settings, "schedule") / "metrics.csv")
    sched = settings["schedule"]
    assert metrics["l_train"].tolist() == [sched["l0"] + s * sched["dl"] for s in range(3)]


def _adaptive(config: dict, kind: str, **params) -> dict:
    settings = run_settings(config, "small-opd_schedule_linear-s0")
    settings["schedule"] = {"name": kind, "kind": kind, "l0": 7, "grow": 7, "hold": 1, **params}
    settings["steps"], settings["save_every"] = 4, 4
    return settings


@pytest.mark.parametrize("kind,params,grows,costs", [
    ("kl_frontier", {"width": 7, "ratio": 1e9, "probes": 2}, True, True),
    ("kl_frontier", {"width": 7, "ratio": 0.0, "probes": 2}, False, True),
    ("boundary_gap", {"width": 7, "threshold": 1e9}, True, False),
    ("boundary_gap", {"width": 7, "threshold": -1e9}, False, False),
])
def test_adaptive_schedule_logs_its_signal_and_follows_it(world, kind, params, grows, costs):
    """A signal that always reads "ready" grows L_train by `grow` after every step (hold 1); one that never does
    keeps l0. The signal is logged each step; the frontier's probe rollouts are counted in the step's FLOPs."""
    root, config = world
    settings = _adaptive(config, kind, **params)
    metrics = pd.read_csv(_run(root, settings, f"{kind}-{grows}") / "metrics.csv")
    assert metrics["l_train"].tolist() == ([7, 14, 21, 28] if grows else [7, 7, 7, 7])
    assert metrics["signal"].notna().all()
    assert (metrics["signal_flops"] > 0).all() == costs and (metrics["signal_flops"] >= 0).all()
    assert (metrics["response_tokens"] <= metrics["l_train"] * metrics["rollouts"]).all()


def test_dev_plateau_scores_the_dev_set_and_grows_on_a_plateau(world, tmp_path):
    """Scores every `every` steps (nan between); grows once `patience` scores fail to beat the best before them
    (min_gain 1: no score can)."""
    root, config = world
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(f'{{"gold": "{g}", "id": "dev-{i}", "kind": "math", "n_options": 0, "options": [], '
                           f'"prompt": "T=a N={g} K=5\\nBox the answer."}}\n' for i, g in enumerate((12, 34, 56))))
    settings = _adaptive(config, "dev_plateau", every=2, questions=2, samples=2, patience=1, min_gain=1.0)
    settings["steps"], settings["save_every"] = 6, 6
    out = tmp_path / "out"
    train(RunSpec.from_settings(settings), str(root / "questions.jsonl"), str(root / "seqkd.jsonl"),
          str(tmp_path / "work"), str(out), dev_path=str(dev))
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["signal"].notna().tolist() == [False, True, False, True, False, True]
    assert metrics["signal"].dropna().between(0, 1).all()
    assert (metrics.loc[metrics["signal"].notna(), "signal_flops"] > 0).all()
    # scores after steps 2 and 4: the second cannot beat the first by 1, so step 5 grows (hold 1)
    assert metrics["l_train"].tolist() == [7, 7, 7, 7, 14, 14]


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


def _one_step(root: Path, config: dict, name: str = "small-opd-s0", lr: float | None = None,
              gradient_checkpointing: bool = False, **training) -> tuple[Trainer, torch.Tensor]:
    """A trainer after one step, and its student's weights before that step (flat)."""
    settings = run_settings(config, name, **training)
    settings["lr"] = lr or settings["lr"]
    trainer = Trainer(RunSpec.from_settings(settings), str(root / "questions.jsonl"), str(root / "seqkd.jsonl"),
                      threads=1, gradient_checkpointing=gradient_checkpointing)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.student.parameters()])
    trainer.step(0, settings["training"]["l_max"])
    return trainer, before


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_bfloat16_computes_in_bfloat16_but_keeps_float32_master_weights(world):
    """dtype bfloat16: the teacher is held in bfloat16 and the forward passes autocast, while the student's
    weights stay float32, so an update far below bfloat16's resolution is applied, not rounded away."""
    root, config = world
    trainer, before = _one_step(root, config, dtype="bfloat16", lr=1e-6)
    after = _flat(trainer.student)
    assert all(p.dtype == torch.float32 for p in trainer.student.parameters())
    assert all(p.dtype == torch.bfloat16 for p in trainer.teacher.parameters())
    moved = after != before
    assert moved.float().mean() > 0.5  # the update reached most weights ...
    lost = after[moved].bfloat16() == before[moved].bfloat16()
    assert lost.float().mean() > 0.9  # ... and stored in bfloat16 nearly all of it would have rounded away


def test_a_bfloat16_run_exports_bfloat16_checkpoints_and_keeps_a_float32_state(world):
    """The published Hugging Face weights are in the compute precision (half the disk at 8B: 16 GB, not 32);
    the resumable state keeps the float32 master weights."""
    from safetensors import safe_open

    root, config = world
    settings = run_settings(config, "small-seqkd-s0", dtype="bfloat16")
    settings["steps"], settings["save_every"] = 1, 1
    out = _run(root, settings, "bf16-export")
    folder = out / "checkpoints" / "step_1"
    for f in folder.glob("*.safetensors"):
        with safe_open(f, "pt") as st:
            assert {st.get_slice(k).get_dtype() for k in st.keys()} == {"BF16"}  # noqa: SIM118 - not a dict
    assert AutoModelForCausalLM.from_pretrained(folder).config.dtype == torch.bfloat16
    state = torch.load(root / "work-bf16-export" / "state.pt", weights_only=False)
    assert {v.dtype for v in state["model"].values()} == {torch.float32}


def test_gradient_checkpointing_gives_the_same_update(world):
    root, config = world
    plain, _ = _one_step(root, config, name="small-seqkd-s0")
    checkpointed, _ = _one_step(root, config, name="small-seqkd-s0", gradient_checkpointing=True)
    assert checkpointed.student.is_gradient_checkpointing and not plain.student.is_gradient_checkpointing
    assert torch.allclose(_flat(plain.student), _flat(checkpointed.student), atol=1e-6, rtol=1e-5)


def test_update_does_not_depend_on_micro_batching(world):
    """One OPD step split into many micro-batches gives the same weights as one micro-batch."""
    root, config = world
    params = []
    for budget in (10**7, 60):
        settings = run_settings(config, "small-opd-s0", micro_batch_tokens=budget, batch_prompts=4)
        trainer = Trainer(RunSpec.from_settings(settings), str(root / "questions.jsonl"), str(root / "seqkd.jsonl"),
                          threads=1)
        trainer.step(0, settings["training"]["l_max"])
        params.append(torch.cat([p.detach().flatten() for p in trainer.student.parameters()]))
    assert torch.allclose(params[0], params[1], atol=1e-6, rtol=1e-5)


def _cli(root: Path, settings_path: Path, tag: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "prefix_opd.train", "--settings", str(settings_path),
           "--questions", str(root / "questions.jsonl"), "--seqkd", str(root / "seqkd.jsonl"),
           "--work", str(root / f"work-{tag}"), "--out", str(root / f"out-{tag}")]
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("phase,step,resume_from", [("sampling", 4, 2), ("update", 3, 2), ("checkpoint", 4, 2)])
def test_sigkill_then_resume_ends_identical(world, phase, step, resume_from):
    """Killed anywhere, a resumed run ends with the metrics and weights of an uninterrupted one; the run is an
    adaptive schedule, so its decisions (L_train from the logged signals) replay too."""
    root, config = world
    settings = _adaptive(config, "kl_frontier", width=7, ratio=1.0, probes=2)
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
        train(RunSpec.from_settings(settings), str(root / "questions.jsonl"), str(root / "seqkd.jsonl"),
              str(root / "work-nan"), str(root / "out-nan"))
    assert (root / "work-nan" / "checkpoints" / "step_2").is_dir()
    assert not (root / "work-nan" / "checkpoints" / "step_3").exists()
    assert not (root / "out-nan").exists()  # nothing published
