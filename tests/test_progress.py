"""Progress in logs: what a long command prints when stderr is not a terminal."""

import json
import subprocess
import sys

from curate.workspace.progress import LogProgress
from tests.conftest import write_jsonl


def _log(unit: str = "") -> tuple[LogProgress, list[str], list[float]]:
    lines: list[str] = []
    now = [0.0]
    return LogProgress(lines.append, unit, clock=lambda: now[0]), lines, now


def test_a_log_gets_a_line_at_most_every_30_seconds_with_rate_and_eta():
    log, lines, now = _log()
    for t, done in [(0, 0), (10, 100), (29.9, 299), (30, 300), (45, 450), (61, 610), (70, 700)]:
        now[0] = t
        log("samples", done, 1000)
    assert lines == [
        "samples: 0/1,000 (0.0%), elapsed 0s",
        "samples: 300/1,000 (30.0%), 10/s, ETA 1m10s, elapsed 30s",
        "samples: 610/1,000 (61.0%), 10/s, ETA 39s, elapsed 1m01s",
    ]
    log.close()  # the last state, not yet written
    assert lines[-1] == "samples: 700/1,000 (70.0%), 10/s, ETA 30s, elapsed 1m10s"
    log.close()
    assert len(lines) == 4  # written once


def test_a_new_phase_counts_its_rate_afresh_and_sizes_read_as_sizes():
    log, lines, now = _log("bytes")
    log("file 1/2 a.jsonl: 10 records", 0, 2_600_000_000)
    now[0] = 30
    log("file 1/2 a.jsonl: 10 records", 1_300_000_000, 2_600_000_000)
    now[0] = 60
    log("judging", 5, 0)  # another total: a new phase; total 0 is unknown
    now[0] = 3700
    log("judging", 36_005, 0)
    assert lines == [
        "file 1/2 a.jsonl: 10 records: 0 B/2.6 GB (0.0%), elapsed 0s",
        "file 1/2 a.jsonl: 10 records: 1.3 GB/2.6 GB (50.0%), 43.3 MB/s, ETA 30s, elapsed 30s",
        "judging: 5 B, elapsed 0s",
        "judging: 36.0 KB, 10 B/s, elapsed 1h00m",
    ]


def test_ingest_in_a_log_shows_files_and_bytes_and_lists_what_it_did_not_read(tmp_path):
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "curate.cli", "init", ws], check=True, capture_output=True)
    folder = tmp_path / "sources"
    (folder / ".hidden").mkdir(parents=True)
    write_jsonl(
        folder / "a.jsonl", [{"input": f"What is {i}+1?", "output": "\\boxed{1}", "category": "math"} for i in range(2)]
    )
    write_jsonl(folder / "b.jsonl", [{"input": "What is 2+2?", "output": "\\boxed{4}", "category": "math"}])
    (folder / "empty.jsonl").write_bytes(b"")
    (folder / "notes.txt").write_text("not data")
    (folder / "table.csv").write_text("problem,response\n")
    (folder / ".DS_Store").write_bytes(b"\0")
    write_jsonl(folder / ".hidden" / "old.jsonl", [{"problem": "x", "response": "y"}])
    total = sum(p.stat().st_size for p in (folder / "a.jsonl", folder / "b.jsonl"))
    assert total < 1000  # shown in bytes

    result = subprocess.run(
        [sys.executable, "-m", "curate.cli", "ingest", ws, folder, "--preset", "acereason"],
        capture_output=True,
        text=True,
    )  # stderr is a pipe, as under nohup or SLURM
    assert result.returncode == 0, result.stderr
    progress = result.stderr.splitlines()
    # a JSON file's bytes count once it is read (a parquet file's as its rows are)
    assert progress[0] == f"file 1/3 a.jsonl: 2 records: 0 B/{total} B (0.0%), elapsed 0s"
    assert progress[-1].startswith(f"3/3 files (empty.jsonl: 0 records): {total} B/{total} B (100.0%)")
    skipped = [
        {"path": str(folder / ".DS_Store"), "reason": "hidden"},
        {"path": str(folder / ".hidden"), "reason": "hidden"},
        {"path": str(folder / "notes.txt"), "reason": "not a readable type (.txt)"},
        {"path": str(folder / "table.csv"), "reason": "not a readable type (.csv)"},
    ]
    for entry in skipped:
        assert f"skipped ({entry['reason']}): {entry['path']}" in result.stdout
    assert f"empty (no records): {folder / 'empty.jsonl'}" in result.stdout
    [stats_path] = (ws / "runs" / "ingest").glob("*/stats.json")
    stats = json.loads(stats_path.read_text())
    assert stats["skipped_files"] == skipped
    assert stats["empty_files"] == [str(folder / "empty.jsonl")]
    assert stats["summary"].endswith("; 4 files skipped; 1 empty")
    assert [f["records"] for f in stats["files"]] == [2, 1, 0]
