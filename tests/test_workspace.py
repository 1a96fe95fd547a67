"""The workspace: layout, status, the catalog from elsewhere, moves, locks, reruns."""

import filecmp
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.verify import VerifyConfig, run_verify
from curate.workspace import OxaError, Workspace, WorkspaceBusy
from curate.workspace.query import run_query
from tests.conftest import REAL_DATA, query, write_jsonl

ROWS = [
    {"category": "math", "source": "s", "input": f"What is {i}+{i}?", "output": f"\\boxed{{{2 * i}}}"}
    for i in range(20)
]


def test_init_creates_layout_and_status_is_empty(ws):
    for folder in ("pool/problems", "pool/samples", "answers", "verify", "scores", "runs", "subsets"):
        assert (ws.root / folder).is_dir()
    assert ws.status()["tables"] == {"problems": 0, "samples": 0, "answers": 0, "verify": 0, "contamination": 0}
    assert ws.status()["runs"] == []
    assert Workspace.init(ws.root).root == ws.root  # idempotent


def test_init_and_open_refuse_what_is_not_a_workspace(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(OxaError, match="is not empty"):
        Workspace.init(tmp_path / "busy")
    with pytest.raises(OxaError, match="not an oxa workspace"):
        Workspace.open(tmp_path / "busy")


def test_status_lists_runs_with_fingerprints(ws, tmp_path):
    stats = run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "a.jsonl", ROWS))]))
    info = ws.status()
    assert info["tables"] == {"problems": 20, "samples": 20, "answers": 0, "verify": 0, "contamination": 0}
    [run] = info["runs"]
    assert run["stage"] == "ingest" and run["run_id"] == stats["run_id"] and run["status"] == "done"
    assert stats["run_id"].split("-")[1] == run["config_fingerprint"][:8]
    assert query(ws, "SELECT stage, status, json_extract(stats, '$.funnel.accepted')::INT FROM runs") == [
        ("ingest", "done", 20)
    ]


DUCKDB_SHELL = Path(sys.executable).parent / "duckdb"  # from the duckdb-cli package (dev extra)


def _duckdb_shell(catalog: Path, sql: str) -> str:
    """Run SQL on the catalog with the plain `duckdb` shell, from another directory."""
    assert DUCKDB_SHELL.exists(), "install the dev extra: it brings the duckdb shell (duckdb-cli)"
    result = subprocess.run(
        [str(DUCKDB_SHELL), "-readonly", "-csv", "-noheader", str(catalog), "-c", sql],
        cwd="/",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_catalog_opens_in_the_duckdb_shell_from_anywhere_and_after_a_move(ws, tmp_path):
    run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "a.jsonl", ROWS))]))
    assert _duckdb_shell(ws.catalog_path, "SELECT count(*) FROM candidates") == "20"
    assert (
        _duckdb_shell(
            ws.catalog_path, "SELECT oxa_problem_id('What  is 0+0? ') = problem_id FROM problems WHERE source_row = 0"
        )
        == "true"
    )
    moved = tmp_path / "moved"
    shutil.move(str(ws.root), moved)
    reopened = Workspace.open(moved)
    assert reopened.status()["tables"]["samples"] == 20  # oxa re-points the views
    assert _duckdb_shell(reopened.catalog_path, "SELECT count(*) FROM samples") == "20"
    again = run_ingest(reopened, IngestConfig([str(tmp_path / "a.jsonl")]))
    assert again["funnel"]["duplicate"] == 20


def test_second_writer_fails_at_once_naming_the_first(ws, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from curate.workspace import Workspace
            with Workspace.open({str(ws.root)!r}).lock("pool", "oxa ingest"):
                print("locked", flush=True)
                time.sleep(30)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(WorkspaceBusy, match=rf"being written \(pool\) by `oxa ingest` \(pid {holder.pid},"):
            run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "a.jsonl", ROWS))]))
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its holder: the next writer goes ahead
    assert run_ingest(ws, IngestConfig([str(tmp_path / "a.jsonl")]))["funnel"]["accepted"] == 20
    assert ws.status()["tables"]["samples"] == 20


