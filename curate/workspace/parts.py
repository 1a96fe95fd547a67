"""Atomic parquet parts and atomic small files.

Every stage writes its output as parquet parts: written under a temporary name that no
reader's glob matches, then renamed into place, so a reader or a killed run never sees
half a part. A part's name carries the writing stage's config fingerprint and a digest
of its ids, so the same rows written twice get the same name and nothing collides.

A temporary name carries its writer's host (a digest) and pid (`.<name>.<random>~<host>~<pid>.partial`):
the next writer of a folder removes the ones whose writer is dead (killed runs), never
those of a live writer on this host or of any writer on another host.

Readers take only files named as oxa names its parts (`<prefix>-<16 hex digits>.parquet`,
PART_GLOB): a file dropped into a data folder by hand, or written there by a query,
never enters a table; `stray_files` lists such files so that `oxa status` can say so.

Every part has its content recorded beside it when it is published: `.<part name>.sum`
(JSON: sha256, bytes, rows, mtime_ns), written after the part is in place and removed
before it goes, so that a record without its part means a part was lost, and a part
whose size, time or hash differ from its record was changed after oxa wrote it
(`oxa check`, docs/workspace.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.thread_names import name_this_thread
from curate.workspace.errors import OxaError

_TMP_SUFFIX = ".partial"
_OWNER = re.compile(r"~(?P<host>[^~/]+)~(?P<pid>[0-9]+)(?=\.partial$|-|$)")
_DIGEST_GLOB = "[0-9a-f]" * 16
PART_GLOB = f"*-{_DIGEST_GLOB}.parquet"  # DuckDB and pathlib globs alike
_PART_NAME = re.compile(r".*-[0-9a-f]{16}\.parquet")
# a zero-row part named like the others, so that one glob matches it and the data parts
SCHEMA_PART = "_schema-0000000000000000.parquet"
_OLD_SCHEMA_PART = "_schema.parquet"  # its name in workspaces made before oxa read parts by name


_SUM_SUFFIX = ".sum"


def duckdb_path(path: Path | str) -> str:
    """A path as DuckDB's file readers take it: they read every path as a glob pattern, so
    a folder named `run[1]` would match `run1` and not itself. `[`, `*` and `?` in the path
    become one-character classes (`[[]`, `[*]`, `[?]`); a pattern appended after stays one."""
    return re.sub(r"([\[*?])", r"[\1]", str(path))


def part_glob(folder: Path) -> str:
    """The DuckDB glob of a folder's parts (its schema part among them)."""
    return f"{duckdb_path(folder)}/{PART_GLOB}"


def part_files(folder: Path) -> list[Path]:
    """A folder's parts, schema part included, in name order (none if it does not exist)."""
    return sorted(folder.glob(PART_GLOB)) if folder.is_dir() else []


def stray_files(folder: Path, known: tuple[str, ...] = ()) -> list[Path]:
    """Files in a data folder that no reader takes: not a part, not a part being written
    (hidden, `.partial`), and not one of the `known` names (a manifest)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not _PART_NAME.fullmatch(p.name) and p.name not in known
    )


def fingerprint(config: Any, length: int = 12) -> str:
    """A short content hash of a JSON-able config: same config, same fingerprint."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def _host() -> str:
    """This machine, short (a digest of its name): temporary names, and the path of the
    fork server's socket (at most 107 bytes), stay short whatever the host name."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner_tag() -> str:
    """`~<host>~<pid>`: the mark of this process in the names of its temporary files."""
    return f"~{_host()}~{os.getpid()}"


def temp_path(path: Path) -> Path:
    """A temporary name beside `path` that no reader's glob matches, marked with its owner."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:16]}{owner_tag()}{_TMP_SUFFIX}")


def owner_state(name: str) -> str:
    """The state of the owner a name carries (see owner_tag): 'dead' (a process of this
    host that has ended), 'alive' (one of this host still running), or 'unknown' (no
    owner in the name, or another host's, which this one cannot see)."""
    found = _OWNER.search(name)
    if found is None or found["host"] != _host():
        return "unknown"
    return "alive" if process_alive(int(found["pid"])) else "dead"


