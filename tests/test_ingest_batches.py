"""Batches bounded by bytes as well as rows (issue 33): 32,768 R1 traces of 100 KB held
2+ GB at once, so ingest's memory grew with the responses' length."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

import curate.ingest.sources as sources
from curate.ingest import IngestConfig, run_ingest
from curate.ingest.sources import SourceFile, read_batches
from curate.workspace import Workspace
from tests.conftest import query, write_jsonl

LONG = 100_000  # characters per response


def _rows(n: int) -> dict:
    problems = [f"What is {i} + {i}?" for i in range(n)]
    responses = [f"<think>{str(i) * (LONG // len(str(i)))}</think> \\boxed{{{2 * i}}}" for i in range(n)]
    return {"category": ["math"] * n, "source": ["s"] * n, "input": problems, "output": responses}


def test_long_rows_come_in_smaller_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BATCH_BYTES", 1 << 20)  # 1 MiB: about ten rows of 100 KB
    pq.write_table(pa.table(_rows(60)), tmp_path / "pool.parquet", row_group_size=60)
    parquet = [b.table.num_rows for b in read_batches(SourceFile(tmp_path / "pool.parquet", "parquet"))]
    assert sum(parquet) == 60 and max(parquet) <= 11, parquet
    records = [{"problem": p, "response": r} for p, r in zip(_rows(60)["input"], _rows(60)["output"])]
    jsonl = write_jsonl(tmp_path / "pool.jsonl", records)
    lines = [len(b.rows) for b in read_batches(SourceFile(jsonl, "jsonl"))]
    assert sum(lines) == 60 and max(lines) <= 11, lines
    (tmp_path / "pool.json").write_text(json.dumps(records), encoding="utf-8")
    array = [len(b.rows) for b in read_batches(SourceFile(tmp_path / "pool.json", "json"))]
    assert sum(array) == 60 and max(array) <= 11, array
    short = pa.table({"category": ["math"] * 100, "source": ["s"] * 100, "input": ["q"] * 100, "output": ["a"] * 100})
    pq.write_table(short, tmp_path / "short.parquet")
    assert [b.table.num_rows for b in read_batches(SourceFile(tmp_path / "short.parquet", "parquet"))] == [100]


def test_the_same_pool_in_small_batches_ingests_the_same_rows(tmp_path, monkeypatch):
    pq.write_table(pa.table(_rows(40)), tmp_path / "pool.parquet")
    tables = []
    for name, limit in (("whole", 1 << 30), ("small", 1 << 20)):
        monkeypatch.setattr(sources, "BATCH_BYTES", limit)
        ws = Workspace.init(tmp_path / name)
        stats = run_ingest(ws, IngestConfig([str(tmp_path / "pool.parquet")], preset="acereason"))
        assert stats["funnel"]["accepted"] == 40
        tables.append(query(ws, "SELECT sample_id, problem_id, md5(response), source_row FROM samples ORDER BY 1"))
    assert tables[0] == tables[1]
