"""Intervals over training seeds and questions: the uncertainty of a comparison between trained runs.

A run's accuracy varies with its training seed (sampling, data order) and with the questions it is scored
on; an interval that resamples questions alone misses the first, the largest source of spread at toy scale.
"""

from __future__ import annotations

import math

import numpy as np


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom.

    The density is integrated by Simpson's rule and the CDF inverted by bisection (no scipy in the
    main environment); accurate to ~1e-6 for the tails used here."""
    if not 0.5 <= p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0.5 <= p < 1 and df > 0, got p={p}, df={df}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float, n: int = 2000) -> float:
        xs = np.linspace(0.0, x, n + 1)
        ys = np.exp(log_c - (df + 1) / 2 * np.log1p(xs * xs / df))
        return 0.5 + (x / n / 3) * (ys[0] + ys[-1] + 4 * ys[1:-1:2].sum() + 2 * ys[2:-1:2].sum())

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def seed_question_ci(a_SQ: np.ndarray, b_SQ: np.ndarray | None = None, alpha: float = 0.05
                     ) -> tuple[float, float, float]:
    """Estimate and ``1 - alpha`` interval of ``mean(a) - mean(b)`` (or of ``mean(a)``) over training seeds and
    questions, every source of variance included.

    ``a_SQ`` / ``b_SQ`` hold per-question scores of each seed's run (rows: seeds, columns: questions); both
    arms are scored on the same questions in the same order (paired on questions; seeds are independent
    runs). The variance is that of a two-level design: seeds, then questions,

        Var = s2_seed(a) / S_a + s2_seed(b) / S_b + s2_question(d) / Q,

    with ``s2_seed`` the between-seed variance of each arm's per-seed means and ``s2_question`` that of the
    per-question paired difference of seed-averaged scores; the interval is ``d +- t * sqrt(Var)`` with
    Welch-Satterthwaite degrees of freedom (few seeds: a percentile bootstrap over 3 seeds covers only
    ~85% of the time, this interval ~95%; ``tests/test_intervals.py`` measures both). With one seed per arm
    the seed term cannot be estimated and the interval is the question-level one (normal quantile).
    """
    a = np.atleast_2d(np.asarray(a_SQ, dtype=float))
    b = None if b_SQ is None else np.atleast_2d(np.asarray(b_SQ, dtype=float))
    if a.size == 0 or (b is not None and (b.size == 0 or b.shape[1] != a.shape[1])):
        raise ValueError(f"seed_question_ci needs non-empty arms over the same questions, got {a.shape} and "
                         f"{None if b is None else b.shape}")
    arms = [a] if b is None else [a, b]
    d_Q = a.mean(axis=0) - (0.0 if b is None else b.mean(axis=0))
    est = float(d_Q.mean())
    q = d_Q.size
    v_question = float(d_Q.var(ddof=1)) / q if q > 1 else 0.0
    seed_terms = [(float(x.mean(axis=1).var(ddof=1)) / x.shape[0], x.shape[0] - 1) for x in arms if x.shape[0] > 1]
    v_seed = sum(v for v, _ in seed_terms)
    var = v_seed + v_question
    if var == 0.0:
        return est, est, est
    df = 1e7  # no seed spread to estimate: the normal quantile
    if len(seed_terms) == len(arms) and v_seed > 0:
        df = var ** 2 / (sum(v ** 2 / dof for v, dof in seed_terms) + v_question ** 2 / max(1, q - 1))
    half = t_quantile(1 - alpha / 2, df) * math.sqrt(var)
    return est, est - half, est + half
