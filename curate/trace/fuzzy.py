"""Fuzzy matching for tracing: the pool problems that no exact or normalized match
found, against every reference row, without comparing all pairs.

Blocking (sql/trace/fuzzy_blocks.sql, in DuckDB): each problem's rarest tokens pick the
reference rows that share them, at most `max_candidates` per problem. Scoring: the
rapidfuzz ratio of the two `match_text`s (0-1), vectorized over all candidate pairs.
A pair is a match at `threshold` or above, and, with `same_numbers`, when the numbers
of one text are all among the other's: math problems from one template differ only in
their numbers and score high, while a real copy keeps them (it may add a label such as
"Problem 12.").
"""

from __future__ import annotations

import re
from collections import Counter

import duckdb
import numpy as np
import pyarrow as pa
from rapidfuzz import fuzz, process

from curate.workspace.resources import sql_text

FUZZY_METHOD = 3  # method ranks: 1 exact, 2 normalized, 3 fuzzy
_BATCH = 65_536  # candidate pairs scored at a time
MATCHES = pa.schema([("problem_id", pa.string()), ("ref", pa.int64()), ("method", pa.int32()), ("score", pa.float64())])
_NUMBER = re.compile(r"[0-9]+")


def numbers_in(text: str) -> Counter[str]:
    """The numbers of a text as a multiset of digit strings (signs and leading zeros dropped)."""
    return Counter(n.lstrip("0") or "0" for n in _NUMBER.findall(text))


def numbers_agree(a: str, b: str) -> bool:
    """Whether the numbers of one text are all among the other's (as multisets)."""
    na, nb = numbers_in(a), numbers_in(b)
    return not (na - nb) or not (nb - na)


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
    if same_numbers:
        for i in np.flatnonzero(keep):
            keep[i] = numbers_agree(pool_texts[i], ref_texts[i])
    matched = pa.Table.from_batches([batch]).filter(pa.array(keep, pa.bool_()))
    return pa.table(
        {
            "problem_id": matched["problem_id"],
            "ref": matched["ref"],
            "method": pa.array([FUZZY_METHOD] * matched.num_rows, pa.int32()),
            "score": pa.array(scores[keep], pa.float64()),
        },
        schema=MATCHES,
    )
