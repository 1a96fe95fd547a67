"""A killed ingest leaves nothing half-visible: its parts appear only when it ends,
problems before samples; `oxa status` names the killed run and its stale temporary
files, and the next writer removes them (never a live writer's)."""

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.subsets.subsets import publish
from curate.workspace import Workspace
from curate.workspace.parts import PartWriter, owner_tag, temp_path
from curate.workspace.schema import SAMPLES
from tests.conftest import query, write_jsonl

# Runs `oxa ingest` in a process that SIGKILLs itself at a chosen point of the write.
KILL_DRIVER = """
import os, signal, sys
from curate.workspace.parts import PartWriter
where, folder = sys.argv[1], sys.argv[2]
original = getattr(PartWriter, where)
def die_there(self, *args, **kwargs):
    if where == "publish" and self.folder.name == folder:
        os.kill(os.getpid(), signal.SIGKILL)  # before the samples are renamed into place
    result = original(self, *args, **kwargs)
    if where == "close" and self.folder.name == folder:
        os.kill(os.getpid(), signal.SIGKILL)  # the samples' last part is written, not yet visible
    return result
setattr(PartWriter, where, die_there)
from curate.cli import main
sys.argv = ["oxa", "ingest", *sys.argv[3:]]
main()
"""


def rows(n: int) -> list[dict]:
    return [
        {"category": "math", "source": "s", "input": f"What is {i}?", "output": f"\\boxed{{{i}}}"} for i in range(n)
    ]


@pytest.mark.parametrize("where", ["close", "publish"])
def test_a_killed_ingest_shows_no_sample_without_its_problem_and_is_cleaned_up(ws, tmp_path, where):
    src = write_jsonl(tmp_path / "pool.jsonl", rows(5))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_DRIVER, where, "samples", str(ws.root), str(src), "--preset", "acereason"],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr
    orphans = "SELECT count(*) FROM samples WHERE problem_id NOT IN (SELECT problem_id FROM problems)"
    assert query(ws, orphans) == [(0,)]
    assert query(ws, "SELECT count(*) FROM samples") == [(0,)]
    expected_problems = 0 if where == "close" else 5  # published before the samples
    assert query(ws, "SELECT count(*) FROM problems") == [(expected_problems,)]

    status = ws.status()
    assert [(r["stage"], r["status"]) for r in status["runs"]] == [("ingest", "killed")]
    stale = [(w["path"].rsplit("/", 1)[0], w["state"]) for w in status["unfinished_writes"]]
    assert ("pool/samples", "stale") in stale
    assert {state for _, state in stale} == {"stale"}

    # a live writer's temporary file (this process) and another host's are left alone
    live = temp_path(ws.table_folder("samples") / "ingest-live.parquet")
    live.write_bytes(b"being written")
    elsewhere = ws.table_folder("samples") / ".ingest-x.parquet.0123~another-host~1.partial"
    elsewhere.write_bytes(b"being written on another machine")

    stats = run_ingest(ws, IngestConfig([str(src)], preset="acereason"))
    assert stats["funnel"]["accepted"] == 5 and stats["added"]["problems"] == 5 - expected_problems
    assert query(ws, "SELECT count(*) FROM samples") == [(5,)]
    assert query(ws, orphans) == [(0,)]
    left = sorted((w["path"].rsplit("/", 1)[1], w["state"]) for w in ws.status()["unfinished_writes"])
    assert left == sorted([(live.name, "live"), (elsewhere.name, "unknown owner")])
    assert [r["status"] for r in ws.status()["runs"]] == ["killed", "done"]


def test_a_staged_writer_shows_nothing_until_published(tmp_path):
    writer = PartWriter(tmp_path, "ingest-x", SAMPLES, "sample_id", staged=True)
    writer.write(pa.Table.from_pylist([{"sample_id": "a"}, {"sample_id": "b"}], schema=SAMPLES))
    writer.close()
    assert list(tmp_path.glob("*.parquet")) == []
    (part,) = writer.publish("ingest-content")
    assert part.name.startswith("ingest-content-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{part.name}.sum", part.name]  # the part and its record
    assert pq.read_table(part)["sample_id"].to_pylist() == ["a", "b"]


def test_a_killed_select_leaves_a_temporary_folder_that_the_next_publish_removes(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    folder = ws.root / "subsets" / "s"
    folder.mkdir(parents=True)
    dead = folder / ".0123abcd.feedbeef{}.partial".format(owner_tag().rsplit("~", 1)[0] + "~999999999")
    dead.mkdir()
    (dead / "data.parquet").write_bytes(b"half")
    assert ws.unfinished_writes() == [{"path": f"subsets/s/{dead.name}", "state": "stale"}]
    publish(ws, "s", "0123abcd", lambda tmp: (tmp / "data.parquet").write_bytes(b"whole"))
    assert sorted(p.name for p in folder.iterdir()) == ["0123abcd"]
