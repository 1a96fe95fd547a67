"""Solution styles: the voices in which a teacher writes a worked solution.

Every style renders the same `Solution` (its goal, one sentence per step, its
conclusion) into the reasoning that goes inside <think>...</think> and the short
summary after it. The styles share the math and differ in their words and layout, so a
base model pretrained on some of them finds the others less likely: that is what spreads
the teacher pool's perplexity. Each style varies its connectives by a seeded stream, so
two responses of one style to one problem are rarely the same text.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from curate.synth.families import Solution

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


@dataclass(frozen=True)
class Style:
    name: str
    think: Callable[[random.Random, Solution], str]  # the reasoning inside <think>
    summary: Callable[[random.Random, Solution, str], str]  # the text after </think>; gets the final answer


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("concise", _concise_think, _concise_summary),
        Style("chatty", _chatty_think, _chatty_summary),
        Style("formal", _formal_think, _formal_summary),
        Style("socratic", _socratic_think, _socratic_summary),
    )
}
