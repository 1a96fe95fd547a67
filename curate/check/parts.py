"""Parts against their records (curate/workspace/parts.py): every parquet part oxa wrote
has `.<name>.sum` beside it with its sha256, size, rows and modification time.

The quick pass (`oxa status`, and any command that fails on a part) reads directory
listings, the records and each part's parquet footer: a part lost (a record without it),
cut short or grown (size), touched since written (time), not parquet (footer), or with
other columns than its folder's table (a foreign file named like a part). The deep pass
(`oxa check`) hashes every part, which finds bytes changed in place, and finds the same
part twice under two names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.check.finding import QUARANTINE, Finding
from curate.workspace.parts import (
    PART_GLOB,
    SCHEMA_PART,
    file_sha256,
    part_of_sum,
    read_sum,
    record_part,
    sum_files,
    sum_path,
)
from curate.workspace.schema import GENERATED_PROBLEMS, PAIR_VERDICTS, REJECTS, SCORES, TABLE_FOLDERS
from curate.workspace.workspace import Workspace

# where a quarantined file goes: never read as data, never removed by oxa
QUARANTINE_DIR = ".oxa-quarantine"
_NOT_SCANNED = ("subsets", QUARANTINE_DIR, ".locks")  # subsets have their own checks


@dataclass
class PartScan:
    """What a pass over the parts found: findings, parts without a record (written by an
    older oxa, or copied in), and how many parts and bytes were looked at."""

    findings: list[Finding]
    unrecorded: list[Path]
    parts: int = 0
    bytes: int = 0


def expected_schema(ws: Workspace, folder: Path) -> pa.Schema | None:
    """The columns a part in `folder` must have (it may have more: generated samples
    add theirs), or None for a folder oxa does not know."""
    relative = folder.relative_to(ws.root).parts
    for path, schema in TABLE_FOLDERS.values():
        if relative == tuple(path.split("/")):
            return schema
    if len(relative) == 2 and relative[0] == "scores":
        return SCORES
    if len(relative) == 3 and relative[:2] == ("pool", "self"):
        return GENERATED_PROBLEMS
    if len(relative) == 3 and relative[:2] == ("verify", ".cache"):
        return PAIR_VERDICTS
    if len(relative) == 4 and relative[0] == "runs" and relative[3] in ("rejects", "score_rejects"):
        return REJECTS
    return None


def part_folders(ws: Workspace) -> Iterator[Path]:
    """Every folder of the workspace that may hold parts, in a stable order (subset
    folders, the quarantine and the locks are not among them)."""
    for current, dirs, files in os.walk(ws.root):
        here = Path(current)
        if here == ws.root:
            dirs[:] = [d for d in dirs if d not in _NOT_SCANNED]
        dirs[:] = sorted(d for d in dirs if not d.endswith(".partial"))
        if any(name.endswith(".parquet") or name.endswith(".sum") for name in files):
            yield here


def _stage_of(ws: Workspace, folder: Path, name: str) -> str:
    """The command that writes parts like this one, for the fix."""
    relative = folder.relative_to(ws.root).parts
    if name.startswith("generate-") or relative[:2] == ("pool", "self"):
        return "`oxa check WS --repair`, then `oxa generate` with the same settings, regenerates it"
    top = relative[0] if relative else ""
    return {
        "pool": "restore it from a backup, or ingest its source again (`oxa ingest` adds what is missing)",
        "answers": "`oxa trace` again re-derives it",
        "verify": "`oxa verify` again re-derives it",
        "scores": "`oxa score` again with the same model re-derives it",
        "contamination": "`oxa decontaminate` again re-derives it",
        "runs": "it was a run's record of rejected rows; the run's stats.json keeps the counts",
    }.get(top, "restore it from a backup")


def _missing_columns(schema: pa.Schema, expected: pa.Schema) -> list[str]:
    return [
        f"{f.name} {f.type}"
        for f in expected
        if schema.get_field_index(f.name) < 0 or schema.field(f.name).type != f.type
    ]


def _footer_problem(part: Path, expected: pa.Schema | None) -> tuple[str, str] | None:
    """(kind, problem) when the part's parquet footer is unreadable or its columns are
    not its folder's; None when it reads as a part of its table."""
    try:
        with open(part, "rb") as handle:
            head = handle.read(4)
            handle.seek(-4, os.SEEK_END)
            tail = handle.read(4)
    except OSError as exc:
        return "damaged-part", f"cannot be read ({exc.strerror or exc})"
    if head != b"PAR1" or tail != b"PAR1":
        return (
            "damaged-part",
            "is not a whole parquet file (its first or last bytes are not PAR1: cut short or overwritten)",
        )
    try:
        schema = pq.read_schema(part)
    except (OSError, pa.ArrowException) as exc:
        return "damaged-part", f"has a parquet footer that cannot be read ({str(exc).splitlines()[0][:160]})"
    if expected is not None and (missing := _missing_columns(schema, expected)):
        return "foreign-file", f"is named like a part but lacks its table's columns ({', '.join(missing[:4])})"
    return None


