"""Damaged source files: a truncated or corrupt .gz, a .gz that is not gzip, a corrupt
parquet file. Each is recorded as a `corrupt_file` reject (file, row and byte reached,
why), its rows before the damage are kept, and the other files go on."""

import gzip
import json
import subprocess
import sys
import zlib

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest import IngestConfig, run_ingest, sources
from curate.trace import TraceConfig, run_trace
from curate.workspace import OxaError
from tests.conftest import query, write_jsonl


def record(i: int) -> dict:
    return {"category": "math", "source": "s", "input": f"What is {i} + {i}?", "output": f"\\boxed{{{2 * i}}}"}


def gz_lines(rows: list[dict]) -> bytes:
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return gzip.compress(text, mtime=0)


def complete_lines_in(truncated: bytes) -> tuple[int, int]:
    """Naive reference: the complete lines a truncated gzip stream still holds, and the
    bytes they take (a partial line after them is part of the unreadable rest)."""
    text = zlib.decompressobj(wbits=31).decompress(truncated)
    return text.count(b"\n"), text.rindex(b"\n") + 1


def damaged_sources(tmp_path):
    good = tmp_path / "good.jsonl.gz"
    good.write_bytes(gz_lines([record(i) for i in range(3)]))
    whole = gz_lines([record(i) for i in range(100, 400)])
    truncated = whole[: len(whole) // 2]
    (tmp_path / "cut.jsonl.gz").write_bytes(truncated)
    (tmp_path / "plain.jsonl.gz").write_text(json.dumps(record(7)) + "\n")  # not gzip
    write_jsonl(tmp_path / "more.jsonl", [record(i) for i in range(500, 502)])
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 this is no parquet file")
    (tmp_path / "junk.arrow").write_bytes(b"ARROW1 nor is this an Arrow file")
    return complete_lines_in(truncated)


def test_a_damaged_gz_or_parquet_is_recorded_and_the_other_files_go_on(ws, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    kept, kept_bytes = damaged_sources(src)
    assert 0 < kept < 300
    stats = run_ingest(ws, IngestConfig([str(src)], preset="acereason"))

    # files in name order: cut, good, junk.arrow, junk.parquet, more, plain
    damaged = {
        d["path"].rsplit("/", 1)[1]: (d["row"], d["byte"], d["reason"].split(":")[0]) for d in stats["damaged_files"]
    }
    assert sorted(damaged) == ["cut.jsonl.gz", "junk.arrow", "junk.parquet", "plain.jsonl.gz"]
    cut_row, cut_byte, cut_reason = damaged["cut.jsonl.gz"]
    assert (cut_row, cut_byte, cut_reason) == (kept, kept_bytes, "EOFError")
    assert damaged["plain.jsonl.gz"] == (0, 0, "BadGzipFile")
    assert damaged["junk.parquet"][:2] == damaged["junk.arrow"][:2] == (0, None)

    # rows before the damage are kept; each damaged file's unread rest is one rejected record
    assert stats["funnel"] == {
        "read": 3 + kept + 2 + 4,
        "accepted": 3 + kept + 2,
        "duplicate": 0,
        "rejected": 4,
        "filtered": 0,
    }
    assert stats["rejects"] == {"corrupt_file": 4}
    assert query(ws, "SELECT count(*) FROM samples") == [(3 + kept + 2,)]
    by_file = {f["path"].rsplit("/", 1)[1]: (f["records"], f["damaged"]) for f in stats["files"]}
    assert by_file == {
        "cut.jsonl.gz": (kept, True),
        "good.jsonl.gz": (3, False),
        "junk.arrow": (0, True),
        "junk.parquet": (0, True),
        "more.jsonl": (2, False),
        "plain.jsonl.gz": (0, True),
    }
    folder = ws.run_dir("ingest", stats["run_id"]) / "rejects"
    corrupt = duckdb.sql(
        f"SELECT source_file, source_row, detail FROM read_parquet('{folder}/*.parquet') "
        "WHERE reason = 'corrupt_file' ORDER BY source_file"
    ).fetchall()
    assert [(path.rsplit("/", 1)[1], row) for path, row, _ in corrupt] == [
        ("cut.jsonl.gz", kept),
        ("junk.arrow", 0),
        ("junk.parquet", 0),
        ("plain.jsonl.gz", 0),
    ]
    assert corrupt[0][2].startswith(
        f"damaged at row {kept:,}, byte {kept_bytes:,} of the decompressed stream: EOFError"
    )
    assert "damaged file(s)" in stats["summary"]


def test_a_parquet_file_damaged_after_its_first_batch_keeps_that_batch(ws, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "ARROW_BATCH_ROWS", 4)  # one batch per row group
    path = tmp_path / "two_groups.parquet"
    table = pa.Table.from_pylist([record(i) for i in range(10)])
    pq.write_table(table, path, row_group_size=4, compression="none")
    offset = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 32] = b"\xff" * 32  # the second row group's first page header
    path.write_bytes(bytes(data))
    stats = run_ingest(ws, IngestConfig([str(path)], preset="acereason"))
    assert [(d["row"], d["byte"]) for d in stats["damaged_files"]] == [(4, None)]
    assert stats["funnel"] == {"read": 5, "accepted": 4, "duplicate": 0, "rejected": 1, "filtered": 0}
    assert query(ws, "SELECT source_row FROM samples ORDER BY 1") == [(0,), (1,), (2,), (3,)]


def test_cli_exits_3_naming_the_damaged_file(ws, tmp_path):
    damaged_sources(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "curate.cli",
            "ingest",
            str(ws.root),
            str(tmp_path / "good.jsonl.gz"),
            str(tmp_path / "cut.jsonl.gz"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "Aborted" not in done.stderr
    assert f"damaged: {tmp_path / 'cut.jsonl.gz'} at row" in done.stderr
    assert "EOFError" in done.stderr
    assert "damaged files" in done.stdout


def test_other_readers_get_a_one_line_error_naming_the_damaged_file(ws, tmp_path):
    run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "pool.jsonl", [record(1)]))], preset="acereason"))
    references = tmp_path / "refs.jsonl.gz"
    references.write_bytes(gz_lines([{"problem": "What is 1 + 1?", "answer": "2"}] * 50)[:-30])
    with pytest.raises(OxaError, match=rf"^cannot read {references}: damaged at row \d+, byte \d+ of the decompressed"):
        run_trace(ws, TraceConfig([str(references)], mapping={"problem": "problem", "gold_answer": "answer"}))
