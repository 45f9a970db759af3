"""Pretraining the toy world's Qwen3 models: the teacher and the two "base" students.

The teacher learns the tag -> method table and clean execution until it is sharp at temperature 1.0, plus
"plan override" examples so that it can score the continuation of any opening. The students learn to
execute every method (with a small error rate) but open with a habitual wrong method for each tag half of
the time and a uniformly random one otherwise: like a base model, they compute well enough and attend to the
problem, but do not know which approach it calls for. A model may start from another of the same shape
(`init_from`): the default large student is the teacher taught these habits.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import Qwen3Config, Qwen3ForCausalLM

from ..models import Packed, build_prompt, load_model, load_tokenizer, response_logprobs
from . import model_cache
from .task import (
    HABIT_OF_TAG,
    HELD_OUT_TAGS,
    IN_DOMAIN_TAGS,
    METHODS,
    noisy_execution,
    plan_line,
    render_solution,
    sample_question,
)
from .world import user_message

log = logging.getLogger(__name__)
ALL_TAGS = IN_DOMAIN_TAGS + HELD_OUT_TAGS
MAX_POSITIONS = 512


def model_config(spec: dict[str, Any], vocab: int, tokenizer: Any) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=vocab, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
        num_attention_heads=spec["heads"], num_key_value_heads=spec["kv_heads"],
        head_dim=spec["hidden"] // spec["heads"], intermediate_size=spec["intermediate"],
        max_position_embeddings=MAX_POSITIONS, tie_word_embeddings=False, rope_theta=10000.0,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def training_example(rng: random.Random, spec: dict[str, Any], lines: tuple[int, int], tokenizer: Any,
                     prompts: dict[str, str]) -> tuple[list[int], list[int]]:
    """One (context ids, response ids) pair over all twelve tags; the loss sees the response only.

    The opening is the tag's method with probability ``spec["plan_right"]`` and a uniformly random method
    otherwise: 1 for the teacher; a little above 0 for a base student, which can execute every method and
    leans only slightly towards the right one (it knows the approach a little, as a base model does). With
    probability ``spec["override"]`` the opening is a uniformly random method moved to the context side,
    unsupervised, with the execution correct under it: the teacher then scores the continuation of any
    opening a student picks. Execution values are wrong with probability ``spec["noise"]``.
    """
    q = sample_question(rng, ALL_TAGS, *lines)
    override = rng.random() < spec.get("override", 0.0)
    draw = rng.random()
    if override or draw >= spec["plan_right"] + spec.get("plan_habit", 0.0):
        method = rng.choice(list(METHODS))
    else:
        method = q.method if draw < spec["plan_right"] else HABIT_OF_TAG[q.tag]
    text = render_solution(q, method, noisy_execution(q, method, spec["noise"], rng)) + tokenizer.eos_token
    context = build_prompt(tokenizer, user_message(q, prompts))
    if override:
        head = plan_line(q.tag, method)
        context, text = context + head, text[len(head):]
    ids = tokenizer([context, text], add_special_tokens=False)["input_ids"]
    return ids[0], ids[1]


def pretrain(spec: dict[str, Any], toy: dict[str, Any], prompts: dict[str, str], tokenizer_dir: str,
             out_dir: str, seed: int, threads: int, init_from: str | None = None) -> dict[str, float]:
    """Train one toy model and `save_pretrained` it (with the tokenizer) into `out_dir`.

    A model with the same inputs pretrained before (by this or another study) is copied from the model
    cache instead (`model_cache.py`).
    """
    settings = {"spec": spec, "pretrain": toy["pretrain"], "prompts": prompts, "seed": seed}
    key = model_cache.model_key(settings, tokenizer_dir, init_from)
    if model_cache.fetch(key, out_dir):
        return {"cached": 1.0}
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(tokenizer_dir)
    if init_from:
        model = load_model(init_from)
    else:
        model = Qwen3ForCausalLM(model_config(spec, len(tokenizer), tokenizer))
    model.config._attn_implementation = "sdpa"
    model.train()
    cfg = toy["pretrain"]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.98), weight_decay=0.0)
    rng = random.Random(seed)
    steps = spec["steps"]
    bar = tqdm(range(1, steps + 1), desc=Path(out_dir).name, mininterval=5.0)
    loss_ema = float("nan")
    for step in bar:
        warm = min(1.0, step / cfg["warmup"])
        for group in opt.param_groups:  # linear warm-up, cosine decay to 10%
            group["lr"] = cfg["lr"] * warm * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))
        pairs = [training_example(rng, spec, cfg["lines"], tokenizer, prompts) for _ in range(cfg["batch"])]
        packed = Packed.build([p for p, _ in pairs], [r for _, r in pairs], tokenizer.pad_token_id)
        loss = -response_logprobs(model, packed)[packed.response_mask_BT].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_ema = loss.item() if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * loss.item()
        bar.set_postfix(loss=f"{loss_ema:.4f}", refresh=False)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    model_cache.store(key, out_dir)
    return {"final_loss": loss_ema}