def scan_parts(ws: Workspace, deep: bool, progress: Callable[[int, int], None] | None = None) -> PartScan:
    """Every part and record of the workspace against each other (quick), and against
    the part's bytes (deep)."""
    folders = list(part_folders(ws))
    scan = PartScan(findings=[], unrecorded=[])
    total_bytes = sum(p.stat().st_size for f in folders for p in f.glob(PART_GLOB)) if progress else 0
    done_bytes = 0
    for folder in folders:
        expected = expected_schema(ws, folder)
        by_hash: dict[str, list[Path]] = {}
        parts = sorted(folder.glob(PART_GLOB))
        for part in parts:
            scan.parts += 1
            size = part.stat().st_size
            scan.bytes += size
            finding = _check_part(ws, folder, part, expected, deep)
            record = read_sum(part)
            if finding:
                scan.findings.append(finding)
            elif record is None:
                scan.unrecorded.append(part)
            elif deep and part.name != SCHEMA_PART:
                by_hash.setdefault(record["sha256"], []).append(part)
            done_bytes += size
            if progress:
                progress(done_bytes, total_bytes)
        scan.findings += _copies(ws, by_hash)
        present = {p.name for p in parts}
        for record in sum_files(folder):
            part = part_of_sum(record)
            if part.name not in present:
                scan.findings.append(
                    Finding(
                        "missing-part",
                        _rel(ws, part),
                        "was written by oxa and is gone (its record is still there), so its rows are missing from "
                        "its table",
                        _stage_of(ws, folder, part.name),
                        QUARANTINE,  # the record goes aside: the table is then what the folder holds
                    )
                )
    return scan


def _copies(ws: Workspace, by_hash: dict[str, list[Path]]) -> list[Finding]:
    """Parts of one folder holding the same bytes: the first recorded is the original
    (a copy gets its record later, from `oxa check`), the others are copies."""
    found = []
    for same in by_hash.values():
        original, *copies = sorted(same, key=lambda p: (sum_path(p).stat().st_mtime_ns, p.name))
        found += [
            Finding(
                "duplicate-part",
                _rel(ws, copy),
                f"holds the same bytes as {original.name} (a copy: its rows would count twice)",
                "`oxa check WS --repair` moves the copy aside",
                QUARANTINE,
            )
            for copy in copies
        ]
    return found


def _check_part(ws: Workspace, folder: Path, part: Path, expected: pa.Schema | None, deep: bool) -> Finding | None:
    record = read_sum(part)
    fix = f"`oxa check WS --repair` moves it aside; {_stage_of(ws, folder, part.name)}"
    stat = part.stat()
    if record is not None and record.get("bytes") != stat.st_size:
        return Finding(
            "damaged-part",
            _rel(ws, part),
            f"is {stat.st_size:,} bytes, {record.get('bytes'):,} when oxa wrote it",
            fix,
            QUARANTINE,
        )
    changed = record is not None and record.get("mtime_ns") != stat.st_mtime_ns
    # A part whose record matches its size and time is what oxa wrote, as far as a listing
    # can tell: its footer is not read (the deep pass hashes it). Any other is read.
    if record is None or changed:
        footer = _footer_problem(part, expected)
        if footer is not None:
            kind, problem = footer
            if record is None:  # oxa never wrote it: a file dropped in under a part's name
                kind, problem = "foreign-file", f"is named like a part but oxa did not write it, and it {problem}"
            return Finding(kind, _rel(ws, part), problem, fix if kind == "damaged-part" else _foreign_fix(), QUARANTINE)
    if record is None:
        return None
    if not deep:
        if changed:
            return Finding(
                "changed-part",
                _rel(ws, part),
                "was modified after oxa wrote it (its time differs from its record)",
                "run `oxa check WS`, which compares its bytes with the recorded hash",
            )
        return None
    if file_sha256(part) != record["sha256"]:
        return Finding(
            "damaged-part", _rel(ws, part), "holds other bytes than oxa wrote (its sha256 differs)", fix, QUARANTINE
        )
    if changed:  # same bytes, touched or copied: remember the new time so the quick pass stays quiet
        _refresh_record(part, record)
    return None


def _foreign_fix() -> str:
    return "it was not written by oxa here: `oxa check WS --repair` moves it aside (nothing is deleted)"


def _refresh_record(part: Path, record: dict) -> None:
    try:
        record_part(part, record["sha256"], record.get("rows"))
    except OSError:  # a read-only workspace: the record keeps the old time, and nothing is wrong
        pass


def record_unrecorded(parts: list[Path]) -> int:
    """Record the hash of parts that have none (a part written by an oxa before records,
    whose footer and columns were found right); returns how many were recorded."""
    recorded = 0
    for part in parts:
        try:
            rows = pq.read_metadata(part).num_rows
            record_part(part, file_sha256(part), rows)
        except OSError:
            continue
        recorded += 1
    return recorded


def _rel(ws: Workspace, path: Path) -> str:
    return path.relative_to(ws.root).as_posix()


__all__ = ["QUARANTINE_DIR", "PartScan", "expected_schema", "record_unrecorded", "scan_parts", "sum_path"]
