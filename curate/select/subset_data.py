"""A subset's data.parquet in selection order, in memory bounded by a bucket of ranks.

The chosen rows' text comes from a join that streams the pool in its files' order.
Sorting that by rank in one go held the whole subset's text: 3.9 GB of peak memory for
120,000 responses at R1's lengths. Instead each streamed batch is split by rank bucket
into Arrow files in a scratch folder beside the output (inside the subset's temporary
folder, so a killed run leaves nothing the next one does not remove), and each bucket in
turn is read, sorted and written. Row groups close at ROW_GROUP_ROWS rows or
ROW_GROUP_BYTES of data, whichever comes first: readers of the subset (export, train)
then hold one small row group, and the boundaries depend only on the rows, so the same
selection gives the same bytes.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BUCKET_ROWS = 1000  # ranks per bucket: about 27 MB of text at R1's median length
MAX_BUCKETS = 512  # bucket files open at once; a bigger subset gets wider buckets
STREAM_ROWS = 256  # rows per batch of the streamed join: 2,048 held 0.55 GB more at R1 lengths
ROW_GROUP_ROWS = 1000
ROW_GROUP_BYTES = 16 * 2**20


def write_in_rank_order(con: duckdb.DuckDBPyConnection, query: str, rows: int, path: Path, schema: pa.Schema) -> int:
    """Write the rows of `query` (the subset's columns and a unique `rank` from 0 to
    rows - 1) to `path` ordered by rank, without `rank`; the number of rows written."""
    bucket_rows = max(BUCKET_ROWS, math.ceil(rows / MAX_BUCKETS))
    with tempfile.TemporaryDirectory(prefix=".rank-buckets-", dir=path.parent) as scratch:
        buckets = _split_by_bucket(con.sql(query).to_arrow_reader(STREAM_ROWS), bucket_rows, Path(scratch))
        written = 0
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            for bucket in sorted(buckets):
                with pa.OSFile(str(buckets[bucket])) as source:
                    table = pa.ipc.open_file(source).read_all()
                table = table.take(pc.sort_indices(table["rank"])).drop_columns(["rank"]).cast(schema)
                for start, stop in row_group_bounds(_row_bytes(table)):
                    writer.write_table(table.slice(start, stop - start), row_group_size=stop - start)
                written += table.num_rows
    return written


def _split_by_bucket(reader: pa.RecordBatchReader, bucket_rows: int, scratch: Path) -> dict[int, Path]:
    """Each batch's rows appended to the Arrow file of their rank bucket."""
    writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
    paths: dict[int, Path] = {}
    try:
        for batch in reader:
            bucket = batch["rank"].to_numpy() // bucket_rows
            order = np.argsort(bucket, kind="stable")
            table, bucket = pa.Table.from_batches([batch]).take(order), bucket[order]
            cuts = np.flatnonzero(np.diff(bucket)) + 1
            for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(bucket)], strict=True):
                key = int(bucket[start])
                if key not in writers:
                    paths[key] = scratch / f"{key}.arrow"
                    writers[key] = pa.ipc.new_file(str(paths[key]), reader.schema)
                writers[key].write_table(table.slice(start, stop - start))
    finally:
        for writer in writers.values():
            writer.close()
    return paths


def _row_bytes(table: pa.Table) -> np.ndarray:
    """Each row's size in the row group: its strings' bytes plus 8 per other column."""
    sizes = np.zeros(table.num_rows, dtype=np.int64)
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            sizes += pc.fill_null(pc.binary_length(column), 0).to_numpy()
        else:
            sizes += 8
    return sizes


def row_group_bounds(sizes: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each row group: as many rows as fit in ROW_GROUP_BYTES, at most
    ROW_GROUP_ROWS, and at least one."""
    ends = np.cumsum(sizes)
    bounds, start = [], 0
    while start < len(sizes):
        before = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, before + ROW_GROUP_BYTES, side="right"))
        stop = min(max(stop, start + 1), start + ROW_GROUP_ROWS)
        bounds.append((start, stop))
        start = stop
    return bounds
