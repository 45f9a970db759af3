"""Training FLOP estimates, Appendix B of the paper (docs/design.md section 4).

verl's counter for dense Qwen models (``verl/utils/flops_counter.py``, ``_estimate_qwen2_flops``) with h
hidden, l layers, n_q heads, n_kv kv-heads, d head dim, I intermediate, V vocab:

* ``N = l * (3*h*I + h*(2*n_q*d + 2*n_kv*d)) + 2*V*h``
* one training pass (forward + backward + update) over sequences s_i:
  ``F_train = 6*N*sum(s_i) + c*sum(s_i^2)*d*n_q*l``, c = :data:`ATTENTION_CONSTANT`;
* forward only: ``F_fwd = F_train / 3``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ATTENTION_CONSTANT = 12
"""Attention coefficient c of verl's counter at commit c936ec7 (2025-07-04), the one the paper cites.

Current verl uses 6; keep 12 to match the paper's numbers.
"""


def _field(cfg: Any, key: str, default: Any = None) -> Any:
    """A field of a transformers config object or of a ``config.json`` dict (None counts as missing)."""
    value = cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)
    return default if value is None else value


def head_dim(cfg: Any) -> int:
    """Attention head size: ``head_dim`` when the config gives one (Qwen3 does), else hidden // heads."""
    return int(_field(cfg, "head_dim") or _field(cfg, "hidden_size") // _field(cfg, "num_attention_heads"))


@dataclass(frozen=True)
class ModelShape:
    """Shape of a dense decoder-only (Qwen-style) transformer, as the FLOP counter needs it."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @classmethod
    def from_hf_config(cls, cfg: Any) -> ModelShape:
        """Build from a transformers config object or a dict (``config.json`` fields).

        ``num_key_value_heads`` defaults to ``num_attention_heads``; ``head_dim`` to hidden // heads.
        """

        heads = int(_field(cfg, "num_attention_heads"))
        return cls(
            hidden=int(_field(cfg, "hidden_size")),
            layers=int(_field(cfg, "num_hidden_layers")),
            heads=heads,
            kv_heads=int(_field(cfg, "num_key_value_heads", heads)),
            head_dim=head_dim(cfg),
            intermediate=int(_field(cfg, "intermediate_size")),
            vocab=int(_field(cfg, "vocab_size")),
        )


def dense_params(shape: ModelShape) -> int:
    """verl's dense parameter count N = l*(3*h*I + h*(2*n_q*d + 2*n_kv*d)) + 2*V*h.

    Embedding and LM head are both counted (2*V*h) even for tied-embedding models, as verl does.
    """
    h, d = shape.hidden, shape.head_dim
    mlp = 3 * h * shape.intermediate
    attn_linear = h * (2 * shape.heads * d + 2 * shape.kv_heads * d)
    return shape.layers * (mlp + attn_linear) + 2 * shape.vocab * h


def train_flops(shape: ModelShape, seq_lens: Sequence[int], attn_const: int = ATTENTION_CONSTANT) -> float:
    """FLOPs of one training pass (forward + backward + update) over sequences of lengths ``seq_lens``.

    ``6*N*sum(s) + c*sum(s^2)*d*n_q*l``. Which tokens a length counts (prompt + response, or response only)
    is the caller's choice.
    """
    lens = [int(s) for s in seq_lens]
    tokens = sum(lens)
    squares = sum(s * s for s in lens)
    attn = attn_const * squares * shape.head_dim * shape.heads * shape.layers
    return float(6 * dense_params(shape) * tokens + attn)


def forward_flops(shape: ModelShape, seq_lens: Sequence[int], attn_const: int = ATTENTION_CONSTANT) -> float:
    """Forward-only FLOPs, approximated as one third of :func:`train_flops` (Appendix B)."""
    return train_flops(shape, seq_lens, attn_const) / 3.0


def opd_step_flops(
    student: ModelShape,
    teacher: ModelShape,
    seq_lens: Sequence[int],
    attn_const: int = ATTENTION_CONSTANT,
) -> float:
    """FLOPs of one OPD step over rollouts of supervised lengths ``seq_lens`` (B*K entries per step).

    Per rollout ``F_train(S, L) + 2*F_fwd(S, L) + F_fwd(T, L)``: one student update, two student forward
    passes (sampling the rollout and recomputing the student's log-probs) and one teacher forward pass
    (teacher log-probs). For prefix OPD, L is capped at L_train. Everything is linear in sum(L) and
    sum(L^2), so the per-rollout sum equals the formula applied to the whole list.
    """
    return (
        train_flops(student, seq_lens, attn_const)
        + 2.0 * forward_flops(student, seq_lens, attn_const)
        + forward_flops(teacher, seq_lens, attn_const)
    )


def seqkd_step_flops(
    student: ModelShape, seq_lens: Sequence[int], attn_const: int = ATTENTION_CONSTANT
) -> float:
    """FLOPs of one SeqKD (SFT) step: the training pass only, ``F_train(S, L)`` per example.

    Generating the off-policy teacher data is not counted (paper footnote 8).
    """
    return train_flops(student, seq_lens, attn_const)
