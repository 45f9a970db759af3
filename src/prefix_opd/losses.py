"""Losses for on-policy (prefix) distillation, SFT and GKD; pure torch.

Conventions
-----------
* Shapes are suffixed to names: ``B`` batch (rollouts), ``T`` response positions, ``H`` hidden size,
  ``V`` vocabulary, ``N`` flattened tokens, ``C`` tokens of one chunk.
* Response positions are indexed ``0..T-1`` from the first response token; ``mask_BT`` is 1 (or
  True) on tokens that enter a loss and 0 elsewhere. Masked-out positions never contribute, even when
  their inputs are ``nan``/``inf`` (``torch.where`` is used, not multiplication).
* ``normalizer`` is a constant (the number ``B*K`` of rollouts of the whole optimiser step), so that a
  step's update does not depend on how it is split into micro-batches: losses are *summed* over tokens
  and rollouts and divided by this constant.
* Full-vocabulary quantities are computed over chunks of ``chunk_tokens`` flattened tokens by custom
  autograd functions that save only the inputs and per-token scalars and recompute each chunk's logits
  during backward, so neither the forward nor the backward pass ever holds an ``[N, V]`` tensor: peak
  extra memory is a few ``[chunk_tokens, V]`` buffers. Softmax normalisers are computed in float32
  (float64 inputs stay float64) whatever the input dtype.

The OPD objective (docs/design.md section 4)
--------------------------------------
Per token ``a_t = -(log pi_samp(y_t|s_t) - log pi_T(y_t|s_t))`` (a detached advantage),
``A_t = sum_{t' >= t} gamma^(t'-t) m_t' a_t'``, ``ratio_t = exp(log pi_theta(y_t|s_t) - log
pi_samp(y_t|s_t))`` and ``loss = -(1/normalizer) sum_{b,t} m_t ratio_t A_t``. With ``gamma = 0`` (the
paper) the expected gradient is ``sum_t E_{s_t ~ d_theta}[grad KL(pi_theta(.|s_t) || pi_T(.|s_t))]``
with the state distribution held fixed; with ``gamma = 1`` it is the gradient of the sequence-level
reverse KL ``KL(pi_theta(y) || pi_T(y))``. Both coincide for one-token sequences.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = [
    "chunked_token_logprobs",
    "discounted_advantages",
    "opd_loss",
    "sft_loss",
    "chunked_full_vocab_kl",
    "window_mask",
    "tail_mask",
    "position_binned_kl",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype for softmax normalisers: at least float32 (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def _grad_buffers(ctx: Any, hidden_NH: Tensor, weight_VH: Tensor, acc: torch.dtype
                  ) -> tuple[Tensor | None, Tensor | None]:
    """Zeroed gradients of the hidden states and (in `acc` precision) of the output weight, each only when
    autograd asks for it."""
    need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    return (torch.zeros_like(hidden_NH) if need_h else None,
            torch.zeros(weight_VH.shape, dtype=acc, device=weight_VH.device) if need_w else None)


def _backprop_chunk(grad_logits_CV: Tensor, hidden_NH: Tensor, weight_VH: Tensor, grad_h_NH: Tensor | None,
                    grad_w_VH: Tensor | None, s: int, e: int, acc: torch.dtype) -> None:
    """The chain rule through `logits = hidden @ weight.T` for tokens [s, e): into `grad_h_NH[s:e]` and, summed
    over chunks in `acc` precision, into `grad_w_VH` (either may be None: not needed)."""
    grad_logits_CV = grad_logits_CV.to(hidden_NH.dtype)
    if grad_h_NH is not None:
        grad_h_NH[s:e] = grad_logits_CV @ weight_VH.to(hidden_NH.dtype)
    if grad_w_VH is not None:
        grad_w_VH += (grad_logits_CV.T @ hidden_NH[s:e]).to(acc)


def _chunk_logits(hidden_CH: Tensor, weight_VH: Tensor, temperature: float, acc: torch.dtype) -> Tensor:
    """``z_CV = (h_CH @ W_VH^T) / temperature`` as a fresh tensor in ``acc`` dtype.

    The matmul runs in the inputs' dtype (bf16 stays bf16 on the tensor cores); only the result is
    up-cast, so the returned buffer can be modified in place.
    """
    logits_CV = hidden_CH @ weight_VH.T
    logits_CV = logits_CV.to(acc) if logits_CV.dtype != acc else logits_CV
    if temperature != 1.0:
        logits_CV.div_(temperature)
    return logits_CV


def _logsumexp_(logits_CV: Tensor) -> Tensor:
    """Row-wise ``log sum_v exp(z_v)``, computed with ``z`` overwritten (``exp(z - max)``)."""
    max_C = logits_CV.amax(dim=-1)
    lse_C = logits_CV.sub_(max_C[:, None]).exp_().sum(dim=-1).log_().add_(max_C)
    return lse_C


def _check_chunk(chunk_tokens: int) -> None:
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _as_bool(mask_BT: Tensor) -> Tensor:
    return mask_BT if mask_BT.dtype == torch.bool else mask_BT != 0


# ----------------------------------------------------------------------------------------------
# 1. per-token log-probs of the sampled tokens
# ----------------------------------------------------------------------------------------------


class _ChunkedTokenLogprob(torch.autograd.Function):
    """``out_n = z_n[y_n] - logsumexp_v z_n[v]`` with ``z_n = h_n W^T / tau``, recomputed per chunk.

    Backward: ``d out_n / d z_n = onehot(y_n) - softmax(z_n)``, so with upstream ``g_n``
    ``G_nV = g_n (onehot(y_n) - softmax(z_n)) / tau``, ``dh_n = G_n W`` and ``dW = sum_n G_n^T h_n``.
    Saved: ``h``, ``W``, ``y`` and the per-token ``logsumexp`` (``N`` scalars).
    """

    @staticmethod
    def forward(ctx, hidden_NH, weight_VH, targets_N, chunk_tokens, temperature):  # type: ignore[override]
        acc = _acc_dtype(hidden_NH.dtype)
        n_tokens = hidden_NH.shape[0]
        out_N = hidden_NH.new_empty(n_tokens, dtype=acc)
        lse_N = hidden_NH.new_empty(n_tokens, dtype=acc)
        for s in range(0, n_tokens, chunk_tokens):
            e = min(s + chunk_tokens, n_tokens)
            logits_CV = _chunk_logits(hidden_NH[s:e], weight_VH, temperature, acc)
            target_C = logits_CV.gather(1, targets_N[s:e, None]).squeeze(1)
            lse_C = _logsumexp_(logits_CV)
            del logits_CV
            lse_N[s:e] = lse_C
            out_N[s:e] = target_C - lse_C
        ctx.save_for_backward(hidden_NH, weight_VH, targets_N, lse_N)
        ctx.chunk_tokens = chunk_tokens
        ctx.temperature = temperature
        return out_N

    @staticmethod
    def backward(ctx, grad_N):  # type: ignore[override]
        hidden_NH, weight_VH, targets_N, lse_N = ctx.saved_tensors
        acc = lse_N.dtype
        tau = ctx.temperature
        grad_N = grad_N.to(acc)
        n_tokens = hidden_NH.shape[0]
        grad_h_NH, grad_w_VH = _grad_buffers(ctx, hidden_NH, weight_VH, acc)
        for s in range(0, n_tokens, ctx.chunk_tokens):
            e = min(s + ctx.chunk_tokens, n_tokens)
            g_C = grad_N[s:e]
            probs_CV = _chunk_logits(hidden_NH[s:e], weight_VH, tau, acc)
            probs_CV.sub_(lse_N[s:e, None]).exp_()  # softmax
            grad_logits_CV = probs_CV.mul_(-(g_C / tau)[:, None])
            grad_logits_CV.scatter_add_(1, targets_N[s:e, None], (g_C / tau)[:, None])
            _backprop_chunk(grad_logits_CV, hidden_NH, weight_VH, grad_h_NH, grad_w_VH, s, e, acc)
            del probs_CV, grad_logits_CV
        if grad_w_VH is not None:
            grad_w_VH = grad_w_VH.to(weight_VH.dtype)
        return grad_h_NH, grad_w_VH, None, None, None


def chunked_token_logprobs(
    hidden_BTH: Tensor,
    weight_VH: Tensor,
    targets_BT: Tensor,
    chunk_tokens: int = 1024,
    temperature: float = 1.0,
) -> Tensor:
    """Log-probabilities of ``targets`` under ``softmax(hidden @ weight^T / temperature)``.

    ``logp_BT[b, t] = z[y] - log sum_v exp(z[v])`` with ``z = hidden_BTH[b, t] @ weight_VH^T / tau`` and
    ``y = targets_BT[b, t]``. Computed over chunks of ``chunk_tokens`` flattened tokens; differentiable
    w.r.t. ``hidden_BTH`` and ``weight_VH`` with memory bounded by one chunk in forward and backward
    (each chunk's logits are recomputed in backward). Returns float32 (float64 for float64 inputs).
    Every target must be a valid index (use any token id, e.g. 0, on padding and mask it later).
    """
    _check_chunk(chunk_tokens)
    _check_temperature(temperature)
    *lead, hid = hidden_BTH.shape
    if tuple(lead) != tuple(targets_BT.shape):
        raise ValueError(f"hidden {tuple(hidden_BTH.shape)} and targets {tuple(targets_BT.shape)} disagree")
    if weight_VH.shape[-1] != hid:
        raise ValueError(f"weight {tuple(weight_VH.shape)} does not match hidden size {hid}")
    hidden_NH = hidden_BTH.reshape(-1, hid)
    targets_N = targets_BT.reshape(-1).long()
    out_N = _ChunkedTokenLogprob.apply(hidden_NH, weight_VH, targets_N, int(chunk_tokens), float(temperature))
    return out_N.reshape(targets_BT.shape)


# ----------------------------------------------------------------------------------------------
# 2-4. advantages, OPD and SFT losses
# ----------------------------------------------------------------------------------------------


def discounted_advantages(per_token_BT: Tensor, mask_BT: Tensor, gamma: float) -> Tensor:
    """Reverse discounted cumulative sum along ``T`` over masked tokens.

    ``A_t = m_t * sum_{t' >= t} gamma^(t' - t) m_t' x_t'`` (float32 or wider). The exponent is the
    position distance, gaps included; ``A`` is 0 on masked-out positions. ``gamma = 0`` gives ``m * x``,
    ``gamma = 1`` the plain reverse cumulative sum.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    m_BT = _as_bool(mask_BT)
    x_BT = torch.where(m_BT, per_token_BT, torch.zeros_like(per_token_BT)).to(_acc_dtype(per_token_BT.dtype))
    if gamma == 0:
        return x_BT
    if gamma == 1:
        adv_BT = x_BT.flip(-1).cumsum(-1).flip(-1)
    else:
        adv_BT = torch.empty_like(x_BT)
        running_B = torch.zeros_like(x_BT[..., 0])
        for t in range(x_BT.shape[-1] - 1, -1, -1):
            running_B = x_BT[..., t] + gamma * running_B
            adv_BT[..., t] = running_B
    return torch.where(m_BT, adv_BT, torch.zeros_like(adv_BT))


def opd_loss(
    logp_new_BT: Tensor,
    logp_samp_BT: Tensor,
    logp_teacher_BT: Tensor,
    mask_BT: Tensor,
    gamma: float,
    normalizer: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """On-policy distillation loss with importance sampling (docs/design.md section 4).

    ``a_t = -(logp_samp_t - logp_teacher_t)`` (detached), ``A = discounted_advantages(a, m, gamma)``,
    ``ratio_t = exp(logp_new_t - logp_samp_t)`` (sampler side detached) and
    ``loss = -sum_{b,t} m_t ratio_t A_t / normalizer``; only ``logp_new`` receives gradients.

    Stats (detached 0-d tensors): ``kl_sum = sum m (logp_samp - logp_teacher)`` (sampled reverse-KL
    estimate summed over tokens), ``n_tokens = sum m``, ``ratio_mean`` (mean ratio over masked tokens).
    """
    m_BT = _as_bool(mask_BT)
    zero_BT = torch.zeros_like(logp_new_BT)
    logp_samp_BT = logp_samp_BT.detach()
    log_ratio_teacher_BT = torch.where(m_BT, logp_samp_BT - logp_teacher_BT.detach(), zero_BT)
    adv_BT = discounted_advantages(-log_ratio_teacher_BT, m_BT, gamma)
    ratio_BT = torch.exp(torch.where(m_BT, logp_new_BT - logp_samp_BT, zero_BT))
    terms_BT = torch.where(m_BT, ratio_BT * adv_BT, torch.zeros_like(adv_BT))
    loss = -terms_BT.sum() / normalizer
    n_tokens = m_BT.sum()
    stats = {
        "kl_sum": log_ratio_teacher_BT.sum().detach(),
        "n_tokens": n_tokens.detach(),
        "ratio_mean": (torch.where(m_BT, ratio_BT, zero_BT).sum() / n_tokens.clamp(min=1)).detach(),
    }
    return loss, stats


def sft_loss(logp_BT: Tensor, mask_BT: Tensor, normalizer: float) -> Tensor:
    """Negative log-likelihood summed over masked tokens: ``-sum_{b,t} m_t logp_t / normalizer``."""
    m_BT = _as_bool(mask_BT)
    return -torch.where(m_BT, logp_BT, torch.zeros_like(logp_BT)).sum() / normalizer


# ----------------------------------------------------------------------------------------------
# 5. full-vocabulary generalised divergence (GKD)
# ----------------------------------------------------------------------------------------------


class _ChunkedFullVocabKL(torch.autograd.Function):
    """Per-token full-vocabulary KL between student ``q = softmax(z_s)`` and teacher ``p = softmax(z_t)``.

    ``beta = 0``: ``KL(p || q) = sum_v p_v (log p_v - log q_v)``, ``d/dz_s = q - p``.
    ``beta = 1``: ``KL(q || p) = sum_v q_v (log q_v - log p_v)``, ``d/dz_s = q (log q - log p - KL)``.
    With ``z = h W^T / tau`` the chain rule divides by ``tau``. Saved: inputs and per-token
    ``logsumexp`` of both sides and the KL (scalars); each chunk's logits are recomputed in backward.
    The teacher receives no gradient.
    """

    @staticmethod
    def forward(ctx, s_hidden_NH, s_weight_VH, t_hidden_NH, t_weight_VH, beta, chunk_tokens, temperature):  # type: ignore[override]
        acc = torch.promote_types(_acc_dtype(s_hidden_NH.dtype), _acc_dtype(t_hidden_NH.dtype))
        n_tokens = s_hidden_NH.shape[0]
        kl_N = s_hidden_NH.new_empty(n_tokens, dtype=acc)
        lse_s_N = s_hidden_NH.new_empty(n_tokens, dtype=acc)
        lse_t_N = s_hidden_NH.new_empty(n_tokens, dtype=acc)
        for s in range(0, n_tokens, chunk_tokens):
            e = min(s + chunk_tokens, n_tokens)
            logq_CV = _chunk_logits(s_hidden_NH[s:e], s_weight_VH, temperature, acc)
            lse_s_N[s:e] = torch.logsumexp(logq_CV, dim=-1)
            logq_CV.sub_(lse_s_N[s:e, None])
            logp_CV = _chunk_logits(t_hidden_NH[s:e], t_weight_VH, temperature, acc)
            lse_t_N[s:e] = torch.logsumexp(logp_CV, dim=-1)
            logp_CV.sub_(lse_t_N[s:e, None])
            if beta == 0:  # sum p (log p - log q)
                logq_CV.neg_().add_(logp_CV)
                kl_N[s:e] = logp_CV.exp_().mul_(logq_CV).sum(dim=-1)
            else:  # sum q (log q - log p)
                logp_CV.neg_().add_(logq_CV)
                kl_N[s:e] = logq_CV.exp_().mul_(logp_CV).sum(dim=-1)
            del logq_CV, logp_CV
        ctx.save_for_backward(s_hidden_NH, s_weight_VH, t_hidden_NH, t_weight_VH, lse_s_N, lse_t_N, kl_N)
        ctx.beta, ctx.chunk_tokens, ctx.temperature = beta, chunk_tokens, temperature
        return kl_N

    @staticmethod
    def backward(ctx, grad_N):  # type: ignore[override]
        s_hidden_NH, s_weight_VH, t_hidden_NH, t_weight_VH, lse_s_N, lse_t_N, kl_N = ctx.saved_tensors
        acc, tau = kl_N.dtype, ctx.temperature
        grad_N = grad_N.to(acc)
        n_tokens = s_hidden_NH.shape[0]
        grad_h_NH, grad_w_VH = _grad_buffers(ctx, s_hidden_NH, s_weight_VH, acc)
        for s in range(0, n_tokens, ctx.chunk_tokens):
            e = min(s + ctx.chunk_tokens, n_tokens)
            q_CV = _chunk_logits(s_hidden_NH[s:e], s_weight_VH, tau, acc).sub_(lse_s_N[s:e, None])
            p_CV = _chunk_logits(t_hidden_NH[s:e], t_weight_VH, tau, acc).sub_(lse_t_N[s:e, None])
            if ctx.beta == 0:  # q - p
                grad_logits_CV = q_CV.exp_().sub_(p_CV.exp_())
            else:  # q (log q - log p - KL)
                p_CV.neg_().add_(q_CV).sub_(kl_N[s:e, None])
                grad_logits_CV = q_CV.exp_().mul_(p_CV)
            del p_CV
            grad_logits_CV.mul_((grad_N[s:e] / tau)[:, None])
            _backprop_chunk(grad_logits_CV, s_hidden_NH, s_weight_VH, grad_h_NH, grad_w_VH, s, e, acc)
            del q_CV, grad_logits_CV
        if grad_w_VH is not None:
            grad_w_VH = grad_w_VH.to(s_weight_VH.dtype)
        return grad_h_NH, grad_w_VH, None, None, None, None, None


def chunked_full_vocab_kl(
    student_hidden_BTH: Tensor,
    student_weight_VH: Tensor,
    teacher_hidden_BTH: Tensor,
    teacher_weight_VH: Tensor,
    mask_BT: Tensor,
    beta: float,
    normalizer: float,
    chunk_tokens: int = 1024,
    temperature: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """GKD's generalised divergence over the full vocabulary, per token, in chunks.

    With student ``q_t = softmax(h^s_t W_s^T / tau)`` and teacher ``p_t = softmax(h^T_t W_T^T / tau)``:
    ``beta = 0`` -> forward ``KL(p_t || q_t)``, ``beta = 1`` -> reverse ``KL(q_t || p_t)`` (other values
    raise ``ValueError``). Returns ``(loss, kl_BT)`` with ``loss = sum_{b,t} m_t kl_t / normalizer``,
    differentiable w.r.t. the student hidden states and weight only, and ``kl_BT`` detached (0 where
    ``m = 0``). Only masked tokens are computed; no ``[tokens, V]`` tensor is built in either pass.
    """
    if beta not in (0, 1):
        raise ValueError(f"only beta in {{0, 1}} is supported, got {beta}")
    _check_chunk(chunk_tokens)
    _check_temperature(temperature)
    m_BT = _as_bool(mask_BT)
    s_hid, t_hid = student_hidden_BTH.shape[-1], teacher_hidden_BTH.shape[-1]
    if student_hidden_BTH.shape[:-1] != m_BT.shape or teacher_hidden_BTH.shape[:-1] != m_BT.shape:
        raise ValueError("student hidden, teacher hidden and mask must share their leading shape")
    if student_weight_VH.shape[0] != teacher_weight_VH.shape[0]:
        raise ValueError("student and teacher vocabularies differ")
    idx_N = m_BT.reshape(-1).nonzero().squeeze(1)
    s_hidden_NH = student_hidden_BTH.reshape(-1, s_hid).index_select(0, idx_N)
    with torch.no_grad():
        t_hidden_NH = teacher_hidden_BTH.detach().reshape(-1, t_hid).index_select(0, idx_N)
    kl_N = _ChunkedFullVocabKL.apply(
        s_hidden_NH,
        student_weight_VH,
        t_hidden_NH,
        teacher_weight_VH.detach(),
        int(beta),
        int(chunk_tokens),
        float(temperature),
    )
    loss = kl_N.sum() / normalizer
    kl_BT = kl_N.new_zeros(m_BT.numel()).index_copy_(0, idx_N, kl_N.detach()).reshape(m_BT.shape)
    return loss, kl_BT


# ----------------------------------------------------------------------------------------------
# 6. masks
# ----------------------------------------------------------------------------------------------


def _positions_like(mask_BT: Tensor) -> Tensor:
    return torch.arange(mask_BT.shape[-1], device=mask_BT.device)


def _keep(response_mask_BT: Tensor, keep_BT: Tensor) -> Tensor:
    return (_as_bool(response_mask_BT) & keep_BT).to(response_mask_BT.dtype)


def window_mask(response_mask_BT: Tensor, start: int, end: int) -> Tensor:
    """``m_t = r_t * [start <= t < end]``: response positions in the half-open window ``[start, end)``."""
    pos_T = _positions_like(response_mask_BT)
    return _keep(response_mask_BT, ((pos_T >= start) & (pos_T < end)).expand_as(response_mask_BT))


def tail_mask(response_mask_BT: Tensor, width: int) -> Tensor:
    """The last ``width`` real tokens of each row: ``m_t = r_t * [sum_{t' >= t} r_t' <= width]``.

    For right-padded rows of real length ``n = sum_t r_t`` this keeps positions ``max(0, n - width)
    <= t < n``.
    """
    r_BT = _as_bool(response_mask_BT)
    remaining_BT = r_BT.long().flip(-1).cumsum(-1).flip(-1)  # real tokens at positions >= t
    return _keep(response_mask_BT, remaining_BT <= width)


# ----------------------------------------------------------------------------------------------
# 7. diagnostics
# ----------------------------------------------------------------------------------------------


def position_binned_kl(kl_BT: Tensor, mask_BT: Tensor, bin_size: int) -> list[tuple[int, int, float, int]]:
    """Mean per-token KL in position bins ``[k*bin_size, (k+1)*bin_size)`` over masked tokens.

    Returns rows ``(bin_start, bin_end, kl_mean, n_tokens)`` in increasing order, only for bins with
    ``n_tokens > 0``; ``bin_end`` is the nominal end ``(k+1)*bin_size`` (it may exceed ``T``).
    """
    if bin_size < 1:
        raise ValueError(f"bin_size must be >= 1, got {bin_size}")
    m_BT = _as_bool(mask_BT)
    bin_T = _positions_like(m_BT) // bin_size
    n_bins = int(bin_T[-1].item()) + 1 if m_BT.shape[-1] > 0 else 0
    kl_BT = torch.where(
        m_BT, kl_BT.detach().double(), torch.zeros((), dtype=torch.float64, device=kl_BT.device)
    )
    sums = torch.zeros(n_bins, dtype=torch.float64, device=kl_BT.device).index_add_(0, bin_T, kl_BT.sum(0))
    counts = torch.zeros(n_bins, dtype=torch.long, device=kl_BT.device).index_add_(
        0, bin_T, m_BT.long().sum(0)
    )
    sums_K, counts_K = sums.tolist(), counts.tolist()  # one conversion each, not one per bin
    return [
        (k * bin_size, (k + 1) * bin_size, sums_K[k] / counts_K[k], counts_K[k])
        for k in range(n_bins)
        if counts_K[k] > 0
    ]
