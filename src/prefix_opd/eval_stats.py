"""Evaluation statistics: mean@k, pass@k and spread over sample sets (intervals for comparisons: intervals.py)."""

from __future__ import annotations

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
