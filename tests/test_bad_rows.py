"""Bad rows stay rows (issue 31): one undecodable string rejects its record, not its
file; a gold answer holding a control character is a bad gold, not a wrong answer; an
empty `oxa sql` query is one line."""

import io
import json
import subprocess
import sys

import duckdb
import pytest

from curate.ingest import IngestConfig, json_array, run_ingest
from curate.verify import VerifierSettings, VerifyConfig, run_verify
from curate.workspace import OxaError
from curate.workspace.query import named_query, run_query
from tests.conftest import query, write_jsonl

GOOD = {"category": "math", "source": "s", "input": "What is 2+2?", "output": "\\boxed{4}"}


def reject_rows(ws, stats) -> list[tuple]:
    """(file name, source_row, reason, detail) of a run's rejects, in file order."""
    folder = ws.run_dir("ingest", stats["run_id"]) / "rejects"
    rows = duckdb.sql(
        f"SELECT source_file, source_row, reason, detail FROM read_parquet('{folder}/*.parquet') "
        "ORDER BY source_file, source_row"
    ).fetchall()
    return [(file.rsplit("/", 1)[1], row, reason, detail) for file, row, reason, detail in rows]


def surrogate_detail(field: str, char: str) -> str:
    return (
        f"'{field}' holds U+{ord(char):04X}, half of a surrogate pair without its other half "
        f"(an unpaired \\u{ord(char):04x} escape), which UTF-8 text cannot hold"
    )


def test_a_lone_surrogate_rejects_its_record_not_the_file(ws, tmp_path):
    # Python's json writes a lone surrogate as the escape \ud800 (orjson refuses it; json reads it back)
    lines = [
        GOOD,  # 0 accepted
        {**GOOD, "input": "What is \ud800 3+3?"},  # 1 the problem holds a lone high surrogate
        {**GOOD, "input": "What is 4+4?", "output": "\\boxed{8} \udc00"},  # 2 the response, a lone low one
        {**GOOD, "input": "What is 5+5? \ud83d\ude00", "output": "\\boxed{10}"},  # 3 a whole pair: an emoji, kept
        {**GOOD, "input": "What is 6+6?", "source": "s\udfff"},  # 4 another field of the record
        {**GOOD, "input": "What is 7+7?", "output": "\\boxed{14}"},  # 5 accepted
    ]
    jsonl = write_jsonl(tmp_path / "surrogates.jsonl", lines)
    assert b'"What is \\ud800 3+3?"' in jsonl.read_bytes()
    array = tmp_path / "surrogates.json"
    array.write_text(
        '[{"category": "math", "source": "s", "input": "What is 1+9?", "output": "\\\\boxed{10}"},\n'
        ' {"category": "math", "source": "s", "input": "What is 2+9?", "output": "\\\\boxed{11} \\ud800"},\n'
        ' {"category": "math", "source": "s", "input": "What is 3+9?", "output": "\\\\boxed{12}"}]\n'
    )
    stats = run_ingest(ws, IngestConfig([str(jsonl), str(array)], preset="acereason"))
    assert reject_rows(ws, stats) == [
        ("surrogates.json", 1, "lone_surrogate:response", surrogate_detail("output", "\ud800")),
        ("surrogates.jsonl", 1, "lone_surrogate:problem", surrogate_detail("input", "\ud800")),
        ("surrogates.jsonl", 2, "lone_surrogate:response", surrogate_detail("output", "\udc00")),
        ("surrogates.jsonl", 4, "lone_surrogate:source", surrogate_detail("source", "\udfff")),
    ]
    assert stats["funnel"] == {"read": 9, "accepted": 5, "duplicate": 0, "rejected": 4, "filtered": 0}
    assert stats["rejects"] == {"lone_surrogate:problem": 1, "lone_surrogate:response": 2, "lone_surrogate:source": 1}
    assert query(ws, "SELECT parse_filename(source_file), source_row FROM samples ORDER BY 1, 2") == [
        ("surrogates.json", 0),
        ("surrogates.json", 2),
        ("surrogates.jsonl", 0),
        ("surrogates.jsonl", 3),
        ("surrogates.jsonl", 5),
    ]
    assert query(ws, "SELECT problem FROM problems WHERE problem LIKE '%5+5%'") == [("What is 5+5? \U0001f600",)]


def test_unmapped_fields_with_a_lone_surrogate_reject_the_record_naming_them(ws, tmp_path):
    rows = [
        {"problem": "What is 1?", "answer": "1", "note": "fine"},
        {"problem": "What is 2?", "answer": "2", "note": "bad \ud800"},  # kept as meta: cannot be
    ]
    stats = run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "b.jsonl", rows))], preset="benchmark"))
    detail = surrogate_detail("note", "\ud800").replace("'note'", "the unmapped fields")
    assert reject_rows(ws, stats) == [("b.jsonl", 1, "lone_surrogate:meta", detail)]
    assert stats["funnel"] == {"read": 2, "accepted": 1, "duplicate": 0, "rejected": 1, "filtered": 0}


