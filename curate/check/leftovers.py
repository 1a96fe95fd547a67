"""What interrupted work leaves behind, and the records beside the data: temporary files of
dead writers anywhere in the workspace (exports included), lock files naming a dead
process, runs killed before their record, run and catalog files that cannot be read,
and files in the tables' folders that no table reads. All of it is cheap to find: the
quick pass of `oxa status` runs it whole.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import duckdb

from curate.check.finding import (
    CLEAR_LOCK,
    FINISH_PUBLICATION,
    MARK_KILLED,
    QUARANTINE,
    REBUILD_CATALOG,
    REMOVE_TEMP,
    Finding,
)
from curate.check.parts import QUARANTINE_DIR
from curate.workspace.parts import owner_state
from curate.workspace.workspace import CATALOG, Workspace, read_json_record


def leftover_findings(ws: Workspace) -> tuple[list[Finding], list[str]]:
    """(findings, notes): notes are what is fine but worth saying (a live write)."""
    findings: list[Finding] = []
    notes: list[str] = []
    _temporaries(ws, findings, notes)
    findings += _trace_leftovers(ws)
    findings += _stale_locks(ws)
    findings += _run_records(ws)
    findings += _catalog(ws)
    findings += [
        Finding(
            "stray-file",
            path.relative_to(ws.root).as_posix(),
            "is in a table's folder but is not an oxa part, so no table reads it",
            "move it out of the workspace, or `oxa check WS --repair` moves it aside",
            QUARANTINE,
        )
        for path in ws.stray_files()
    ]
    return findings, notes


def _temporaries(ws: Workspace, findings: list[Finding], notes: list[str]) -> None:
    """Every `.partial` under the root: a part, small file, subset version or export
    being written. A dead writer's goes (nothing ever reads it); a live one, or one of
    another host, is only named."""
    for current, dirs, files in os.walk(ws.root):
        here = Path(current)
        if here == ws.root:
            dirs[:] = [d for d in dirs if d != QUARANTINE_DIR]
        for name in sorted([*files, *dirs]):
            if not (name.startswith(".") and name.endswith(".partial")):
                continue
            path = (here / name).relative_to(ws.root).as_posix()
            state = owner_state(name)
            if state == "dead":
                findings.append(
                    Finding(
                        "stale-temporary",
                        path,
                        "was being written by a process that has ended (a killed run); nothing reads it",
                        "`oxa check WS --repair` removes it",
                        REMOVE_TEMP,
                    )
                )
            else:
                who = "a running process" if state == "alive" else "a process of another host or an older oxa"
                notes.append(f"{path} is being written by {who}")
        dirs[:] = [d for d in dirs if not d.endswith(".partial")]


def _trace_leftovers(ws: Workspace) -> list[Finding]:
    """What a killed `oxa trace` left in its run folder: its scratch database and spill
    folder, and a publication of answers and conflicts it had recorded but not finished."""
    from curate.trace.run_files import stale_scratch_files

    found = [
        Finding(
            "stale-scratch",
            path.relative_to(ws.root).as_posix(),
            "is the scratch of a trace run that was killed; nothing reads it",
            "`oxa check WS --repair` removes it (so does the next `oxa trace`)",
            REMOVE_TEMP,
        )
        for path in stale_scratch_files(ws)
    ]
    for record in sorted(ws.root.glob("runs/trace/*/publication.json")):
        config = read_json_record(record.parent / "config.json") or {}
        if owner_state(config.get("owner", "")) == "alive":
            continue  # a trace publishing now
        found.append(
            Finding(
                "unfinished-publication",
                record.relative_to(ws.root).as_posix(),
                "records a publication of answers and trace_conflicts that its trace was killed before finishing "
                "(trace_conflicts may lack the rows that explain answers' conflicts)",
                "`oxa check WS --repair` finishes it (so does the next `oxa trace`)",
                FINISH_PUBLICATION,
            )
        )
    return found


def _stale_locks(ws: Workspace) -> list[Finding]:
    """A lock file still naming its holder while no process holds it: its holder was
    killed. Harmless (the lock is free), but it names a process that is gone."""
    found = []
    for path in sorted((ws.root / ".locks").glob("*.lock")):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                holder = handle.read().strip()
                if not holder:
                    continue
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # held now: a live writer
                fcntl.flock(handle, fcntl.LOCK_UN)
        except OSError:
            continue
        found.append(
            Finding(
                "stale-lock",
                path.relative_to(ws.root).as_posix(),
                f"names {holder}, which ended without releasing it (the lock itself is free)",
                "`oxa check WS --repair` empties it",
                CLEAR_LOCK,
            )
        )
    return found


def _run_records(ws: Workspace) -> list[Finding]:
    """Runs whose record cannot be read, and runs killed before they wrote one (with
    what they had published by then: a subset whose card names the run)."""
    published = _published_by_run(ws)
    found = []
    for run_dir in sorted(p.parent for p in (ws.root / "runs").glob("*/*/config.json")):
        relative = run_dir.relative_to(ws.root).as_posix()
        config = read_json_record(run_dir / "config.json")
        stats_path = run_dir / "stats.json"
        if config is None:
            found.append(_unreadable(ws, run_dir / "config.json"))
            continue
        if stats_path.exists():
            if read_json_record(stats_path) is None:
                found.append(_unreadable(ws, stats_path))
            continue
        if owner_state(config.get("owner", "")) != "dead":
            continue  # running, or another host's
        extra = (
            f"; it had published {published[run_dir.name]}, which is whole and kept"
            if run_dir.name in published
            else ""
        )
        found.append(
            Finding(
                "killed-run",
                relative,
                f"was killed before it finished (its process ended without writing stats.json){extra}",
                "`oxa check WS --repair` records it as killed; parts it published are whole and a rerun skips them",
                MARK_KILLED,
            )
        )
    return found


def _published_by_run(ws: Workspace) -> dict[str, str]:
    found = {}
    for card_path in (ws.root / "subsets").glob("*/*/card.json"):
        card = read_json_record(card_path)
        if card and isinstance(card.get("run_id"), str):
            found[card["run_id"]] = f"subset {card_path.parent.parent.name}/{card_path.parent.name}"
    return found


def _unreadable(ws: Workspace, path: Path) -> Finding:
    return Finding(
        "damaged-record",
        path.relative_to(ws.root).as_posix(),
        "is not readable JSON (cut short or overwritten), so the run it records is left out of the catalog",
        "`oxa check WS --repair` moves it aside (the run then shows as killed; its parts are checked on their own)",
        QUARANTINE,
    )


def _catalog(ws: Workspace) -> list[Finding]:
    """The catalog file: present, and a DuckDB database that opens (when no other
    process holds it)."""
    path = ws.catalog_path
    if not path.exists():
        return [
            Finding(
                "catalog-missing",
                CATALOG,
                "is missing (the folders hold the record; the catalog is a copy for your shell)",
                "`oxa check WS --repair` rebuilds it from the parts, runs and subsets",
                REBUILD_CATALOG,
            )
        ]
    try:
        with duckdb.connect(str(path), read_only=True) as con:  # and read what oxa keeps there
            con.execute("SELECT count(*) FROM oxa_meta, runs, subsets, duckdb_views()").fetchall()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        if "lock" in message.lower():
            return []  # another process has it open: it is a database
        return [
            Finding(
                "catalog-damaged",
                CATALOG,
                f"cannot be opened by DuckDB ({message[:200]})",
                "`oxa check WS --repair` moves it aside and rebuilds it from the parts, runs and subsets",
                REBUILD_CATALOG,
            )
        ]
    return []
