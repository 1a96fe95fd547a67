"""The workspace: one folder holding a pool, every stage's parts, the runs and the
catalog (DESIGN.md §2).

The catalog (catalog.duckdb) holds views over the parquet parts, with absolute paths so
that `duckdb WS/catalog.duckdb` works from any directory. It records the root it was
written for; when oxa opens a workspace that has moved, or whose score tags changed, it
rewrites the views. Writers take a per-scope lock file (flock), so a second writer fails
at once with a message naming the first, and a killed writer never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from curate import __version__
from curate.workspace.errors import OxaError, WorkspaceBusy
from curate.workspace.parts import duckdb_path, fingerprint, owner_state, temp_files, write_schema_part
from curate.workspace.resources import sql_text
from curate.workspace.schema import SCORES, TABLE_FOLDERS

CATALOG = "catalog.duckdb"
# Written in a storage format that DuckDB 1.x shells can read too (DuckDB 2 would
# otherwise write one that only 2.x opens).
_CATALOG_STORAGE = {"storage_compatibility_version": "v1.0.0"}
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LOCK_WAIT_SECONDS = 10.0


def _sql_string(value: str) -> str:
    """A SQL string literal (for DDL, where DuckDB takes no parameters)."""
    return "'" + value.replace("'", "''") + "'"


def check_tag(tag: str) -> str:
    if not _TAG_PATTERN.match(tag):
        raise OxaError(
            f"invalid score tag {tag!r}: use letters, digits, '_', '.' or '-' "
            "(at most 64, starting with a letter or digit), e.g. qwen2.5-math-7b"
        )
    return tag


def score_view_name(tag: str) -> str:
    return "scores_" + re.sub(r"[^A-Za-z0-9_]", "_", tag)


def _same_names(tag: str, other: str) -> bool:
    return score_view_name(tag).lower() == score_view_name(other).lower()


class Workspace:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        if "?" in str(self.root):  # DuckDB reads what follows '?' in a database path as options
            raise OxaError(f"DuckDB cannot open a database whose path holds '?': {self.root}; use a path without it")

    # -- creation and opening -------------------------------------------------

    @classmethod
    def init(cls, root: str | Path) -> Workspace:
        """Create a workspace (or complete a partly created one); idempotent."""
        ws = cls(root)
        if ws.root.exists() and not ws.root.is_dir():
            raise OxaError(f"cannot create a workspace at {ws.root}: it is a file")
        if ws.root.is_dir() and any(ws.root.iterdir()) and not ws.catalog_path.exists():
            raise OxaError(
                f"{ws.root} exists, is not empty and holds no {CATALOG}; "
                "choose an empty or new folder for the workspace"
            )
        ws.root.mkdir(parents=True, exist_ok=True)
        for folder, schema in TABLE_FOLDERS.values():
            write_schema_part(ws.root / folder, schema)
        for name in ("scores", "runs", "subsets"):
            (ws.root / name).mkdir(exist_ok=True)
        with ws.lock("catalog", "oxa init"):
            ws._write_catalog(force=True)
        return ws

    @classmethod
    def open(cls, root: str | Path) -> Workspace:
        ws = cls(root)
        if not ws.catalog_path.is_file():
            raise OxaError(f"{ws.root} is not an oxa workspace (no {CATALOG}); create one with `oxa init {root}`")
        return ws

    @property
    def catalog_path(self) -> Path:
        return self.root / CATALOG

    def table_folder(self, table: str) -> Path:
        return self.root / TABLE_FOLDERS[table][0]

    def scores_folder(self, tag: str) -> Path:
        return self.root / "scores" / check_tag(tag)

    def score_tags(self) -> list[str]:
        scores = self.root / "scores"
        if not scores.is_dir():
            return []
        return sorted(p.name for p in scores.iterdir() if p.is_dir() and _TAG_PATTERN.match(p.name))

    def check_score_tag(self, tag: str) -> str:
        """The tag, if no other tag of the workspace maps onto its view and columns (DuckDB
        names ignore case, and '-' and '.' become '_'): `q-7b` beside `q_7b` is refused
        before anything is written."""
        clash = [other for other in self.score_tags() if other != tag and _same_names(other, check_tag(tag))]
        if clash:
            raise OxaError(
                f"score tag {tag!r} would name the same view and columns as the workspace's tag {clash[0]!r} "
                f"({score_view_name(tag)}, ppl_...); use {clash[0]!r} itself or a tag that differs in more than "
                "case, '-', '_' or '.'"
            )
        return tag

    def ensure_scores_folder(self, tag: str) -> Path:
        """Create scores/<tag>/ with its schema part and a view for it in the catalog."""
        folder = self.scores_folder(self.check_score_tag(tag))
        write_schema_part(folder, SCORES)
        return folder

    def run_dir(self, stage: str, run_id: str) -> Path:
        return self.root / "runs" / stage / run_id

    # -- locking ----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, scope: str, purpose: str) -> Iterator[None]:
        """Hold the writer lock of `scope` ('pool', 'catalog', ...) or fail at once."""
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(exist_ok=True)
        path = lock_dir / f"{scope}.lock"
        with open(path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise WorkspaceBusy(
                    f"workspace {self.root} is being written ({scope}) by {holder}; "
                    "wait for it to finish, or use another workspace"
                ) from None
            handle.seek(0)
            handle.truncate()
            started = datetime.now(UTC).isoformat(timespec="seconds")
            handle.write(f"`{purpose}` (pid {os.getpid()}, since {started})")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- the catalog --------------------------------------------------------------

    def _catalog_script(self) -> str:
        ws = duckdb_path(self.root.as_posix()).replace("'", "''")
        tags = self.score_tags()
        for i, tag in enumerate(tags):  # folders made by hand, or by an oxa before the check
            clash = [other for other in tags[i + 1 :] if _same_names(tag, other)]
            if clash:
                raise OxaError(
                    f"scores/{tag} and scores/{clash[0]} in {self.root} name the same view ({score_view_name(tag)}); "
                    "rename or remove one of the two folders"
                )
        columns = "".join(
            f',\n    {score_view_name(t)}.ppl AS "ppl_{t}",\n    {score_view_name(t)}.n_tokens AS "n_tokens_{t}"'
            for t in tags
        )
        joins = "".join(f"\nLEFT JOIN {score_view_name(t)} USING (sample_id)" for t in tags)
        parts = [sql_text("catalog_tables.sql"), sql_text("macros.sql")]
        for tag in tags:
            parts.append(
                sql_text("score_view.sql")
                .replace("{view}", score_view_name(tag))
                .replace("{tag}", tag)
                .replace("{ws}", ws)
            )
        parts.append(
            sql_text("views.sql")
            .replace("{ws}", ws)
            .replace("{score_columns}", columns)
            .replace("{score_joins}", joins)
        )
        return "\n".join(parts)

    def _connect_raw(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                config = {} if self.catalog_path.exists() else _CATALOG_STORAGE
                return duckdb.connect(str(self.catalog_path), read_only=read_only, config=config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise OxaError(f"cannot open the catalog {self.catalog_path}: {exc}") from exc
                if time.monotonic() > deadline:
                    raise WorkspaceBusy(
                        f"the catalog {self.catalog_path} is held by another process "
                        f"({exc}); wait for it to finish and retry"
                    ) from exc
                time.sleep(0.1)

    def _write_catalog(self, force: bool = False) -> None:
        script = self._catalog_script()
        digest = fingerprint(script, 16)
        for folder, schema in TABLE_FOLDERS.values():  # a table added since the workspace was made
            write_schema_part(self.root / folder, schema)
        con = self._connect_raw(read_only=False)
        try:
            if not force and self._stored_digest(con) == digest:
                return
            con.execute(script)
            wanted = {score_view_name(tag) for tag in self.score_tags()}
            for (view,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND starts_with(view_name, 'scores_')"
            ).fetchall():
                if view not in wanted:  # its scores/<tag>/ folder was removed
                    con.execute(f'DROP VIEW "{view}"')
            meta = {"root": self.root.as_posix(), "catalog_digest": digest, "oxa_version": __version__}
            con.executemany("INSERT OR REPLACE INTO oxa_meta VALUES (?, ?)", list(meta.items()))
        finally:
            con.close()

    @staticmethod
    def _stored_digest(con: duckdb.DuckDBPyConnection) -> str | None:
        try:
            row = con.execute("SELECT value FROM oxa_meta WHERE key = 'catalog_digest'").fetchone()
        except duckdb.CatalogException:
            return None
        return row[0] if row else None

    def refresh_catalog(self) -> None:
        """Rewrite the views if the workspace moved or its score tags changed."""
        con = self._connect_raw(read_only=True)
        try:
            current = self._stored_digest(con) == fingerprint(self._catalog_script(), 16)
        finally:
            con.close()
        if not current:
            with self.lock("catalog", "refresh catalog views"):
                self._write_catalog()

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A connection to the catalog with current views."""
        self.refresh_catalog()
        return self._connect_raw(read_only=read_only)

    def record_run(self, row: dict) -> None:
        """Add a finished run to the catalog's runs table."""
        with self.lock("catalog", f"record run {row['run_id']}"):
            self._write_catalog()
            con = self._connect_raw(read_only=False)
            try:
                con.execute(
                    "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        row["run_id"],
                        row["stage"],
                        row["config_fingerprint"],
                        row["started_at"],
                        row["finished_at"],
                        row["status"],
                        json.dumps(row["stats"], sort_keys=True),
                    ],
                )
            finally:
                con.close()

    def record_subset(self, row: dict) -> None:
        """Add a published subset version to the catalog's subsets table."""
        with self.lock("catalog", f"record subset {row['name']}/{row['version']}"):
            self._write_catalog()
            con = self._connect_raw(read_only=False)
            try:
                con.execute(
                    "INSERT OR REPLACE INTO subsets VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        row["name"],
                        row["version"],
                        row["created_at"],
                        row["strategy"],
                        row["n_rows"],
                        row["run_id"],
                        row["description"],
                    ],
                )
            finally:
                con.close()

    # -- status -------------------------------------------------------------------

    def status(self) -> dict:
        """Row counts per table and score tag, the stage runs with fingerprints (a run
        without stats.json is 'running', or 'killed' when its process is gone), and the
        temporary files of unfinished writes."""
        con = self.connect()
        try:
            counts = dict(con.execute(sql_text("queries/table_counts.sql")).fetchall())
            for tag in self.score_tags():
                counts[score_view_name(tag)] = con.execute(f'SELECT count(*) FROM "{score_view_name(tag)}"').fetchone()[
                    0
                ]
        finally:
            con.close()
        runs = []
        for config_path in sorted((self.root / "runs").glob("*/*/config.json")):
            run_dir = config_path.parent
            config = json.loads(config_path.read_text())
            stats_path = run_dir / "stats.json"
            stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
            if stats:
                state = stats.get("status", "done")
            else:  # no owner (an older oxa) or another host's: 'incomplete'
                state = {"dead": "killed", "alive": "running"}.get(owner_state(config.get("owner", "")), "incomplete")
            runs.append(
                {
                    "stage": run_dir.parent.name,
                    "run_id": run_dir.name,
                    "config_fingerprint": config.get("fingerprint"),
                    "status": state,
                    "summary": stats.get("summary", "") if stats else "",
                }
            )
        return {"root": str(self.root), "tables": counts, "runs": runs, "unfinished_writes": self.unfinished_writes()}

    def unfinished_writes(self) -> list[dict]:
        """Temporary files and folders in the workspace's data folders: parts being
        written ('live'), left by a killed writer ('stale': the next writer of the folder
        removes them), or of a writer on another host or an older oxa ('unknown owner',
        never removed by oxa). None of them is ever read by a view."""
        folders = [self.root / folder for folder, _ in TABLE_FOLDERS.values()]
        folders += [self.scores_folder(tag) for tag in self.score_tags()]
        folders += [p for p in (self.root / "subsets").glob("*") if p.is_dir()]
        found = []
        for folder in folders:
            for path in temp_files(folder):
                found.append(
                    {
                        "path": path.relative_to(self.root).as_posix(),
                        "state": {"dead": "stale", "alive": "live"}.get(owner_state(path.name), "unknown owner"),
                    }
                )
        return found
