"""The files a trace run works with in its folder, runs/trace/<run>/, and what the next
trace does with those a killed run left.

Scratch: the DuckDB file matching works in, `scratch.duckdb` (with `scratch.duckdb.wal`
and the spill folder `scratch.tmp/`), and `publish/` while it holds parts not yet
recorded for publication. A run removes them when it ends; a killed run leaves them, and
the next trace removes those of runs whose process has ended (`stale_scratch_files`).

Publication: a trace replaces the previous trace's part of `answers` and its part of
`trace_conflicts`, which live in two folders that no single rename changes together. So
both parts are written whole under `publish/` first, `publication.json` records them,
and then, in this order: the previous conflicts part goes, the new answers part comes
and the previous one goes, the new conflicts part comes, and the record goes. Killed at
any point, the trace leaves no conflict row that disagrees with `answers` (at worst
`trace_conflicts` is empty, and, killed between the new answers coming and the old
going, `answers` holds both), and the next `oxa trace` finishes the recorded
publication before its own work. Each step may be done again, so a kill while
finishing is finished by the trace after.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa

from curate.workspace import Workspace
from curate.workspace.parts import (
    PartWriter,
    atomic_write_json,
    owner_is_dead,
    part_files,
    publish_part,
    read_sum,
    remove_part,
    remove_paths,
    sum_path,
)
from curate.workspace.progress import warn
from curate.workspace.schema import ANSWERS, TRACE_CONFLICTS

SCRATCH_DATABASE = "scratch.duckdb"
SCRATCH_SPILL = "scratch.tmp"  # DuckDB's temp_directory: what joins spill beyond the memory limit
_STAGED = "publish"
_RECORD = "publication.json"
_SCHEMAS = {"answers": ANSWERS, "trace_conflicts": TRACE_CONFLICTS}


def scratch_files(run_dir: Path) -> list[Path]:
    """The scratch of one trace run that exists: its DuckDB file, WAL and spill folder,
    and its staged parts unless a publication record still needs them."""
    names = [SCRATCH_DATABASE, SCRATCH_DATABASE + ".wal", SCRATCH_SPILL]
    if not (run_dir / _RECORD).exists():
        names.append(_STAGED)
    return [run_dir / name for name in names if (run_dir / name).exists()]


def remove_scratch(run_dir: Path) -> list[Path]:
    """Remove a trace run's scratch (see scratch_files); returns what was there."""
    return remove_paths(scratch_files(run_dir))


def stale_scratch_files(ws: Workspace) -> list[Path]:
    """Scratch files of trace runs whose process has ended (its owner in config.json is
    a process of this host that is gone): runs/trace/<run>/scratch.duckdb,
    scratch.duckdb.wal, scratch.tmp/ and publish/ (the last only without a
    publication.json, which the next trace finishes instead)."""
    stale = []
    for config_path in sorted(ws.root.glob("runs/trace/*/config.json")):
        try:
            owner = json.loads(config_path.read_text(encoding="utf-8")).get("owner")
        except (OSError, ValueError, AttributeError):  # unreadable: `oxa check` names it
            continue
        if isinstance(owner, str) and owner_is_dead(owner):
            stale += scratch_files(config_path.parent)
    return stale


def remove_stale_scratch(ws: Workspace) -> list[Path]:
    """Remove what killed trace runs left to work in (never a live run's)."""
    removed = []
    for run_dir in sorted({path.parent for path in stale_scratch_files(ws)}):
        removed += remove_scratch(run_dir)
    return removed


def publish_together(ws: Workspace, run_dir: Path, prefix: str, rows: dict[str, pa.Table]) -> None:
    """Publish `rows` of answers and trace_conflicts as the trace's parts of the two,
    replacing the previous trace's (answers given at ingest stay)."""
    record = {}
    for table, schema in _SCHEMAS.items():
        writer = PartWriter(run_dir / _STAGED / table, prefix, schema, "problem_id")
        writer.write(rows[table])
        record[table] = [part.name for part in writer.close()]
    atomic_write_json(run_dir / _RECORD, record)
    finish_publication(ws, run_dir)


def finish_publication(ws: Workspace, run_dir: Path) -> None:
    """Carry out (or finish, after a kill) the publication recorded in `run_dir`; each
    step may be done again."""
    record = json.loads((run_dir / _RECORD).read_text(encoding="utf-8"))
    answers, conflicts = ws.table_folder("answers"), ws.table_folder("trace_conflicts")
    _remove_previous(conflicts, record["trace_conflicts"])
    _move_in(run_dir / _STAGED / "answers", answers, record["answers"])
    _remove_previous(answers, record["answers"])
    _move_in(run_dir / _STAGED / "trace_conflicts", conflicts, record["trace_conflicts"])
    shutil.rmtree(run_dir / _STAGED, ignore_errors=True)
    (run_dir / _RECORD).unlink()


def finish_unfinished_publications(ws: Workspace) -> list[str]:
    """Finish the publications that killed trace runs left half done (the caller holds
    the answers lock, so no other trace is publishing); returns their run ids."""
    finished = []
    for record in sorted(ws.root.glob(f"runs/trace/*/{_RECORD}")):
        finish_publication(ws, record.parent)
        finished.append(record.parent.name)
        warn(
            f"trace run {record.parent.name} was stopped while publishing its answers; its publication is now finished"
        )
    return finished


def _move_in(staged: Path, folder: Path, names: list[str]) -> None:
    for name in names:
        part = staged / name
        if part.exists():  # else moved in before the kill
            facts = read_sum(part) or {}
            # the record goes with the part: killed in between, a staged part is left without
            # one (hashed again when moved in), never a record of a part that seems lost
            sum_path(part).unlink(missing_ok=True)
            publish_part(part, folder / name, facts.get("rows"), facts.get("sha256"))


def _remove_previous(folder: Path, keep: list[str]) -> None:
    for part in part_files(folder):
        if part.name.startswith("trace-") and part.name not in keep:
            remove_part(part)