def test_bytes_that_are_not_utf8_reject_their_line_or_end_the_array_there(ws, tmp_path):
    """In JSON Lines the line is the record, so bytes that are not UTF-8 reject that line
    (as before). A JSON array cannot be resynchronized after them: the rest of the array
    is one `invalid_utf8` reject, and the items before them are kept (they were lost too
    when the bytes fell in the array's first MiB, read as one chunk)."""
    jsonl = write_jsonl(
        tmp_path / "bytes.jsonl",
        [GOOD, b'{"category": "math", "source": "s", "input": "caf\xe9?", "output": "x"}', {**GOOD, "input": "Q2"}],
    )
    array = tmp_path / "bytes.json"
    array.write_bytes(
        b'[{"category": "math", "source": "s", "input": "Q3", "output": "\\\\boxed{3}"},'
        b' {"category": "math", "source": "s", "input": "caf\xe9", "output": "x"},'
        b' {"category": "math", "source": "s", "input": "Q4", "output": "\\\\boxed{4}"}]'
    )
    stats = run_ingest(ws, IngestConfig([str(jsonl), str(array)], preset="acereason"))
    assert reject_rows(ws, stats) == [
        (
            "bytes.json",
            1,
            "invalid_utf8",
            "byte 0xe9 is not UTF-8, in the item at character 77 (the rest of the array is unreadable)",
        ),
        (
            "bytes.jsonl",
            1,
            "invalid_utf8",
            "'utf-8' codec can't decode byte 0xe9 in position 49: invalid continuation byte",
        ),
    ]
    assert stats["funnel"] == {"read": 5, "accepted": 3, "duplicate": 0, "rejected": 2, "filtered": 0}
    assert query(ws, "SELECT problem FROM problems ORDER BY 1") == [("Q2",), ("Q3",), ("What is 2+2?",)]


def test_an_array_read_in_small_chunks_stops_at_the_item_holding_the_byte(monkeypatch):
    """Chunk edges fall inside multi-byte characters and inside items, before and after the bad byte."""
    monkeypatch.setattr(json_array, "CHUNK_CHARS", 7)
    items = [{"n": i, "text": "é" * i} for i in range(12)]
    data = json.dumps(items, ensure_ascii=False).encode()
    cut = data.index(b'{"n": 9')
    broken = data[:cut] + data[cut:].replace("é".encode(), b"\xe9", 1)
    got = []
    with pytest.raises(json_array.NotUTF8) as err:
        for item in json_array.iter_json_array(io.BytesIO(broken)):
            got.append(item)
    assert got == items[:9]
    assert str(err.value) == f"byte 0xe9 is not UTF-8, in the item at character {len(data[:cut].decode()):,}"
    assert list(json_array.iter_json_array(io.BytesIO(data))) == items


FAST = VerifierSettings(deadline_s=5.0, parse_timeout_s=0, verify_timeout_s=0)


def test_a_gold_holding_a_control_character_is_a_bad_gold(ws, tmp_path):
    def box(answer: str) -> str:
        return f"<think>x</think> The answer is $\\boxed{{{answer}}}$."

    rows = [  # problem, response, gold
        ("nul", box("4"), "4\x00"),
        ("backspace", box("x+1"), "x\x08+1"),
        ("backspace written as the gold", box("x\x08+1"), "x\x08+1"),  # was correct: the very text of the gold
        ("delete", box("\\frac{1}{2}"), "\\frac{1}{2}\x7f"),
        ("escape", box("12"), "1\x1b2"),
        ("alternative", box("7"), ["7", "seven\x00"]),  # a form of the gold list holds one
        ("clean", box("4"), "4"),
        ("clean fraction", box("0.5"), "\\frac{1}{2}"),
        ("tab and newline", box("3"), "\t3\n"),  # whitespace, trimmed at ingest: not control characters here
    ]
    write_jsonl(tmp_path / "pool.jsonl", [{"problem": p, "response": r, "gold": g} for p, r, g in rows])
    mapping = {"problem": "problem", "response": "response", "gold_answer": "gold"}
    run_ingest(ws, IngestConfig([str(tmp_path / "pool.jsonl")], mapping=mapping))
    stats = run_verify(ws, VerifyConfig(settings=FAST, workers=1))
    got = query(
        ws,
        "SELECT p.problem, v.verdict, v.reason FROM verify AS v JOIN problems AS p USING (problem_id) ORDER BY 1",
    )
    assert got == [
        ("alternative", "bad_gold", "the gold answer holds control character U+0000"),
        ("backspace", "bad_gold", "the gold answer holds control character U+0008"),
        ("backspace written as the gold", "bad_gold", "the gold answer holds control character U+0008"),
        ("clean", "correct", None),
        ("clean fraction", "correct", None),
        ("delete", "bad_gold", "the gold answer holds control character U+007F"),
        ("escape", "bad_gold", "the gold answer holds control character U+001B"),
        ("nul", "bad_gold", "the gold answer holds control character U+0000"),
        ("tab and newline", "correct", None),
    ]
    assert stats["verdicts"]["bad_gold"] == 6


def oxa_process(*args):
    return subprocess.run([sys.executable, "-m", "curate.cli", *map(str, args)], capture_output=True, text=True)


def test_an_empty_sql_query_is_one_line_naming_it(ws):
    hint = "or a named query with --query NAME (`oxa sql WS --list` lists them)"
    for args, value in (
        (["--query", ""], "no query to run (--query '' names none)"),
        ([""], "the query '' holds no SQL statement"),
        (["  \n "], "the query '  \\n ' holds no SQL statement"),
    ):
        result = oxa_process("sql", ws.root, *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"error: {value}: give one (oxa sql WS 'SELECT count(*) FROM samples') {hint}"
        ]
    with pytest.raises(OxaError, match=r"^the query '-- nothing' holds no SQL statement: .*--list"):
        run_query(ws, "-- nothing")
    with pytest.raises(OxaError, match=r"^no named query ''; known: pool_summary, .*`oxa sql WS --list`"):
        named_query("")
