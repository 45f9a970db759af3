"""A plain-torch Qwen3 forward over a growing KV cache, for sampling from small models on CPU.

Hugging Face `generate` spends most of a decode step on Python bookkeeping when the model is tiny (the toy
models: 2 layers, hidden 64), so a step costs milliseconds where the arithmetic costs microseconds. This
module runs the arithmetic of `transformers`' `Qwen3ForCausalLM` (RMSNorm in float32, q/k norm on the
head dim, rotate-half RoPE, grouped-query attention, SwiGLU) in as few torch calls as it can: fused q/k/v
and gate/up weights, q and k normed and rotated together, RoPE tables computed once per call, one cache
write per layer and step, grouped-query attention as two batched matmuls over shared key heads, the
softmax scale folded into q_norm's weight, contiguous cache tensors (no copies inside the matmuls), float32
casts only where the input is not float32 already. `TorchSampler` (sampling.py) drives it;
tests/test_torch_sampler.py checks its log-probs against the Hugging Face model's.

Rows are left-padded to a common prompt width, so every row writes cache slot `width + t` at decode step
`t`; a row's RoPE position is its slot minus its padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .flops import head_dim


@dataclass
class Layer:
    qkv: Tensor  # ((H + 2 KV) * D, hidden)
    qk_norm: Tensor  # (H + KV, D): q_norm's weight for each query head, then k_norm's for each key head
    o: Tensor
    gate_up: Tensor  # (2 I, hidden)
    down: Tensor
    in_norm: Tensor
    post_norm: Tensor


@dataclass
class Qwen3Weights:
    """The model's weights as this module uses them (fused copies, made at each `sample` call)."""

    embed: Tensor
    layers: list[Layer]
    norm: Tensor
    lm_head: Tensor
    heads: int
    kv_heads: int
    head_dim: int
    eps: float
    theta: float

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> Qwen3Weights:
        c = model.config
        problems = [name for name, bad in (
            ("model_type", c.model_type != "qwen3"), ("hidden_act", c.hidden_act != "silu"),
            ("attention_bias", bool(c.attention_bias)), ("use_sliding_window", bool(c.use_sliding_window)),
            ("rope_type", (c.rope_parameters or {}).get("rope_type", "default") != "default"),
        ) if bad]
        if problems:
            raise ValueError(f"the 'torch' and 'fused' samplers support plain Qwen3 models only "
                             f"({', '.join(problems)} differ): set training.sampler / eval.sampler to 'hf'")
        heads, kv_heads = c.num_attention_heads, c.num_key_value_heads
        head_size = head_dim(c)
        layers = []
        for block in model.model.layers:
            a, m = block.self_attn, block.mlp
            layers.append(Layer(
                qkv=torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).detach(),
                qk_norm=torch.cat([a.q_norm.weight.detach().expand(heads, -1) * head_size**-0.5,  # softmax scale
                                   a.k_norm.weight.detach().expand(kv_heads, -1)]),
                o=a.o_proj.weight.detach(), gate_up=torch.cat([m.gate_proj.weight, m.up_proj.weight]).detach(),
                down=m.down_proj.weight.detach(), in_norm=block.input_layernorm.weight.detach(),
                post_norm=block.post_attention_layernorm.weight.detach()))
        return cls(embed=model.model.embed_tokens.weight.detach(), layers=layers, norm=model.model.norm.weight.detach(),
                   lm_head=model.get_output_embeddings().weight.detach(), heads=heads, kv_heads=kv_heads,
                   head_dim=head_size, eps=c.rms_norm_eps,
                   theta=c.rope_parameters["rope_theta"])

    def rope(self, slots: int) -> tuple[Tensor, Tensor]:
        """cos and sin of every position up to `slots` (HF's default RoPE, attention scaling 1): (slots, D)."""
        D = self.head_dim
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, D, 2, dtype=torch.float, device=self.embed.device) / D))
        freqs = torch.arange(slots, device=self.embed.device).float()[:, None] * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        # rotate_half(x) * sin == x[..., perm] * signed_sin: one gather instead of two slices, a negation and a cat
        half = D // 2
        sign = torch.cat([-torch.ones(half), torch.ones(half)]).to(emb.device)
        return emb.cos().to(self.embed.dtype), (emb.sin() * sign).to(self.embed.dtype)


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """Qwen3RMSNorm: normalise in float32, cast back, then scale."""
    if x.dtype == torch.float32:  # the same arithmetic without the two no-op casts (40% of a tiny norm's time)
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


