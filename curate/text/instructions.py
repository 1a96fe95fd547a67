"""Instruction suffixes that training and RL sets append to a problem.

A prompt like "<problem>\\nLet's reason step by step ... \\boxed{}." is the problem plus
an instruction; presets that read prompts (verl) strip a known suffix, so the problem
gets the same problem_id as its plain-text form, and record what was stripped.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

# The OXA paper's SFT/RL instruction (appendix A.2), and the common R1-style ones.
KNOWN_SUFFIXES: tuple[str, ...] = (
    "Let's reason step by step. Enclose the reasoning process within <think>...</think>, "
    "then summarize it and present the final answer within \\boxed{} — for example: "
    "<think>reasoning process here</think> \\boxed{answer here}.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "Let's think step by step and output the final answer within \\boxed{}.",
)

# Straight and curly apostrophes are both seen in the wild.
_VARIANTS = sorted({v for s in KNOWN_SUFFIXES for v in (s, s.replace("'", "’"))}, key=len, reverse=True)
_ALTERNATION = "|".join(re.escape(v) for v in _VARIANTS)
_TAIL_RE2 = rf"(?:{_ALTERNATION})[\s\p{{Z}}]*$"  # a cheap vectorized test first
_TAIL = re.compile(rf"\s*(?:{_ALTERNATION})\s*\Z")


def strip_instruction_suffixes(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(texts without a trailing known instruction, the stripped instruction or null)."""
    hits = pc.fill_null(pc.match_substring_regex(texts, _TAIL_RE2), False)
    if not pc.any(hits).as_py():
        return texts, pa.nulls(len(texts), pa.string())
    bodies, instructions = [], []
    for text, hit in zip(texts.to_pylist(), hits.to_pylist()):
        match = _TAIL.search(text) if hit else None
        bodies.append(text[: match.start()] if match else text)
        instructions.append(match.group(0).strip() if match else None)
    return pa.array(bodies, pa.string()), pa.array(instructions, pa.string())
