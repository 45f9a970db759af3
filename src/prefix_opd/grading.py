"""Answer extraction and grading (docs/design.md section 7).

Rules, as in the paper:

* only the text after the LAST ``</think>`` is graded; a response without ``</think>`` is wrong and has no
  answer, and a truncated response (generation hit the token limit) is wrong;
* math: ``math-verify`` extracts the answer from the whole final text with its own priorities (boxed
  answers first, several boxes together, an unboxed final expression otherwise) and compares it with the gold
  answer, gold FIRST (``verify(gold, pred)``; the function is not symmetric). A final text with exactly one
  box is compared through that box's content (the same extraction, cached by (gold, content): fast);
* multiple choice: the letter from the last ``\\boxed{X}`` or the last ``Answer: X``, whichever comes later.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

ANSWER_KINDS: tuple[str, ...] = ("math", "multiple_choice")
THINK_END = "</think>"
MATH_VERIFY_TIMEOUT_S = 5
"""Per-call math-verify timeout, used only in the main thread (math-verify's timeout is signal-based)."""

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_LETTERS = "ABCDEFGHIJ"
_MD = r"(?:\*\*|\*|__|_)?"
# "Answer: C", "answer: (c)" is not accepted (lower-case letter), "**Answer:** (D)", "**Answer**: D",
# "Final answer: $B$". The letter must not be followed by another letter ("Answer: Carbon" is no answer).
_ANSWER_RE = re.compile(
    r"\b(?i:answer)\s*" + _MD + r"\s*[:：]\s*" + _MD + r"\s*\$?\s*\(?\s*([A-Z])\s*\)?(?![A-Za-z])"
)
_BOXED_CHOICE_RE = re.compile(r"^\(?\s*([A-Z])\s*\)?(?:$|[\s.:)])")
_TEXT_WRAPPER_RE = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|textrm)\s*\{(.*)\}$", re.DOTALL)


def split_thinking(response: str) -> str | None:
    """Return the text after the last ``</think>`` of ``response``, or None when there is none."""
    idx = response.rfind(THINK_END)
    if idx < 0:
        return None
    return response[idx + len(THINK_END) :]


