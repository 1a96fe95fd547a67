"""Fuzzy matching for tracing: the pool problems that no exact or normalized match
found, against every reference row, without comparing all pairs.

Blocking (sql/trace/fuzzy_blocks.sql, in DuckDB): each problem's rarest tokens pick the
reference rows that share them, at most `max_candidates` per problem. Scoring: the
rapidfuzz ratio of the two `match_text`s (0-1), vectorized over all candidate pairs.
A pair at `threshold` or above is then read edit by edit (`text_edit`): templated
problems score as high as real copies, and what tells them apart is what changed.

- The numbers (with `same_numbers`): one text's numbers must all be among the other's.
- A changed expression (a number, a variable, an operator or a LaTeX command replaced,
  inserted or removed anywhere but a leading label such as "Problem 12.") is never a
  copy: `(2x+3)/(px-2)` is not `(x-3)/(ax-2)`, nor `f(x+y)` `f(xy)`. Such pairs are no match.
- A substituted word ("perimeter" for "area"; "what number of" for "how many" too) may
  be a rewording or another problem: the match is kept with edit = 'substituted_word',
  and needs the pool's responses to confirm its answer (curate/trace/evidence.py) even
  where unconfirmed matches are kept.
- Typos (a word and one that differs by a letter or two), dropped or added words and a
  leading or trailing label are drift: edit = NULL.
"""

from __future__ import annotations

import re
from collections import Counter

import duckdb
import numpy as np
import pyarrow as pa
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from curate.workspace.resources import sql_text

FUZZY_METHOD = 3  # method ranks: 1 exact, 2 normalized, 3 fuzzy
_BATCH = 65_536  # candidate pairs scored at a time
MATCHES = pa.schema(
    [
        ("problem_id", pa.string()),
        ("ref", pa.int64()),
        ("method", pa.int32()),
        ("score", pa.float64()),
        ("edit", pa.string()),  # NULL: the same text or drift; 'substituted_word'
    ]
)
_NUMBER = re.compile(r"[0-9]+")
# match_text is lower case: LaTeX commands, words, numbers, and any other single character
_TOKEN = re.compile(r"\\[a-z]+|[a-z]+|[0-9]+|[^\sa-z0-9]")
_NEUTRAL = frozenset(",.;:!?'\"")  # punctuation that a copy may add or drop
_WORD_LETTERS = 2  # a single letter is a variable ("x"), except the article "a" and "i"
_TYPO_RATIO = 75  # fuzz.ratio of two words that differ by a typo ("recieve", "receive")
SUBSTITUTED_WORD, CHANGED_EXPRESSION = "substituted_word", "changed_expression"


def numbers_in(text: str) -> Counter[str]:
    """The numbers of a text as a multiset of digit strings (signs and leading zeros dropped)."""
    return Counter(n.lstrip("0") or "0" for n in _NUMBER.findall(text))


def numbers_agree(a: str, b: str) -> bool:
    """Whether the numbers of one text are all among the other's (as multisets)."""
    na, nb = numbers_in(a), numbers_in(b)
    return not (na - nb) or not (nb - na)


def _is_word(token: str) -> bool:
    return token.isalpha() and (len(token) >= _WORD_LETTERS or token in ("a", "i"))


def text_edit(a: str, b: str) -> str | None:
    """What turns match_text `a` into `b`: None for drift (typos, dropped or added
    words, a label before or after), 'substituted_word', or 'changed_expression'."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    edit = None
    for op in Levenshtein.opcodes(ta, tb):
        if op.tag == "equal":
            continue
        old, new = ta[op.src_start : op.src_end], tb[op.dest_start : op.dest_end]
        at_edge = op.tag != "replace" and (op.src_start == 0 or op.src_end == len(ta) and op.dest_end == len(tb))
        if at_edge:  # "Problem 12." before the text, or a label after it
            continue
        changed = old + new
        if not all(_is_word(t) or t in _NEUTRAL for t in changed):
            return CHANGED_EXPRESSION
        if op.tag == "replace":
            typos = len(old) == len(new) and all(
                min(len(x), len(y)) >= 4 and fuzz.ratio(x, y) >= _TYPO_RATIO for x, y in zip(old, new)
            )
            if not typos:
                edit = SUBSTITUTED_WORD
    return edit


def fuzzy_matches(
    con: duckdb.DuckDBPyConnection,
    threshold: float,
    same_numbers: bool,
    rare_tokens: int,
    max_df: int,
    max_candidates: int,
) -> pa.Table:
    """(problem_id, ref, method, score) of the fuzzy matches of the problems in table
    `unmatched` against table `refs`, on connection `con` (which holds the macros of
    sql/trace/macros.sql). Candidate pairs stream through in batches."""
    candidates = con.sql(
        sql_text("trace/fuzzy_blocks.sql"),
        params={"rare_tokens": rare_tokens, "max_df": max_df, "max_candidates": max_candidates},
    ).to_arrow_reader(_BATCH)
    found = [_score(batch, threshold, same_numbers) for batch in candidates]
    return pa.concat_tables(found) if found else MATCHES.empty_table()


def _score(batch: pa.RecordBatch, threshold: float, same_numbers: bool) -> pa.Table:
    pool_texts, ref_texts = batch.column("pool_text").to_pylist(), batch.column("ref_text").to_pylist()
    scores = np.zeros(0)
    if pool_texts:
        scores = process.cpdist(pool_texts, ref_texts, scorer=fuzz.ratio, workers=-1) / 100.0
    keep = scores >= threshold
    edits: list[str | None] = []
    for i in np.flatnonzero(keep):
        edit = text_edit(pool_texts[i], ref_texts[i])
        keep[i] = edit != CHANGED_EXPRESSION and (not same_numbers or numbers_agree(pool_texts[i], ref_texts[i]))
        if keep[i]:
            edits.append(edit)
    matched = pa.Table.from_batches([batch]).filter(pa.array(keep, pa.bool_()))
    return pa.table(
        {
            "problem_id": matched["problem_id"],
            "ref": matched["ref"],
            "method": pa.array([FUZZY_METHOD] * matched.num_rows, pa.int32()),
            "score": pa.array(scores[keep], pa.float64()),
            "edit": pa.array(edits, pa.string()),
        },
        schema=MATCHES,
    )
