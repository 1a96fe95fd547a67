"""The workspace: layout, status, the catalog from elsewhere, moves, locks, reruns."""

import filecmp
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.workspace import OxaError, Workspace, WorkspaceBusy
from curate.workspace import workspace as workspace_module
from tests.conftest import REAL_DATA, query, write_jsonl

ROWS = [
    {"category": "math", "source": "s", "input": f"What is {i}+{i}?", "output": f"\\boxed{{{2 * i}}}"}
    for i in range(20)
]


def test_init_creates_layout_and_status_is_empty(ws):
    for folder in ("pool/problems", "pool/samples", "answers", "verify", "scores", "runs", "subsets"):
        assert (ws.root / folder).is_dir()
    assert ws.status()["tables"] == {"problems": 0, "samples": 0, "answers": 0, "verify": 0}
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
    assert info["tables"] == {"problems": 20, "samples": 20, "answers": 0, "verify": 0}
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


def test_held_catalog_gives_a_clear_error_not_a_hang(ws, monkeypatch):
    monkeypatch.setattr(workspace_module, "_LOCK_WAIT_SECONDS", 0.5)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(ws.catalog_path)!r}); print('open', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(WorkspaceBusy, match="held by another process"):
            ws.status()
    finally:
        holder.kill()
        holder.wait()
    assert ws.status()["tables"]["samples"] == 0  # nothing corrupt


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
