"""Final answers out of responses and solutions, and answers into math-verify's input.

The rule (the paper's evaluation, and DeepSeek-R1's output format): the answer region
is the text after the last `</think>` (the whole text when there is none, unless
`require_think`); the answer is the content of the region's last `\\boxed{...}` or
`\\fbox{...}`, whose braces must balance. Verification, tracing (answers from a
`solution` field) and the GRPO reward all use these functions, so they agree.

Work per response is a few `str.rfind` calls, which run in C: measured on 6.6 KB
responses this is 10x faster than a Polars or Arrow regex over the same column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

THINK_END = "</think>"
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.DOTALL)  # \{ and \} are literal braces
# A number in scientific notation, the whole answer: 4.5e33, 8.7 \times 10^{8}, 3\cdot10^5.
_SCIENTIFIC = re.compile(
    # (`\^\s*(?:\{\s*)?`, not `\^\s*\{?\s*`: two spans of spaces side by side backtrack
    # quadratically on a long run of spaces that ends in no number)
    r"^([-+]?\d+(?:\.\d+)?)\s*(?:[eE]\s*([-+]?\d+)|(?:\\times|\\cdot)\s*10\s*\^\s*(?:\{\s*)?([-+]?\d+)\s*\}?)$"
)
_SCIENTIFIC_MAX_CHARS = 200  # longer is no number in scientific notation; nothing to rewrite
_EXACT_EXPONENTS = range(0, 101)  # written out in full up to 100 digits

# Reasons a response has no answer (the verify table's `reason` for no_answer rows).
NO_THINK = "no_think"  # --require-think, and no </think>
NO_BOX = "no_box"
UNBALANCED_BOX = "unbalanced_box"  # the last box never closes (a truncated response)
EMPTY_BOX = "empty_box"


def answer_region(response: str, require_think: bool = False) -> str | None:
    """The text after the last `</think>`; without one, the whole response (or None
    when `require_think`)."""
    end = response.rfind(THINK_END)
    if end < 0:
        return None if require_think else response
    return response[end + len(THINK_END) :]


def last_boxed(text: str) -> tuple[str | None, str | None]:
    """(content of the last \\boxed{...} or \\fbox{...}, None), or (None, reason)."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None, NO_BOX
    command = _BOX_COMMAND.match(text, start)
    if command is None:
        # the last mention is bare ("\boxed" in prose): the last command before it, found in
        # one pass (searching back from each bare mention was quadratic in their number)
        for command in _BOX_COMMAND.finditer(text, 0, start):  # noqa: B007 (the last one is wanted)
            pass
        if command is None:
            return None, NO_BOX
    return _braced_content(text, command.end())


def _braced_content(text: str, open_end: int) -> tuple[str | None, str | None]:
    depth = 1
    for token in _BRACE_OR_ESCAPE.finditer(text, open_end):
        brace = token.group()
        if brace == "{":
            depth += 1
        elif brace == "}":
            depth -= 1
            if depth == 0:
                content = text[open_end : token.start()].strip()
                return (content, None) if content else (None, EMPTY_BOX)
    return None, UNBALANCED_BOX


def braces_balanced(text: str) -> bool:
    """Whether every `{` closes (escaped braces `\\{ \\}` aside)."""
    depth = 0
    for token in _BRACE_OR_ESCAPE.finditer(text):
        depth += {"{": 1, "}": -1}.get(token.group(), 0)
        if depth < 0:
            return False
    return depth == 0


def extract_answer(response: str, require_think: bool = False) -> tuple[str | None, str | None]:
    """(the final answer of a response, None), or (None, the reason there is none)."""
    region = answer_region(response, require_think)
    if region is None:
        return None, NO_THINK
    return last_boxed(region)


def extract_answers(
    responses: Iterable[str | None], require_think: bool = False
) -> tuple[list[str | None], list[str | None]]:
    """`extract_answer` over a batch: (answers, reasons)."""
    responses = list(responses)
    regions = [None if r is None else answer_region(r, require_think) for r in responses]
    return answers_of_regions(regions, [r is None for r in responses])


def answers_of_regions(
    regions: Iterable[str | None], missing: Iterable[bool]
) -> tuple[list[str | None], list[str | None]]:
    """`extract_answers` where the answer regions were cut already (verify cuts them in
    DuckDB: sql/verify/answer_regions.sql): a region of None is a response without
    `</think>` under `require_think`, unless the response itself is missing."""
    answers: list[str | None] = []
    reasons: list[str | None] = []
    for region, absent in zip(regions, missing, strict=True):
        if absent:
            answer, reason = None, NO_BOX
        elif region is None:
            answer, reason = None, NO_THINK
        else:
            answer, reason = last_boxed(region)
        answers.append(answer)
        reasons.append(reason)
    return answers, reasons


def as_math_input(answer: str) -> str:
    """An answer (gold or extracted) as the text handed to math-verify's parse, wrapped
    in `\\boxed{}` so that the whole answer is parsed, not a piece of it; enclosing `$`
    dropped. A number in scientific notation is rewritten: math-verify reads `4.5e33` as
    4.5 * e * 33, and compares `8.7 \\times 10^{8}` (a float) unequal to 870000000, so a
    non-negative exponent is written out exactly (870000000) and a negative one as
    `m \\times 10^{e}`."""
    answer = answer.strip()
    if len(answer) >= 2 and answer[0] == answer[-1] == "$":
        answer = answer.strip("$").strip()
    number = _SCIENTIFIC.match(answer) if len(answer) <= _SCIENTIFIC_MAX_CHARS else None
    if number:
        mantissa, exponent = number.group(1), int(number.group(2) or number.group(3))
        if exponent in _EXACT_EXPONENTS:
            answer = format(Decimal(mantissa).scaleb(exponent), "f")
        else:
            answer = f"{mantissa} \\times 10^{{{exponent}}}"
    return answer if answer.startswith("\\boxed") else f"\\boxed{{{answer}}}"
