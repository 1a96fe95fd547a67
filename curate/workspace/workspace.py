"""The workspace: one folder holding a pool, every stage's parts, the runs and the
catalog (docs/architecture.md §2).

The catalog (catalog.duckdb) holds views over the parquet parts, with absolute paths so
that `duckdb WS/catalog.duckdb` works from any directory, and the runs and subsets
tables. It is a copy for the user's shell: the run folders (stats.json) and subset
folders (card.json) are the record, and oxa itself reads through an in-memory DuckDB
holding the same views and tables (`connect`), so a shell that holds the catalog never
stops oxa from reading. oxa rewrites the catalog when it differs from the workspace (moved,
score tags changed, a run or subset added); when another process holds it, the rewrite
waits for the next oxa command. Writers take a per-scope lock file (flock), so a second
writer fails at once with a message naming the first, and a killed writer never leaves a
stale lock; oxa opens the catalog file only while holding the 'catalog' lock, so a
DuckDB lock on it that no oxa process explains is another program's, named at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from curate import __version__
from curate.workspace.errors import OxaError, WorkspaceBusy, WorkspaceDamaged, refuse_in_a_rerun_main
from curate.workspace.parts import (
    PART_GLOB,
    atomic_write_text,
    duckdb_path,
    fingerprint,
    owner_state,
    stray_files,
    temp_files,
    unrecorded_parts,
    write_schema_part,
)
from curate.workspace.resources import sql_text
from curate.workspace.schema import SCORES, TABLE_FOLDERS

CATALOG = "catalog.duckdb"
# Written in a storage format that DuckDB 1.x shells can read too (DuckDB 2 would
# otherwise write one that only 2.x opens).
_CATALOG_STORAGE = {"storage_compatibility_version": "v1.0.0"}
# what oxa reads as data (views over the parquet parts) or owns: never an output's place
DATA_ENTRIES = ("pool", "answers", "verify", "scores", "subsets", "runs", ".locks", CATALOG)
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LOCK_WAIT_SECONDS = 10.0  # how long to wait for another oxa process writing the catalog
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")
# a COMMENT statement of the catalog script (sql/comments.sql, sql/score_view.sql) and what it names
_COMMENT_TARGET = re.compile(
    r'^COMMENT ON (?:VIEW|TABLE|COLUMN) (?P<relation>\w+)(?:\.(?P<column>\w+|"[^"]+"))? IS ', re.MULTILINE
)
# The workspaces this process opened: when a command fails reading one, the CLI looks
# for the damaged file there (curate/check) and names it instead of DuckDB's words.
OPENED: list[Workspace] = []


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


def _utc_naive(stamp: str) -> datetime:
    """An ISO time with its offset as the naive UTC TIMESTAMP the catalog tables hold."""
    return datetime.fromisoformat(stamp).astimezone(UTC).replace(tzinfo=None)


def _holder(exc: Exception) -> str:
    """The process DuckDB's lock error names (its PID), with its command line."""
    match = _HOLDER_PID.search(str(exc))
    if not match:
        return str(exc)
    pid = match.group(1)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return f"pid {pid}" + (f" (`{command[:200]}`)" if command else "")


