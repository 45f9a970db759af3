"""Samplers behind one interface: Hugging Face `generate` and vLLM.

Both take token-id prompts and return `Rollouts`; training and evaluation call only `sample()` and
`update_weights()`, so the engine does not know which one runs. Sampling is at temperature 1.0 and
top_p 1.0 unless told otherwise, and stops at an end-of-turn token or after `max_new_tokens`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import torch

log = logging.getLogger(__name__)


@dataclass
class Rollouts:
    """Sampled responses, one row per (prompt, sample); rows of prompt i are i*n .. i*n+n-1."""

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]  # includes the stop token when one was produced
    finished: list[bool]  # False when cut at max_new_tokens
    sampler_logprobs: list[list[float]] | None = None  # None: the sampler is the trainer's own model

    def __len__(self) -> int:
        return len(self.response_ids)


class Sampler(Protocol):
    def sample(self, prompts: list[list[int]], n: int, max_new_tokens: int, seed: int) -> Rollouts: ...

    def update_weights(self, model: torch.nn.Module) -> None: ...


class HFSampler:
    """Batched `model.generate` with left padding and the KV cache, on the trainer's own model."""

    def __init__(self, model: torch.nn.Module, stop_ids: list[int], pad_id: int, temperature: float = 1.0,
                 top_p: float = 1.0, max_batch_tokens: int = 65536) -> None:
        self.model, self.stop_ids, self.pad_id = model, stop_ids, pad_id
        self.temperature, self.top_p, self.max_batch_tokens = temperature, top_p, max_batch_tokens

    def update_weights(self, model: torch.nn.Module) -> None:
        self.model = model  # same process, same tensors: nothing to copy

    @torch.no_grad()
    def sample(self, prompts: list[list[int]], n: int, max_new_tokens: int, seed: int) -> Rollouts:
        rows = [p for p in prompts for _ in range(n)]
        out = Rollouts([], [], [])
        if max_new_tokens <= 0:
            return Rollouts(rows, [[] for _ in rows], [False] * len(rows))
        torch.manual_seed(seed)
        longest = max(len(p) for p in rows) + max_new_tokens
        per_batch = max(1, self.max_batch_tokens // longest)
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(rows), per_batch):
            self._generate(rows[start:start + per_batch], max_new_tokens, out)
        self.model.train(was_training)
        return out

    def _generate(self, rows: list[list[int]], max_new_tokens: int, out: Rollouts) -> None:
        width = max(len(p) for p in rows)
        device = next(self.model.parameters()).device
        ids_BP = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask_BP = torch.zeros((len(rows), width), dtype=torch.long)
        for i, p in enumerate(rows):
            ids_BP[i, width - len(p):] = torch.tensor(p)
            mask_BP[i, width - len(p):] = 1
        seqs = self.model.generate(
            input_ids=ids_BP.to(device), attention_mask=mask_BP.to(device), do_sample=True,
            temperature=self.temperature, top_p=self.top_p, top_k=0, max_new_tokens=max_new_tokens,
            eos_token_id=self.stop_ids, pad_token_id=self.pad_id,
        )
        for p, row in zip(rows, seqs[:, width:].tolist(), strict=True):
            cut = next((j for j, tok in enumerate(row) if tok in self.stop_ids), None)
            out.prompt_ids.append(p)
            out.response_ids.append(row if cut is None else row[: cut + 1])
            out.finished.append(cut is not None)


class VLLMSampler:
    """vLLM's offline `LLM` engine; weights are refreshed in place from the trainer (DESIGN.md s. 6, 8).

    The engine must run in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) for `update_weights` to reach
    the model runner; the caller's entry point needs an `if __name__ == "__main__":` guard.
    """

    def __init__(self, model_path: str, stop_ids: list[int], temperature: float = 1.0, top_p: float = 1.0,
                 tensor_parallel_size: int = 1, max_model_len: int = 4096, dtype: str = "auto") -> None:
        import os

        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        self.llm = LLM(model=model_path, tensor_parallel_size=tensor_parallel_size, dtype=dtype,
                       max_model_len=max_model_len, enable_prefix_caching=True, seed=0)
        self.stop_ids, self.temperature, self.top_p = stop_ids, temperature, top_p

    def update_weights(self, model: torch.nn.Module) -> None:
        runner = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner
        runner.reload_weights(weights_iterator=iter(model.state_dict().items()))
        self.llm.reset_prefix_cache()

    def sample(self, prompts: list[list[int]], n: int, max_new_tokens: int, seed: int) -> Rollouts:
        from vllm import SamplingParams, TokensPrompt

        params = SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p, top_k=0,
                                max_tokens=max_new_tokens, stop_token_ids=self.stop_ids, seed=seed,
                                logprobs=0, skip_special_tokens=False)
        results = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params,
                                    use_tqdm=False)
        out = Rollouts([], [], [], [])
        for p, result in zip(prompts, results, strict=True):
            for comp in result.outputs:
                ids = list(comp.token_ids)
                out.prompt_ids.append(p)
                out.response_ids.append(ids)
                out.finished.append(comp.finish_reason == "stop")
                out.sampler_logprobs.append([lp[t].logprob for lp, t in zip(comp.logprobs, ids, strict=True)])
        return out


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True
