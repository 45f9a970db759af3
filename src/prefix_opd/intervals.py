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


def macro_seed_question(a: list[np.ndarray], b: list[np.ndarray] | None = None) -> tuple[float, float, float]:
    """Estimate, standard error and degrees of freedom of ``macro(a) - macro(b)`` (or of ``macro(a)``): the mean
    over strata (benchmarks) of each stratum's mean over training seeds and questions, every source of
    variance included.

    ``a[k]`` / ``b[k]`` hold per-question scores of stratum ``k`` for each seed's run (rows: seeds, columns:
    questions); both arms are scored on the same questions in the same order (paired on questions; seeds are
    independent runs, and every stratum of one seed comes from the same run). The variance is that of a
    two-level design, seeds then questions, with K strata:

        Var = s2_seed(a) / S_a + s2_seed(b) / S_b + sum_k s2_question_k(d) / (K^2 Q_k),

    ``s2_seed`` the between-seed variance of each arm's per-seed macro means, ``s2_question_k`` that of the
    per-question paired difference of seed-averaged scores in stratum k. Degrees of freedom: Welch-Satterthwaite
    (few seeds: a percentile bootstrap over 3 seeds covers only ~85% of the time, ``d +- t * se`` ~95%;
    ``tests/test_intervals.py`` measures both). With one seed per arm the seed term cannot be estimated: the
    question-level error with a normal quantile (df = inf)."""
    a = [np.atleast_2d(np.asarray(x, dtype=float)) for x in a]
    b = None if b is None else [np.atleast_2d(np.asarray(x, dtype=float)) for x in b]
    if not a or any(x.size == 0 for x in a) or (b is not None and (
            len(b) != len(a) or any(y.size == 0 or y.shape[1] != x.shape[1] for x, y in zip(a, b, strict=True)))):
        raise ValueError("macro_seed_question needs non-empty arms over the same questions, got "
                         f"{[x.shape for x in a]} and {None if b is None else [y.shape for y in b]}")
    k = len(a)
    arms = [a] if b is None else [a, b]
    d_Q = [x.mean(axis=0) - (0.0 if b is None else b[i].mean(axis=0)) for i, x in enumerate(a)]
    est = float(np.mean([d.mean() for d in d_Q]))
    q_terms = [(float(d.var(ddof=1)) / (k * k * d.size), d.size - 1) for d in d_Q if d.size > 1]
    v_question = sum(v for v, _ in q_terms)
    seed_terms = []
    for arm in arms:
        means = np.mean([x.mean(axis=1) for x in arm], axis=0)  # per-seed macro means
        if means.size > 1:
            seed_terms.append((float(means.var(ddof=1)) / means.size, means.size - 1))
    v_seed = sum(v for v, _ in seed_terms)
    var = v_seed + v_question
    if var == 0.0:
        return est, 0.0, math.inf
    df = math.inf
    if len(seed_terms) == len(arms) and v_seed > 0:
        df = var ** 2 / sum(v ** 2 / max(1, dof) for v, dof in seed_terms + q_terms)
    return est, math.sqrt(var), df


def interval(est: float, se: float, df: float, alpha: float = 0.05) -> tuple[float, float]:
    """The two-sided ``1 - alpha`` interval ``est +- t_{1 - alpha/2, df} * se`` (df = inf: the normal quantile)."""
    if not (math.isfinite(est) and math.isfinite(se)):
        return float("nan"), float("nan")
    if se == 0.0:
        return est, est
    half = t_quantile(1 - alpha / 2, min(df, 1e7)) * se
    return est - half, est + half


def seed_question_ci(a_SQ: np.ndarray, b_SQ: np.ndarray | None = None, alpha: float = 0.05
                     ) -> tuple[float, float, float]:
    """Estimate and ``1 - alpha`` interval of ``mean(a) - mean(b)`` (or of ``mean(a)``) over training seeds and
    questions: ``macro_seed_question`` with one stratum (rows of ``a_SQ`` / ``b_SQ``: seeds; columns: questions)."""
    est, se, df = macro_seed_question([a_SQ], None if b_SQ is None else [b_SQ])
    return (est, *interval(est, se, df, alpha))