class KVCache:
    """Keys and values of every layer, (B, KV, capacity, D) each, and the additive key mask (B, slots).

    The capacity grows `GROW` slots at a time up to `slots`, and attention reads the whole capacity (unwritten
    slots are masked): a contiguous tensor, where a slice of a preallocated full-length cache would make
    every attention matmul copy its keys and values first (17% of a decode step at 480 rows, measured).
    """

    GROW = 32

    def __init__(self, w: Qwen3Weights, rows: int, slots: int, pad_BP: Tensor) -> None:
        dtype, device = w.embed.dtype, w.embed.device
        self.slots, self.prompt_width = slots, pad_BP.shape[1]
        self.k: list[Tensor] = [torch.zeros((rows, w.kv_heads, 0, w.head_dim), dtype=dtype, device=device)
                                for _ in w.layers]
        self.v: list[Tensor] = [t.clone() for t in self.k]
        self.key_bias_BS = torch.full((rows, slots), torch.finfo(dtype).min, dtype=dtype, device=device)
        self.key_bias_BS[:, : pad_BP.shape[1]].masked_fill_(~pad_BP, 0.0)  # prompt slots; padding stays masked
        self.padded = bool(pad_BP.any())
        self.cos, self.sin = w.rope(slots)
        half = w.head_dim // 2
        self.perm = torch.cat([torch.arange(half, w.head_dim), torch.arange(half)]).to(device)  # rotate_half
        self.used = 0  # slots written so far (same for every row)

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def open(self, s0: int, s1: int) -> None:
        """Room for slots s0 .. s1-1 (capacity grown `GROW` beyond them, at most `slots`); generated slots
        (past the prompt) become visible to attention as they are written."""
        if s0 >= self.prompt_width:
            self.key_bias_BS[:, s0:s1] = 0.0
        if s1 <= self.capacity:
            return
        cap = min(self.slots, s1 + self.GROW)
        for store in (self.k, self.v):
            for i, t in enumerate(store):
                grown = t.new_zeros((t.shape[0], t.shape[1], cap, t.shape[3]))
                grown[:, :, : t.shape[2]] = t
                store[i] = grown

    def keep(self, rows: Tensor) -> None:
        """Drop the rows not in `rows` (finished sequences) so later steps skip them."""
        self.k = [t.index_select(0, rows) for t in self.k]
        self.v = [t.index_select(0, rows) for t in self.v]
        self.key_bias_BS = self.key_bias_BS.index_select(0, rows)


def forward(w: Qwen3Weights, ids_BT: Tensor, positions_BT: Tensor | None, cache: KVCache) -> Tensor:
    """Run T new tokens per row through the model, appending to `cache`; returns the last position's logits.

    `positions_BT` are the RoPE positions (a row's slot minus its padding); None when no row is padded.
    """
    B, T = ids_BT.shape
    H, KV, D = w.heads, w.kv_heads, w.head_dim
    G = H // KV
    s0, s1 = cache.used, cache.used + T
    cache.open(s0, s1)
    cap = cache.capacity
    x = F.embedding(ids_BT, w.embed)
    if positions_BT is None:  # no padding: every row is at slots s0 .. s1-1
        cos, sin = cache.cos[None, s0:s1, None], cache.sin[None, s0:s1, None]  # (1, T, 1, D)
    else:
        cos, sin = cache.cos[positions_BT][:, :, None], cache.sin[positions_BT][:, :, None]  # (B, T, 1, D)
    mask = cache.key_bias_BS[:, None, None, :cap]  # (B, 1, 1, capacity): padding and unwritten slots
    if T > 1:  # prefill: causal within the new tokens; query rows are G blocks of T, one per shared head
        causal = torch.full((T, cap), torch.finfo(x.dtype).min, dtype=x.dtype, device=x.device).triu(s0 + 1)
        mask = mask + causal.repeat(G, 1)
    for li, layer in enumerate(w.layers):
        qkv = (rms_norm(x, layer.in_norm, w.eps) @ layer.qkv.T).view(B, T, H + 2 * KV, D)
        qk = rms_norm(qkv[:, :, : H + KV], layer.qk_norm, w.eps)
        qk = qk * cos + qk[..., cache.perm] * sin
        cache.k[li][:, :, s0:s1] = qk[:, :, H:].transpose(1, 2)
        cache.v[li][:, :, s0:s1] = qkv[:, :, H + KV:].transpose(1, 2)
        # query heads kv*G .. kv*G+G-1 share key head kv: (B, KV, G*T, D) against (B, KV, capacity, D)
        q = qk[:, :, :H].reshape(B, T, KV, G, D).permute(0, 2, 3, 1, 4).reshape(B, KV, G * T, D)
        scores = q @ cache.k[li].transpose(-1, -2) + mask
        attn = torch.softmax(scores.float(), dim=-1).to(x.dtype) @ cache.v[li]  # (B, KV, G*T, D)
        x = x + attn.view(B, KV, G, T, D).permute(0, 3, 1, 2, 4).reshape(B, T, H * D) @ layer.o.T
        gate, up = (rms_norm(x, layer.post_norm, w.eps) @ layer.gate_up.T).chunk(2, dim=-1)
        x = x + (F.silu(gate) * up) @ layer.down.T
    cache.used = s1
    return rms_norm(x[:, -1], w.norm, w.eps) @ w.lm_head.T
