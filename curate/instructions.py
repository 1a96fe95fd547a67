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


def _suffix_pattern(suffix: str) -> str:
    # Straight and curly apostrophes are both seen in the wild.
    return re.escape(suffix).replace("'", "['’]")


SUFFIX_REGEX = (
    r"(?s)^(?P<body>.*?)(?P<instruction>\s*(?:"
    + "|".join(_suffix_pattern(s) for s in KNOWN_SUFFIXES)
    + r"))\s*$"
)


def strip_instruction_suffixes(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(texts without a trailing known instruction, the stripped instruction or null)."""
    parts = pc.extract_regex(texts, SUFFIX_REGEX)
    body = pc.struct_field(parts, "body")
    instruction = pc.utf8_trim_whitespace(pc.struct_field(parts, "instruction"))
    return pc.coalesce(body, texts), instruction
