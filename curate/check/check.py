"""`oxa check WS`: the whole workspace against its own records, one finding per line.

Quick (also run by `oxa status`): listings, the parts' records and footers, temporaries,
locks, run records, subset folders and the catalog; nothing is hashed. Deep (the
default of `oxa check`): every part and subset file hashed against what was recorded
when it was written, copies found, then rows read through the views (ids, orphans,
lost generations). Parts written before oxa kept records get one, once their footer and
columns are found right. `--repair` acts on what it can: a file that is not what oxa
wrote is moved aside under `.oxa-quarantine/<time>/` (never deleted), a dead writer's
temporary file is removed, a killed run is recorded as killed, a lost generation is
forgotten as done so `oxa generate` makes it again, and the catalog is rebuilt from the
folders. What it cannot re-derive (a lost teacher part) it names with the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from curate.check import finding as actions
from curate.check.finding import Finding
from curate.check.leftovers import leftover_findings
from curate.check.parts import QUARANTINE_DIR, record_unrecorded, scan_parts, sum_path
from curate.check.subsets import subset_findings
from curate.workspace.errors import OxaError, WorkspaceBusy
from curate.workspace.parts import atomic_write_json, remove_paths
from curate.workspace.workspace import CATALOG, Workspace

ProgressFn = Callable[[str, int, int], None]
_WRITER_SCOPES = ("pool", "answers", "verify", "contamination", "subsets")


@dataclass
class CheckReport:
    """What a check found (`findings`, each with its fix), what it did on the way
    (`notes`), and what `--repair` did (`repaired`); a check after the repair says what is left."""

    root: str
    deep: bool
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    parts: int = 0
    bytes: int = 0

    @property
    def damaged(self) -> bool:
        return bool(self.findings)


def open_for_check(root: str | Path) -> Workspace:
    """The workspace at `root`, even without its catalog (that is a finding, and
    `--repair` rebuilds it); a folder that is no workspace at all is refused."""
    ws = Workspace(root)
    if not ws.root.is_dir() or not (ws.root / "pool").is_dir() or not (ws.root / "runs").is_dir():
        raise OxaError(f"{ws.root} is not an oxa workspace (no pool/ and runs/ folders); check the path")
    ws.check_links()
    return ws


def run_check(ws: Workspace, deep: bool = True, progress: ProgressFn | None = None) -> CheckReport:
    report = CheckReport(root=str(ws.root), deep=deep)
    leftovers, notes = leftover_findings(ws)
    report.notes += notes
    scan = scan_parts(ws, deep, (lambda done, total: progress("hashing parts", done, total)) if progress else None)
    report.parts, report.bytes = scan.parts, scan.bytes
    report.findings += scan.findings + leftovers + subset_findings(ws, deep=deep)
    if scan.unrecorded:
        if deep:
            recorded = record_unrecorded(scan.unrecorded)
            report.notes.append(
                f"recorded the hash of {recorded:,} parts written before oxa kept records (their footers and "
                "columns are right)"
            )
        else:
            report.notes.append(
                f"{len(scan.unrecorded):,} parts have no recorded hash (written by an older oxa, or copied in): "
                "`oxa check WS` records them"
            )
    if deep:
        part_trouble = [f for f in report.findings if f.kind.endswith("-part") or f.kind == "foreign-file"]
        if part_trouble:
            report.notes.append("rows were not checked: the parts above must be repaired first")
        else:
            from curate.check.rows import row_findings

            report.findings += row_findings(ws)
    return report


def repair_workspace(ws: Workspace, report: CheckReport) -> CheckReport:
    """Act on every finding that has a repair; the catalog is rebuilt at the end."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = ws.root / QUARANTINE_DIR / stamp
    with contextlib.ExitStack() as held:  # every stage's writer lock: nothing writes while we repair
        for scope in _WRITER_SCOPES:
            held.enter_context(ws.lock(scope, "oxa check --repair"))
        for found in report.findings:
            if found.repair is None:
                continue
            report.repaired.append(_repair_one(ws, found, aside))
        rebuilt = _rebuild_catalog(ws, aside)
    report.repaired.append(rebuilt)
    return report


def _repair_one(ws: Workspace, found: Finding, aside: Path) -> str:
    path = ws.root / found.path
    if found.repair == actions.QUARANTINE:
        moved = [p for p in (path, sum_path(path)) if p.exists() or p.is_symlink()]
        for item in moved:
            _move_aside(ws, item, aside)
        return f"moved aside {found.path} -> {aside.relative_to(ws.root).as_posix()}/{found.path}"
    if found.repair == actions.REMOVE_TEMP:
        remove_paths([path])
        return f"removed {found.path}"
    if found.repair == actions.CLEAR_LOCK:
        import fcntl

        if path.stem in _WRITER_SCOPES:  # held by this repair: its release leaves it empty
            return f"emptied {found.path}"

        with open(path, "r+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return f"left {found.path}: a process holds it now"
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
        return f"emptied {found.path}"
    if found.repair == actions.MARK_KILLED:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        atomic_write_json(
            path / "stats.json",
            {
                "status": "killed",
                "run_id": path.name,
                "stage": config.get("stage"),
                "error": "its process ended before the run finished; recorded by `oxa check --repair`",
            },
        )
        return f"recorded {found.path} as killed"
    if found.repair == actions.REGENERATE:
        from curate.check.rows import forget_lost_generations

        forgotten = forget_lost_generations(ws, found.path)
        return f"forgot {forgotten:,} lost problems as done in {found.path}; run `oxa generate` again to make them"
    if found.repair == actions.FINISH_PUBLICATION:
        from curate.trace.run_files import finish_publication

        finish_publication(ws, path.parent)
        return f"finished the publication {found.path} recorded"
    if found.repair == actions.REBUILD_CATALOG:
        return f"{found.path}: rebuilt below"
    raise AssertionError(f"no repair named {found.repair!r}")


def _move_aside(ws: Workspace, item: Path, aside: Path) -> None:
    target = aside / item.relative_to(ws.root)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(item, target)


def _rebuild_catalog(ws: Workspace, aside: Path) -> str:
    """Write the catalog again from the folders; one that DuckDB cannot open goes aside first."""
    import duckdb

    catalog = ws.catalog_path
    if catalog.exists():
        try:
            duckdb.connect(str(catalog), read_only=True).close()
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise WorkspaceBusy(f"the catalog {catalog} is open in another process; close it and rerun") from exc
            for name in (CATALOG, f"{CATALOG}.wal"):
                if (ws.root / name).exists():
                    _move_aside(ws, ws.root / name, aside)
    ws.rebuild_catalog("oxa check --repair")
    return f"rebuilt {CATALOG} from the parts, runs and subsets"


def find_damage(ws: Workspace, deep: bool = True) -> list[Finding]:
    """The damaged parts a failed read may have met: the quick pass first, and when it
    finds nothing certain (and `deep`), every part hashed against its record."""
    quick = [f for f in scan_parts(ws, deep=False).findings if f.kind != "changed-part"]
    return quick or (scan_parts(ws, deep=True).findings if deep else [])