def _matching_brace(text: str, open_idx: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_idx``; escaped braces (``\\{``) are skipped."""
    depth = 0
    i = open_idx
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2  # skip the escaped character (\{, \}, \\)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _boxed_spans(text: str) -> list[tuple[int, str]]:
    """(start index, content) of every complete ``\\boxed{...}`` / ``\\fbox{...}``, in text order.

    A box whose braces never close (a truncated response) is skipped. Boxes nested inside a box are not
    reported separately: the scan resumes after the closing brace.
    """
    spans: list[tuple[int, str]] = []
    pos = 0
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return spans
        open_idx = m.end() - 1
        close_idx = _matching_brace(text, open_idx)
        if close_idx is None:
            pos = m.end()
            continue
        spans.append((m.start(), text[open_idx + 1 : close_idx]))
        pos = close_idx + 1


def extract_boxed_all(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` and ``\\fbox{...}`` in ``text`` with nested-brace matching.

    ``\\boxed{\\frac{25}{8}}`` gives ``\\frac{25}{8}``.
    """
    return [content for _, content in _boxed_spans(text)]


def _choice_from_boxed(content: str) -> str | None:
    """The option letter in a box's content (``B``, ``(B)``, ``\\text{B}``, ``B. 42``), or None."""
    content = content.strip()
    m = _TEXT_WRAPPER_RE.match(content)
    if m is not None:
        content = m.group(1).strip()
    m = _BOXED_CHOICE_RE.match(content)
    return m.group(1) if m is not None else None


def extract_choice(text: str, n_options: int) -> str | None:
    """Multiple-choice letter: from the last ``\\boxed{X}`` or the last ``Answer: X``, whichever is later.

    "Answer" is case-insensitive and may carry markdown (``**Answer:** (C)``); X is an upper-case letter.
    The later of the two patterns decides; if its letter is not among the first ``n_options`` letters
    (A..J) the result is None. A letter in prose outside these patterns is never taken.
    """
    if not 1 <= n_options <= len(_LETTERS):
        raise ValueError(f"n_options must be in 1..{len(_LETTERS)}, got {n_options}")
    candidates: list[tuple[int, str | None]] = []
    boxes = _boxed_spans(text)
    if boxes:
        start, content = boxes[-1]
        candidates.append((start, _choice_from_boxed(content)))
    answers = list(_ANSWER_RE.finditer(text))
    if answers:
        candidates.append((answers[-1].start(), answers[-1].group(1)))
    if not candidates:
        return None
    _, letter = max(candidates, key=lambda c: c[0])
    if letter is None or letter not in _LETTERS[:n_options]:
        return None
    return letter


@dataclass(frozen=True)
class Grade:
    """Result of grading one response: the extracted answer, whether it is right, whether there is one."""

    extracted: str | None
    correct: bool
    has_answer: bool


def _normalize(ans: str) -> str:
    """Whitespace-free form of an answer with surrounding ``$`` removed (for the exact-match fast path)."""
    return "".join(ans.split()).strip("$")


def _timeout_s() -> int | None:
    """math-verify timeout: its signal-based alarm only works in the main thread, so None elsewhere."""
    return MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _gold_answer(gold: str) -> str:
    """The gold answer itself: a gold containing ``\\boxed`` is reduced to its last box."""
    boxes = extract_boxed_all(gold)
    return (boxes[-1] if boxes else gold).strip()


@lru_cache(maxsize=1 << 16)
def _parsed_boxed(answer: str) -> list:
    """``math_verify.parse`` of one answer wrapped as ``$\\boxed{...}$``; cached."""
    from math_verify import LatexExtractionConfig, parse

    return parse(f"$\\boxed{{{answer}}}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=_timeout_s())


@lru_cache(maxsize=1 << 16)
def _math_verify_cached(gold: str, pred: str) -> bool:
    """``math_verify.verify(parse(gold), parse(pred))`` with both wrapped as ``$\\boxed{...}$``; cached."""
    from math_verify import verify

    try:
        gold_parsed, pred_parsed = _parsed_boxed(gold), _parsed_boxed(pred)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=_timeout_s()))
    except Exception:  # a grader must never crash an evaluation; unparsable = wrong
        return False


@lru_cache(maxsize=1)
def _text_extraction() -> list:
    """math-verify's own extraction of an answer from free text: boxed first, then any final expression."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]


def math_verify_text(gold: str, text: str) -> tuple[str | None, bool]:
    """math-verify on a whole final text: (its extracted answer or None, whether it equals ``gold``)."""
    from math_verify import parse, verify

    timeout = _timeout_s()
    try:
        pred_parsed = parse(text, extraction_config=_text_extraction(), parsing_timeout=timeout)
        if not pred_parsed:
            return None, False
        gold_parsed = _parsed_boxed(_gold_answer(gold))
        correct = bool(gold_parsed) and bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
        return str(pred_parsed[-1]), correct
    except Exception:  # a grader must never crash an evaluation; unparsable = wrong
        return None, False


def math_equal(gold: str, pred: str) -> bool:
    """Whether ``pred`` equals ``gold`` (a gold containing ``\\boxed`` is reduced to its last box)."""
    gold = _gold_answer(gold)
    g, p = _normalize(gold), _normalize(pred)
    if not g or not p:
        return False
    if g == p:
        return True
    return _math_verify_cached(gold, pred.strip())


def grade_response(response: str, gold: str, kind: str, n_options: int = 0, truncated: bool = False) -> Grade:
    """Grade one model response against ``gold``.

    Only the text after the last ``</think>`` is graded. No ``</think>``: wrong, no answer. Truncated: the
    answer is still extracted (``has_answer`` reports it) but the response is wrong.
    ``kind`` "math": the last boxed content, checked by math-verify (gold first); "multiple_choice": the
    letter from :func:`extract_choice` (``n_options`` options), correct iff it equals the gold letter.
    """
    if kind not in ANSWER_KINDS:
        raise ValueError(f"Unknown answer kind '{kind}'; choose from {list(ANSWER_KINDS)}")
    final = split_thinking(response)
    if final is None:
        return Grade(extracted=None, correct=False, has_answer=False)
    extracted: str | None
    if kind == "math":
        boxes = extract_boxed_all(final)
        if len(boxes) == 1:
            extracted = boxes[0]
            correct = math_equal(gold, extracted)
        else:  # several boxes or none: math-verify reads the whole final text
            extracted, correct = math_verify_text(gold, final)
        correct = correct and not truncated
    else:
        extracted = extract_choice(final, n_options)
        gold_letter = gold.strip().strip("()").strip().upper()
        correct = extracted is not None and not truncated and extracted == gold_letter
    return Grade(extracted=extracted, correct=bool(correct), has_answer=extracted is not None)