def owner_is_dead(name: str) -> bool:
    """Whether what a name belongs to may be removed: its owner is known to have ended."""
    return owner_state(name) == "dead"


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host runs (a zombie has ended: its new parent may
    never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def stale_temp_files(folder: Path) -> list[Path]:
    """The temporary files and folders in `folder` left by writers that have died."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f".*{_TMP_SUFFIX}") if owner_is_dead(p.name))


def temp_files(folder: Path) -> list[Path]:
    """Every temporary file or folder in `folder`, live or stale."""
    return sorted(folder.glob(f".*{_TMP_SUFFIX}")) if folder.is_dir() else []


def remove_paths(paths: list[Path]) -> list[Path]:
    """Remove files and folders that nothing reads (temporaries, scratch); returns them."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return paths


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove what dead writers left in `folder` (a killed run's half-written parts)."""
    return remove_paths(stale_temp_files(folder))


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write a file or a folder at, renamed onto `path`
    when the block succeeds and removed when it fails. A folder never replaces a
    non-empty one: the rename fails instead."""
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def refuse_to_replace(output: Path, overwrite: bool) -> None:
    """The one rule for every output path a command is given: an existing one is replaced
    only with --overwrite."""
    if not overwrite and (output.exists() or output.is_symlink()):
        raise OxaError(f"{output} exists; choose another path or pass --overwrite")


def refuse_to_fill(folder: Path, overwrite: bool) -> None:
    """The same rule for an output folder a command writes into: one that holds anything is
    written into only with --overwrite; an empty folder is as good as none."""
    if overwrite or not (folder.exists() or folder.is_symlink()):
        return
    if folder.is_dir() and not any(folder.iterdir()):
        return
    raise OxaError(f"{folder} exists and is not an empty folder; choose another path or pass --overwrite")


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sum_path(part: Path) -> Path:
    """Where a part's content record lives: a hidden file beside it that no glob of parts matches."""
    return part.with_name(f".{part.name}{_SUM_SUFFIX}")


def part_of_sum(record: Path) -> Path:
    """The part a content record describes."""
    return record.with_name(record.name[1 : -len(_SUM_SUFFIX)])


def sum_files(folder: Path) -> list[Path]:
    """The content records in a folder."""
    return sorted(folder.glob(f".*{_SUM_SUFFIX}")) if folder.is_dir() else []


def unrecorded_parts(folder: Path) -> list[Path]:
    """The parts of a folder without a content record (a listing, nothing read)."""
    if not folder.is_dir():
        return []
    names = {p.name for p in folder.iterdir()}
    return sorted(p for p in folder.glob(PART_GLOB) if f".{p.name}{_SUM_SUFFIX}" not in names)


def read_sum(part: Path) -> dict | None:
    """A part's content record, or None when it has none or the record is unreadable."""
    try:
        record = json.loads(sum_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else None


def record_part(part: Path, sha256: str, rows: int | None) -> None:
    """Write a published part's content record (its hash was taken before it was renamed
    into place; size and time are the part's own, which the rename keeps)."""
    stat = part.stat()
    record = {"sha256": sha256, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "rows": rows}
    atomic_write_text(sum_path(part), json.dumps(record, sort_keys=True) + "\n")


def publish_part(tmp: Path, target: Path, rows: int | None, sha256: str | None = None) -> Path:
    """Rename a written temporary part onto `target` and record its content. A part that
    replaces another (same name) loses the old record first: a kill in between leaves a
    part without a record (recorded again by `oxa check`), never a record that lies."""
    sha256 = sha256 or file_sha256(tmp)
    sum_path(target).unlink(missing_ok=True)
    os.replace(tmp, target)
    record_part(target, sha256, rows)
    return target


def remove_part(part: Path) -> None:
    """Remove a part that oxa itself retires (superseded rows, a replaced cache): the
    record goes first, so a kill in between leaves a part without a record, never a
    record of a part that seems lost."""
    sum_path(part).unlink(missing_ok=True)
    part.unlink(missing_ok=True)


def write_schema_part(folder: Path, schema: pa.Schema) -> None:
    """A zero-row part that gives a folder's view its columns before any data exists
    (DuckDB's read_parquet fails on a glob that matches nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SCHEMA_PART
    if (folder / _OLD_SCHEMA_PART).is_file() and not target.exists():
        os.replace(folder / _OLD_SCHEMA_PART, target)
    if not target.exists():
        tmp = temp_path(target)
        pq.write_table(pa.Table.from_batches([], schema=schema), tmp)  # (empty_table() imports pandas)
        publish_part(tmp, target, rows=0)


class _GrowingFileHash:
    """The sha256 of a file that is only appended to (a parquet part being written), read
    as it grows: hashing runs beside the writing, on the writer's thread, instead of as
    one more pass over the whole part after it is closed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.handle = None

    def update(self) -> None:
        if self.handle is None:
            self.handle = open(self.path, "rb")
        while block := self.handle.read(1 << 20):
            self.digest.update(block)

    def finish(self) -> str:
        self.update()
        self.close()
        return self.digest.hexdigest()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class PartWriter:
    """Streams Arrow tables into parquet parts of at most `rows_per_part` rows.

    Each write() becomes a row group; a part is renamed into place when it is full or at
    close(). Part names are `<prefix>-<digest>.parquet`, the digest taken over the
    `id_column` values in order. Writing (encoding and compression, which release the
    GIL) runs on a background thread, at most `_MAX_PENDING` tables behind the caller.
    A `staged` writer keeps its finished parts under temporary names until publish(),
    so that a run can make all its parts visible at once, in an order it chooses. A new
    writer first removes the temporary files that dead writers left in its folder.
    """

    _MAX_PENDING = 2

    def __init__(
        self,
        folder: Path,
        prefix: str,
        schema: pa.Schema,
        id_column: str,
        rows_per_part: int = 1_000_000,
        staged: bool = False,
    ) -> None:
        remove_stale_temp_files(folder)
        self.folder = folder
        self.prefix = prefix
        self.schema = schema
        self.id_column = id_column
        self.rows_per_part = rows_per_part
        self.parts: list[Path] = []
        self.rows_written = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._hash: _GrowingFileHash | None = None
        self._digest = hashlib.sha256()
        self._part_rows = 0
        self.staged = staged
        self._unpublished: list[tuple[Path, str, str, int]] = []  # staged parts: temporary path, ids, sha256, rows
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"write-{prefix}",
            initializer=name_this_thread,
            initargs=(f"write-{prefix}",),
        )
        self._pending: deque[Future] = deque()
        self._closed = False

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        while len(self._pending) >= self._MAX_PENDING:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(self._write_sync, table))

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def _write_sync(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            room = self.rows_per_part - self._part_rows
            chunk = table.slice(start, room)
            self._write_chunk(chunk)
            start += chunk.num_rows
            if self._part_rows >= self.rows_per_part:
                self._finish_part()

    def _write_chunk(self, chunk: pa.Table) -> None:
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._tmp = temp_path(self.folder / f"{self.prefix}.parquet")
            self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
            self._hash = _GrowingFileHash(self._tmp)
        self._writer.write_table(chunk, row_group_size=chunk.num_rows)
        self._hash.update()
        ids = chunk.column(self.id_column).to_pylist()
        self._digest.update(("\n".join(map(str, ids)) + "\n").encode())
        self._part_rows += chunk.num_rows
        self.rows_written += chunk.num_rows

    def _finish_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._tmp is not None and self._hash is not None
        sha256 = self._hash.finish()  # the footer; the row groups were hashed as they were written
        if self.staged:
            self._unpublished.append((self._tmp, self._digest.hexdigest()[:16], sha256, self._part_rows))
        else:
            target = self.folder / f"{self.prefix}-{self._digest.hexdigest()[:16]}.parquet"
            self.parts.append(publish_part(self._tmp, target, self._part_rows, sha256))
        self._writer, self._tmp, self._hash = None, None, None
        self._digest = hashlib.sha256()
        self._part_rows = 0

    def close(self) -> list[Path]:
        if self._closed:
            return self.parts
        self._closed = True
        self._drain()
        self._executor.submit(self._finish_part).result()
        self._executor.shutdown()
        return self.parts

    def publish(self, prefix: str | None = None) -> list[Path]:
        """Rename a closed staged writer's parts into place, named `<prefix>-<digest>`
        (`prefix` defaults to the writer's; a run may name its parts by what it learnt
        while writing them)."""
        assert self._closed, "publish() follows close()"
        while self._unpublished:
            tmp, digest, sha256, rows = self._unpublished[0]
            target = self.folder / f"{prefix or self.prefix}-{digest}.parquet"
            self.parts.append(publish_part(tmp, target, rows, sha256))
            self._unpublished.pop(0)
        return self.parts

    def abort(self) -> None:
        """Drop the part in progress (on error) and any staged parts; published parts
        stay, they are whole."""
        self._closed = True
        for future in self._pending:
            future.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        if self._writer is not None:
            self._writer.close()
            assert self._tmp is not None and self._hash is not None
            self._hash.close()
            self._tmp.unlink(missing_ok=True)
            self._writer, self._tmp, self._hash = None, None, None
        for tmp, *_ in self._unpublished:  # staged parts were never visible; nothing is left
            tmp.unlink(missing_ok=True)
        self._unpublished.clear()


class SpreadPartWriter:
    """PartWriter's interface over `lanes` PartWriters of one table, each with its own
    writing thread: the tables go to the first lane until it has taken `spread_after`
    bytes, then to each lane in turn. On many cores one thread encoding and compressing a
    large table bounds the stage (ingest's samples: BENCHMARKS.md, "What 64 cores would
    give"); a small table stays in one lane, as with a PartWriter. Which lane takes a table
    depends only on the tables before it, so every run writes the same parts."""

    def __init__(
        self,
        folder: Path,
        prefix: str,
        schema: pa.Schema,
        id_column: str,
        lanes: int = 2,
        spread_after: int = 256 << 20,
        **options: Any,
    ) -> None:
        self.folder = folder
        self.lanes = [PartWriter(folder, prefix, schema, id_column, **options) for _ in range(lanes)]
        self.spread_after, self._taken, self._turn = spread_after, 0, 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._taken < self.spread_after:
            self._taken += table.nbytes
            lane = self.lanes[0]
        else:
            lane = self.lanes[self._turn]
            self._turn = (self._turn + 1) % len(self.lanes)
        lane.write(table)

    @property
    def rows_written(self) -> int:
        return sum(lane.rows_written for lane in self.lanes)

    @property
    def parts(self) -> list[Path]:
        return [part for lane in self.lanes for part in lane.parts]

    def close(self) -> list[Path]:
        for lane in self.lanes:
            lane.close()
        return self.parts

    def publish(self, prefix: str | None = None) -> list[Path]:
        for lane in self.lanes:
            lane.publish(prefix)
        return self.parts

    def abort(self) -> None:
        for lane in self.lanes:
            lane.abort()
