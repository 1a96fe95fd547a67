"""Text normalizations for tracing problems and comparing answers, as Polars expressions.

`problem_id` (sql/macros.sql) only folds NFC and whitespace. Copies of one problem in
different data sets drift further: LaTeX spacing (`\\,` `\\!`), `\\left(`, `\\dfrac`,
unicode look-alikes, `x^{2}` for `x^2`, case, an instruction suffix. These expressions
fold that drift, vectorized over a whole batch:

- `match_text`: a problem as tracing compares it (the fuzzy stage scores this text);
- `match_key`: `match_text` without any whitespace (the normalized stage joins on it);
- `answer_key`: an answer as the simple verdict and conflict detection compare it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # polars is imported by the callers that build these expressions
    import polars as pl

# Characters that NFKC leaves alone but that differ between copies of the same text.
_LOOKALIKES = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00d7": "\\times ",
    "\u00b7": "\\cdot ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\ne ",
    "~": " ",  # LaTeX's unbreakable space
}

# (pattern, replacement) in order; Rust regex syntax (no look-around), `$1` for groups.
_LATEX_RULES: tuple[tuple[str, str], ...] = (
    (r"\\!", ""),  # negative thin space
    (r"\\[,;: ]|\\q?quad\b", " "),  # spacing commands
    (r"\\(?:left|right)\s*\.", ""),  # null delimiters
    (r"\\(?:left|right|[bB]igg?[lr]?)\b", ""),  # delimiter sizing: \left( is (
    # a command ends before any non-letter: \dfrac12 is \frac12 (no \b: 'c1' is no word boundary)
    (r"\\[dt]frac([^a-zA-Z]|$)", r"\frac$1"),
    (r"\\[dt]binom([^a-zA-Z]|$)", r"\binom$1"),
    (r"\\(le|ge|ne)q([^a-zA-Z]|$)", r"\$1$2"),  # \leq is \le
    (r"\\displaystyle([^a-zA-Z]|$)", "$1"),
    (r"\\(?:text|textrm|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}", "$1"),
    (r"([\^_])\{([^{}\\\s])\}", "$1$2"),  # x^{2} is x^2
)

_MATH_DELIMITERS = r"\$|\\[()\[\]]"


def latex_canonical(text: pl.Expr) -> pl.Expr:
    """The folds shared by problems and answers: NFKC, look-alike characters, LaTeX
    spacing and sizing commands, \\dfrac/\\tfrac, text wrappers, single-character
    braces after ^ and _."""
    text = text.str.normalize("NFKC").str.replace_many(list(_LOOKALIKES), list(_LOOKALIKES.values()))
    for pattern, replacement in _LATEX_RULES:
        text = text.str.replace_all(pattern, replacement)
    return text


def match_text(problem: pl.Expr) -> pl.Expr:
    """A problem as tracing compares it: canonical LaTeX, lower case, no math
    delimiters, single spaces, no trailing period."""
    text = latex_canonical(problem).str.to_lowercase().str.replace_all(_MATH_DELIMITERS, " ")
    return text.str.replace_all(r"\s+", " ").str.strip_chars().str.strip_chars_end(". ")


def match_key(text: pl.Expr) -> pl.Expr:
    """`match_text` without whitespace: `x + 1` and `x+1` get the same key."""
    return text.str.replace_all(r"\s+", "")


def answer_key(answer: pl.Expr) -> pl.Expr:
    """An answer as strings compare it: canonical LaTeX, no math delimiters, no
    whitespace, no trailing period. Case is kept (`A` and `a` are different answers)."""
    text = latex_canonical(answer).str.replace_all(_MATH_DELIMITERS, "")
    return text.str.replace_all(r"\s+", "").str.strip_chars_end(".")


def answer_keys(answers: Sequence[str | None]) -> list[str | None]:
    """`answer_key` of each answer (for callers that hold a few Python strings)."""
    import polars as pl

    return pl.select(answer_key(pl.Series("a", list(answers), pl.String))).to_series().to_list()


# Answers that say there is none. Both sides are compared after answer_key (which drops
# whitespace: 'see solution' is 'seesolution') and lower-casing.
PLACEHOLDERS = (
    "", "-", "--", "?", "proof", "notfound", "not found", "n/a", "na", "nan", "null", "none", "none given",
    "see solution", "unknown", "tbd", "todo",
)  # fmt: skip


@cache
def placeholder_keys(placeholders: tuple[str, ...] = PLACEHOLDERS) -> frozenset[str]:
    """The placeholders after answer_key and lower-casing ('see solution' is 'seesolution')."""
    return frozenset(k.lower() for k in answer_keys(list(placeholders)))


def is_placeholder(answers: Sequence[str | None]) -> list[bool]:
    """Whether each answer says there is none (a PLACEHOLDERS form, after answer_key)."""
    keys = placeholder_keys()
    return [key is not None and key.lower() in keys for key in answer_keys(answers)]
