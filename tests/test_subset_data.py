"""A subset's data.parquet is written in rank order a bucket at a time (curate/select/subset_data.py):
the rows and their order equal one ORDER BY rank, row groups close by rows or bytes, and the bytes
do not depend on the order the join streamed its rows in."""

from __future__ import annotations

import hashlib

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.select import subset_data
from curate.select.subset_data import row_group_bounds, write_in_rank_order

SCHEMA = pa.schema([("sample_id", pa.string()), ("response", pa.string())])


def test_row_groups_close_at_the_byte_cap_or_the_row_cap(monkeypatch):
    monkeypatch.setattr(subset_data, "ROW_GROUP_BYTES", 100)
    monkeypatch.setattr(subset_data, "ROW_GROUP_ROWS", 3)
    assert row_group_bounds(np.array([40, 40, 40, 250, 10, 10, 10, 10, 60, 50])) == [
        (0, 2),  # 40 + 40 fits, a third 40 would pass 100
        (2, 3),  # 40, then 250 alone passes the cap
        (3, 4),  # a row bigger than the cap is a row group of its own
        (4, 7),  # three small rows: the row cap
        (7, 9),  # 10 + 60; 50 more would pass 100
        (9, 10),
    ]
    assert row_group_bounds(np.array([], dtype=np.int64)) == []


@pytest.fixture
def shuffled_rows() -> duckdb.DuckDBPyConnection:
    """500 rows whose ranks are a seeded permutation, with responses of 1 to 3,000 characters."""
    rng = np.random.default_rng(7)
    ranks = rng.permutation(500)
    lengths = rng.integers(1, 3000, 500)
    con = duckdb.connect()
    table = pa.table(
        {
            "sample_id": [f"s{i:03d}" for i in range(500)],
            "response": ["x" * int(n) for n in lengths],
            "rank": pa.array(ranks, pa.int64()),
        }
    )
    con.register("rows", table)
    return con


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rank_order_over_many_buckets_equals_one_sort(shuffled_rows, tmp_path, monkeypatch):
    monkeypatch.setattr(subset_data, "BUCKET_ROWS", 37)
    monkeypatch.setattr(subset_data, "STREAM_ROWS", 64)
    monkeypatch.setattr(subset_data, "ROW_GROUP_BYTES", 20_000)
    out = tmp_path / "data.parquet"
    written = write_in_rank_order(shuffled_rows, "SELECT * FROM rows", 500, out, SCHEMA)
    assert written == 500
    expected = shuffled_rows.sql("SELECT sample_id, response FROM rows ORDER BY rank").fetchall()
    assert [tuple(r.values()) for r in pq.read_table(out).to_pylist()] == expected
    meta = pq.ParquetFile(out).metadata
    sizes = [len(sample_id) + len(response) for sample_id, response in expected]
    # row groups never span buckets of 37 ranks, and each is cut by the byte cap inside its bucket
    groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert sum(groups) == 500
    expected_groups = []
    for start in range(0, 500, 37):
        bucket = np.array(sizes[start : start + 37])
        expected_groups += [stop - begin for begin, stop in row_group_bounds(bucket)]
    assert groups == expected_groups
    assert list(tmp_path.iterdir()) == [out]  # the bucket files are gone


def test_the_bytes_do_not_depend_on_the_stream_order(shuffled_rows, tmp_path, monkeypatch):
    monkeypatch.setattr(subset_data, "BUCKET_ROWS", 50)
    monkeypatch.setattr(subset_data, "STREAM_ROWS", 64)
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_in_rank_order(shuffled_rows, "SELECT * FROM rows ORDER BY sample_id", 500, first, SCHEMA)
    write_in_rank_order(shuffled_rows, "SELECT * FROM rows ORDER BY sample_id DESC", 500, second, SCHEMA)
    assert _digest(first) == _digest(second)


def test_a_subset_larger_than_the_open_buckets_widens_them(shuffled_rows, tmp_path, monkeypatch):
    monkeypatch.setattr(subset_data, "BUCKET_ROWS", 10)
    monkeypatch.setattr(subset_data, "MAX_BUCKETS", 4)  # 500 ranks: buckets of 125, 4 files
    opened = []
    real = pa.ipc.new_file
    monkeypatch.setattr(pa.ipc, "new_file", lambda path, schema: opened.append(path) or real(path, schema))
    out = tmp_path / "data.parquet"
    assert write_in_rank_order(shuffled_rows, "SELECT * FROM rows", 500, out, SCHEMA) == 500
    assert len(opened) == 4
    expected = shuffled_rows.sql("SELECT sample_id FROM rows ORDER BY rank").fetchall()
    assert pq.read_table(out, columns=["sample_id"]).to_pylist() == [{"sample_id": r[0]} for r in expected]
