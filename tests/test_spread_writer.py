"""SpreadPartWriter: a large table's parts written by more than one thread, the same parts
every run; a small table's exactly as one PartWriter writes them."""

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.workspace.parts import PartWriter, SpreadPartWriter
from curate.workspace.schema import SAMPLES


def table(start: int, rows: int = 10) -> pa.Table:
    return pa.Table.from_pylist([{"sample_id": f"s{i:04d}"} for i in range(start, start + rows)], schema=SAMPLES)


def written(folder: Path, tables: list[pa.Table], **options) -> tuple[SpreadPartWriter, dict[str, list[str]]]:
    writer = SpreadPartWriter(folder, "ingest-x", SAMPLES, "sample_id", staged=True, **options)
    for t in tables:
        writer.write(t)
    writer.close()
    parts = writer.publish("ingest-content")
    return writer, {part.name: pq.read_table(part)["sample_id"].to_pylist() for part in parts}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tables_fill_the_first_lane_to_the_threshold_then_go_to_each_lane_in_turn(tmp_path):
    tables = [table(10 * i) for i in range(6)]
    writer, parts = written(tmp_path / "a", tables, spread_after=2 * tables[0].nbytes)
    ids = [t["sample_id"].to_pylist() for t in tables]
    # tables 0 and 1 fill the threshold; 2 is the first turn (lane 0), then 3 -> 1, 4 -> 0, 5 -> 1
    assert list(parts.values()) == [ids[0] + ids[1] + ids[2] + ids[4], ids[3] + ids[5]]
    assert writer.rows_written == 60 and writer.parts == [tmp_path / "a" / name for name in parts]
    _, again = written(tmp_path / "b", tables, spread_after=2 * tables[0].nbytes)
    assert list(again) == list(parts)  # the same names: the same rows in the same parts
    assert [digest(tmp_path / "b" / name) for name in again] == [digest(tmp_path / "a" / name) for name in parts]


def test_each_lane_rolls_its_own_parts_over(tmp_path):
    tables = [table(10 * i) for i in range(4)]
    _, parts = written(tmp_path, tables, spread_after=0, lanes=2, rows_per_part=15)
    ids = [t["sample_id"].to_pylist() for t in tables]
    lane0, lane1 = ids[0] + ids[2], ids[1] + ids[3]
    assert list(parts.values()) == [lane0[:15], lane0[15:], lane1[:15], lane1[15:]]


def test_a_small_table_is_written_as_one_part_writer_writes_it(tmp_path):
    tables = [table(0), table(10)]
    _, parts = written(tmp_path / "spread", tables)  # far below the default threshold
    single = PartWriter(tmp_path / "single", "ingest-x", SAMPLES, "sample_id", staged=True)
    for t in tables:
        single.write(t)
    single.close()
    [part] = single.publish("ingest-content")
    assert list(parts) == [part.name]
    assert digest(tmp_path / "spread" / part.name) == digest(part)


def test_an_aborted_writer_leaves_nothing_in_any_lane(tmp_path):
    writer = SpreadPartWriter(tmp_path, "ingest-x", SAMPLES, "sample_id", staged=True, spread_after=0)
    for start in (0, 10, 20):
        writer.write(table(start))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_ingest_spreads_a_large_pools_samples_over_two_lanes_with_the_same_rows(tmp_path, monkeypatch):
    import functools

    import curate.ingest.ingest as ingest_module
    import curate.ingest.sources as sources
    from curate.ingest import IngestConfig, run_ingest
    from curate.workspace import Workspace
    from tests.conftest import query
    from tests.test_ingest_batches import _rows

    monkeypatch.setattr(sources, "BATCH_BYTES", 1 << 20)  # batches of about ten 100 KB rows
    pq.write_table(pa.table(_rows(60)), tmp_path / "pool.parquet", row_group_size=60)
    rows = "SELECT sample_id, problem_id, response FROM samples ORDER BY sample_id"
    found = {}
    for name, spread_after in (("one lane", 1 << 40), ("two lanes", 2 << 20)):
        monkeypatch.setattr(
            ingest_module, "SpreadPartWriter", functools.partial(SpreadPartWriter, spread_after=spread_after)
        )
        ws = Workspace.init(tmp_path / name)
        run_ingest(ws, IngestConfig([str(tmp_path / "pool.parquet")], preset="acereason"))
        found[name] = (query(ws, rows), sorted(p.name for p in ws.table_folder("samples").glob("ingest-*.parquet")))
    assert len(found["one lane"][1]) == 1 and len(found["two lanes"][1]) == 2
    assert found["two lanes"][0] == found["one lane"][0] and len(found["one lane"][0]) == 60
