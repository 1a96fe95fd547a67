"""Tracing's batching and fuzzy blocking, against naive references: the candidate
reference rows of sql/trace/fuzzy_blocks.sql are those its comment defines (rarest
bigrams, then the rows sharing the most), ties broken the same way; the pool is keyed
in tables of at least a batch's rows, every row once and in order."""

import re
from collections import Counter

import duckdb
import pyarrow as pa

from curate.trace.trace import _rebatched
from curate.workspace.resources import sql_text

UNMATCHED = {
    "p1": "find the sum of 12 and 15 apples",
    "p2": "find the sum of 12 and 16 apples",
    "p3": "what is the area of the red square",
    "p4": "no words of three letters: x y z",
}
REFS = [
    "find the sum of 12 and 15 apples",  # 0
    "find the sum of 12 and 15 pears",  # 1
    "find the sum of 12 and 16 apples",  # 2
    "what is the area of the blue square",  # 3
    "what is the area of the red circle",  # 4
    "what is the perimeter of the red square",  # 5
    "find the sum of 12 and 15 apples",  # 6: the same text as 0, a later row
]


def naive_blocks(unmatched: dict, refs: list, rare_tokens: int, max_df: int, max_candidates: int) -> set:
    """(problem_id, ref) pairs as fuzzy_blocks.sql's comment defines them, in plain Python."""

    def bigrams(text):
        words = re.findall(r"[a-z]{3,}|[0-9]+", text)
        return [f"{a} {b}" for a, b in zip(words, words[1:])]

    ref_tokens = [bigrams(text) for text in refs]
    df = Counter(token for tokens in ref_tokens for token in tokens)
    pairs = set()
    for pid, text in unmatched.items():
        usable = sorted({t for t in bigrams(text) if 0 < df[t] <= max_df}, key=lambda t: (df[t], t))
        rare = usable[:rare_tokens]
        shared = {ref: sum(t in tokens for t in rare) for ref, tokens in enumerate(ref_tokens)}
        ranked = sorted((ref for ref, n in shared.items() if n), key=lambda ref: (-shared[ref], ref))
        pairs |= {(pid, ref) for ref in ranked[:max_candidates]}
    return pairs


def sql_blocks(rare_tokens: int, max_df: int, max_candidates: int) -> set:
    con = duckdb.connect()
    con.execute(sql_text("trace/macros.sql"))
    con.register("unmatched", pa.table({"problem_id": list(UNMATCHED), "match_text": list(UNMATCHED.values())}))
    con.register("refs", pa.table({"ref": pa.array(range(len(REFS)), pa.int64()), "match_text": REFS}))
    params = {"rare_tokens": rare_tokens, "max_df": max_df, "max_candidates": max_candidates}
    rows = con.sql(sql_text("trace/fuzzy_blocks.sql"), params=params).fetchall()
    for pid, ref, pool_text, ref_text in rows:
        assert (pool_text, ref_text) == (UNMATCHED[pid], REFS[ref])
    assert len(rows) == len({(pid, ref) for pid, ref, _, _ in rows})
    return {(pid, ref) for pid, ref, _, _ in rows}


def test_fuzzy_blocks_are_the_naive_blocks():
    # p1's two rarest bigrams: '15 apples' (refs 0, 6), 'and 15' (0, 1, 6): 0 and 6 share both.
    # p2's: '16 apples', 'and 16' (ref 2 alone). p3's: 'red square' (5), then of 'area the',
    # 'the area', 'the red' (df 2 each) 'area the' by its text (3, 4): 3, 4, 5 share one, ref
    # order keeps 3 and 4. p4 has no bigram of the references.
    assert sql_blocks(rare_tokens=2, max_df=3, max_candidates=2) == {
        ("p1", 0),
        ("p1", 6),
        ("p2", 2),
        ("p3", 3),
        ("p3", 4),
    }
    # max_df 1: only bigrams of one reference row count
    assert sql_blocks(rare_tokens=1, max_df=1, max_candidates=1) == {("p2", 2), ("p3", 5)}
    for rare_tokens, max_df, max_candidates in [(2, 3, 2), (1, 1, 1), (6, 1000, 20), (3, 2, 1), (2, 4, 3)]:
        expected = naive_blocks(UNMATCHED, REFS, rare_tokens, max_df, max_candidates)
        assert sql_blocks(rare_tokens, max_df, max_candidates) == expected, (rare_tokens, max_df, max_candidates)


def test_rebatched_keeps_every_row_once_in_order():
    table = pa.table({"n": list(range(10))})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3))  # 3, 3, 3, 1
    tables = list(_rebatched(reader, 4))
    assert [t.num_rows for t in tables] == [6, 4]
    assert all(t.column(0).num_chunks == 1 for t in tables)
    assert pa.concat_tables(tables).column("n").to_pylist() == list(range(10))
    # tables too (the staged reference rows), in order
    tables = list(_rebatched([table.slice(0, 3), table.slice(3, 3), table.slice(6, 4)], 5))
    assert [t.column("n").to_pylist() for t in tables] == [list(range(6)), [6, 7, 8, 9]]
    empty = pa.RecordBatchReader.from_batches(table.schema, [])
    assert list(_rebatched(empty, 4)) == []
