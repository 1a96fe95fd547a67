"""Subset versions come from content: the same source bytes, ingested from another path
or after a `touch`, give the same part names, the same subset version and byte-identical
data.parquet; the same rows split into other parts give the same version, and rows the
views show differently (another verify run's settings) give another."""

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from curate.cli import app
from curate.ingest import IngestConfig, run_ingest
from curate.select import SelectConfig, run_select
from curate.subsets.subsets import input_fingerprints, inputs_changed_since, load_card
from curate.trace import TraceConfig, run_trace
from curate.workspace import Workspace
from tests.conftest import query, write_jsonl

WIDE = {"COLUMNS": "200"}


def gold(i: int) -> str | None:
    return str(2 * i) if i < 4 else None  # the others are traced


def pool_rows() -> list[dict]:
    return [
        {"q": f"What is {i} + {i}?", "a": f"So it is \\boxed{{{2 * i}}}.", "src": "olympiads", "gold": gold(i)}
        for i in range(8)
    ]


def reference_rows() -> list[dict]:
    return [{"question": f"What is {i} + {i}?", "final": str(2 * i)} for i in range(8)]


def build(tmp_path, team: str, source, references=None, verdict=None) -> tuple[Workspace, dict]:
    ws = Workspace.init(tmp_path / team / "ws")
    mapping = {"problem": "q", "response": "a", "source": "src", "gold_answer": "gold"}
    run_ingest(ws, IngestConfig([str(source)], mapping=mapping, generator="teacher-r1", verdict=verdict))
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


def test_verdicts_given_at_ingest_from_two_paths_give_one_version(tmp_path):
    """A given verdict's reason names the ingest run and file: provenance, left out."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_jsonl(tmp_path / "a" / "pool.jsonl", pool_rows())
    second = shutil.copyfile(first, tmp_path / "b" / "copy.jsonl")
    ws_a, subset_a = build(tmp_path, "team-a", first, verdict="correct")
    ws_b, subset_b = build(tmp_path, "team-b", second, verdict="correct")
    reasons = [query(ws, "SELECT DISTINCT reason FROM verify") for ws in (ws_a, ws_b)]
    assert reasons[0] != reasons[1]  # each names its own file and run
    assert subset_a["version"] == subset_b["version"]


def test_the_same_ids_with_other_bytes_give_another_version(tmp_path):
    source = write_jsonl(tmp_path / "pool.jsonl", pool_rows())
    _, first = build(tmp_path, "first", source)
    write_jsonl(source, [{**row, "src": "amc"} for row in pool_rows()])  # same problems and responses
    ws, second = build(tmp_path, "second", source)
    assert first["version"] != second["version"]
    data = ws.root / "subsets" / "random-4" / second["version"] / "data.parquet"
    assert set(pq.read_table(data)["source"].to_pylist()) == {"amc"}


def test_a_verify_run_that_changes_the_verdicts_gives_another_version(tmp_path):
    """The verify view follows the last finished verify run's settings: running the
    earlier settings again writes no part (its verdicts are on disk) but changes the
    verdicts selection reads, so the version must change with them."""
    from curate.verify import VerifierSettings, VerifyConfig, run_verify

    ws = Workspace.init(tmp_path / "ws")
    rows = [{"q": f"What is {i} + {i}?", "a": f"\\boxed{{{2 * i}}}", "gold": str(2 * i)} for i in range(4)]
    rows += [
        {"q": f"What is {i} + {i}?", "a": f"<think>x</think> \\boxed{{{2 * i}}}", "gold": str(2 * i)} for i in range(4)
    ]
    source = write_jsonl(tmp_path / "pool.jsonl", rows)
    run_ingest(ws, IngestConfig([str(source)], mapping={"problem": "q", "response": "a", "gold_answer": "gold"}))
    config = SelectConfig(
        name="correct", strategy="random", n=8, where="verdict = 'correct'", max_per_problem=None, allow_shortfall=True
    )
    no_think = VerifyConfig(VerifierSettings(require_think=False), workers=1)

    run_verify(ws, VerifyConfig(workers=1))  # the paper's rule: a response needs </think>
    run_verify(ws, no_think)
    lenient = run_select(ws, config)
    run_verify(ws, VerifyConfig(workers=1))  # every verdict is on disk already: nothing written
    strict = run_select(ws, config)

    assert not strict["existing"]
    assert strict["version"] != lenient["version"]
    assert (lenient["rows"], strict["rows"]) == (8, 4)
    # `oxa subsets show` says which of a subset's inputs are no longer the workspace's rows
    cards = {name: load_card(Path(s["path"])) for name, s in (("lenient", lenient), ("strict", strict))}
    assert inputs_changed_since(ws, cards["lenient"]) == ["verify"]
    assert inputs_changed_since(ws, cards["strict"]) == []
    shown = CliRunner().invoke(app, ["subsets", "show", str(ws.root), f"correct/{lenient['version']}"], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "CHANGED since: verify" in shown.output
    shown = CliRunner().invoke(app, ["subsets", "show", str(ws.root), f"correct/{strict['version']}"], env=WIDE)
    assert "the rows it was selected from, unchanged" in shown.output
    cards["strict"]["provenance"]["libraries"]["duckdb"] = "1.4.0"  # another row hash
    assert inputs_changed_since(ws, cards["strict"]) is None
    del cards["lenient"]["provenance"]["inputs_fingerprint"]  # a card made by an older oxa
    assert inputs_changed_since(ws, cards["lenient"]) is None


def test_the_same_rows_split_into_other_parts_give_one_version(tmp_path):
    """Verdicts written into parts of 3 rows, or all into one, are the same rows: the same
    version and byte-identical data.parquet (parts are split by batch, shard and resume)."""
    from curate.verify import VerifyConfig, run_verify

    source = write_jsonl(tmp_path / "pool.jsonl", [{**row, "a": f"<think>x</think> {row['a']}"} for row in pool_rows()])
    results = []
    for team, rows_per_part in (("one-part", 1_000_000), ("parts-of-3", 3)):
        ws = Workspace.init(tmp_path / team)
        mapping = {"problem": "q", "response": "a", "source": "src", "gold_answer": "gold"}
        run_ingest(ws, IngestConfig([str(source)], mapping=mapping))
        run_verify(ws, VerifyConfig(workers=1, rows_per_part=rows_per_part))
        parts = len(list(ws.table_folder("verify").glob("verify-*.parquet")))
        config = SelectConfig(name="correct", strategy="random", n=4, where="verdict = 'correct'", seed=3)
        results.append((ws, parts, run_select(ws, config)))
    (ws_a, parts_a, subset_a), (ws_b, parts_b, subset_b) = results
    assert (parts_a, parts_b) == (1, 3)  # 8 verdicts (bad_gold where a problem has no gold)
    assert subset_a["version"] == subset_b["version"]
    data = [ws.root / "subsets" / "correct" / s["version"] / "data.parquet" for ws, _, s in results]
    assert data[0].read_bytes() == data[1].read_bytes()
    assert subset_a["rows"] == 4
