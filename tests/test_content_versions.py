"""Subset versions come from content: the same source bytes, ingested from another path
or after a `touch`, give the same part names, the same subset version and byte-identical
data.parquet."""

import os
import shutil

import pyarrow.parquet as pq

from curate.ingest import IngestConfig, run_ingest
from curate.select import SelectConfig, run_select
from curate.subsets.subsets import input_fingerprints
from curate.trace import TraceConfig, run_trace
from curate.workspace import Workspace
from tests.conftest import write_jsonl


def gold(i: int) -> str | None:
    return str(2 * i) if i < 4 else None  # the others are traced


def pool_rows() -> list[dict]:
    return [
        {"q": f"What is {i} + {i}?", "a": f"So it is \\boxed{{{2 * i}}}.", "src": "olympiads", "gold": gold(i)}
        for i in range(8)
    ]


def reference_rows() -> list[dict]:
    return [{"question": f"What is {i} + {i}?", "final": str(2 * i)} for i in range(8)]


def build(tmp_path, team: str, source, references=None) -> tuple[Workspace, dict]:
    ws = Workspace.init(tmp_path / team / "ws")
    mapping = {"problem": "q", "response": "a", "source": "src", "gold_answer": "gold"}
    run_ingest(ws, IngestConfig([str(source)], mapping=mapping, generator="teacher-r1"))
    if references is not None:
        run_trace(ws, TraceConfig([str(references)], mapping={"problem": "question", "gold_answer": "final"}))
    config = SelectConfig(name="random-4", strategy="random", n=4, seed=7, description=f"made by {team}")
    return ws, run_select(ws, config)


def test_same_bytes_from_two_paths_and_a_touch_give_one_version(tmp_path):
    (tmp_path / "team-a" / "data").mkdir(parents=True)
    (tmp_path / "team-b" / "downloads").mkdir(parents=True)
    first_copy = write_jsonl(tmp_path / "team-a" / "data" / "pool.jsonl", pool_rows())
    second_copy = shutil.copyfile(first_copy, tmp_path / "team-b" / "downloads" / "pool.jsonl")
    os.utime(second_copy, ns=(1_000_000_000, 1_000_000_000))  # another mtime: a `touch`
    first_refs = write_jsonl(tmp_path / "team-a" / "data" / "refs.jsonl", reference_rows())
    second_refs = shutil.copyfile(first_refs, tmp_path / "team-b" / "downloads" / "refs.jsonl")
    os.utime(second_refs, ns=(1_000_000_000, 1_000_000_000))

    ws_a, subset_a = build(tmp_path, "team-a", first_copy, first_refs)
    ws_b, subset_b = build(tmp_path, "team-b", second_copy, second_refs)

    assert input_fingerprints(ws_a, []) == input_fingerprints(ws_b, [])
    for table, stage in (("samples", "ingest"), ("problems", "ingest"), ("answers", "ingest"), ("answers", "trace")):
        names = sorted(p.name for p in ws_a.table_folder(table).glob(f"{stage}-*"))
        assert len(names) == 1 and names == sorted(p.name for p in ws_b.table_folder(table).glob(f"{stage}-*"))
    assert subset_a["version"] == subset_b["version"]
    data_a = ws_a.root / "subsets" / "random-4" / subset_a["version"] / "data.parquet"
    data_b = ws_b.root / "subsets" / "random-4" / subset_b["version"] / "data.parquet"
    assert data_a.read_bytes() == data_b.read_bytes()


def test_the_same_ids_with_other_bytes_give_another_version(tmp_path):
    source = write_jsonl(tmp_path / "pool.jsonl", pool_rows())
    _, first = build(tmp_path, "first", source)
    write_jsonl(source, [{**row, "src": "amc"} for row in pool_rows()])  # same problems and responses
    ws, second = build(tmp_path, "second", source)
    assert first["version"] != second["version"]
    data = ws.root / "subsets" / "random-4" / second["version"] / "data.parquet"
    assert set(pq.read_table(data)["source"].to_pylist()) == {"amc"}
