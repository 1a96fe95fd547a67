"""Bad input loses nothing: every record is accepted, a duplicate, rejected with a
reason (file, row), or filtered, and the funnel adds up."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.workspace import OxaError
from tests.conftest import query, rejects, write_jsonl

GOOD = {"category": "math", "source": "s", "input": "What is 2+2?", "output": "\\boxed{4}"}


def row(**changes):
    return {**GOOD, **changes}


def test_jsonl_bad_rows_each_get_a_reason(ws, tmp_path):
    lines = [
        row(),  # 0 accepted
        b'{"category": "math", "input": "broken',  # 1 malformed JSON
        b'{"category": "math", "input": "caf\xe9"}',  # 2 invalid UTF-8
        "[1, 2, 3]",  # 3 not an object
        {"category": "math", "source": "s", "output": "x"},  # 4 no input
        row(output=42),  # 5 wrong type
        row(input="   \n\t"),  # 6 blank problem
        row(output=""),  # 7 empty response
        row(input="What is 3+3?", output="nul \u0000 here"),  # 8 NUL byte
        row(input="What is 5+5?", output="x" * 300),  # 9 over the size limit
        "",  # 10 blank line: not a record
        row(),  # 11 duplicate of row 0
        row(category="code"),  # 12 filtered (acereason keeps math)
        row(input="What is 4+4?", output="\\boxed{8}"),  # 13 accepted
    ]
    src = write_jsonl(tmp_path / "bad.jsonl", lines)
    stats = run_ingest(ws, IngestConfig([str(src)], preset="acereason", max_record_bytes=256))
    assert rejects(ws, stats) == [
        (1, None, "malformed_json"),
        (2, None, "invalid_utf8"),
        (3, None, "not_an_object"),
        (4, None, "missing_field:problem"),
        (5, None, "wrong_type:response"),
        (6, None, "empty_problem"),
        (7, None, "empty_response"),
        (8, None, "nul_byte:response"),
        (9, None, "record_too_large"),
    ]
    assert stats["funnel"] == {"read": 13, "accepted": 2, "duplicate": 1, "rejected": 9, "filtered": 1}
    f = stats["funnel"]
    assert f["read"] == f["accepted"] + f["duplicate"] + f["rejected"] + f["filtered"]
    assert query(ws, "SELECT source_row FROM samples ORDER BY 1") == [(0,), (13,)]
    on_disk = json.loads((ws.run_dir("ingest", stats["run_id"]) / "stats.json").read_text())
    assert on_disk["rejects"]["wrong_type:response"] == 1 and on_disk["funnel"] == stats["funnel"]


def test_byte_order_mark_is_not_data(ws, tmp_path):
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + json.dumps(row()).encode() + b"\n")
    array = tmp_path / "bom.json"
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps([row(input="What is 7?")]).encode())
    stats = run_ingest(ws, IngestConfig([str(src), str(array)], preset="acereason"))
    assert stats["funnel"] == {"read": 2, "accepted": 2, "duplicate": 0, "rejected": 0, "filtered": 0}


def test_a_file_of_nothing_but_bad_lines(ws, tmp_path):
    src = write_jsonl(tmp_path / "junk.jsonl", [b"{oops", b"[]", b"\xff"])
    stats = run_ingest(ws, IngestConfig([str(src)], preset="acereason"))
    assert rejects(ws, stats) == [(0, None, "malformed_json"), (1, None, "not_an_object"), (2, None, "invalid_utf8")]
    assert stats["funnel"] == {"read": 3, "accepted": 0, "duplicate": 0, "rejected": 3, "filtered": 0}


def test_gzip_jsonl_and_json_array(ws, tmp_path):
    gz = tmp_path / "rows.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(json.dumps(row()) + "\n" + json.dumps(row(input="What is 9?")) + "\n")
    array = tmp_path / "rows.json"
    array.write_text(json.dumps([row(input="What is 7?"), "not an object", row(input=None)]))
    stats = run_ingest(ws, IngestConfig([str(gz), str(array)], preset="acereason"))
    assert stats["funnel"] == {"read": 5, "accepted": 3, "duplicate": 0, "rejected": 2, "filtered": 0}
    assert rejects(ws, stats) == [(1, None, "not_an_object"), (2, None, "missing_field:problem")]


def test_truncated_json_array_keeps_what_came_before(ws, tmp_path):
    array = tmp_path / "cut.json"
    array.write_text(json.dumps([row(), row(input="What is 8?")])[:-40])
    stats = run_ingest(ws, IngestConfig([str(array)], preset="acereason"))
    assert stats["funnel"] == {"read": 2, "accepted": 1, "duplicate": 0, "rejected": 1, "filtered": 0}
    assert rejects(ws, stats) == [(1, None, "malformed_json")]


def test_parquet_invalid_utf8_nulls_and_nul_bytes(ws, tmp_path):
    good = pa.array(["What is 2+2?", "bad", "What is 6?", None, "What is 1?"], pa.string())
    binary = pa.array([b"\\boxed{4}", b"\xff\xfe", b"\\boxed{6}\x00", b"x", b"\\boxed{1}"], pa.binary())
    output = pa.StringArray.from_buffers(len(binary), binary.buffers()[1], binary.buffers()[2])
    table = pa.table({"category": ["math"] * 5, "source": ["s"] * 5, "input": good, "output": output})
    pq.write_table(table, tmp_path / "bad.parquet")
    stats = run_ingest(ws, IngestConfig([str(tmp_path / "bad.parquet")], preset="acereason"))
    assert rejects(ws, stats) == [
        (1, None, "invalid_utf8:response"),
        (2, None, "nul_byte:response"),
        (3, None, "missing_field:problem"),
    ]
    assert stats["funnel"] == {"read": 5, "accepted": 2, "duplicate": 0, "rejected": 3, "filtered": 0}


def test_typed_file_that_cannot_fit_fails_early_naming_the_column(ws, tmp_path):
    pq.write_table(
        pa.table({"category": ["math"], "source": ["s"], "input": [1], "output": ["x"]}), tmp_path / "t.parquet"
    )
    with pytest.raises(OxaError, match="column 'input' has type int64"):
        run_ingest(ws, IngestConfig([str(tmp_path / "t.parquet")], preset="acereason"))
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "u.parquet")
    with pytest.raises(OxaError, match=r"fits no preset; its columns are: text\.\nPresets"):
        run_ingest(ws, IngestConfig([str(tmp_path / "u.parquet")]))
    with pytest.raises(OxaError, match="does not exist"):
        run_ingest(ws, IngestConfig([str(tmp_path / "missing.jsonl")]))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(OxaError, match="unknown file type"):
        run_ingest(ws, IngestConfig([str(tmp_path / "notes.txt")]))
    with pytest.raises(OxaError, match="unknown preset 'nope'"):
        run_ingest(ws, IngestConfig([str(tmp_path / "t.parquet")], preset="nope"))
    assert query(ws, "SELECT count(*) FROM samples") == [(0,)]
