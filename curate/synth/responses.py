"""Teacher responses shaped like DeepSeek-R1's, with controlled flaws.

A clean response is "<think>\\n{reasoning}\\n</think>\\n\\n{summary with \\boxed{answer}}".
A flaw changes it in one known way, so that every verification verdict has examples
whose expected outcome is recorded:

- `wrong_answer`: an arithmetic slip in one step, carried through to a wrong box;
- `equivalent_form`: the right value boxed in another form (0.75 for \\frac{3}{4});
- `missing_box`: the answer stated without \\boxed;
- `missing_think_close`: no </think> (the summary follows the reasoning directly);
- `truncated`: cut off inside the reasoning, with no </think> and no answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from curate.synth.families import Problem
from curate.synth.latex import equivalent_forms, tex
from curate.synth.styles import STYLES

FLAWS = ("none", "wrong_answer", "equivalent_form", "missing_box", "missing_think_close", "truncated")


@dataclass(frozen=True)
class Response:
    text: str
    boxed: str | None  # the content of the last \boxed{}, None when there is none
    think_closed: bool


def teacher_response(problem: Problem, style: str, flaw: str, rng: random.Random) -> Response:
    solution = problem.slipped(rng) if flaw == "wrong_answer" else problem.solve()
    answer = rng.choice(equivalent_forms(solution.answer)) if flaw == "equivalent_form" else tex(solution.answer)
    think = STYLES[style].think(rng, solution)
    boxed = None if flaw in ("missing_box", "truncated") else answer
    summary = STYLES[style].summary(rng, solution, answer if boxed is None else f"\\boxed{{{answer}}}")
    if flaw == "truncated":
        opened = f"<think>\n{think}"
        return Response(opened[: rng.randint(len(opened) * 3 // 10, len(opened) * 9 // 10)], None, False)
    if flaw == "missing_think_close":
        return Response(f"<think>\n{think}\n\n{summary}", boxed, False)
    return Response(f"<think>\n{think}\n</think>\n\n{summary}", boxed, True)


CODE_TASKS = (
    ("total", "sum", "sum(values)"),
    ("largest", "largest value", "max(values)"),
    ("smallest", "smallest value", "min(values)"),
    ("count_even", "number of even values", "sum(1 for v in values if v % 2 == 0)"),
    ("spread", "difference between the largest and smallest value", "max(values) - min(values)"),
)


def code_row(index: int) -> tuple[str, str]:
    """A non-math (problem, response) pair, like the code rows of AceReason-1.1-SFT that
    the acereason preset filters out."""
    name, what, body = CODE_TASKS[index % len(CODE_TASKS)]
    function = f"{name}_{index}"
    problem = f"Write a Python function `{function}(values)` that returns the {what} of a list of integers."
    response = (
        f"<think>\nThe function takes a list and returns the {what}. A one-line expression does it.\n</think>\n\n"
        f"```python\ndef {function}(values):\n    return {body}\n```"
    )
    return problem, response
