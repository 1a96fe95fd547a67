"""Ingest's own sample ids and its compact record of the ids seen (curate/ingest/ids.py):
the same ids as the SQL macros, the same duplicates as a plain Python set, and about 12
bytes an id."""

from __future__ import annotations

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import curate.ingest.sources as sources
from curate.ingest import IngestConfig, run_ingest
from curate.ingest.ids import DigestSet, digests, first_rows, sample_ids
from curate.workspace import Workspace
from curate.workspace.resources import sql_text
from tests.conftest import query, write_jsonl

RESPONSES = [
    "The answer is \\boxed{4}.",
    "",  # not a valid sample, but the macro gives it an id
    "e\u0301 and \u00e9 are kept as given; so is \U0001f600 and a tab\there",
    None,
    "x" * 5000,  # longer than hashlib's 2047 bytes, hashed without the GIL
    "line one\r\nline two\n",
]


def _macro_ids(problem_ids: list[str], responses: list[str | None]) -> list[str | None]:
    con = duckdb.connect()
    con.execute(sql_text("macros.sql"))
    rows = pa.table({"problem_id": problem_ids, "response": pa.array(responses, pa.string())})
    con.register("rows", rows)
    return con.sql("SELECT oxa_sample_id(problem_id, response) AS id FROM rows").to_arrow_table()["id"].to_pylist()


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_sample_ids_are_the_macros(parts):
    problem_ids = [f"{i:024x}" for i in range(len(RESPONSES))]
    expected = _macro_ids(problem_ids, RESPONSES)
    assert (
        expected[3] is None
        and expected[0] == hashlib.md5(b"000000000000000000000000\n" + RESPONSES[0].encode()).hexdigest()[:24]
    )
    with ThreadPoolExecutor(2) as workers:
        plain = sample_ids(problem_ids, pa.chunked_array([pa.array(RESPONSES)]), workers, parts)
        # several chunks, a slice (offset into its buffers) and 64-bit offsets give the same
        chunked = pa.chunked_array([pa.array(RESPONSES[:2]), pa.array(["pad"] + RESPONSES[2:]).slice(1)])
        large = pa.chunked_array([pa.array(RESPONSES, pa.large_string())])
        assert plain.to_pylist() == expected
        assert sample_ids(problem_ids, chunked, workers, parts).to_pylist() == expected
        assert sample_ids(problem_ids, large, workers, parts).to_pylist() == expected


def test_digests_are_the_hex_ids_bytes():
    ids = ["00ff" * 6, "0123456789abcdef01234567", "000000000000000000000000"]
    sliced = pa.array(["pad"] + ids).slice(1)
    expected = b"".join(bytes.fromhex(i) for i in ids)  # (tolist() would drop trailing zero bytes)
    assert digests(pa.array(ids)).tobytes() == expected
    assert digests(sliced).tobytes() == expected
    assert len(digests(pa.array([], pa.string()))) == 0
    for bad in (["abc"], ["0123456789ABCDEF01234567"], [None], ["0123456789abcdef0123456g"]):
        with pytest.raises(ValueError, match="24 hex digits|lowercase hex"):
            digests(pa.array(bad, pa.string()))


def test_digest_set_agrees_with_a_python_set():
    rng = random.Random(7)
    universe = [f"{rng.getrandbits(96):024x}" for _ in range(3000)]
    universe += ["000000000000000000000000", "000000000000000000000001", "100000000000000000000000"]
    seen_set, seen = set(universe[:500]), DigestSet(digests(pa.array(universe[:500])))
    for _ in range(60):
        batch = rng.choices(universe, k=rng.randint(0, 120))
        keys = digests(pa.array(batch, pa.string()))
        found = seen.contains(keys)
        assert found.tolist() == [i in seen_set for i in batch]
        seen.add_new(keys[~found & first_rows(keys)])
        seen_set.update(batch)
    assert len(seen) == len(seen_set)
    assert seen.nbytes == 12 * len(seen_set)  # 12 bytes an id, whatever the number of runs
    assert len(seen._runs) <= int(np.log2(len(seen_set))) + 1


def test_first_rows():
    keys = digests(pa.array(["a" * 24, "b" * 24, "a" * 24, "c" * 24, "b" * 24]))
    assert first_rows(keys).tolist() == [True, True, False, True, False]


def test_duplicates_across_batches_and_runs_are_counted_as_before(tmp_path, monkeypatch):
    """Duplicates inside a batch, in a later batch of the run, and in the pool of an
    earlier run, with scores given once per sample: exact counts."""
    monkeypatch.setattr(sources, "JSON_BATCH_ROWS", 4)
    records = [
        {"problem": "p1", "response": "a", "ppl": 1.5, "n_tokens": 3},
        {"problem": "p1", "response": "a", "ppl": 2.0, "n_tokens": 3},  # in the batch: in_run
        {"problem": "p2", "response": "a"},  # same response, another problem: a new sample
        {"problem": "p2", "response": "b", "ppl": None, "n_tokens": 3},
        {"problem": "p2", "response": "b", "ppl": 1.25, "n_tokens": 3},  # next batch: in_run
        {"problem": " p1 ", "response": "c", "ppl": 3.0, "n_tokens": 4},  # the same problem p1
        {"problem": "p3", "response": "a", "ppl": 1.0, "n_tokens": 1},
    ]
    path = write_jsonl(tmp_path / "pool.jsonl", records)
    ws = Workspace.init(tmp_path / "ws")
    mapping = {"problem": "problem", "response": "response", "ppl": "ppl", "n_tokens": "n_tokens"}
    config = dict(mapping=mapping, scores_tag="teacher-ppl")
    stats = run_ingest(ws, IngestConfig([str(path)], **config))
    assert stats["funnel"] == {"read": 7, "accepted": 5, "duplicate": 2, "rejected": 0, "filtered": 0}
    assert stats["duplicates"] == {"in_pool": 0, "in_run": 2}
    # scores: rows 0, 4 (its sample's first row, 3, has no PPL), 5 and 6
    assert stats["added"] == {"problems": 3, "samples": 5, "answers": 0, "scores": 4, "verdicts": 0}
    rows = query(
        ws,
        "SELECT p.problem, s.response, s.source_row FROM samples s JOIN problems p USING (problem_id) ORDER BY s.source_row",
    )
    assert rows == [("p1", "a", 0), ("p2", "a", 2), ("p2", "b", 3), ("p1", "c", 5), ("p3", "a", 6)]

    records.append({"problem": "p4", "response": "d", "ppl": 1.5, "n_tokens": 3})
    again = run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "more.jsonl", records))], **config))
    assert again["funnel"] == {"read": 8, "accepted": 1, "duplicate": 7, "rejected": 0, "filtered": 0}
    assert again["duplicates"] == {"in_pool": 7, "in_run": 0}
    assert again["added"] == {"problems": 1, "samples": 1, "answers": 0, "scores": 1, "verdicts": 0}
