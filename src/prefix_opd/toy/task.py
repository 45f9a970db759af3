"""The toy reasoning task: choose a method from the question's tag, then execute it line by line.

A question ``T=f N=37 K=27`` names a tag (a letter), a start value and a line count. Its solution has
the two phases a real reasoning trace has and the paper's mechanism relies on:

* **the opening** (one line, ``tag=fB``): the tag restated and the method it calls for, by a fixed table
  that a model can only know by having learned it (the approach). The method letter directly follows
  the tag's letter, so the decision is read off the token in front of it (a bigram): a student can
  re-map one tag's method without attending anywhere, as distillation re-maps a base model's approach;
* **the execution** (K lines, ``27:B81`` .. ``01:B07``): a count-down line counter, the method's letter
  and the next value, ``v -> (a * v + b) mod 100`` with the method's ``(a, b)``; then the answer
  ``</think>\\n\\boxed{07}``.

Every line is :data:`LINE` tokens long (one character per token), so positions map to lines exactly and
the study's lengths are counted in lines (``lengths.py`` in the config's terms). Each line depends only
on the line before it (the counter counts down, the letter is copied, the value is a function of the
previous value and the letter): local dependence is what tiny transformers learn fast. Every method is
a full-period affine map mod 100 (Hull-Dobell: ``a = 1 mod 20``, ``b`` coprime to 10), so a chain never
repeats a value within 100 lines: no chain can be completed by copying an earlier stretch of itself.

A solution on the wrong method is executed correctly but reaches another answer: the opening decides
the outcome, while each execution step can still go wrong (``noise``) and derail the rest.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

MODULUS = 100
LINE = 7  # tokens per line: "tag=fB\n" and "27:B81\n"
# method letter -> (a, b) of v -> (a v + b) mod 100; every one has period 100 (full period)
METHODS: dict[str, tuple[int, int]] = {"A": (1, 13), "B": (1, 37), "C": (1, 59), "D": (1, 71)}
# tag -> method, a fixed table: tags 0-7 are the in-domain ones (each method twice), 8-11 are held out of
# all distillation data (each method once); only the teacher has learned the whole table.
METHOD_OF_TAG = "BDACCADB" + "DBCA"
IN_DOMAIN_TAGS = tuple(range(8))
HELD_OUT_TAGS = tuple(range(8, 12))
# the base students' habitual method per tag, never the right one: in-domain tags' letters moved one on, held-out
# tags' two on, so that distillation undoing the in-domain habit does not also fix the held-out openings
HABIT_OF_TAG = "".join("ABCD"[("ABCD".index(m) + (2 if tag in HELD_OUT_TAGS else 1)) % 4]
                       for tag, m in enumerate(METHOD_OF_TAG))
TAG_LETTERS = "abcdefghijkl"  # tag i is written as TAG_LETTERS[i]


def step(method: str, value: int) -> int:
    a, b = METHODS[method]
    return (a * value + b) % MODULUS


def execute(method: str, start: int, lines: int) -> list[int]:
    """The values of `lines` execution lines from `start` under `method`."""
    values, n = [], start
    for _ in range(lines):
        n = step(method, n)
        values.append(n)
    return values


def period(values: list[int]) -> int | None:
    """The smallest p < len(values) with values[i + p] == values[i] for every i, or None (aperiodic)."""
    n = len(values)
    return next((p for p in range(1, n) if all(values[i + p] == values[i] for i in range(n - p))), None)


@dataclass(frozen=True)
class Question:
    """One toy question: tag (which method), start value, number of execution lines."""

    tag: int
    start: int
    lines: int

    def text(self) -> str:
        return f"T={TAG_LETTERS[self.tag]} N={self.start:02d} K={self.lines:02d}"

    @property
    def method(self) -> str:
        return METHOD_OF_TAG[self.tag]

    def chain(self, method: str | None = None) -> list[int]:
        return execute(method or self.method, self.start, self.lines)

    def gold(self) -> str:
        return f"{self.chain()[-1]:02d}"


def plan_line(tag: int, method: str) -> str:
    """The opening line: the tag restated, then the chosen method (the decision is its last token)."""
    return f"tag={TAG_LETTERS[tag]}{method}\n"


def render_solution(question: Question, method: str, values: list[int]) -> str:
    """The response after the prompt's `<think>`: plan line, execution lines, boxed answer."""
    n = len(values)
    lines = "".join(f"{n - i:02d}:{method}{v:02d}\n" for i, v in enumerate(values))
    return f"{plan_line(question.tag, method)}{lines}</think>\n\\boxed{{{values[-1]:02d}}}"


def noisy_execution(question: Question, method: str, noise: float, rng: random.Random) -> list[int]:
    """The chain under `method`, each value replaced by a uniform random one with probability `noise`;
    the chain continues from whatever value was written."""
    values, n = [], question.start
    for _ in range(question.lines):
        n = step(method, n)
        if noise > 0 and rng.random() < noise:
            n = rng.randrange(MODULUS)
        values.append(n)
    return values


@functools.cache
def answers_differ(lines: int) -> bool:
    """Whether every method reaches a different answer after `lines` lines (from any start). Additive methods
    meet when lines x (b_i - b_j) = 0 mod 100 (at 25 lines for b's 4 apart): such counts are never asked, so
    a wrong opening always gives a wrong answer."""
    finals = {execute(m, 0, lines)[-1] for m in METHODS}
    return len(finals) == len(METHODS) and all(len({execute(m, s, lines)[-1] for m in METHODS}) == len(METHODS)
                                               for s in range(MODULUS))


def sample_question(rng: random.Random, tags: tuple[int, ...], min_lines: int, max_lines: int) -> Question:
    """A question with a uniform tag from `tags`, start value and line count (counts where two methods would
    meet are skipped, see :func:`answers_differ`)."""
    counts = [k for k in range(min_lines, max_lines + 1) if answers_differ(k)]
    return Question(rng.choice(tags), rng.randrange(MODULUS), rng.choice(counts))
