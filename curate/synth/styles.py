"""Solution styles: the voices and strategies in which a teacher writes a worked solution.

Every style renders the same `Solution` into the reasoning that goes inside
<think>...</think> and the short summary after it. A base model pretrained on some
styles finds the others less likely: that is what spreads the teacher pool's perplexity.
Each style varies its wording by a seeded stream, so two responses of one style to one
problem are rarely the same text.

- Voices (concise, chatty, formal, socratic) share the math of the solution's sentences
  and differ in their words and layout; they render every family.
- Strategies render the drills' equations (sheet.py), short enough for a tiny model:
  `terse` (one equation a line) and `worded` (the same with connectives) write the steps
  as they are; `split` adds and multiplies by tens and ones; `check` undoes every step
  to check it; `noisy` writes the terse steps among stray marks and digits.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from curate.synth.sheet import Equation, Solution

CHATTY_NEXT = ("Then", "Next,", "After that,", "Now")
SOCRATIC_NEXT = ("What follows from that?", "And what is the next step?", "What else do we know?", "And then?")


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _concise_think(rng: random.Random, s: Solution) -> str:
    opener = rng.choice(("We need to", "The task is to", "Goal: we want to", "Here we have to"))
    lines = [f"{opener} {s.goal}.", *(f"{_cap(note)}." for note in s.notes), f"So {s.conclusion}."]
    return "\n".join(lines)


def _concise_summary(rng: random.Random, s: Solution, final: str) -> str:
    lead = rng.choice(("The answer is", "Answer:", "Final answer:"))
    return f"{_cap(s.conclusion)}.\n\n{lead} ${final}$."


def _chatty_think(rng: random.Random, s: Solution) -> str:
    opener = rng.choice(("Okay, so", "Alright, so", "Okay, let's see."))
    plan = rng.choice(
        ("Let me work through it step by step.", "Let me think about how to do this.", "Hmm, let me start.")
    )
    paragraphs = [f"{opener} I need to {s.goal}. {plan}"]
    for i, note in enumerate(s.notes):
        lead = rng.choice(("First,", "To begin,", "Okay, first")) if i == 0 else rng.choice(CHATTY_NEXT)
        paragraphs.append(f"{lead} {note}.")
    doubt = rng.choice(("Wait, let me double-check that.", "Hmm, let me make sure.", "Let me verify this part again."))
    agree = rng.choice(("Yes, that's right.", "Yeah, that checks out.", "Okay, good."))
    paragraphs.append(f"{doubt} {_cap(rng.choice(s.notes))}. {agree}")
    close = rng.choice(("I think that's it.", "That should be the answer.", "That seems right."))
    paragraphs.append(f"So {s.conclusion}. {close}")
    return "\n\n".join(paragraphs)


def _chatty_summary(rng: random.Random, s: Solution, final: str) -> str:
    return f"{_cap(s.conclusion)}.\n\n**Final Answer**\n\\[\n{final}\n\\]"


def _formal_think(rng: random.Random, s: Solution) -> str:
    opener = rng.choice(("Let us", "We shall", "Our aim is to"))
    steps = "\n".join(f"Step {i}. {_cap(note)}." for i, note in enumerate(s.notes, 1))
    therefore = rng.choice(("Hence", "Therefore", "Consequently"))
    return f"{opener} {s.goal}.\n\n{steps}\n\n{therefore} {s.conclusion}."


def _formal_summary(rng: random.Random, s: Solution, final: str) -> str:
    steps = "\n".join(f"{i}. {_cap(note)}." for i, note in enumerate(s.notes, 1))
    return f"**Solution.**\n{steps}\n\nTherefore {s.conclusion}, and the answer is ${final}$."


def _socratic_think(rng: random.Random, s: Solution) -> str:
    ask = rng.choice(("What is being asked?", "What is the question?", "What do we need?"))
    lines = [f"{ask} We must {s.goal}."]
    for i, note in enumerate(s.notes):
        question = "What comes first?" if i == 0 else rng.choice(SOCRATIC_NEXT)
        lines.append(f"{question} {_cap(note)}.")
    check = rng.choice(("Does everything fit together?", "Is anything missing?", "Do the pieces agree?"))
    lines.append(f"{check} No contradiction, so {s.conclusion}.")
    return "\n".join(lines)


def _socratic_summary(rng: random.Random, s: Solution, final: str) -> str:
    return f"Putting the answers to these questions together, {s.conclusion}.\n\nAnswer: ${final}$"


# -- strategies: the drills' equations ------------------------------------------------------

ANSWER_LEADS = ("The answer is", "So the answer is", "Answer:")
WORDED_NEXT = ("Then", "Next,", "After that,")
NOISE = ("~~", "##", "uh", "hmm", "qz", "...", "%%", "xk", "so so", "wait", "@@", "ok ok")


def _answer(rng: random.Random, final: str) -> str:
    return f"{rng.choice(ANSWER_LEADS)} ${final}$."


def _terse_think(rng: random.Random, s: Solution) -> str:
    return "\n".join(str(e) for e in s.equations)


def _worded_think(rng: random.Random, s: Solution) -> str:
    lines = [
        f"{rng.choice(('First,', 'To start,')) if i == 0 else rng.choice(WORDED_NEXT)} {e}."
        for i, e in enumerate(s.equations)
    ]
    return "\n".join([*lines, f"So {s.conclusion}."])


def _worded_summary(rng: random.Random, s: Solution, final: str) -> str:
    return f"{_cap(s.conclusion)}. {_answer(rng, final)}"


def split_step(e: Equation) -> str:
    """The step by tens and ones: 23 + 48 = 23 + 40 + 8 = 63 + 8 = 71; 6 * 14 = 6 * 10 + 6 * 4
    = 60 + 24 = 84; 84 / 6 = 14, since 6 * 14 = 84. Other steps as they are."""
    a, op, b, v = e.left, e.op, e.right, e.value
    if op in "+-" and a >= 0 and b > 10 and b % 10:
        tens, ones = b - b % 10, b % 10
        middle = a + tens if op == "+" else a - tens
        return f"{a} {op} {b} = {a} {op} {tens} {op} {ones} = {middle} {op} {ones} = {v}"
    if op == "*" and min(a, b) >= 0 and max(a, b) > 10 and max(a, b) % 10:
        small, big = (a, b) if b > 10 and b % 10 else (b, a)
        tens, ones = big - big % 10, big % 10
        return f"{a} * {b} = {small} * {tens} + {small} * {ones} = {small * tens} + {small * ones} = {v}"
    if op == "/" and isinstance(v, int):
        return f"{e}, since {b} * {v} = {b * v}"
    return str(e)


def check_step(e: Equation) -> str:
    """The step, then the inverse operation on its result (which shows a slip)."""
    v, b = e.value, e.right
    if not isinstance(v, int):
        return str(e)
    inverse = {"+": f"{v} - {b} = {v - b}", "-": f"{v} + {b} = {v + b}", "/": f"{v} * {b} = {v * b}"}.get(e.op)
    if e.op == "*" and b and v % b == 0:
        inverse = f"{v} / {b} = {v // b}"
    return f"{e}, check: {inverse}" if inverse else str(e)


SPLIT_OPENERS = ("Split the numbers into tens and ones.", "Work with tens and ones.", "Use place value.")
CHECK_OPENERS = ("Check each step by undoing it.", "Verify every step.", "Each step gets a check.")


def _split_think(rng: random.Random, s: Solution) -> str:
    return "\n".join([rng.choice(SPLIT_OPENERS), *(split_step(e) for e in s.equations)])


def _check_think(rng: random.Random, s: Solution) -> str:
    return "\n".join([rng.choice(CHECK_OPENERS), *(check_step(e) for e in s.equations)])


def _noise(rng: random.Random) -> str:
    marks = [rng.choice(NOISE) for _ in range(rng.randint(1, 3))]
    return " ".join(marks + ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 3)))])


def _noisy_think(rng: random.Random, s: Solution) -> str:
    return "\n".join(f"{_noise(rng)} {e} {_noise(rng)}" for e in s.equations)


def _noisy_summary(rng: random.Random, s: Solution, final: str) -> str:
    return f"{_noise(rng)} {_answer(rng, final)} {_noise(rng)}"


def _strategy_summary(rng: random.Random, s: Solution, final: str) -> str:
    return _answer(rng, final)


@dataclass(frozen=True)
class Style:
    name: str
    think: Callable[[random.Random, Solution], str]  # the reasoning inside <think>
    summary: Callable[[random.Random, Solution, str], str]  # the text after </think>; gets the final answer
    equations: bool = False  # renders only solutions that record their equations (the drills)


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("concise", _concise_think, _concise_summary),
        Style("chatty", _chatty_think, _chatty_summary),
        Style("formal", _formal_think, _formal_summary),
        Style("socratic", _socratic_think, _socratic_summary),
        Style("terse", _terse_think, _strategy_summary, equations=True),
        Style("worded", _worded_think, _worded_summary, equations=True),
        Style("split", _split_think, _strategy_summary, equations=True),
        Style("check", _check_think, _strategy_summary, equations=True),
        Style("noisy", _noisy_think, _noisy_summary, equations=True),
    )
}
VOICES = ("concise", "chatty", "formal", "socratic")  # the curation test bed's styles
STRATEGIES = ("terse", "worded", "split", "check", "noisy")  # the learnable world's
