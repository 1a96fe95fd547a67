"""Row-level findings, read through the views once every part is sound: ids missing or
held twice, rows whose parent is gone, and problems that generation marked done whose
samples were lost (so that `oxa generate` can make them again)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.check.finding import REGENERATE, Finding
from curate.workspace.parts import PART_GLOB, duckdb_path, publish_part, remove_part, temp_path
from curate.workspace.resources import sql_text
from curate.workspace.workspace import Workspace, score_view_name


def row_findings(ws: Workspace) -> list[Finding]:
    score_checks = "".join(
        f"\n    UNION ALL\n    SELECT 'scores/{tag}', 'score whose sample is not in samples', count(*)\n"
        f'    FROM "{score_view_name(tag)}" x ANTI JOIN samples s USING (sample_id)'
        for tag in ws.score_tags()
    )
    query = (
        sql_text("check/row_findings.sql")
        .replace("{score_checks}", score_checks)
        .replace("{ws}", duckdb_path(ws.root.as_posix()).replace("'", "''"))
        .replace("{parts}", PART_GLOB)
    )
    with closing(ws.read_connection()) as con:
        rows = con.execute(query).fetchall()
        findings = [
            Finding(
                "orphan-rows" if "not in" in problem else "bad-ids",
                folder,
                f"{n_rows:,} rows: {problem}",
                "a part was lost or copied in: restore the lost part from a backup (or ingest its source again), "
                "or move the copy aside with `oxa check WS --repair` once it is found",
            )
            for folder, problem, n_rows in rows
        ]
        findings += _lost_generations(ws, con)
    return findings


def _done_folders(ws: Workspace) -> list[Path]:
    root = ws.root / "pool" / "self"
    return sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("done-*.parquet"))) if root.is_dir() else []


def _lost_generations(ws: Workspace, con) -> list[Finding]:
    found = []
    for folder in _done_folders(ws):
        lost = _lost_problems(con, folder)
        if lost:
            found.append(
                Finding(
                    "generation-lost",
                    folder.relative_to(ws.root).as_posix(),
                    f"{len(lost):,} problems are marked generated but their samples (generator {folder.name!r}) are "
                    "gone from pool/samples",
                    "`oxa check WS --repair` forgets them as done; then `oxa generate` with the same settings makes "
                    "them again",
                    REGENERATE,
                )
            )
    return found


def _lost_problems(con, folder: Path) -> set[str]:
    rows = con.execute(
        sql_text("check/lost_generations.sql").replace("{done}", f"{duckdb_path(folder)}/done-{PART_GLOB}"),
        {"generator": folder.name},
    ).fetchall()
    return {problem_id for (problem_id,) in rows}


def forget_lost_generations(ws: Workspace, relative: str) -> int:
    """Rewrite the done markers of pool/self/<tag>/ without the problems whose samples
    are gone; returns how many problems were forgotten."""
    folder = ws.root / relative
    with closing(ws.read_connection()) as con:
        lost = _lost_problems(con, folder)
    for part in sorted(folder.glob("done-*.parquet")):
        table = pq.read_table(part)
        keep = pa.array([pid not in lost for pid in table["problem_id"].to_pylist()])
        if all(keep.to_pylist()):
            continue
        if not any(keep.to_pylist()):
            remove_part(part)
            continue
        tmp = temp_path(part)
        kept = table.filter(keep)
        pq.write_table(kept, tmp, compression="zstd")
        publish_part(tmp, part, kept.num_rows)
    return len(lost)


__all__ = ["forget_lost_generations", "row_findings"]
