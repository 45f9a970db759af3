"""Answer extraction and grading on realistic responses."""

import threading

import pytest

from prefix_opd.grading import (
    Grade,
    extract_boxed_all,
    extract_choice,
    grade_response,
    split_thinking,
)

THINK = "<think>\nLet me compute. Maybe \\boxed{7}? No, 25/8 = 3.125. Option A looks wrong.\n</think>\n"


def test_split_thinking_uses_last_close_tag():
    assert split_thinking("<think>a</think>b</think>c") == "c"
    assert split_thinking("<think>no end") is None
    assert split_thinking("</think>") == ""


def test_extract_boxed_nested_and_fbox():
    assert extract_boxed_all(r"so \boxed{\frac{25}{8}}.") == [r"\frac{25}{8}"]
    assert extract_boxed_all(r"\boxed{\sqrt{\frac{1}{2}}}") == [r"\sqrt{\frac{1}{2}}"]
    assert extract_boxed_all(r"\boxed{1} then \fbox{2} and \boxed {x^{2}}") == ["1", "2", "x^{2}"]
    assert extract_boxed_all(r"\boxed{\{1, 2\}}") == [r"\{1, 2\}"]
    assert extract_boxed_all(r"cut off \boxed{\frac{1}{2") == []
    assert extract_boxed_all("no box") == []


def test_math_fraction_vs_decimal_both_directions():
    resp = THINK + "The answer is \\boxed{\\frac{25}{8}}"
    g = grade_response(resp, "3.125", "math")
    assert g == Grade(extracted=r"\frac{25}{8}", correct=True, has_answer=True)
    g2 = grade_response(THINK + "So the result is \\boxed{3.125}.", r"\frac{25}{8}", "math")
    assert g2.correct and g2.extracted == "3.125"


def test_math_nested_braces_and_equivalent_forms():
    resp = THINK + r"Hence $\boxed{\sqrt{\frac{1}{2}}}$"
    assert grade_response(resp, r"\frac{\sqrt{2}}{2}", "math").correct
    assert not grade_response(resp, r"\frac{1}{2}", "math").correct


def test_math_several_boxes_are_read_together_and_thinking_box_ignored():
    """As math-verify reads them: an answer split over boxes is one answer; a corrected guess is neither."""
    resp = THINK + r"The pairs are $\boxed{(2, 2)}$ and $\boxed{(6, 2)}$."
    assert grade_response(resp, "(2, 2), (6, 2)", "math").correct
    assert not grade_response(resp, "(2, 2), (6, 3)", "math").correct
    assert grade_response(THINK + r"$\boxed{2}, \boxed{3}, \boxed{5}$", "2, 3, 5", "math").correct
    resp = THINK + r"First guess \boxed{3}, but correcting: \boxed{42}"
    assert not grade_response(resp, "42", "math").correct and not grade_response(resp, "3", "math").correct
    # the \boxed{7} in the thinking part is not an answer
    g = grade_response(THINK + "I am not sure.", "7", "math")
    assert g == Grade(extracted=None, correct=False, has_answer=False)


@pytest.mark.parametrize("text, gold, correct", [
    ("So the answer is 667.", "667", True),
    (r"Therefore the probability is $\frac{1}{2}$.", r"\frac{1}{2}", True),
    ("We get $x = 5$.", "5", True),
    ("So the answer is 8.", "7", False),
    (r"Hence $\frac{3}{4}$.", "0.75", True),
])
def test_math_unboxed_final_answer_is_read_by_math_verify(text, gold, correct):
    g = grade_response(THINK + text, gold, "math")
    assert g.has_answer and g.correct is correct
    assert not grade_response(THINK + text, gold, "math", truncated=True).correct


def test_math_wrong_answer():
    g = grade_response(THINK + r"\boxed{17}", "42", "math")
    assert g == Grade(extracted="17", correct=False, has_answer=True)


def test_no_think_end_is_wrong_without_answer():
    g = grade_response(r"<think>I think it is \boxed{42}", "42", "math")
    assert g == Grade(extracted=None, correct=False, has_answer=False)
    g = grade_response(r"Answer: C", "C", "multiple_choice", n_options=4)
    assert g == Grade(extracted=None, correct=False, has_answer=False)


def test_truncated_is_wrong():
    g = grade_response(THINK + r"\boxed{42}", "42", "math", truncated=True)
    assert not g.correct and g.extracted == "42"
    g = grade_response(THINK + "Answer: C", "C", "multiple_choice", n_options=4, truncated=True)
    assert not g.correct


def test_unknown_kind():
    with pytest.raises(
        ValueError, match=r"Unknown answer kind 'x'; choose from \['math', 'multiple_choice'\]"
    ):
        grade_response(THINK + "42", "42", "x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The element is carbon.\nAnswer: C", "C"),
        ("Therefore the answer is \\boxed{B}.", "B"),
        ("**Answer:** (D)", "D"),
        ("**Answer**: A", "A"),
        ("final answer: $B$", "B"),
        ("ANSWER: (c)", None),  # lower-case letter is not an option label
        ("Thus \\boxed{\\text{(C)}}", "C"),
        ("A good start is option B, since A fails.", None),
        ("Answer: Carbon dioxide", None),
        ("", None),
    ],
)
def test_extract_choice_patterns(text, expected):
    assert extract_choice(text, 4) == expected


def test_extract_choice_range_and_order():
    assert extract_choice("Answer: E", 4) is None
    assert extract_choice("Answer: E", 5) == "E"
    assert extract_choice("Answer: J", 10) == "J"
    # whichever pattern occurs later wins
    assert extract_choice("\\boxed{A}\nOn reflection, Answer: C", 4) == "C"
    assert extract_choice("Answer: C\nWait, actually it is \\boxed{B}", 4) == "B"
    with pytest.raises(ValueError):
        extract_choice("Answer: A", 0)


def test_grade_multiple_choice():
    resp = THINK + "Option A is tempting, but the mass balance gives B.\n\n**Answer:** (B)"
    assert grade_response(resp, "B", "multiple_choice", n_options=4) == Grade("B", True, True)
    assert not grade_response(resp, "A", "multiple_choice", n_options=4).correct
    prose = THINK + "A good start is option B."
    assert grade_response(prose, "B", "multiple_choice", n_options=4) == Grade(None, False, False)


def test_grading_works_outside_main_thread():
    out = {}

    def work():
        out["g"] = grade_response(THINK + r"\boxed{0.5}", r"\frac{1}{2}", "math")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out["g"].correct
