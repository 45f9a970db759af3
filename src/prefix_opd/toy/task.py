"""The toy reasoning task: iterate a digit-wise affine map on two-digit numbers, report the K-th value.

A question names a rule (`f`, `g` or `h`), a start value N and a step count K. The chain of thought
writes one line per step, ``"{i:02d}:{value:02d}"``, each value computed from the previous one only
(local dependence is what tiny transformers learn fast, DESIGN.md section 8). A wrong value anywhere
propagates to every later line and to the answer, and every step is the same computation, so late
steps matter exactly as much as early ones. Multiple-choice questions (the out-of-domain stand-ins)
list lettered options and are answered with the letter of the final value.

A "base" model's data is the same chains with each value replaced, with probability ``noise``, by a
uniformly random one (the chain continues from the wrong value): it learns the format perfectly but
computes each step only with probability about ``1 - noise``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MODULUS = 100
LETTERS = "ABCDEFGHIJ"
# rule name -> ((tens multiplier, tens offset), (units multiplier, units offset)), each digit mod 10;
# f is the in-domain ("math") rule, g and h the out-of-domain ones. Each output digit depends on one
# input digit at a fixed distance, which tiny transformers learn in a few hundred steps.
RULES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "f": ((7, 3), (3, 1)), "g": ((3, 7), (9, 4)), "h": ((9, 1), (7, 8)),
}


def apply_rule(rule: str, n: int) -> int:
    (a, b), (c, d) = RULES[rule]
    tens, units = divmod(n, 10)
    return ((a * tens + b) % 10) * 10 + (c * units + d) % 10


@dataclass(frozen=True)
class Question:
    """One toy question; `options` is empty for free-form (math) questions."""

    rule: str
    start: int
    steps: int
    options: tuple[int, ...] = ()

    def text(self) -> str:
        head = f"{self.rule} N={self.start:02d} K={self.steps:02d}"
        if not self.options:
            return head
        # value=letter, so that answering is an induction-style lookup ("42=" -> "B")
        return head + " " + " ".join(f"{v:02d}={LETTERS[i]}" for i, v in enumerate(self.options))

    def chain(self) -> list[int]:
        values, n = [], self.start
        for _ in range(self.steps):
            n = apply_rule(self.rule, n)
            values.append(n)
        return values

    def gold(self) -> str:
        final = self.chain()[-1]
        return LETTERS[self.options.index(final)] if self.options else f"{final:02d}"


def render_solution(question: Question, values: list[int]) -> str:
    """Chain-of-thought text (after the prompt's `<think>`) ending with the boxed answer.

    Lines count down ("{steps left}:{value}"), so stopping after line 01 is a local decision.
    Multiple choice restates the final value and looks its letter up: "42=B" then the boxed letter;
    a final value that is not an option gets the letter at index value mod n (a wrong guess).
    """
    n = len(values)
    lines = "\n" + "".join(f"{n - i:02d}:{v:02d}\n" for i, v in enumerate(values))
    final = values[-1]
    if not question.options:
        return f"{lines}</think>\n\\boxed{{{final:02d}}}"
    opts = question.options
    letter = LETTERS[opts.index(final)] if final in opts else LETTERS[final % len(opts)]
    return f"{lines}</think>\n{final:02d}={letter}\n\\boxed{{{letter}}}"


def noisy_chain(question: Question, noise: float, rng: random.Random) -> list[int]:
    """The question's chain with each step wrong (uniform random value) with probability `noise`."""
    values, n = [], question.start
    for _ in range(question.steps):
        n = apply_rule(question.rule, n)
        if noise > 0 and rng.random() < noise:
            n = rng.randrange(MODULUS)
        values.append(n)
    return values


def sample_question(
    rng: random.Random, rule: str, min_steps: int, max_steps: int, n_options: int = 0
) -> Question:
    """Draw one question; multiple-choice options hold the gold value and distinct distractors."""
    start, steps = rng.randrange(MODULUS), rng.randint(min_steps, max_steps)
    question = Question(rule, start, steps)
    if n_options == 0:
        return question
    final = question.chain()[-1]
    distractors = rng.sample([v for v in range(MODULUS) if v != final], n_options - 1)
    options = distractors[:]
    options.insert(rng.randrange(n_options), final)
    return Question(rule, start, steps, tuple(options))
