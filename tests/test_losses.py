"""Tests for prefix_opd.losses by exact enumeration and independent closed forms.

The OPD gradient identities are checked on explicit tabular autoregressive policies: every sequence
``y`` in ``V^T`` is enumerated, so expectations are exact sums (no sampling noise) and are compared with
separately written closed forms (sequence-level reverse KL; per-state KL under a frozen state
distribution), never with the loss itself.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from prefix_opd.losses import (
    chunked_full_vocab_kl,
    chunked_token_logprobs,
    discounted_advantages,
    opd_loss,
    position_binned_kl,
    sft_loss,
    tail_mask,
    window_mask,
)

DT = torch.float64
VOCAB = 3


# ----------------------------------------------------------------------------------------------
# tabular autoregressive policies
# ----------------------------------------------------------------------------------------------


def all_prefixes(length: int) -> list[tuple[int, ...]]:
    """Every prefix of length 0..length-1 over the vocabulary (the states of the toy MDP)."""
    return [p for n in range(length) for p in itertools.product(range(VOCAB), repeat=n)]


class TabularPolicy:
    """pi(. | prefix) = softmax(logits[index(prefix)]); one row of logits per prefix."""

    def __init__(self, length: int, logits_SV: torch.Tensor):
        self.prefixes = all_prefixes(length)
        self.index = {p: i for i, p in enumerate(self.prefixes)}
        self.logits_SV = logits_SV

    def logp_next(self, prefix: tuple[int, ...]) -> torch.Tensor:
        return torch.log_softmax(self.logits_SV[self.index[prefix]], dim=-1)

    def token_logps(self, y: tuple[int, ...]) -> torch.Tensor:
        """[log pi(y_t | y_<t) for t] as a (1, T) tensor."""
        return torch.stack([self.logp_next(y[:t])[y[t]] for t in range(len(y))])[None]


def make_pair(length: int, seed: int) -> tuple[TabularPolicy, TabularPolicy, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n_states = len(all_prefixes(length))
    theta = torch.randn(n_states, VOCAB, generator=g, dtype=DT).requires_grad_(True)
    teacher_logits = 1.5 * torch.randn(n_states, VOCAB, generator=g, dtype=DT)
    return TabularPolicy(length, theta), TabularPolicy(length, teacher_logits), theta


def expected_opd_gradient(student: TabularPolicy, teacher: TabularPolicy, theta, length, gamma):
    """E_{y ~ p_s}[grad opd_loss(y)] = sum_y p_s(y) grad loss(y), with sampler == trainer."""
    total = torch.zeros((), dtype=DT)
    for y in itertools.product(range(VOCAB), repeat=length):
        logp_new = student.token_logps(y)
        prob_y = logp_new.sum().exp().detach()
        loss, _ = opd_loss(
            logp_new,
            logp_new.detach(),
            teacher.token_logps(y).detach(),
            torch.ones(1, length),
            gamma=gamma,
            normalizer=1.0,
        )
        total = total + prob_y * loss
    (grad,) = torch.autograd.grad(total, theta)
    return grad


def sequence_reverse_kl_gradient(student: TabularPolicy, teacher: TabularPolicy, theta, length):
    """grad_theta KL(p_s || p_T) with KL = sum_y p_s(y) (log p_s(y) - log p_T(y)), p over whole y."""
    kl = torch.zeros((), dtype=DT)
    for y in itertools.product(range(VOCAB), repeat=length):
        log_ps = sum(
            torch.log_softmax(student.logits_SV[student.index[y[:t]]], -1)[y[t]] for t in range(length)
        )
        log_pt = sum(
            torch.log_softmax(teacher.logits_SV[teacher.index[y[:t]]], -1)[y[t]] for t in range(length)
        )
        kl = kl + log_ps.exp() * (log_ps - log_pt)
    (grad,) = torch.autograd.grad(kl, theta)
    return grad


def per_state_kl_gradient(student: TabularPolicy, teacher: TabularPolicy, theta, length):
    """grad_theta sum_s d(s) KL(pi_s(.|s) || pi_T(.|s)) with the visit probability d(s) held fixed.

    d(s) = prod_{t<|s|} pi_s(s_t | s_<t) is the probability that a student rollout reaches prefix s.
    """
    q_SV = torch.softmax(theta, dim=-1)
    p_SV = torch.softmax(teacher.logits_SV, dim=-1)
    total = torch.zeros((), dtype=DT)
    for prefix in all_prefixes(length):
        reach = torch.ones((), dtype=DT)
        for t in range(len(prefix)):
            reach = reach * q_SV[student.index[prefix[:t]], prefix[t]]
        q_V, p_V = q_SV[student.index[prefix]], p_SV[teacher.index[prefix]]
        total = total + reach.detach() * (q_V * (q_V.log() - p_V.log())).sum()
    (grad,) = torch.autograd.grad(total, theta)
    return grad


@pytest.mark.parametrize("length", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_gamma1_expected_gradient_is_sequence_reverse_kl_gradient(length, seed):
    student, teacher, theta = make_pair(length, seed)
    got = expected_opd_gradient(student, teacher, theta, length, gamma=1.0)
    want = sequence_reverse_kl_gradient(student, teacher, theta, length)
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("length", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_gamma0_expected_gradient_is_per_state_kl_gradient(length, seed):
    student, teacher, theta = make_pair(length, seed)
    got = expected_opd_gradient(student, teacher, theta, length, gamma=0.0)
    want = per_state_kl_gradient(student, teacher, theta, length)
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    seq = sequence_reverse_kl_gradient(student, teacher, theta, length)
    if length == 1:
        torch.testing.assert_close(got, seq, rtol=1e-10, atol=1e-12)
    else:
        assert not torch.allclose(got, seq, rtol=1e-3, atol=1e-4)


def test_ratio_is_one_and_loss_value_when_sampler_matches():
    g = torch.Generator().manual_seed(3)
    logp_new = (-torch.rand(2, 4, generator=g, dtype=DT) * 3).requires_grad_(True)
    logp_teacher = -torch.rand(2, 4, generator=g, dtype=DT) * 3
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=DT)
    loss, stats = opd_loss(logp_new, logp_new.detach(), logp_teacher, mask, gamma=0.0, normalizer=4.0)
    kl = ((logp_new.detach() - logp_teacher) * mask).sum()
    assert stats["ratio_mean"].item() == 1.0
    assert stats["n_tokens"].item() == 5
    torch.testing.assert_close(stats["kl_sum"], kl)
    # ratio == 1 and A = -(logp_samp - logp_teacher): loss = sum m (logp_samp - logp_teacher) / normalizer
    torch.testing.assert_close(loss.detach(), kl / 4.0)
    # gradient: d loss / d logp_new_t = -m_t A_t / normalizer = m_t (logp_t - logp_teacher_t) / 4
    loss.backward()
    torch.testing.assert_close(logp_new.grad, mask * (logp_new.detach() - logp_teacher) / 4.0)


def test_ratio_off_policy_values():
    logp_new = torch.tensor([[-1.0, -2.0]], dtype=DT)
    logp_samp = torch.tensor([[-1.5, -2.0]], dtype=DT)
    logp_teacher = torch.tensor([[-1.0, -0.5]], dtype=DT)
    loss, stats = opd_loss(logp_new, logp_samp, logp_teacher, torch.ones(1, 2), gamma=0.0, normalizer=1.0)
    # a = [0.5, 1.5]; ratio = [e^0.5, 1]
    torch.testing.assert_close(loss, torch.tensor(-(math.exp(0.5) * 0.5 + 1.5), dtype=DT))
    torch.testing.assert_close(stats["ratio_mean"], torch.tensor((math.exp(0.5) + 1) / 2, dtype=DT))


def test_masked_positions_ignore_nonfinite_inputs():
    logp_new = torch.tensor([[-1.0, float("nan")]], dtype=DT, requires_grad=True)
    logp_teacher = torch.tensor([[-2.0, -float("inf")]], dtype=DT)
    mask = torch.tensor([[1, 0]])
    loss, stats = opd_loss(logp_new, logp_new.detach(), logp_teacher, mask, gamma=1.0, normalizer=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp_new.grad).all()
    assert stats["kl_sum"].item() == 1.0


def test_opd_micro_batch_invariance():
    g = torch.Generator().manual_seed(5)
    base = torch.randn(4, 6, generator=g, dtype=DT)
    logp_samp = -torch.rand(4, 6, generator=g, dtype=DT) * 2
    logp_teacher = -torch.rand(4, 6, generator=g, dtype=DT) * 2
    mask = (torch.rand(4, 6, generator=g) > 0.3).to(DT)

    def grads(splits):
        w = torch.zeros(4, 6, dtype=DT, requires_grad=True)
        logp_new = logp_samp + 0.1 * base * (1 + w)
        total = 0.0
        for rows in splits:
            loss, _ = opd_loss(logp_new[rows], logp_samp[rows], logp_teacher[rows], mask[rows], 0.7, 8.0)
            total = total + loss
        (grad,) = torch.autograd.grad(total, w)
        return total.detach(), grad

    loss_whole, grad_whole = grads([slice(0, 4)])
    loss_split, grad_split = grads([slice(0, 2), slice(2, 4)])
    torch.testing.assert_close(loss_split, loss_whole)
    torch.testing.assert_close(grad_split, grad_whole)
    assert grad_whole.abs().max() > 0


def test_sft_loss():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -4.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert sft_loss(logp, mask, 2.0).item() == pytest.approx((1 + 2 + 0.5) / 2)


# ----------------------------------------------------------------------------------------------
# advantages
# ----------------------------------------------------------------------------------------------


def test_discounted_advantages_hand_values():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    ones = torch.ones(2, 3)
    torch.testing.assert_close(
        discounted_advantages(x, ones, 0.5), torch.tensor([[2.75, 3.5, 3.0], [8.0, 8.0, 6.0]])
    )
    torch.testing.assert_close(
        discounted_advantages(x, ones, 1.0), torch.tensor([[6.0, 5.0, 3.0], [15.0, 11.0, 6.0]])
    )
    torch.testing.assert_close(discounted_advantages(x, ones, 0.0), x)
    mask = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    # row 0: A0 = 1 + 0.5^2 * 3 = 1.75, A1 masked, A2 = 3; row 1: A0 = 4 + 0.5 * 5 = 6.5, A1 = 5
    torch.testing.assert_close(
        discounted_advantages(x, mask, 0.5), torch.tensor([[1.75, 0.0, 3.0], [6.5, 5.0, 0.0]])
    )
    torch.testing.assert_close(discounted_advantages(x, mask, 0.0), x * mask)
    torch.testing.assert_close(
        discounted_advantages(x, mask, 1.0), torch.tensor([[4.0, 0.0, 3.0], [9.0, 5.0, 0.0]])
    )


# ----------------------------------------------------------------------------------------------
# masks
# ----------------------------------------------------------------------------------------------

RESP = torch.tensor(
    [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)


def test_window_mask():
    want = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    assert torch.equal(window_mask(RESP, 1, 4), want)
    assert torch.equal(window_mask(RESP, 0, 6), RESP)
    assert torch.equal(window_mask(RESP, 3, 3), torch.zeros_like(RESP))
    assert torch.equal(window_mask(RESP.bool(), 1, 4), want.bool())


def test_tail_mask():
    want2 = torch.tensor([[0, 0, 0, 0, 1, 1], [0, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    assert torch.equal(tail_mask(RESP, 2), want2)
    want4 = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    assert torch.equal(tail_mask(RESP, 4), want4)
    assert torch.equal(tail_mask(RESP, 0), torch.zeros_like(RESP))


def test_position_binned_kl():
    kl = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 20.0, 30.0, 40.0, 50.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0]])
    rows = position_binned_kl(kl, mask, 2)
    assert rows == [(0, 2, pytest.approx(13 / 3), 3), (2, 4, pytest.approx(3.5), 2)]


# ----------------------------------------------------------------------------------------------
# chunked full-vocabulary computations
# ----------------------------------------------------------------------------------------------


def _inputs(seed, b=2, t=5, h=4, v=11, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, h, generator=g, dtype=dtype).requires_grad_(True)
    weight = torch.randn(v, h, generator=g, dtype=dtype).requires_grad_(True)
    targets = torch.randint(0, v, (b, t), generator=g)
    upstream = torch.randn(b, t, generator=g, dtype=dtype)
    return hidden, weight, targets, upstream


@pytest.mark.parametrize("chunk", [1, 3, 4, 7, 10, 1024])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_token_logprobs_matches_full(chunk, temperature):
    hidden, weight, targets, upstream = _inputs(0)
    got = chunked_token_logprobs(hidden, weight, targets, chunk_tokens=chunk, temperature=temperature)
    g_h, g_w = torch.autograd.grad((got * upstream).sum(), (hidden, weight))
    ref = torch.log_softmax(hidden @ weight.T / temperature, -1).gather(-1, targets[..., None]).squeeze(-1)
    r_h, r_w = torch.autograd.grad((ref * upstream).sum(), (hidden, weight))
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(g_h, r_h)
    torch.testing.assert_close(g_w, r_w)


def test_chunked_token_logprobs_gradcheck():
    hidden, weight, targets, _ = _inputs(1, b=1, t=3, h=2, v=5)
    assert torch.autograd.gradcheck(
        lambda h, w: chunked_token_logprobs(h, w, targets, chunk_tokens=2), (hidden, weight)
    )


def test_chunked_token_logprobs_bf16_returns_float32():
    hidden, weight, targets, _ = _inputs(2, dtype=torch.bfloat16)
    got = chunked_token_logprobs(hidden, weight, targets, chunk_tokens=3)
    assert got.dtype == torch.float32
    ref = torch.log_softmax((hidden @ weight.T).float(), -1).gather(-1, targets[..., None]).squeeze(-1)
    torch.testing.assert_close(got, ref)
    got.sum().backward()
    assert hidden.grad.dtype == torch.bfloat16 and weight.grad.dtype == torch.bfloat16


def test_chunked_token_logprobs_saves_no_full_logits():
    hidden, weight, targets, _ = _inputs(3, b=4, t=8, h=4, v=50)
    biggest = []

    def pack(x):
        biggest.append(x.numel())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = chunked_token_logprobs(hidden, weight, targets, chunk_tokens=4)
    out.sum().backward()
    assert max(biggest) < 4 * 8 * 50 / 4  # nothing of the size of [N, V] is kept for backward


def _full_kl(s_hidden, s_weight, t_hidden, t_weight, beta):
    log_q = torch.log_softmax(s_hidden @ s_weight.T, -1)
    log_p = torch.log_softmax(t_hidden @ t_weight.T, -1)
    if beta == 0:
        return (log_p.exp() * (log_p - log_q)).sum(-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1)


@pytest.mark.parametrize("beta", [0, 1])
@pytest.mark.parametrize("chunk", [1, 3, 1024])
def test_chunked_full_vocab_kl_matches_full(beta, chunk):
    s_hidden, s_weight, _, _ = _inputs(10, h=4)
    t_hidden, t_weight, _, _ = _inputs(11, h=6)
    mask = torch.tensor([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1]])
    loss, kl = chunked_full_vocab_kl(
        s_hidden, s_weight, t_hidden, t_weight, mask, beta, 3.0, chunk_tokens=chunk
    )
    g_h, g_w = torch.autograd.grad(loss, (s_hidden, s_weight))
    ref_kl = _full_kl(s_hidden, s_weight, t_hidden.detach(), t_weight.detach(), beta) * mask
    ref_loss = ref_kl.sum() / 3.0
    r_h, r_w = torch.autograd.grad(ref_loss, (s_hidden, s_weight))
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(kl, ref_kl.detach())
    assert not kl.requires_grad and (kl >= 0).all()
    torch.testing.assert_close(g_h, r_h)
    torch.testing.assert_close(g_w, r_w)
    loss2, _ = chunked_full_vocab_kl(
        s_hidden, s_weight, t_hidden, t_weight, mask, beta, 3.0, chunk_tokens=chunk
    )
    loss2.backward()
    assert t_hidden.grad is None and t_weight.grad is None


def test_chunked_full_vocab_kl_identical_policies_and_bad_beta():
    hidden, weight, _, _ = _inputs(12)
    mask = torch.ones(2, 5)
    for beta in (0, 1):
        loss, kl = chunked_full_vocab_kl(hidden, weight, hidden, weight, mask, beta, 1.0, chunk_tokens=4)
        assert kl.abs().max() < 1e-12
    with pytest.raises(ValueError):
        chunked_full_vocab_kl(hidden, weight, hidden, weight, mask, 0.5, 1.0)


def test_chunked_full_vocab_kl_gradcheck():
    s_hidden, s_weight, _, _ = _inputs(13, b=1, t=3, h=2, v=5)
    t_hidden, t_weight, _, _ = _inputs(14, b=1, t=3, h=3, v=5)
    mask = torch.tensor([[1, 0, 1]])
    for beta in (0, 1):
        assert torch.autograd.gradcheck(
            lambda h, w, beta=beta: chunked_full_vocab_kl(h, w, t_hidden, t_weight, mask, beta, 2.0, 1)[0],
            (s_hidden, s_weight),
        )
