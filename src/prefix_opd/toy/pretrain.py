"""Pretraining the toy world's Qwen3 models: the weak "base" students and the teacher.

The teacher learns clean chains until it is sharp at temperature 1.0. The students learn noisy chains
(each value wrong with probability `noise`): they follow the format but compute each step only about
`1 - noise` of the time, as base models follow a format they cannot yet execute. A model may start from
another of the same shape (`init_from`): the default large student is the teacher taught to be noisy,
which is cheaper than learning the task from noise alone.
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
from .task import LETTERS, noisy_chain, render_solution, sample_question
from .world import user_message

log = logging.getLogger(__name__)
MAX_POSITIONS = 512


def model_config(spec: dict[str, Any], vocab: int, tokenizer: Any) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=vocab, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
        num_attention_heads=spec["heads"], num_key_value_heads=spec["kv_heads"],
        head_dim=spec["hidden"] // spec["heads"], intermediate_size=spec["intermediate"],
        max_position_embeddings=MAX_POSITIONS, tie_word_embeddings=False, rope_theta=10000.0,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def training_example(rng: random.Random, benchmarks: dict[str, Any], rule_mix: dict[str, float],
                     pool_steps: list[int], noise: float, tokenizer: Any, prompts: dict[str, str]
                     ) -> tuple[list[int], list[int]]:
    """One (prompt ids, response ids) pair; rule f uses the pool's chain lengths, g/h their sets'.

    `lookup` examples are a drill for the multiple-choice answer step: a multiple-choice question
    followed by every option looked up by value ("42=B") in random order, so a model sees many
    lookups per example instead of one (a base model's exposure to tables, not the task itself).
    """
    rule = rng.choices(list(rule_mix), weights=list(rule_mix.values()))[0]
    mc_specs = [s for s in benchmarks.values() if s["options"]]
    spec = next((s for s in mc_specs if s["rule"] == rule), None)
    if rule == "lookup":
        spec = rng.choice(mc_specs)
        q = sample_question(rng, spec["rule"], 2, spec["steps"][1], n_options=spec["options"])
        order = rng.sample(q.options, len(q.options))
        response = "\n" + "".join(f"{v:02d}={LETTERS[q.options.index(v)]}\n" for v in order)
    else:
        if rule == "f" or spec is None:
            q = sample_question(rng, rule, 2, pool_steps[1])
        else:
            q = sample_question(rng, rule, 2, spec["steps"][1] + 4, n_options=spec["options"])
        response = render_solution(q, noisy_chain(q, noise, rng))
    prompt = tokenizer(build_prompt(tokenizer, user_message(q, prompts)), add_special_tokens=False)["input_ids"]
    response += tokenizer.eos_token
    return prompt, tokenizer(response, add_special_tokens=False)["input_ids"]


def pretrain(spec: dict[str, Any], toy: dict[str, Any], prompts: dict[str, str], tokenizer_dir: str,
             out_dir: str, seed: int, threads: int, init_from: str | None = None) -> dict[str, float]:
    """Train one toy model and `save_pretrained` it (with the tokenizer) into `out_dir`."""
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
        pairs = [training_example(rng, toy["benchmarks"], cfg["rule_mix"], toy["pool_steps"], spec["noise"],
                                  tokenizer, prompts) for _ in range(cfg["batch"])]
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
    return {"final_loss": loss_ema}
