"""pass@k, summaries and bootstrap CIs against hand-computed values."""

import numpy as np
import pytest

from prefix_opd.eval_stats import pass_at_k, summarize


def test_pass_at_k_hand_values():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 4, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2) = 0.7
    assert pass_at_k(4, 1, 4) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_summarize_hand_built():
    correct = np.array(
        [
            [1, 1, 0, 1],
            [0, 0, 0, 0],
            [1, 0, 0, 0],
        ],
        dtype=bool,
    )
    lengths = np.array([[100, 200, 300, 400], [10, 20, 30, 40], [1, 2, 3, 4]])
    truncated = np.zeros_like(correct)
    truncated[1, 2] = True
    has_answer = np.ones_like(correct)
    has_answer[1, :2] = False
    s = summarize(correct, lengths, truncated, has_answer)
    assert s["mean_at_k"] == pytest.approx(4 / 12)
    # sample-set accuracies: [2/3, 1/3, 0, 1/3], mean 1/3, squared deviations 1/9, 0, 1/9, 0 -> var 1/18
    assert s["std_over_samples"] == pytest.approx((1 / 18) ** 0.5)
    assert s["pass_at_k"] == pytest.approx(2 / 3)  # questions 0 and 2 solved at least once
    assert s["k"] == 4 and s["n_questions"] == 3
    assert s["mean_length"] == pytest.approx(1110 / 12)
    assert s["truncation_rate"] == pytest.approx(1 / 12)
    assert s["answer_rate"] == pytest.approx(10 / 12)


def test_summarize_shape_mismatch():
    c = np.zeros((2, 3), dtype=bool)
    with pytest.raises(ValueError):
        summarize(c, np.zeros((2, 2)), c, c)
