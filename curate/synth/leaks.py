"""Held-out problems planted in the teacher pool, the way benchmark problems leak into
real training data, so that decontamination has something true to find.

- copies: the held-out problem `verbatim`, with `formatting` drift (whitespace, or
  compatibility characters that NFKC maps back) or after an `instruction`. Decontamination
  should find each (as 'exact', 'exact' and 'contained') and selection leave it out.
- `numbers` variants: another held-out problem with the same words and other numbers,
  and the answer those numbers give. Not a copy: decontamination should report it as a
  'template' match, and selection keeps it.

A variant is drawn by replaying its held-out problem's draw (from the random state the
world drew it from) with every pick of words, template and branch as it was and every
number drawn afresh, so it needs nothing of the families but their draw and solve.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from curate.synth.families import Problem
from curate.synth.mix import stream
from curate.synth.references import drift
from curate.workspace import OxaError

COPY_KINDS = ("verbatim", "formatting", "instruction")  # dealt in turn to the copies
VARIANT_KIND = "numbers"
# What `oxa decontaminate` should call each kind (curate/decontaminate/matching.py).
EXPECTED_METHOD = {"verbatim": "exact", "formatting": "exact", "instruction": "contained", "numbers": "template"}
FORMATTING_DRIFTS = ("whitespace", "unicode")
INSTRUCTIONS = (
    "Solve the following math problem. Give the final answer.",
    "Answer the question below and explain your reasoning.",
    "Here is a word problem. Work it out step by step.",
)
VARIANT_ATTEMPTS = 500  # redraws of the numbers before another held-out problem is tried
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Leak:
    problem: Problem  # as planted in the pool, with its own gold answer
    facts: dict  # for the manifest: heldout (its row in heldout.json), kind, method, and drift for formatting


def plant_leaks(
    seed: int,
    heldout: list[Problem],
    drawn_from: dict[str, tuple],
    copies: int,
    variants: int,
    keep: Callable[[Problem, Problem], bool],
) -> list[Leak]:
    """`copies` held-out problems copied and `variants` others with their numbers changed,
    chosen in a seeded order. `drawn_from` holds the random state each held-out problem was
    drawn from; `keep(variant, original)` says whether a variant reads apart from every other
    problem of the world (and registers it), as the world's own problems must."""
    order = stream(seed, "leaks").sample(range(len(heldout)), len(heldout))
    leaks = []
    for k, index in enumerate(order[:copies]):
        kind = COPY_KINDS[k % len(COPY_KINDS)]
        text, facts = _copy(heldout[index].text, kind, stream(seed, "leak-copy", k))
        leaks.append(Leak(replace(heldout[index], text=text), {"heldout": index, **facts}))
    wanted = copies + variants
    for index in order[copies:]:
        if len(leaks) == wanted:
            break
        original = heldout[index]
        candidates = numbers_changed(original, drawn_from[original.text], stream(seed, "leak-variant", index))
        variant = next((v for v in candidates if keep(v, original)), None)
        if variant is not None:
            facts = {"heldout": index, "kind": VARIANT_KIND, "method": EXPECTED_METHOD[VARIANT_KIND]}
            leaks.append(Leak(variant, facts))
    if len(leaks) < wanted:
        raise OxaError(
            f"only {len(leaks) - copies} of the {variants} numbers-changed variants could be drawn from the "
            f"{len(heldout)} held-out problems; ask for fewer (--leaked-variants) or more held-out problems"
        )
    return leaks


def _copy(text: str, kind: str, rng: random.Random) -> tuple[str, dict]:
    facts = {"kind": kind, "method": EXPECTED_METHOD[kind]}
    if kind == "verbatim":
        return text, facts
    if kind == "instruction":
        return f"{rng.choice(INSTRUCTIONS)}\n\n{text}", facts
    for name in rng.sample(FORMATTING_DRIFTS, len(FORMATTING_DRIFTS)):
        drifted = drift(text, name, rng)
        if drifted is not None and drifted != text:
            return drifted, {**facts, "drift": name}
    raise AssertionError(f"no formatting drift applies to {text!r}")


def numbers_changed(original: Problem, state: tuple, numbers: random.Random) -> Iterator[Problem]:
    """Variants of `original`: its family's draw replayed from `state` (the random state
    `original` was drawn from) with other numbers. Each has the same text once numbers are
    masked, and lacks at least one of the original's numbers, so it is no copy of it."""
    recorder = _Recorder(random.Random())
    recorder.rng.setstate(state)
    if original.spec.problem(recorder).text != original.text:
        raise AssertionError(f"the draw of {original.text!r} does not replay from its state")
    words = _NUMBER.sub("#", original.text)
    for _ in range(VARIANT_ATTEMPTS):
        try:
            variant = original.spec.problem(_OtherNumbers(recorder.calls, numbers))
        except _Misaligned:  # another count of numbers drawn: the words differ too
            continue
        if _NUMBER.sub("#", variant.text) == words and _missing_numbers(original.text, variant.text):
            yield variant


def _missing_numbers(original: str, variant: str) -> bool:
    return bool(Counter(_NUMBER.findall(original)) - Counter(_NUMBER.findall(variant)))


def _is_words(pick: object) -> bool:
    return isinstance(pick, str) or (isinstance(pick, tuple) and all(isinstance(p, str) for p in pick))


class _Recorder:
    """A family's draw from `rng`, unchanged, with every call and what it returned noted."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.calls = rng, []

    def choice(self, seq):
        pick = self.rng.choice(seq)
        self.calls.append(("choice", pick, list(seq).index(pick)))
        return pick

    def sample(self, population, k):
        picks = self.rng.sample(population, k)
        self.calls.append(("sample", picks, [list(population).index(p) for p in picks]))
        return picks

    def randint(self, a, b):
        self.calls.append(("randint", self.rng.randint(a, b), None))
        return self.calls[-1][1]

    def randrange(self, *args):
        self.calls.append(("randrange", self.rng.randrange(*args), None))
        return self.calls[-1][1]

    def random(self):
        self.calls.append(("random", self.rng.random(), None))
        return self.calls[-1][1]


class _Misaligned(Exception):
    """The replay asked for another call than the recorded draw made at that point."""


class _OtherNumbers:
    """A recorded draw replayed with other numbers: the words, templates and branches as
    recorded (`choice` and `sample` of words, by position; `randrange`, the families'
    template index; `random`, a branch), every number drawn afresh from `numbers`
    (`randint`, and `choice` or `sample` among numbers) within the bounds the draw asks
    for now, so the variant's numbers meet its family's constraints."""

    def __init__(self, calls: list[tuple], numbers: random.Random) -> None:
        self.calls, self.numbers = iter(calls), numbers

    def _next(self, method: str) -> tuple:
        call = next(self.calls, None)
        if call is None or call[0] != method:
            raise _Misaligned
        return call

    def choice(self, seq):
        _, pick, index = self._next("choice")
        if not _is_words(pick):
            return self.numbers.choice(seq)
        if index >= len(seq):
            raise _Misaligned
        return seq[index]

    def sample(self, population, k):
        _, picks, indices = self._next("sample")
        if not all(_is_words(p) for p in picks):
            return self.numbers.sample(population, k)
        return [population[i] for i in indices]

    def randint(self, a, b):
        self._next("randint")
        return self.numbers.randint(a, b)

    def randrange(self, *args):
        return self._next("randrange")[1]

    def random(self):
        return self._next("random")[1]
