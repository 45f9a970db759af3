"""Intervals over training seeds and questions: coverage on synthetic studies with known seed variance."""

import numpy as np
import pytest

from prefix_opd.intervals import interval, macro_seed_question, seed_question_ci, t_quantile


def _two_level(rng, mu, q_effect, seeds, sigma_seed, k=16):
    """Per-question accuracy of `seeds` runs: a seed effect on every question, binomial sampling of k answers."""
    p = np.clip(mu + q_effect[None, :] + sigma_seed * rng.standard_normal((seeds, 1)), 0.0, 1.0)
    return rng.binomial(k, p) / k


def _percentile_hierarchical(a, b, rng, n_boot=500):
    s, q = a.shape
    sa, sb, qi = rng.integers(0, s, (n_boot, s)), rng.integers(0, s, (n_boot, s)), rng.integers(0, q, (n_boot, q))
    ma = np.take_along_axis(a[sa], qi[:, None, :], 2).mean(axis=(1, 2))
    mb = np.take_along_axis(b[sb], qi[:, None, :], 2).mean(axis=(1, 2))
    return np.quantile(ma - mb, [0.025, 0.975])


@pytest.mark.parametrize("sigma_seed", [0.04, 0.10])
def test_seed_question_interval_covers_the_true_difference_95_percent_of_the_time(sigma_seed):
    """Synthetic study with known seed variance: 3 seeds per arm, 40 fresh questions per replication; the true
    difference of the arms' population means is 0.05. A 95% interval must cover it 90-99% of the time (a
    percentile bootstrap over seeds then questions, measured alongside, falls short when seeds vary)."""
    rng = np.random.default_rng(0)
    reps, hits, boot_hits = 300, 0, 0
    for _ in range(reps):
        q_effect = 0.15 * rng.standard_normal(40)
        a = _two_level(rng, 0.50, q_effect, 3, sigma_seed)
        b = _two_level(rng, 0.45, q_effect, 3, sigma_seed)
        est, lo, hi = seed_question_ci(a, b)
        assert lo <= est <= hi
        hits += lo <= 0.05 <= hi
        blo, bhi = _percentile_hierarchical(a, b, rng)
        boot_hits += blo <= 0.05 <= bhi
    print(f"sigma_seed {sigma_seed}: interval {hits / reps:.3f}, percentile bootstrap {boot_hits / reps:.3f}")
    assert 0.90 <= hits / reps <= 0.99, hits / reps
    if sigma_seed >= 0.10:
        assert boot_hits / reps < 0.90 < hits / reps, (boot_hits / reps, hits / reps)


def test_seed_question_interval_widens_with_seed_spread_and_reduces_to_questions_for_one_seed():
    rng = np.random.default_rng(1)
    q_effect = 0.2 * rng.standard_normal(50)
    tight = _two_level(rng, 0.5, q_effect, 3, 0.0), _two_level(rng, 0.4, q_effect, 3, 0.0)
    loose = _two_level(rng, 0.5, q_effect, 3, 0.15), _two_level(rng, 0.4, q_effect, 3, 0.15)
    width = [hi - lo for _, lo, hi in (seed_question_ci(*tight), seed_question_ci(*loose))]
    assert width[1] > 2 * width[0]
    one = _two_level(rng, 0.5, q_effect, 1, 0.0)
    est, lo, hi = seed_question_ci(one)
    half = 1.959964 * one[0].std(ddof=1) / np.sqrt(50)
    assert est == pytest.approx(one.mean()) and (hi - lo) / 2 == pytest.approx(half, rel=1e-4)
    with pytest.raises(ValueError):
        seed_question_ci(one, one[:, :10])


@pytest.mark.parametrize("df, expected", [(1, 12.7062), (4, 2.7764), (30, 2.0423), (1e7, 1.9600)])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_macro_interval_is_paired_and_weighs_each_benchmark_the_same():
    rng = np.random.default_rng(2)
    a = [rng.binomial(4, 0.5, (1, 30)) / 4, rng.binomial(4, 0.5, (1, 90)) / 4]
    est, se, df = macro_seed_question(a, a)
    assert est == 0.0 and se == 0.0  # paired: identical evaluations differ by exactly nothing
    est, se, _ = macro_seed_question([np.ones((1, 10))], [np.zeros((1, 10))])
    assert est == 1.0 and se == 0.0
    est, _, _ = macro_seed_question([np.ones((2, 10)), np.zeros((2, 30))])
    assert est == 0.5  # macro: each benchmark weighs the same, whatever its size
    one = [rng.binomial(4, 0.5, (1, 30)) / 4, rng.binomial(4, 0.5, (1, 90)) / 4]
    est, se, df = macro_seed_question(one)
    expected = np.sqrt(one[0].var(ddof=1) / 30 + one[1].var(ddof=1) / 90) / 2
    assert se == pytest.approx(expected) and df == np.inf
    lo, hi = interval(est, se, df)
    assert (hi - lo) / 2 == pytest.approx(1.959964 * se, rel=1e-4)
