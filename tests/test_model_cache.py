"""Pretrained toy models are cached by content: the same inputs reuse the model, any changed input retrains."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefix_opd.toy import model_cache
from prefix_opd.toy.pretrain import pretrain
from prefix_opd.toy.tokenizer import save_tokenizer

PROMPTS = {"math": "Box the answer."}
SPEC = {"hidden": 16, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 32, "plan_right": 0.0,
        "noise": 0.0, "steps": 2}
TOY = {"pretrain": {"batch": 2, "lr": 1e-3, "warmup": 1, "lines": [1, 3]}}


@pytest.fixture
def tokenizer(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("PREFIX_OPD_MODEL_CACHE", str(tmp_path / "cache"))
    save_tokenizer(tmp_path / "tok")
    return str(tmp_path / "tok")


def _weights(folder: Path) -> bytes:
    return (folder / "model.safetensors").read_bytes()


def test_same_inputs_reuse_the_cached_model(tokenizer, tmp_path):
    first = pretrain(SPEC, TOY, PROMPTS, tokenizer, str(tmp_path / "a"), seed=0, threads=1)
    assert "final_loss" in first and len(list((tmp_path / "cache").iterdir())) == 1
    again = pretrain(SPEC, TOY, PROMPTS, tokenizer, str(tmp_path / "b"), seed=0, threads=1)
    assert again == {"cached": 1.0} and _weights(tmp_path / "b") == _weights(tmp_path / "a")
    assert (tmp_path / "b" / "tokenizer.json").exists()


@pytest.mark.parametrize("change", ["spec", "seed", "pretrain", "init"])
def test_any_changed_input_is_a_new_key(tokenizer, tmp_path, change):
    pretrain(SPEC, TOY, PROMPTS, tokenizer, str(tmp_path / "base"), seed=0, threads=1)
    spec, toy, seed, init = dict(SPEC), {"pretrain": dict(TOY["pretrain"])}, 0, None
    if change == "spec":
        spec["noise"] = 0.1
    elif change == "seed":
        seed = 1
    elif change == "pretrain":
        toy["pretrain"]["lr"] = 2e-3
    else:
        init = str(tmp_path / "base")
    out = pretrain(spec, toy, PROMPTS, tokenizer, str(tmp_path / "new"), seed=seed, threads=1, init_from=init)
    assert "final_loss" in out and len(list((tmp_path / "cache").iterdir())) == 2


def test_the_cache_can_be_turned_off(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFIX_OPD_MODEL_CACHE", "off")
    for name in ("a", "b"):
        assert "final_loss" in pretrain(SPEC, TOY, PROMPTS, tokenizer, str(tmp_path / name), seed=0, threads=1)
    assert model_cache.cache_root() is None and not (tmp_path / "cache").exists()


def test_the_key_covers_the_code_pretraining_imports():
    names = {p.name for p in model_cache.pretraining_code()}
    assert {"pretrain.py", "task.py", "world.py", "models.py", "losses.py"} <= names
    assert "model_cache.py" not in names  # the cache's own code does not touch the weights
