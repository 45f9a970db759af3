"""A tiny toy world on disk (tokenizer, teacher, student, data) for engine tests; seconds to build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import Qwen3ForCausalLM

from prefix_opd.data import sample_training_data, write_jsonl
from prefix_opd.runs import expand_runs
from prefix_opd.toy.pretrain import model_config
from prefix_opd.toy.tokenizer import build_tokenizer
from prefix_opd.toy.world import make_pool
from prefix_opd.validate import merge_configs

ROOT = Path(__file__).resolve().parents[1]
TINY = {"hidden": 16, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 32}


def merged_config(ci: bool = True) -> dict[str, Any]:
    """config/config.yaml with config/ci.yaml merged over it, as Snakemake merges them (ci=False: the default)."""
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if not ci:
        return base
    return merge_configs(base, yaml.safe_load((ROOT / "config" / "ci.yaml").read_text()))


def save_tiny_model(folder: Path, seed: int) -> None:
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(model_config(TINY, len(tokenizer), tokenizer))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_world(root: Path) -> dict[str, Any]:
    """Models and data under `root`; returns the merged config pointing at them."""
    config = merged_config()
    save_tiny_model(root / "teacher", 1)
    save_tiny_model(root / "student", 2)
    config["models"] = {"teacher": str(root / "teacher"), "students": {"small": str(root / "student"),
                                                                       "large": str(root / "student")}}
    pool = make_pool(60, [4, 12], 0.0, 0, config["prompts"])
    write_jsonl(root / "pool.jsonl", pool)
    data = dict(config["data"], opd_questions=20, seqkd_examples=30)
    sample_training_data(data, str(root / "pool.jsonl"), str(root / "questions.jsonl"), str(root / "seqkd.jsonl"), 0)
    return config


def run_settings(config: dict[str, Any], name: str, **training: Any) -> dict[str, Any]:
    settings = expand_runs(config)[name].settings(config)
    settings["training"] = dict(settings["training"], **training)
    return settings
