"""How a family's problem is drawn and solved: the `Sheet` a solution is worked on, the
`Solution` it gives, and the `Problem` and `Family` that tie them together.

A family draws a problem (its text and parameters) from a random stream and solves it
on a `Sheet`, which records each computed step and the sentence that states it. A
`Sheet` with a slip adds a small error to one step and lets it run on through the later
steps, the way an arithmetic slip does in a real solution, so a wrong answer comes with
reasoning that agrees with it. Families of whole-number arithmetic also record each step
as an `Equation` (left op right = value), which the strategy styles rewrite (splitting a
number into tens and ones, checking a step by its inverse).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from curate.synth.latex import Value, tex
from curate.synth.words import EVENTS, PLACES, SCENES, WHENS

SLIP_DELTAS = (-1, 1, 2, 3, 10, -10)  # off-by-one and carry errors
OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": Fraction}


@dataclass(frozen=True)
class Equation:
    """One step of whole-number arithmetic, as written: `left op right = value` (op is one
    of + - * /); after a slip, `value` is not what the operation gives."""

    left: int
    op: str
    right: int
    value: int | Fraction

    def __str__(self) -> str:
        return f"{self.left} {self.op} {_signed(self.right)} = {tex(self.value)}"


def _signed(n: int) -> str:
    return f"({n})" if n < 0 else str(n)


class Sheet:
    """The steps of one solution. With `slip_at`, that step's value is off by `delta`,
    or by `-delta` where `+delta` would make it zero or flip its sign (a slip should not
    divide by zero or take the square root of a negative number)."""

    def __init__(self, slip_at: int | None = None, delta: int = 0) -> None:
        self.slip_at, self.delta = slip_at, delta
        self.steps = 0
        self.notes: list[str] = []
        self.equations: list[Equation] = []

    def compute(self, value):
        if self.steps == self.slip_at:
            slipped = value + self.delta
            if slipped == 0 or (value != 0 and (slipped > 0) != (value > 0)):
                slipped = value - self.delta
            value = slipped
        self.steps += 1
        return value

    def note(self, sentence: str) -> None:
        self.notes.append(sentence)

    def equation(self, left: int, op: str, right: int, sentence: str = "") -> int | Fraction:
        """Compute `left op right` (a slip applies), record it, and note it: the equation
        itself, or `sentence` with `{}` where the equation goes."""
        exact = OPERATIONS[op](left, right)
        value = self.compute(int(exact) if isinstance(exact, Fraction) and exact.denominator == 1 else exact)
        step = Equation(left, op, right, value)
        self.equations.append(step)
        self.note(sentence.format(f"${step}$") if sentence else f"${step}$")
        return value


@dataclass(frozen=True)
class Solution:
    goal: str  # "find how many pencils Maria has now": what the reasoning sets out to do
    notes: tuple[str, ...]  # one sentence per step, with its math
    conclusion: str  # "Maria has $54$ pencils"
    answer: Value
    equations: tuple[Equation, ...] = ()  # the steps as equations, for whole-number families


@dataclass(frozen=True)
class Problem:
    family: str
    text: str
    params: dict = field(compare=False)
    spec: Family = field(compare=False, repr=False)

    def solve(self, sheet: Sheet | None = None) -> Solution:
        sheet = sheet or Sheet()
        goal, conclusion, answer = self.spec.solve(self.params, sheet)
        return Solution(goal, tuple(sheet.notes), conclusion, answer, tuple(sheet.equations))

    @property
    def gold(self) -> str:
        return tex(self.solve().answer)

    def slipped(self, rng: random.Random) -> Solution:
        """The solution with one arithmetic slip that changes the final answer (in a family of
        whole-number steps, to another whole number: a slip before a division must divide)."""
        counter, gold = Sheet(), self.solve().answer
        self.solve(counter)
        slips = [(step, delta) for step in range(counter.steps) for delta in SLIP_DELTAS]
        rng.shuffle(slips)
        for step, delta in slips:
            solution = self.solve(Sheet(step, delta))
            whole = not self.spec.equations or isinstance(solution.answer, int)
            if tex(solution.answer) != tex(gold) and whole:
                return solution
        raise AssertionError(f"no slip changes the answer of {self.text!r}")


@dataclass(frozen=True)
class Family:
    name: str
    topic: str  # NuminaMath's problem_type for it
    draw: Callable[[random.Random], tuple[str, dict]]  # -> (problem text, parameters)
    solve: Callable[[dict, Sheet], tuple[str, str, Value]]  # -> (goal, conclusion, answer)
    scene: bool = True  # open the problem with a scene sentence (words that differ between problems)
    equations: bool = False  # its solutions record every step as an Equation (strategy styles need them)

    def problem(self, rng: random.Random) -> Problem:
        text, params = self.draw(rng)
        if self.scene:
            scene = rng.choice(SCENES).format(
                event=rng.choice(EVENTS), place=rng.choice(PLACES), when=rng.choice(WHENS)
            )
            text = f"{scene} {text}"
        return Problem(self.name, text, params, self)
