"""The floor under `oxa ingest` at R1's lengths: the CPU time of the work whose output bytes
ingest must reproduce, beside a DuckDB read of the same shards (issue 33, item 6).

Ingest's parts are fixed byte for byte (ids are MD5s of the text, the text is stored as
zstd parquet, every part is recorded with its sha256), so whatever the code, it must:

  decode    read the shards' columns (pyarrow, one thread)
  filter    keep the math rows (a copy of what is kept)
  md5       hash every response for its sample id (hashlib)
  write     write the kept rows as samples parquet, zstd, ingest's schema (to memory)
  sha256    hash each written part and each source file (the parts' records, the
            sources' content fingerprint)

Each is timed in CPU seconds of this thread over the same shards, and the sum (the
floor) is printed beside a DuckDB read of the shards (every text column's length, all
threads: its CPU seconds) and, given bench/pipeline.py's results, beside ingest's own CPU
seconds at that size. A stage cannot be cheaper than its floor without other outputs.

    .venv/bin/python bench/ingest_floor.py --pool /tmp/oxa-bench-pipeline/rows-260000/pool \
        --results /tmp/oxa-bench-pipeline/pipeline.json
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import resource
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from curate.workspace.schema import SAMPLES  # noqa: E402

COLUMNS = ["category", "source", "input", "output"]
BATCH_ROWS = 2_048  # about ingest's batch at R1 lengths (64 MiB)
PROBLEM_ID = b"0123456789abcdef01234567\n"  # a 24-digit id and the newline the sample id hashes


class Clock:
    """CPU seconds of this thread, by part."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(("decode", "filter", "md5", "write", "sha256"), 0.0)

    def timed(self, part: str, fn, *args):
        started = time.thread_time()
        result = fn(*args)
        self.seconds[part] += time.thread_time() - started
        return result


def md5_ids(responses: pa.Array) -> list[str]:
    offsets = np.frombuffer(responses.buffers()[1], np.int32, len(responses) + 1, responses.offset)
    data = memoryview(responses.buffers()[2])
    ids = []
    for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        digest = hashlib.md5(PROBLEM_ID)
        digest.update(data[start:end])
        ids.append(digest.hexdigest()[:24])
    return ids


def samples_part(kept: pa.Table, ids: list[str], source: str) -> bytes:
    n = kept.num_rows
    responses = kept["output"]
    table = pa.table(
        {
            "sample_id": ids,
            "problem_id": ids,
            "response": responses,
            "origin": pa.array(["teacher"] * n),
            "generator": pa.nulls(n, pa.string()),
            "n_chars": pc.utf8_length(responses).cast(pa.int64()),
            "source": kept["source"],
            "source_file": pa.array([source] * n),
            "source_row": pa.array(range(n), pa.int64()),
            "source_index": pa.nulls(n, pa.int32()),
        }
    ).cast(SAMPLES)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def floor(shards: list[Path]) -> tuple[dict[str, float], int]:
    clock = Clock()
    rows = 0
    for shard in shards:
        with open(shard, "rb") as source:
            clock.timed("sha256", hashlib.file_digest, source, "sha256")
        batches = pq.ParquetFile(shard).iter_batches(batch_size=BATCH_ROWS, columns=COLUMNS, use_threads=False)
        while (batch := clock.timed("decode", next, batches, None)) is not None:
            rows += batch.num_rows
            kept = clock.timed(
                "filter", lambda b=batch: pa.Table.from_batches([b]).filter(pc.equal(b["category"], "math"))
            )
            responses = kept["output"].combine_chunks()
            ids = clock.timed("md5", md5_ids, responses)
            part = clock.timed("write", samples_part, kept, ids, str(shard))
            clock.timed("sha256", lambda p=part: hashlib.sha256(p).digest())
    return clock.seconds, rows


def duckdb_read(shards: list[Path]) -> float:
    """CPU seconds (every thread) of reading the shards' text columns once."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    lengths = ", ".join(f"sum(strlen({c}))" for c in COLUMNS)
    duckdb.sql(
        f"SELECT count(*), {lengths} FROM read_parquet($files)", params={"files": list(map(str, shards))}
    ).fetchall()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, required=True, help="a bench/pipeline.py pool folder (its shards)")
    parser.add_argument("--results", type=Path, help="bench/pipeline.py's pipeline.json, for ingest's CPU seconds")
    args = parser.parse_args()
    shards = sorted(args.pool.glob("*.parquet"))
    if not shards:
        sys.exit(f"no parquet shards in {args.pool}: give a bench/pipeline.py pool folder")
    read_s = duckdb_read(shards)
    seconds, rows = floor(shards)
    total = sum(seconds.values())
    print(f"{rows:,} rows in {len(shards)} shards of {args.pool}")
    print("floor, CPU s: " + ", ".join(f"{part} {s:.1f}" for part, s in seconds.items()) + f"; total {total:.1f}")
    print(f"DuckDB read: {read_s:.1f} CPU s; the floor is {total / read_s:.1f}x the read")
    if args.results:
        sizes = json.loads(args.results.read_text())["sizes"]
        size = next((s for s in sizes if s["rows"] == rows), None)
        if size is None:
            sys.exit(f"{args.results} has no run of {rows:,} rows")
        ingest = next(s for s in size["stages"] if s["stage"] == "ingest")
        print(
            f"oxa ingest: {ingest['cpu_s']:.1f} CPU s = {ingest['cpu_s'] / total:.2f}x the floor, "
            f"{ingest['cpu_s'] / read_s:.1f}x the read"
        )


if __name__ == "__main__":
    main()
