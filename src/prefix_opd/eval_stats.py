"""Evaluation statistics: mean@k, pass@k, spread over sample sets and bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate from ``n`` samples of which ``c`` are correct (Chen et al., 2021).

    ``1 - C(n-c, k) / C(n, k)``, computed as a stable product.
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def summarize(
    correct: np.ndarray, lengths: np.ndarray, truncated: np.ndarray, has_answer: np.ndarray
) -> dict[str, Any]:
    """Summary of an evaluation of Q questions with k samples each; every array has shape (Q, k).

    Keys: ``mean_at_k`` (mean accuracy over all samples, in [0, 1]); ``std_over_samples`` (population std,
    ddof=0, of the k sample-set accuracies, sample set j scoring ``correct[:, j].mean()``); ``pass_at_k``
    (mean over questions of pass@k with n = k); ``k``; ``n_questions``; ``mean_length`` (response tokens);
    ``truncation_rate``; ``answer_rate``.
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or correct.size == 0:
        raise ValueError(f"correct must be a non-empty (Q, k) array, got shape {correct.shape}")
    arrays = {"lengths": lengths, "truncated": truncated, "has_answer": has_answer}
    for name, arr in arrays.items():
        if np.shape(arr) != correct.shape:
            raise ValueError(f"{name} has shape {np.shape(arr)}, expected {correct.shape}")
    n_q, k = correct.shape
    per_question_c = correct.sum(axis=1)
    return {
        "mean_at_k": float(correct.mean()),
        "std_over_samples": float(np.std(correct.mean(axis=0), ddof=0)),
        "pass_at_k": float(np.mean([pass_at_k(k, int(c), k) for c in per_question_c])),
        "k": int(k),
        "n_questions": int(n_q),
        "mean_length": float(np.mean(np.asarray(lengths, dtype=float))),
        "truncation_rate": float(np.mean(np.asarray(truncated, dtype=bool))),
        "answer_rate": float(np.mean(np.asarray(has_answer, dtype=bool))),
    }


def _interval(stats: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval ``[alpha/2, 1 - alpha/2]`` of bootstrap statistics."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    values_per_question: np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` resampling questions (rows of ``values_per_question``).

    ``values_per_question`` is (Q,) (e.g. per-question mean accuracy) or (Q, k); rows are resampled with
    replacement and ``stat`` is applied to each resampled array.
    """
    values = np.asarray(values_per_question, dtype=float)
    n = values.shape[0] if values.ndim else 0
    if n == 0:
        raise ValueError("bootstrap_ci needs at least one question")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    stats = np.array([stat(values[row]) for row in idx], dtype=float)
    return _interval(stats, alpha)


def bootstrap_diff_ci(
    a_per_question: np.ndarray,
    b_per_question: np.ndarray,
    paired: bool,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(a) - mean(b)``.

    ``paired=True`` (the same questions, in the same order, e.g. two checkpoints on one benchmark)
    resamples question indices jointly; otherwise a and b are resampled independently.
    """
    a = np.asarray(a_per_question, dtype=float)
    b = np.asarray(b_per_question, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or a.size == 0 or b.size == 0:
        raise ValueError("a and b must be non-empty 1-D arrays")
    rng = np.random.default_rng(seed)
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired bootstrap needs equal lengths, got {a.size} and {b.size}")
        idx = rng.integers(0, a.size, size=(n_boot, a.size))
        stats = (a - b)[idx].mean(axis=1)
    else:
        ia = rng.integers(0, a.size, size=(n_boot, a.size))
        ib = rng.integers(0, b.size, size=(n_boot, b.size))
        stats = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    return _interval(stats, alpha)
