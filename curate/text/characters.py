"""Characters a text field may not hold, found and named for a reject reason or a verdict.

- A lone surrogate (U+D800 to U+DFFF without its pair): JSON may spell one as an escape
  (`\\ud800`) and Python's json decodes it, but UTF-8, and so Arrow, parquet and DuckDB,
  cannot store it.
- A control character in an answer (C0 but tab, line feed and carriage return; and DEL):
  no answer is written with one, so a gold holding one is damaged data, and comparing
  answers with it says `incorrect` where the answer is right.
"""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def codepoint(char: str) -> str:
    """A character as U+XXXX."""
    return f"U+{ord(char):04X}"


def lone_surrogate(value: object) -> str | None:
    """The first lone surrogate in a string, or in the strings of a list (None: there is none)."""
    if isinstance(value, str):
        found = _LONE_SURROGATE.search(value)
        return found.group() if found else None
    if isinstance(value, list):
        return next((char for item in value if (char := lone_surrogate(item)) is not None), None)
    return None


def control_character(*texts: str) -> str | None:
    """The first control character that no answer holds, in the first of `texts` that
    has one (an answer's forms), or None."""
    found = next((match for text in texts if (match := _CONTROL.search(text))), None)
    return found.group() if found else None
