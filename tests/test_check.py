"""`oxa check`: parts against the records written beside them, leftovers of killed work,
the catalog, rows through the views; `--repair`; `oxa status`'s quick pass; the one-line
errors and exit codes of commands that meet damage (issue 31, items 3, 4 and 6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.check import repair_workspace, run_check
from curate.workspace import Workspace, WorkspaceDamaged
from curate.workspace.parts import PART_GLOB, file_sha256, read_sum, sum_path
from curate.workspace.workspace import OPENED
from tests.conftest import query, write_jsonl
from tests.pools import add_pool

ROWS = [
    {"problem": f"What is {i} + 1?", "response": f"It is \\boxed{{{i + 1}}}", "gold": str(i + 1), "verdict": "correct"}
    for i in range(6)
]
DEAD_PID = 2**22 + 17  # above Linux's default pid_max: never a live process


def oxa(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `oxa ARGS` as the console script does (main(): errors as one line and their exit code)."""
    from curate.cli import main

    OPENED.clear()
    old = sys.argv
    sys.argv = ["oxa", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def pool(ws: Workspace, tmp_path: Path) -> Workspace:
    add_pool(ws, tmp_path, ROWS)
    return ws


def kinds(report) -> list[tuple[str, str]]:
    return sorted((f.kind, f.path) for f in report.findings)


def part(ws: Workspace, folder: str) -> Path:
    return next(p for p in sorted((ws.root / folder).glob(PART_GLOB)) if not p.name.startswith("_schema"))


def flip_byte(path: Path, offset: int = 200) -> None:
    """Change one byte in place, keeping the size and the modification time (as a bad disk
    or a careless tool that restores times would)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_every_part_oxa_writes_has_its_content_recorded(pool):
    parts = [p for p in pool.root.rglob("*.parquet") if "subsets" not in p.parts]
    assert len(parts) >= 8
    for path in parts:
        record = read_sum(path)
        if path.parent.name == "verify" and not path.name.startswith("_schema"):
            continue  # written by the test helper, not a stage: no record
        assert record is not None, path
        assert record["sha256"] == file_sha256(path)  # the naive reference: hash the file again
        assert record["bytes"] == path.stat().st_size
        assert record["rows"] == pq.read_metadata(path).num_rows
    report = run_check(pool)
    assert report.findings == []
    assert report.notes == [
        "recorded the hash of 1 parts written before oxa kept records (their footers and columns are right)"
    ]
    assert run_check(pool).notes == []  # recorded once


def test_flipped_bytes_are_found_by_check_and_a_changed_time_by_status(pool, capsys):
    samples = part(pool, "pool/samples")
    flip_byte(samples)
    assert run_check(pool, deep=False).findings == []  # same size, same time: only the hash tells
    assert kinds(run_check(pool)) == [("damaged-part", samples.relative_to(pool.root).as_posix())]
    samples.touch()  # an edit in the usual way changes the time: status notices without hashing
    code, out, _ = oxa(["status", pool.root], capsys)
    assert code == 0
    assert f"changed-part: {samples.relative_to(pool.root).as_posix()}: was modified after oxa wrote it" in out
    assert f"`oxa check {pool.root}` checks everything" in out


def test_same_bytes_with_a_new_time_are_not_damage(pool):
    samples = part(pool, "pool/samples")
    os.utime(samples, ns=(0, 10**18))  # `cp -r` without -p, a restore from a backup
    assert kinds(run_check(pool, deep=False)) == [("changed-part", samples.relative_to(pool.root).as_posix())]
    assert run_check(pool).findings == []  # the hash agrees; the record takes the new time
    assert run_check(pool, deep=False).findings == []


def test_a_damaged_part_stops_every_command_with_one_line_naming_it(pool, capsys):
    samples = part(pool, "pool/samples")
    with open(samples, "r+b") as handle:
        handle.truncate(samples.stat().st_size // 2)
    relative = samples.relative_to(pool.root).as_posix()
    for args in (
        ["sql", pool.root, "SELECT count(*) FROM samples"],
        ["select", pool.root, "sft-random", "--set", "n=3"],
    ):
        code, _, err = oxa(args, capsys)
        assert code == 4, err
        assert len(err.strip().splitlines()) == 1 and err.strip().startswith("error: ")
        assert str(pool.root / relative) in err and f"`oxa check {pool.root}`" in err
    code, out, err = oxa(["status", pool.root], capsys)  # status still shows what it can
    assert code == 0, err
    assert f"damaged-part: {relative}: is " in out and "row counts unavailable" in out
    code, out, _ = oxa(["check", pool.root], capsys)
    assert code == 4 and f"damaged-part: {relative}" in out
    code, out, _ = oxa(["check", pool.root, "--repair"], capsys)
    assert code == 4  # moved aside, and the samples it held are now missing: orphans are left for the user
    assert (pool.root / ".oxa-quarantine").is_dir() and not samples.exists()
    assert len(list((pool.root / ".oxa-quarantine").rglob(samples.name))) == 1  # moved, not deleted


def test_a_lost_part_is_named_and_ingesting_its_source_again_restores_it(pool, tmp_path, capsys):
    problems = part(pool, "pool/problems")
    problems.unlink()
    relative = problems.relative_to(pool.root).as_posix()
    report = run_check(pool)
    assert kinds(report) == [("missing-part", relative)]
    assert "ingest its source again" in report.findings[0].fix
    repair_workspace(pool, report)
    assert [(f.kind, f.path) for f in run_check(pool).findings] == [
        ("orphan-rows", "answers"),
        ("orphan-rows", "pool/samples"),
    ]
    source = sorted(tmp_path.glob("pool-*.jsonl"))[0]
    from curate.ingest import IngestConfig, run_ingest

    mapping = {"problem": "q", "response": "a", "source": "src", "gold_answer": "gold"}
    run_ingest(pool, IngestConfig([str(source)], mapping=mapping, generator="teacher-r1"))
    assert query(pool, "SELECT count(*) FROM problems") == [(6,)]
    assert run_check(pool).findings == []


def test_foreign_and_copied_files_named_like_parts_are_found_and_moved_aside(pool):
    samples = part(pool, "pool/samples")
    copy = samples.with_name(samples.name[:-24] + "0123456789abcdef.parquet")
    copy.write_bytes(samples.read_bytes())
    foreign = pool.root / "verify" / "mine-fedcba9876543210.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    with pytest.raises(WorkspaceDamaged, match="mine-fedcba9876543210.parquet is named like a part of verify/ but oxa"):
        query(pool, "SELECT count(*) FROM samples")  # its rows would enter verify without ids
    report = run_check(pool)  # the copy has no record yet: it gets one, and the next check compares
    assert kinds(report) == [("foreign-file", "verify/mine-fedcba9876543210.parquet")]
    assert "lacks its table's columns (sample_id string" in report.findings[0].problem
    repair_workspace(pool, report)
    report = run_check(pool)
    assert kinds(report) == [("duplicate-part", copy.relative_to(pool.root).as_posix())]
    repair_workspace(pool, report)
    assert run_check(pool).findings == []
    assert query(pool, "SELECT count(*), count(DISTINCT sample_id) FROM samples") == [(6, 6)]
    assert not foreign.exists() and not copy.exists()


def test_leftovers_of_killed_work_are_found_and_cleared(pool, capsys):
    dead = f"~{_host()}~{DEAD_PID}"
    exports = pool.root / "exports"
    exports.mkdir()
    stale = [
        pool.root / "pool" / "samples" / f".ingest-x.parquet.0123456789abcdef{dead}.partial",
        exports / f".sft.jsonl.0123456789abcdef{dead}.partial",
    ]
    for path in stale:
        path.write_text("half")
    live = pool.root / "verify" / f".verify.parquet.0123456789abcdef~{_host()}~{os.getpid()}.partial"
    live.write_text("being written")
    (pool.root / ".locks" / "pool.lock").write_text(f"`oxa ingest` (pid {DEAD_PID}, since 2026-12-06T10:00:00+00:00)")
    killed = pool.root / "runs" / "verify" / "20261206T100000Z-deadbeef"
    killed.mkdir(parents=True)
    (killed / "config.json").write_text(json.dumps({"stage": "verify", "fingerprint": "deadbeef", "owner": dead}))
    report = run_check(pool, deep=False)
    assert kinds(report) == sorted(
        [
            ("killed-run", "runs/verify/20261206T100000Z-deadbeef"),
            ("stale-lock", ".locks/pool.lock"),
            *[("stale-temporary", p.relative_to(pool.root).as_posix()) for p in stale],
        ]
    )
    assert f"{live.relative_to(pool.root).as_posix()} is being written by a running process" in report.notes
    code, out, _ = oxa(["check", pool.root, "--repair"], capsys)
    assert code == 0, out
    assert not any(p.exists() for p in stale) and live.exists()
    assert (pool.root / ".locks" / "pool.lock").read_text() == ""
    assert json.loads((killed / "stats.json").read_text())["status"] == "killed"
    assert [r["status"] for r in pool.status()["runs"] if r["run_id"] == killed.name] == ["killed"]


def test_a_select_killed_after_publishing_is_named_with_its_subset(pool, capsys):
    from curate.select import load_select_config, run_select

    stats = run_select(pool, load_select_config("sft-random", ["n=3", "name=r3"]))
    run_dir = pool.run_dir("select", stats["run_id"])
    (run_dir / "stats.json").unlink()  # killed between publishing the version and writing its record
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "owner": f"~{_host()}~{DEAD_PID}"}))
    [found] = run_check(pool, deep=False).findings
    assert (found.kind, found.path) == ("killed-run", run_dir.relative_to(pool.root).as_posix())
    assert f"it had published subset r3/{stats['version']}, which is whole and kept" in found.problem
    assert oxa(["check", pool.root, "--repair"], capsys)[0] == 0
    assert json.loads((run_dir / "stats.json").read_text())["status"] == "killed"


def test_a_run_record_that_cannot_be_read_is_named_and_commands_go_on(pool, capsys):
    stats = next((pool.root / "runs" / "ingest").glob("*/stats.json"))
    stats.write_text('{"status": "do')
    code, out, _ = oxa(["status", pool.root], capsys)
    assert code == 0 and "record damaged" in out
    assert f"damaged-record: {stats.relative_to(pool.root).as_posix()}" in out
    assert oxa(["sql", pool.root, "SELECT count(*) FROM runs"], capsys)[0] == 0


def test_a_missing_catalog_is_rebuilt_by_check_repair(pool, capsys):
    pool.catalog_path.unlink()
    for args in (["status", pool.root], ["init", pool.root]):
        code, _, err = oxa(args, capsys)
        assert code == 4, err
        assert f"`oxa check {pool.root} --repair`" in err and err.count("\n") == 1
    code, out, _ = oxa(["check", pool.root], capsys)
    assert code == 4 and "catalog-missing: catalog.duckdb" in out
    assert oxa(["check", pool.root, "--repair"], capsys)[0] == 0
    import duckdb

    with duckdb.connect(str(pool.catalog_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM samples").fetchall() == [(6,)]


def test_a_damaged_catalog_is_moved_aside_and_rebuilt(pool, capsys):
    with open(pool.catalog_path, "r+b") as handle:
        handle.truncate(12288)  # DuckDB's headers and little more: a copy cut short
    assert oxa(["sql", pool.root, "SELECT count(*) FROM samples"], capsys)[0] == 0  # oxa reads the folders
    report = run_check(pool, deep=False)
    assert kinds(report) == [("catalog-damaged", "catalog.duckdb")]
    repair_workspace(pool, report)
    assert len(list((pool.root / ".oxa-quarantine").rglob("catalog.duckdb"))) == 1
    import duckdb

    with duckdb.connect(str(pool.catalog_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM samples").fetchall() == [(6,)]


def test_a_stage_whose_bookkeeping_fails_after_publishing_says_so(ws, tmp_path, capsys, monkeypatch):
    source = write_jsonl(tmp_path / "pool.jsonl", [{"problem": "1+1?", "response": "\\boxed{2}"}])

    def full_disk(self, purpose):
        raise OSError(28, "No space left on device", str(self.catalog_path))

    monkeypatch.setattr(Workspace, "sync_catalog", full_disk)
    code, _, err = oxa(["ingest", ws.root, source, "--map", "problem=problem", "--map", "response=response"], capsys)
    assert code == 3, err
    assert "published parts of its pool, then failed" in err and "`oxa check" in err
    monkeypatch.undo()
    assert query(ws, "SELECT count(*) FROM samples") == [(1,)]
    [stats] = [json.loads(p.read_text()) for p in (ws.root / "runs" / "ingest").glob("*/stats.json")]
    assert stats["status"] == "committed"


def test_an_export_in_place_whose_record_fails_exits_3(pool, tmp_path, capsys, monkeypatch):
    from curate.select import load_select_config, run_select

    run_select(pool, load_select_config("sft-random", ["n=3", "name=r3"]))
    output = tmp_path / "r3.json"

    def full_disk(self, purpose):
        raise OSError(28, "No space left on device", str(self.catalog_path))

    monkeypatch.setattr(Workspace, "sync_catalog", full_disk)
    code, _, err = oxa(["export", pool.root, "r3", "--format", "alpaca", "-o", output], capsys)
    assert code == 3, err
    assert f"oxa export published {output}, then failed" in err
    assert len(json.loads(output.read_text())) == 3  # the export is whole
    monkeypatch.undo()
    [stats] = [json.loads(p.read_text()) for p in (pool.root / "runs" / "export").glob("*/stats.json")]
    assert (stats["status"], stats["published"]) == ("committed", str(output))


def test_exit_codes_are_the_documented_ones(ws, tmp_path, capsys):
    from curate.workspace import errors

    assert (errors.EXIT_ERROR, errors.EXIT_COMMITTED, errors.EXIT_DAMAGED, errors.EXIT_NO_SPACE) == (2, 3, 4, 5)
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for code, what in ((2, "nothing was written"), (3, "published"), (4, "damaged"), (5, "disk")):
        assert f"| {code} |" in readme and what in readme
    assert oxa(["sql", ws.root, "SELECT nope"], capsys)[0] == 2


# -- a real full disk and a read-only workspace (a small tmpfs; needs root) -------------------


def _tmpfs(tmp_path: Path, size: str):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    yield from _tmpfs(tmp_path, "3m")


@pytest.fixture
def own_disk(tmp_path):
    yield from _tmpfs(tmp_path, "64m")


def test_a_full_disk_is_one_line_and_nothing_is_published(small_disk, tmp_path, capsys):
    ws = Workspace.init(small_disk / "ws")
    rows = [
        {"problem": f"Problem {i}: " + os.urandom(600).hex(), "response": os.urandom(900).hex()} for i in range(3000)
    ]
    source = write_jsonl(tmp_path / "big.jsonl", rows)  # about 9 MB, mostly incompressible
    code, _, err = oxa(["ingest", ws.root, source, "--map", "problem=problem", "--map", "response=response"], capsys)
    assert code == 5, err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]  # after the progress lines
    assert line.startswith("error: the disk is full") and "Traceback" not in err
    assert "nothing half-written was published" in line
    print(line)
    # read-only commands work on the full disk
    code, out, _ = oxa(["sql", ws.root, "SELECT count(*) AS n FROM samples"], capsys)
    assert code == 0 and "0" in out
    assert oxa(["status", ws.root], capsys)[0] == 0
    assert oxa(["check", ws.root, "--repair"], capsys)[0] == 0  # removes the dead writer's temporaries
    assert not list(ws.root.rglob("*.partial"))


def test_read_only_commands_never_need_to_write(own_disk, tmp_path, capsys):
    ws = Workspace.init(own_disk / "ws")
    add_pool(ws, tmp_path, ROWS)
    from curate.select import load_select_config, run_select

    config = load_select_config("sft-random", ["n=3", "name=c3"])
    run_select(ws, config)
    run = next((ws.root / "runs" / "select").iterdir())
    shutil.copytree(run, run.with_name(run.name + "-2"))  # a run the catalog has not seen: it would be rewritten
    subprocess.run(["mount", "-o", "remount,ro", str(own_disk)], check=True)
    for args in (
        ["status", ws.root],
        ["sql", ws.root, "SELECT count(*) FROM samples"],
        ["subsets", "list", ws.root],
        ["subsets", "show", ws.root, "c3"],
        ["check", ws.root],
    ):
        code, out, err = oxa(args, capsys)
        assert code == 0, (args, out, err)
        assert "Traceback" not in err


def _host() -> str:
    from curate.workspace.parts import owner_tag

    return owner_tag().split("~")[1]


def test_sum_path_is_hidden_and_no_part_glob_takes_it(pool):
    samples = part(pool, "pool/samples")
    assert sum_path(samples).name.startswith(".") and not sum_path(samples).match(PART_GLOB)


def test_a_full_disk_under_a_plot_is_an_oserror_naming_the_file(small_disk):
    """matplotlib's own PNG writer hid ENOSPC behind an AttributeError; a card's, eval's and
    GRPO's plots are rendered in memory and written as bytes, so the CLI sees the full disk."""
    from curate.subsets.plots import new_figure, save_png

    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(OSError):
        while True:
            os.write(fd, b"\0" * (1 << 16))
    os.close(fd)
    figure = new_figure()
    figure.add_subplot().plot([1, 2, 3])
    with pytest.raises(OSError) as raised:
        save_png(figure, small_disk / "plot.png")
    assert raised.value.errno == 28
    from curate.cli import explain_failure

    assert str(explain_failure(raised.value)).startswith("the disk is full")


def test_oxa_sql_output_is_new_or_overwritten_whole(pool, tmp_path, capsys):
    """Issue 32: `oxa sql -o` overwrote an existing file silently while `oxa export` refused."""
    out = tmp_path / "counts.csv"
    out.write_text("mine\n")
    code, _, err = oxa(["sql", pool.root, "SELECT count(*) AS n FROM samples", "-f", "csv", "-o", out], capsys)
    assert code == 2 and f"{out} exists; choose another path or pass --overwrite" in err
    assert out.read_text() == "mine\n"
    code, _, err = oxa(
        ["sql", pool.root, "SELECT count(*) AS n FROM samples", "-f", "csv", "-o", out, "--overwrite"], capsys
    )
    assert code == 0, err
    assert out.read_text() == "n\n6\n"
    assert not list(tmp_path.glob(".*.partial"))


def test_every_command_takes_h_and_oxa_has_a_version(capsys):
    from curate import __version__

    code, out, _ = oxa(["--version"], capsys)
    assert (code, out) == (0, f"oxa {__version__}\n")
    for args in (["-h"], ["status", "-h"], ["subsets", "show", "-h"], ["check", "-h"]):
        code, out, _ = oxa(args, capsys)
        assert code == 0 and "Usage:" in out, args
