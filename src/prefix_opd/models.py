"""Loading models and tokenizers, building prompts, and response-aligned forward passes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from .losses import chunked_token_logprobs

THINK = "<think>"
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")  # Qwen3: 151645 and 151643


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(str(path))


def load_model(path: str | Path, dtype: str = "float32", device: str = "cpu") -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype),
                                                 attn_implementation="sdpa")
    return model.to(device)


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """End-of-turn and end-of-text ids (base models' generation configs list only the latter)."""
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in STOP_TOKENS if t in vocab]


def build_prompt(tokenizer: PreTrainedTokenizerBase, messages: str | list[dict[str, Any]]) -> str:
    """Chat template with the assistant header, then `<think>` (paper, Section 3 "Special Tokens"); `messages`
    is a chat, or one user message."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                         add_generation_prompt=True) + THINK


def encode_prompt(tokenizer: PreTrainedTokenizerBase, messages: str | list[dict[str, Any]]) -> list[int]:
    """The prompt's token ids, as every engine samples from it (native trainer, evaluation, verl's agent loop)."""
    return list(tokenizer(build_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])


@dataclass
class Packed:
    """Prompt+response rows right-padded for one forward pass, with response-aligned indices.

    Position t of a response (0 = first response token) is predicted by the hidden state at
    `prompt_len + t - 1`; `gather_BT` holds those indices so outputs are indexed by response position.
    """

    input_ids_BL: Tensor
    gather_BT: Tensor
    targets_BT: Tensor
    response_mask_BT: Tensor

    @classmethod
    def build(cls, prompts: list[list[int]], responses: list[list[int]], pad_id: int) -> Packed:
        n = len(prompts)
        width = max(len(p) + len(r) for p, r in zip(prompts, responses, strict=True))
        resp = max(1, max(len(r) for r in responses))
        ids = torch.full((n, width), pad_id, dtype=torch.long)
        gather = torch.zeros((n, resp), dtype=torch.long)
        targets = torch.full((n, resp), pad_id, dtype=torch.long)
        mask = torch.zeros((n, resp), dtype=torch.bool)
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            ids[i, : len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
            gather[i] = torch.clamp(torch.arange(resp) + len(p) - 1, max=width - 1)
            targets[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = True
        return cls(ids, gather, targets, mask)

    def to(self, device: str | torch.device) -> Packed:
        return Packed(*(t.to(device) for t in (self.input_ids_BL, self.gather_BT, self.targets_BT,
                                               self.response_mask_BT)))


def response_hidden(model: torch.nn.Module, packed: Packed) -> Tensor:
    """Final hidden states at the positions that predict each response token: (B, T, H).

    No attention mask is passed: rows are right-padded, so under causal attention a real token never sees a
    padding slot, and without a mask the attention kernel may skip the masked-out half (`is_causal`), 7% of a
    training step on the toy models. Padded positions' outputs are garbage and masked downstream.
    """
    return hidden_at(model, packed.input_ids_BL, packed.gather_BT)


def hidden_at(model: torch.nn.Module, input_ids_BL: Tensor, gather_BT: Tensor) -> Tensor:
    """Final hidden states of rows `input_ids_BL` at positions `gather_BT`: (B, T, H)."""
    hidden_BLH = model.model(input_ids=input_ids_BL, use_cache=False).last_hidden_state
    index = gather_BT.unsqueeze(-1).expand(-1, -1, hidden_BLH.shape[-1])
    return torch.gather(hidden_BLH, 1, index)


def output_weight(model: torch.nn.Module) -> Tensor:
    return model.get_output_embeddings().weight


def response_logprobs(model: torch.nn.Module, packed: Packed, chunk_tokens: int = 1024) -> Tensor:
    """log pi(y_t | prompt, y_<t) for every response position, chunked over the vocabulary: (B, T)."""
    hidden_BTH = response_hidden(model, packed)
    return chunked_token_logprobs(hidden_BTH, output_weight(model), packed.targets_BT, chunk_tokens)