def _hold_catalog(ws: Workspace, read_only: bool) -> subprocess.Popen:
    """Another program (here a plain DuckDB client) with the catalog open, as a shell left open."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(ws.catalog_path)!r}, read_only={read_only}); "
            "print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "open"
    return holder


def test_a_catalog_held_for_writing_stops_a_stage_before_it_starts_naming_the_holder(ws, tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", ROWS)
    holder = _hold_catalog(ws, read_only=False)
    try:
        with pytest.raises(
            WorkspaceBusy,
            match=rf"catalog .* is open for writing in another process: pid {holder.pid} \(`.*python.* -c import duckdb, time.*`\); "
            "oxa ingest could not record its run: close that process",
        ):
            run_ingest(ws, IngestConfig([str(src)]))
        assert not (ws.root / "runs" / "ingest").exists()  # nothing started
        # reading goes on: oxa reads through its own in-memory views, not the held file
        info = ws.status()
        assert info["tables"]["samples"] == 0 and info["catalog"] is None  # up to date: nothing waits
        assert run_query(ws, "SELECT count(*) FROM candidates") == (["count_star()"], [(0,)])
    finally:
        holder.kill()
        holder.wait()
    assert run_ingest(ws, IngestConfig([str(src)]))["funnel"]["accepted"] == 20


def test_a_stage_that_finishes_while_the_catalog_is_held_keeps_its_result(ws, tmp_path, capsys):
    holder = _hold_catalog(ws, read_only=True)  # a `duckdb -readonly` shell: oxa can read, not write
    try:
        stats = run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "a.jsonl", ROWS))]))
        assert stats["status"] == "done" and stats["funnel"]["accepted"] == 20
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and f"run {stats['run_id']} is done and recorded in" in err
        assert [(r["run_id"], r["status"]) for r in ws.status()["runs"]] == [(stats["run_id"], "done")]
        assert query(ws, "SELECT run_id, status FROM runs") == [(stats["run_id"], "done")]
        assert _duckdb_shell(ws.catalog_path, "SELECT count(*) FROM runs") == "0"  # the file waits
    finally:
        holder.kill()
        holder.wait()
    assert ws.status()["catalog"] is None  # the next command brings the file up to date
    assert _duckdb_shell(ws.catalog_path, "SELECT run_id || ' ' || status FROM runs") == f"{stats['run_id']} done"


def test_oxa_sql_is_read_only_in_fact(ws, tmp_path):
    run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "a.jsonl", ROWS))]))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    refused = {
        f"COPY (SELECT * FROM samples) TO '{tmp_path}/out.csv'": "COPY statements are refused",
        f"COPY (SELECT 1 AS a) TO '{ws.root}/pool/samples/x.parquet'": "COPY statements are refused",
        f"EXPORT DATABASE '{tmp_path}/dump'": "EXPORT statements are refused",
        "INSTALL httpfs": "LOAD statements are refused",
        f"ATTACH '{tmp_path}/new.duckdb'": "ATTACH statements are refused",
        "SET enable_external_access = true": "SET statements are refused",
        "CREATE TABLE t AS SELECT 1": "CREATE statements are refused",
        "SELECT 1; SELECT 2": "one query at a time; got 2 statements",
        "SELECT * FROM read_csv('/etc/passwd')": 'Permission Error: Cannot access file "/etc/passwd"',
        f"SELECT * FROM read_text('{ws.root}/../a.jsonl')": "Permission Error",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')": "Permission Error",
    }
    for statement, message in refused.items():
        with pytest.raises(OxaError, match=re.escape(message)):
            run_query(ws, statement)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    # files inside the workspace stay readable
    assert run_query(ws, f"SELECT count(*) FROM read_parquet('{ws.root}/pool/samples/*.parquet')")[1] == [(20,)]
    for folder in ("pool/samples", "answers", "runs", "catalog.duckdb"):
        with pytest.raises(OxaError, match=r"--output .* (inside the workspace's|is the workspace's)"):
            run_query(ws, "SELECT * FROM samples", "parquet", ws.root / folder / "x.parquet")
    assert not (ws.root / "pool" / "samples" / "x.parquet").exists()
    run_query(ws, "SELECT sample_id FROM samples", "parquet", ws.root / "exports.parquet")
    assert pq.read_table(ws.root / "exports.parquet").num_rows == 20


def test_a_stray_file_in_a_table_folder_is_reported_never_read(ws, tmp_path):
    run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "a.jsonl", ROWS))]))
    samples = ws.table_folder("samples")
    pq.write_table(pa.table({"other": [1]}), samples / "result.parquet")  # `oxa sql -o` by an older oxa
    (samples / "notes.txt").write_text("x")
    (ws.root / "answers" / "copy (1).parquet").write_bytes(b"not parquet at all")
    (ws.root / "pool" / "problems" / "_schema-0000000000000000.parquet").rename(
        ws.root / "pool" / "problems" / "_schema.parquet"  # a workspace made before parts were read by name
    )
    assert ws.status()["stray_files"] == [
        "answers/copy (1).parquet",
        "pool/samples/notes.txt",
        "pool/samples/result.parquet",
    ]
    assert ws.status()["tables"] == {"problems": 20, "samples": 20, "answers": 0, "verify": 0, "contamination": 0}
    assert query(ws, "SELECT count(*) FROM candidates WHERE sample_id IS NULL") == [(0,)]
    assert (ws.root / "pool" / "problems" / "_schema-0000000000000000.parquet").is_file()
    stats = run_verify(ws, VerifyConfig(workers=1))  # the stray samples file is not a sample
    assert sum(stats["verdicts"].values()) == 20


def test_reingest_adds_nothing_and_outputs_are_byte_identical(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", ROWS + ROWS[:3])
    first, second = Workspace.init(tmp_path / "one"), Workspace.init(tmp_path / "two")
    for ws in (first, second):
        for source in (src, REAL_DATA / "benchmarks" / "aime24.json"):
            run_ingest(ws, IngestConfig([str(source)]))
    again = run_ingest(first, IngestConfig([str(src)]))
    assert again["funnel"] == {"read": 23, "accepted": 0, "duplicate": 23, "rejected": 0, "filtered": 0}
    assert again["added"] == {"problems": 0, "samples": 0, "answers": 0, "scores": 0, "verdicts": 0}
    for folder in ("pool/samples", "pool/problems", "answers"):
        names_one = sorted(p.name for p in (first.root / folder).glob("*.parquet"))
        names_two = sorted(p.name for p in (second.root / folder).glob("*.parquet"))
        assert names_one == names_two and len(names_one) >= 2
        match, mismatch, errors = filecmp.cmpfiles(first.root / folder, second.root / folder, names_one, shallow=False)
        assert mismatch == [] and errors == []


def test_curation_core_imports_without_torch():
    code = "import sys, curate.cli, curate.ingest, curate.workspace, train; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_removing_a_score_tag_folder_drops_its_view(ws, tmp_path):
    src = write_jsonl(tmp_path / "l.jsonl", [{"query": "Q?", "responses": ["\\boxed{1}"], "ppl": [2.0]}])
    run_ingest(ws, IngestConfig([str(src)], scores_tag="base"))
    assert query(ws, "SELECT ppl_base FROM candidates") == [(2.0,)]
    shutil.rmtree(ws.root / "scores" / "base")
    assert query(ws, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'scores_base'") == [(0,)]
    assert "ppl_base" not in [c for (c,) in query(ws, "SELECT column_name FROM (DESCRIBE candidates)")]


def test_score_tags_that_name_the_same_view_are_refused_before_anything_is_written(ws):
    ws.ensure_scores_folder("q-7b")
    for other in ("q_7b", "Q.7B"):
        with pytest.raises(OxaError, match="would name the same view and columns as the workspace's tag 'q-7b'"):
            ws.ensure_scores_folder(other)
        with pytest.raises(OxaError, match="would name the same view"):
            run_ingest(ws, IngestConfig(["unused.jsonl"], scores_tag=other))
    assert ws.score_tags() == ["q-7b"] and not list((ws.root / "runs").glob("ingest/*"))
    ws.ensure_scores_folder("q-7b")  # the same tag again is fine
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM scores_q_7b").fetchone() == (0,)
    # a clash made by hand: every command says which folders, not a Binder Error
    (ws.root / "scores" / "q_7b").mkdir()
    with pytest.raises(OxaError, match=r"scores/q-7b and scores/q_7b in .* name the same view \(scores_q_7b\)"):
        ws.refresh_catalog()