def read_json_record(path: Path) -> dict | None:
    """A run's or subset's JSON record, or None when it cannot be read as one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


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
            if ws.looks_like_workspace():
                raise WorkspaceDamaged(ws.missing_catalog())
            raise OxaError(
                f"{ws.root} exists, is not empty and holds no {CATALOG}; "
                "choose an empty or new folder for the workspace"
            )
        ws.root.mkdir(parents=True, exist_ok=True)
        ws.check_links()
        for folder, schema in TABLE_FOLDERS.values():
            write_schema_part(ws.root / folder, schema)
        for name in ("scores", "runs", "subsets"):
            (ws.root / name).mkdir(exist_ok=True)
        with ws.lock("catalog", "oxa init", wait_seconds=_LOCK_WAIT_SECONDS):
            ws._write_catalog(force=True)
        return ws

    @classmethod
    def open(cls, root: str | Path) -> Workspace:
        ws = cls(root)
        if not ws.catalog_path.is_file():
            if ws.looks_like_workspace():
                raise WorkspaceDamaged(ws.missing_catalog())
            raise OxaError(f"{ws.root} is not an oxa workspace (no {CATALOG}); create one with `oxa init {root}`")
        ws.check_links()
        OPENED.append(ws)
        return ws

    def looks_like_workspace(self) -> bool:
        """Whether the folder holds a workspace's data folders (its catalog may be lost)."""
        return (self.root / "pool").is_dir() and (self.root / "runs").is_dir()

    def missing_catalog(self) -> str:
        return (
            f"{self.catalog_path} is missing, but {self.root} holds a workspace's folders: rebuild the catalog "
            f"from them with `oxa check {self.root} --repair`"
        )

    def check_links(self) -> None:
        """Refuse a workspace whose data folders, subset folders or version folders (or the
        catalog) are symbolic links: oxa reads and writes through them, and a link can take
        a read or a published subset outside the workspace. The root itself may be a link
        (it is resolved when the workspace is opened)."""
        fixed = [self.root / folder for folder, _ in TABLE_FOLDERS.values()]
        fixed += [self.root / name for name in ("pool", "pool/self", "scores", "runs", "subsets", ".locks", CATALOG)]
        for path in fixed:
            self.refuse_link(path)
        for parent in ("scores", "pool/self", "subsets"):
            for child in sorted((self.root / parent).glob("*")):
                self.refuse_link(child)
        for version in sorted((self.root / "subsets").glob("*/*")):
            self.refuse_link(version)

    def refuse_link(self, path: Path) -> None:
        """A one-line error when `path`, or a folder between the root and it, is a symbolic link."""
        current = self.root
        for part in path.relative_to(self.root).parts:
            current = current / part
            if current.is_symlink():
                raise OxaError(
                    f"{current} is a symbolic link (to {os.readlink(current)}); oxa reads and writes a workspace only "
                    "through its own folders, so a link could take its data outside it: replace the link with the "
                    "folder itself (move or copy the data in)"
                )
            if not current.exists():
                return

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

    def check_outside_data(self, output: Path, option: str) -> None:
        """Refuse an output path inside the folders oxa reads as data or owns (a file there
        would be taken for a part, or clobber one); elsewhere in the workspace is fine."""
        output = Path(output).expanduser().resolve()
        inside = output.relative_to(self.root).parts if output.is_relative_to(self.root) else ()
        if inside and inside[0] in DATA_ENTRIES:
            what = (
                f"the workspace's {CATALOG}" if inside[0] == CATALOG else f"inside the workspace's {inside[0]}/ folder"
            )
            raise OxaError(
                f"{option} {output} is {what}, which oxa reads as data; write it outside (e.g. {self.root}/exports/)"
            )

    def run_dir(self, stage: str, run_id: str) -> Path:
        return self.root / "runs" / stage / run_id

    # -- locking ----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, scope: str, purpose: str, wait_seconds: float = 0.0) -> Iterator[None]:
        """Hold the writer lock of `scope` ('pool', 'catalog', ...), waiting at most
        `wait_seconds` for another holder, then failing with a message naming it."""
        refuse_in_a_rerun_main(f"oxa ({purpose}) on {self.root}")
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(exist_ok=True)
        path = lock_dir / f"{scope}.lock"
        deadline = time.monotonic() + wait_seconds
        with open(path, "a+", encoding="utf-8") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
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
            parts.append(sql_text("score_view.sql").replace("{view}", score_view_name(tag)).replace("{tag}", tag))
        parts.append(sql_text("views.sql").replace("{score_columns}", columns).replace("{score_joins}", joins))
        parts.append(sql_text("comments.sql"))
        return "\n".join(parts).replace("{ws}", ws).replace("{parts}", PART_GLOB)

    def _ensure_schema_parts(self) -> None:
        """Every view's folder holds its zero-row part (a workspace made by an older oxa
        has it under its old name; one removed by hand comes back)."""
        try:
            for folder, schema in TABLE_FOLDERS.values():
                write_schema_part(self.root / folder, schema)
            for tag in self.score_tags():
                write_schema_part(self.root / "scores" / tag, SCORES)
        except OSError:  # a read-only workspace or a full disk: reading goes on (`oxa check` names a lost one)
            pass

    def _records(self) -> tuple[list[tuple], list[tuple]]:
        """The rows of the runs and subsets tables, read from the folders that are their
        record: each finished run's stats.json and config.json, each subset's card.json."""
        runs = []
        for stats_path in sorted(self.root.glob("runs/*/*/stats.json")):
            stats, config = read_json_record(stats_path), read_json_record(stats_path.parent / "config.json")
            if stats is None or config is None:  # damaged: `oxa check` names it
                continue
            if "finished_at" not in stats:  # a failed run: its stats.json says why
                continue
            runs.append(
                (
                    stats_path.parent.name,
                    stats_path.parent.parent.name,
                    config.get("fingerprint"),
                    _utc_naive(stats["started_at"]),
                    _utc_naive(stats["finished_at"]),
                    stats.get("status", "done"),
                    json.dumps(stats, sort_keys=True),
                )
            )
        subsets = []
        for card_path in sorted(self.root.glob("subsets/*/*/card.json")):
            card = read_json_record(card_path)
            # a damaged card, or a folder copied under another name: `oxa check` names it
            if card is None or (card.get("name"), card.get("version")) != (
                card_path.parent.parent.name,
                card_path.parent.name,
            ):
                continue
            subsets.append(
                (
                    card["name"],
                    card["version"],
                    _utc_naive(card["created_at"]),
                    card["selection"]["strategy"],
                    card["rows"],
                    card["run_id"],
                    card["description"],
                )
            )
        return runs, subsets

    def _fill(self, con: duckdb.DuckDBPyConnection, script: str, runs: list[tuple], subsets: list[tuple]) -> None:
        """Views, macros, the runs and subsets tables and the comments on them, in the
        catalog or in memory. The script's COMMENT statements run last (a score tag's
        comment on its candidates column sits beside its view, made before candidates),
        each on a column only where its view has it (generated samples add columns)."""
        statements = [(s, _COMMENT_TARGET.search(s.query)) for s in con.extract_statements(script)]
        for statement, comment in statements:
            if comment is None:
                con.execute(statement)
        columns = set(con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal").fetchall())
        for statement, comment in statements:
            if comment and (
                comment["column"] is None or (comment["relation"], comment["column"].strip('"')) in columns
            ):
                con.execute(statement)
        con.execute("DELETE FROM runs")
        con.execute("DELETE FROM subsets")
        if runs:
            con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", runs)
        if subsets:
            con.executemany("INSERT INTO subsets VALUES (?, ?, ?, ?, ?, ?, ?)", subsets)

    def _open_catalog(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """The catalog file, opened with the 'catalog' lock held: no oxa process has it
        open then, so a DuckDB lock on it is another program's, named at once."""
        try:
            config = {} if self.catalog_path.exists() else _CATALOG_STORAGE
            return duckdb.connect(str(self.catalog_path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise OxaError(f"cannot open the catalog {self.catalog_path}: {exc}") from exc
            how = "open for writing" if read_only else "open"  # readers share the file; a writer needs it alone
            raise WorkspaceBusy(f"the catalog {self.catalog_path} is {how} in another process: {_holder(exc)}") from exc

    def _state(self) -> tuple[str, list[tuple], list[tuple]]:
        """What the catalog holds: the view script, the runs rows, the subsets rows."""
        return self._catalog_script(), *self._records()

    def _write_catalog(self, force: bool = False, state: tuple | None = None) -> bool:
        """Bring the catalog file up to date (with the 'catalog' lock held); False when it was."""
        script, runs, subsets = state or self._state()
        digest = fingerprint([script, runs, subsets], 16)
        written = self._digest_path
        if not force and self.catalog_path.exists():
            if self._written_digest() == digest:
                return False
            with closing(self._open_catalog(read_only=True)) as con:
                if self._stored_digest(con) == digest:
                    atomic_write_text(written, digest)
                    return False
        with closing(self._open_catalog(read_only=False)) as con:
            con.execute("BEGIN")
            self._fill(con, script, runs, subsets)
            wanted = {score_view_name(tag) for tag in self.score_tags()}
            for (view,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND starts_with(view_name, 'scores_')"
            ).fetchall():
                if view not in wanted:  # its scores/<tag>/ folder was removed
                    con.execute(f'DROP VIEW "{view}"')
            meta = {"root": self.root.as_posix(), "catalog_digest": digest, "oxa_version": __version__}
            con.executemany("INSERT OR REPLACE INTO oxa_meta VALUES (?, ?)", list(meta.items()))
            con.execute("COMMIT")
        atomic_write_text(written, digest)
        return True

    @property
    def _digest_path(self) -> Path:
        """The digest last written into the catalog, kept beside its lock: most commands
        find the catalog current without opening (or locking) it."""
        return self.root / ".locks" / "catalog.digest"

    def _written_digest(self) -> str | None:
        path = self._digest_path
        return path.read_text(encoding="utf-8") if path.is_file() else None

    @staticmethod
    def _stored_digest(con: duckdb.DuckDBPyConnection) -> str | None:
        try:
            row = con.execute("SELECT value FROM oxa_meta WHERE key = 'catalog_digest'").fetchone()
        except duckdb.CatalogException:
            return None
        return row[0] if row else None

    def sync_catalog(self, purpose: str) -> None:
        """Rewrite the catalog file where it differs from the workspace (moved, score tags,
        runs or subsets added), waiting for another oxa process writing it; WorkspaceBusy
        names a process that holds it."""
        with self.lock("catalog", purpose, wait_seconds=_LOCK_WAIT_SECONDS):
            self._write_catalog()

    def refresh_catalog(self, state: tuple | None = None) -> str | None:
        """sync_catalog if the catalog is free now; if not, why it has to wait for a later
        oxa command (the folders hold the record meanwhile). A workspace that this user
        may not write (another team's, shared read-only) is read all the same."""
        state = state or self._state()
        if self.catalog_path.exists() and self._written_digest() == fingerprint(list(state), 16):
            return None
        try:
            with self.lock("catalog", "refresh the catalog"):
                self._write_catalog(state=state)
        except WorkspaceBusy as exc:
            return f"{exc}; it is brought up to date by the next oxa command once free"
        except (OSError, OxaError, duckdb.Error) as exc:  # read-only, disk full, or a damaged catalog file
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return (
                f"the catalog {self.catalog_path} is not brought up to date ({reason}); oxa reads the folders "
                f"meanwhile; `oxa check {self.root}` says why"
            )
        return None

    def check_catalog(self, stage: str) -> str | None:
        """Before a stage starts: a catalog open for writing in another process stops it
        at once (it could not record its run); one open read-only only delays the record,
        and the returned warning says so."""
        with self.lock("catalog", f"check the catalog for oxa {stage}", wait_seconds=_LOCK_WAIT_SECONDS):
            try:
                self._open_catalog(read_only=True).close()
            except WorkspaceBusy as exc:
                raise WorkspaceBusy(
                    f"{exc}; oxa {stage} could not record its run: close that process (query with `oxa sql`, "
                    "or `duckdb -readonly`) and run again"
                ) from exc
            try:
                self._open_catalog(read_only=False).close()
            except WorkspaceBusy as exc:
                return (
                    f"{exc}; the run is kept in its folder under {self.root / 'runs'} and enters the catalog "
                    "once that process closes it"
                )
        return None

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the catalog's views, macros and tables, read from the
        workspace itself: it works while another process holds catalog.duckdb. The
        catalog file is brought up to date on the way when it is free. A file named like
        a part that oxa did not write and that lacks its table's columns is refused
        first: its rows would enter the table with NULL ids."""
        self.refuse_foreign_parts()
        self._ensure_schema_parts()
        state = self._state()
        self.refresh_catalog(state)
        return self._memory_connection(state)

    def read_connection(self) -> duckdb.DuckDBPyConnection:
        """The same in-memory DuckDB as `connect`, written nowhere: neither the catalog
        file nor a missing schema part (a view over a folder without any part fails)."""
        return self._memory_connection(self._state())

    def rebuild_catalog(self, purpose: str) -> None:
        """Write the catalog file again from the folders, whatever it holds now."""
        self._ensure_schema_parts()
        with self.lock("catalog", purpose, wait_seconds=_LOCK_WAIT_SECONDS):
            self._write_catalog(force=True)

    def _memory_connection(self, state: tuple) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("BEGIN")  # one commit for the script's hundred-odd statements, not one each
        self._fill(con, *state)
        con.execute("COMMIT")
        return con

    def refuse_foreign_parts(self) -> None:
        """WorkspaceDamaged naming the first file in a table's folder that is named like a
        part, has no record (oxa did not write it, or an oxa before records did) and lacks
        a column of its table. Only parts without a record have their footer read."""
        folders = [(self.root / folder, schema) for folder, schema in TABLE_FOLDERS.values()]
        folders += [(self.root / "scores" / tag, SCORES) for tag in self.score_tags()]
        for folder, schema in folders:
            for part in unrecorded_parts(folder):
                try:
                    found = pq.read_schema(part)
                except (OSError, pa.ArrowException):
                    found = None
                if found is None or any(found.get_field_index(f.name) < 0 for f in schema):
                    raise WorkspaceDamaged(
                        f"{part} is named like a part of {folder.relative_to(self.root).as_posix()}/ but oxa did not "
                        f"write it and it {'is not parquet' if found is None else 'lacks its columns'}, so its rows "
                        f"would enter the table without ids; run `oxa check {self.root} --repair` to move it aside "
                        "(or move it out yourself)"
                    )

    def stray_files(self) -> list[Path]:
        """Files in the tables' folders that no view reads (not written by oxa)."""
        folders = [self.root / folder for folder, _ in TABLE_FOLDERS.values()]
        folders += [self.root / "scores" / tag for tag in self.score_tags()]
        return sorted(path for folder in folders for path in stray_files(folder, known=("manifest.json",)))

    # -- status -------------------------------------------------------------------

    def status(self) -> dict:
        """Row counts per table and score tag, the stage runs with fingerprints (a run
        without stats.json is 'running', or 'killed' when its process is gone), the
        temporary files of unfinished writes, files in the tables' folders that no table
        reads, and why the catalog file waits, if it does."""
        self._ensure_schema_parts()
        state = self._state()
        catalog = self.refresh_catalog(state)
        con, counts, unreadable = None, {}, None
        try:
            con = self._memory_connection(state)
            counts = dict(con.execute(sql_text("queries/table_counts.sql")).fetchall())
            for tag in self.score_tags():
                counts[score_view_name(tag)] = con.execute(f'SELECT count(*) FROM "{score_view_name(tag)}"').fetchone()[
                    0
                ]
        except duckdb.Error as exc:  # a damaged part: the rest of the status still helps, and `oxa check` names it
            unreadable = str(exc).splitlines()[0]
        finally:
            if con is not None:
                con.close()
        runs = []
        for config_path in sorted((self.root / "runs").glob("*/*/config.json")):
            run_dir = config_path.parent
            config = read_json_record(config_path) or {}
            stats_path = run_dir / "stats.json"
            stats = read_json_record(stats_path) if stats_path.exists() else None
            if stats_path.exists() and stats is None:
                state = "record damaged"
            elif stats:
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
        stray = [str(path.relative_to(self.root)) for path in self.stray_files()]
        return {
            "root": str(self.root),
            "tables": counts,
            "tables_unreadable": unreadable,
            "runs": runs,
            "unfinished_writes": self.unfinished_writes(),
            "stray_files": stray,
            "catalog": catalog,
        }

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
