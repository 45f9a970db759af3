"""The native engine over several processes (FSDP2 on CPUs, gloo): the same update as one process, resumable on
a different number of processes, on-policy sampling shared by the ranks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from engine_fixtures import build_world, run_settings
from transformers import AutoModelForCausalLM

from prefix_opd import sharding
from prefix_opd.runs import ConfigError, RunSpec
from prefix_opd.sharding import Group
from prefix_opd.train import cli_args, train
from prefix_opd.validate import check_semantics

TIMING = ["seconds", "seconds_cum"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("world")
    return root, build_world(root)


def _settings(root: Path, config: dict, name: str, tag: str, steps: int = 2, **training) -> Path:
    """A run.yaml of 3 prompts a step, each rollout its own micro-batch (3 over 2 ranks: one rank pads)."""
    settings = run_settings(config, name, batch_prompts=3, micro_batch_tokens=1, **training)
    settings["steps"], settings["save_every"] = steps, 1
    path = root / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _sharded(root: Path, settings: Path, tag: str, checkpointed: bool = False) -> str:
    """Run on 2 processes under torchrun; return its log."""
    log = root / f"{tag}.log"
    sharding.launch(2, cli_args(str(settings), str(root / "questions.jsonl"), str(root / "seqkd.jsonl"),
                                str(root / f"work-{tag}"), str(root / f"out-{tag}"), 1, "cpu", None, checkpointed),
                    str(log))
    return log.read_text()


def _single(root: Path, settings: Path, tag: str) -> None:
    train(RunSpec.from_settings(yaml.safe_load(settings.read_text())), str(root / "questions.jsonl"),
          str(root / "seqkd.jsonl"), str(root / f"work-{tag}"), str(root / f"out-{tag}"))


def _weights(out: Path, step: int) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(out / "checkpoints" / f"step_{step}").state_dict()


def _assert_same_run(root: Path, a: str, b: str, step: int) -> None:
    ma = pd.read_csv(root / f"out-{a}" / "metrics.csv").drop(columns=TIMING)
    mb = pd.read_csv(root / f"out-{b}" / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(ma, mb, rtol=1e-5)
    wa, wb = _weights(root / f"out-{a}", step), _weights(root / f"out-{b}", step)
    for name, value in wa.items():
        assert torch.allclose(value, wb[name], atol=1e-6, rtol=1e-5), name


def test_share_gives_every_rank_the_same_count_and_each_item_once() -> None:
    items = ["a", "b", "c", "d", "e"]
    shares = [sharding.share(items, Group(rank, 2)) for rank in range(2)]
    assert [len(s) for s in shares] == [3, 3]
    assert sorted(item for s in shares for item, counted in s if counted) == items
    assert shares[1][-1] == ("a", False)  # the padding entry: run, weighted 0
    assert sharding.share(items, Group()) == [(item, True) for item in items]


@pytest.mark.parametrize("name,checkpointed", [("small-seqkd-s0", True), ("small-gkd7-lam0-beta1-lr1e-3-s0", False)])
def test_two_processes_make_the_update_of_one(world, name, checkpointed):
    """SeqKD (token log-probs; with gradient checkpointing, as paper.yaml) and off-policy GKD (full-vocabulary KL)
    on a student sharded over 2 processes: the same losses, KL and weights as one process without checkpointing,
    the root unit's weights (embeddings, output layer) too."""
    root, config = world
    settings = _settings(root, config, name, name)
    log = _sharded(root, settings, f"two-{name}", checkpointed)
    assert f"gradient checkpointing {'on' if checkpointed else 'off'}, 2 process(es) on cpu" in log
    _single(root, settings, f"one-{name}")
    _assert_same_run(root, f"two-{name}", f"one-{name}", 2)
    start = AutoModelForCausalLM.from_pretrained(config["models"]["students"]["small"]).state_dict()
    moved = _weights(root / f"out-two-{name}", 2)
    assert all(not torch.equal(moved[k], start[k]) for k in ("model.embed_tokens.weight", "lm_head.weight"))


def test_a_sharded_run_killed_mid_step_resumes_on_one_process(world, monkeypatch):
    """state.pt holds full weights and AdamW state by name: a 2-process run killed in its third step resumes
    from step 2 on one process and ends as an uninterrupted one-process run."""
    root, config = world
    settings = _settings(root, config, "small-seqkd-s0", "resume", steps=3)
    monkeypatch.setenv("PREFIX_OPD_KILL_AT", "update:3")
    with pytest.raises(RuntimeError, match="torchrun exited"):
        _sharded(root, settings, "resume")
    monkeypatch.delenv("PREFIX_OPD_KILL_AT")
    assert not (root / "out-resume").exists()
    _single(root, settings, "resume")
    _single(root, settings, "resume-ref")
    _assert_same_run(root, "resume", "resume-ref", 3)


def test_ranks_share_on_policy_rollouts_and_log_kl(world):
    """On-policy OPD on 2 processes: each rank samples its share of the prompts with the hf sampler, every rank
    trains on the whole batch's figures (rollout count, KL by position at the logged steps)."""
    root, config = world
    settings = _settings(root, config, "small-opd_prefix7-s0", "onpolicy", sampler="hf", log_steps=[0, 1])
    _sharded(root, settings, "onpolicy")
    metrics = pd.read_csv(root / "out-onpolicy" / "metrics.csv")
    n = config["training"]["samples_per_prompt"]
    assert metrics["rollouts"].tolist() == [3 * n, 3 * n]
    kl = pd.read_csv(root / "out-onpolicy" / "kl_by_position.csv")
    train_rows = kl[kl["source"] == "train"]
    assert sorted(set(train_rows["step"])) == [0, 1]
    for step, row in metrics.iterrows():
        tokens = train_rows[train_rows["step"] == step]["n_tokens"].sum()
        assert tokens == row["response_tokens"]  # the bins pool both ranks' rollouts


def test_a_sharded_run_needs_the_hf_sampler(world):
    root, config = world
    settings = _settings(root, config, "small-opd-s0", "torch-sampler", sampler="torch")
    with pytest.raises(RuntimeError):
        _sharded(root, settings, "torch-sampler")
    assert "training.sampler = 'torch' cannot sample from a student sharded over 2 processes" in \
        (root / "torch-sampler.log").read_text()
    config = {**config, "training": {**config["training"], "gpus": 2, "sampler": "fused"}}
    with pytest.raises(ConfigError, match="set training.sampler: hf"):
        check_semantics(config)
