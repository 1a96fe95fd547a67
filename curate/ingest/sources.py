"""Reading pool sources as a stream of batches with bounded memory.

Formats: JSON Lines (.jsonl, .ndjson, also .gz), JSON arrays (.json, also .gz; a .json
file holding JSON Lines is read as such), parquet files, Arrow IPC files and streams
(.arrow: Hugging Face `datasets` shards), and folders of any of these, including folders
written by `datasets`' save_to_disk (a Dataset with state.json, or a DatasetDict with
dataset_dict.json and one folder per split).

Two kinds of batch come out: `ArrowBatch` (typed columns, from parquet and Arrow) and
`DictBatch` (parsed JSON objects, from JSON). Records that cannot be parsed come out as
`Unreadable` entries of a DictBatch, with the reason, never dropped. A file whose bytes
are damaged (a truncated or corrupt .gz, a .gz that is not gzip, a corrupt parquet or
Arrow file) ends with a `Damaged` item saying where reading stopped and why; the
batches before it are the rows read before the damage.
"""

from __future__ import annotations

import gzip
import io
import json
import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from curate.ingest.json_array import MalformedJSON, sized_json_array
from curate.thread_names import name_this_thread
from curate.workspace import OxaError

JSON_BATCH_ROWS = 8_192
ARROW_BATCH_ROWS = 32_768
# A batch also stops at about this much data: R1 traces run to 100 KB and more, and 32,768
# of them held 2+ GB at once (memory then grew with the responses' length, not bounded).
BATCH_BYTES = 64 << 20
_PREVIEW_CHARS = 200

_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".arrow": "arrow",
}


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str  # 'jsonl' | 'json' | 'parquet' | 'arrow'
    compressed: bool = False

    @property
    def dataset_name(self) -> str:
        """A short name for the file's data set: its name up to the first dot, or for a
        `datasets` shard (data-00000-of-00001.arrow) the name of its dataset folder."""
        if self.format == "arrow" and self.path.name.startswith("data-"):
            parent = self.path.parent
            if (parent.parent / "dataset_dict.json").exists():
                parent = parent.parent
            return parent.name
        return self.path.name.split(".")[0]


def content_record(file: SourceFile, sha256: str) -> dict:
    """What a file's rows derive from, not where the file is: its bytes' hash, its format
    and its data-set name (the default `source`). Fingerprints built from these give the
    same parts for the same bytes from any path, after any `touch`."""
    return {"sha256": sha256, "format": file.format, "dataset": file.dataset_name}


@dataclass
class Unreadable:
    row: int
    reason: str
    detail: str
    preview: str


@dataclass
class DictBatch:
    file: SourceFile
    rows: list[int] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


@dataclass
class ArrowBatch:
    file: SourceFile
    first_row: int
    table: pa.Table


# What reading a damaged file raises: gzip (BadGzipFile is an OSError; EOFError when the
# stream ends early; zlib.error on corrupt deflate data), pyarrow (ArrowInvalid, OSError).
DAMAGE_ERRORS = (OSError, EOFError, zlib.error, pa.ArrowException)


@dataclass
class Damaged:
    """Where reading a file stopped on damaged bytes: the first row not read, the byte
    offset reached (in the decompressed stream of a .gz; None where not known), and why."""

    file: SourceFile
    row: int
    byte: int | None
    reason: str

    @classmethod
    def at(cls, file: SourceFile, row: int, byte: int | None, exc: BaseException) -> Damaged:
        if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError)):
            raise OxaError(f"cannot read {file.path}: {exc}") from exc  # not damage: the user's to fix
        return cls(file, row, byte, f"{type(exc).__name__}: {exc}")

    def describe(self) -> str:
        where = f"row {self.row:,}" + (f", byte {self.byte:,}" if self.byte is not None else "")
        stream = " of the decompressed stream" if self.file.compressed and self.byte is not None else ""
        return f"damaged at {where}{stream}: {self.reason}; the rest of the file is unread"


class FileDamaged(OxaError):
    """A file too damaged to read even its first records (or its schema)."""

    def __init__(self, damaged: Damaged) -> None:
        super().__init__(f"cannot read {damaged.file.path}: {damaged.describe()}")
        self.damaged = damaged


def classify(path: Path) -> SourceFile | None:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None or (compressed and fmt not in ("jsonl", "json")):
        return None
    return SourceFile(path, fmt, compressed)


def discover(sources: list[str | Path], skipped: list[dict] | None = None) -> list[SourceFile]:
    """Expand the user's sources into files, in a deterministic order. What a folder holds
    that is not read goes into `skipped` as {path, reason}: a file of another type, or a
    hidden file or folder (named once, not file by file)."""
    files: list[SourceFile] = []
    for source in sources:
        path = Path(source).expanduser().resolve()
        if not path.exists():
            raise OxaError(f"source {source} does not exist")
        if path.is_file():
            found = classify(path)
            if found is None:
                raise OxaError(
                    f"cannot read {source}: unknown file type; oxa reads .jsonl, .ndjson, "
                    ".json (also .gz), .parquet and .arrow files, and folders of them"
                )
            files.append(found)
            continue
        folder_files = _hf_dataset_files(path) or _folder_files(path, skipped if skipped is not None else [])
        if not folder_files:
            raise OxaError(f"found no readable files (.jsonl, .json, .parquet, .arrow) under {source}")
        files.extend(folder_files)
    return files


def _folder_files(folder: Path, skipped: list[dict]) -> list[SourceFile]:
    files, hidden = [], set()
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        first_hidden = next((i for i, part in enumerate(parts) if part.startswith(".")), None)
        if first_hidden is not None:
            entry = folder.joinpath(*parts[: first_hidden + 1])
            if entry not in hidden:
                hidden.add(entry)
                skipped.append({"path": str(entry), "reason": "hidden"})
        elif path.is_file():
            if (found := classify(path)) is not None:
                files.append(found)
            else:
                skipped.append(
                    {"path": str(path), "reason": f"not a readable type ({''.join(path.suffixes) or 'no suffix'})"}
                )
    return files


def _hf_dataset_files(folder: Path) -> list[SourceFile]:
    """The Arrow shards of a `datasets` save_to_disk folder, in the dataset's order."""
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        return [f for split in splits for f in _hf_dataset_files(folder / split)]
    if (folder / "state.json").is_file():
        state = json.loads((folder / "state.json").read_text())
        names = [entry["filename"] for entry in state.get("_data_files", [])]
        return [SourceFile(folder / name, "arrow") for name in names]
    return []


def read_batches(
    source: SourceFile, columns: list[str] | None = None, keep_damaged: bool = False
) -> Iterator[DictBatch | ArrowBatch | Damaged]:
    """Stream one file as batches, read ahead on a background thread (decoding parquet
    and parsing JSON overlap with the caller's work). `columns` limits the top-level
    columns read from parquet and Arrow files (None reads all). Damaged bytes end the
    stream with a `Damaged` item if `keep_damaged`, else with FileDamaged raised."""
    if source.format == "parquet":
        batches = _parquet_batches(source, columns)
    elif source.format == "arrow":
        batches = _arrow_batches(source, columns)
    else:
        batches = _json_batches(source)
    return read_ahead(batches) if keep_damaged else _raise_on_damage(read_ahead(batches))


def _raise_on_damage(items: Iterator) -> Iterator[DictBatch | ArrowBatch]:
    for item in items:
        if isinstance(item, Damaged):
            raise FileDamaged(item)
        yield item


_DONE = object()
_BOM = b"\xef\xbb\xbf"


def read_ahead(batches: Iterator, depth: int = 2) -> Iterator:
    """Run a generator on a thread (named oxa:read-ahead), `depth` items ahead; its errors
    re-raise here, and the thread has ended when this generator is closed."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        name_this_thread("read-ahead")
        try:
            for item in batches:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            slots.put(exc)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.01)


def arrow_schema(source: SourceFile) -> pa.Schema:
    """The schema of a parquet or Arrow file; FileDamaged if it cannot be read."""
    try:
        if source.format == "parquet":
            return pq.read_schema(source.path)
        with _open_ipc(source.path) as reader:
            return reader.schema
    except DAMAGE_ERRORS as exc:
        raise FileDamaged(Damaged.at(source, 0, None, exc)) from exc


def rows_per_batch(bytes_per_row: float) -> int:
    """Rows in a batch: ARROW_BATCH_ROWS, or fewer where rows are long (BATCH_BYTES)."""
    return max(1, min(ARROW_BATCH_ROWS, int(BATCH_BYTES // max(bytes_per_row, 1.0))))


def _parquet_bytes_per_row(parquet: pq.ParquetFile, columns: list[str] | None) -> float:
    """Uncompressed bytes per row of the columns read, from the file's metadata."""
    meta = parquet.metadata
    if meta.num_rows == 0:
        return 1.0
    wanted = None if columns is None else {c.split(".")[0] for c in columns}
    total = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            if wanted is None or column.path_in_schema.split(".")[0] in wanted:
                total += column.total_uncompressed_size
    return total / meta.num_rows


def _parquet_batches(source: SourceFile, columns: list[str] | None) -> Iterator[ArrowBatch | Damaged]:
    row = 0
    try:
        # mapped, as Arrow files are: pages are decompressed straight from the page cache
        # instead of being copied into fresh memory first (at R1 lengths 10-30% of the read's CPU)
        parquet = pq.ParquetFile(source.path, memory_map=True)
        batch_rows = rows_per_batch(_parquet_bytes_per_row(parquet, columns))
        # batches span row groups (files written by `datasets` have 1,000-row groups); a
        # damaged group costs the batch it falls in, and what follows
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            yield ArrowBatch(source, row, pa.Table.from_batches([batch]))
            row += batch.num_rows
    except DAMAGE_ERRORS as exc:
        yield Damaged.at(source, row, None, exc)


class _open_ipc:
    """Arrow IPC in either layout: `datasets` writes the stream format; others the file format."""

    def __init__(self, path: Path) -> None:
        self._handle = pa.memory_map(str(path), "r")
        try:
            self.reader = ipc.open_stream(self._handle)
            self.schema = self.reader.schema
        except pa.ArrowInvalid:
            self._handle.seek(0)
            file_reader = ipc.open_file(self._handle)
            self.schema = file_reader.schema
            self.reader = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))

    def __enter__(self) -> _open_ipc:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def _arrow_batches(source: SourceFile, columns: list[str] | None) -> Iterator[ArrowBatch | Damaged]:
    row = 0
    try:
        with _open_ipc(source.path) as ipc_file:
            for batch in ipc_file.reader:
                table = pa.Table.from_batches([batch])
                if columns is not None:
                    table = table.select([c for c in columns if c in table.column_names])
                batch_rows = rows_per_batch(table.nbytes / max(table.num_rows, 1))
                for start in range(0, table.num_rows, batch_rows):
                    piece = table.slice(start, batch_rows)
                    yield ArrowBatch(source, row, piece)
                    row += piece.num_rows
    except DAMAGE_ERRORS as exc:
        yield Damaged.at(source, row, None, exc)


def preview(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text[:_PREVIEW_CHARS].replace("\x00", "\\0")


def _open_binary(source: SourceFile) -> io.BufferedIOBase:
    return gzip.open(source.path, "rb") if source.compressed else open(source.path, "rb")


def _json_batches(source: SourceFile) -> Iterator[DictBatch | Damaged]:
    try:
        with _open_binary(source) as handle:
            head = handle.peek(64) if hasattr(handle, "peek") else b""
    except DAMAGE_ERRORS as exc:  # e.g. a .gz that is not gzip
        yield Damaged.at(source, 0, 0, exc)
        return
    is_array = source.format == "json" and head.removeprefix(_BOM).lstrip()[:1] == b"["
    if is_array:
        yield from _json_array_batches(source)
    else:
        yield from _json_lines_batches(source)


def _parse_line(line: bytes) -> tuple[dict | None, Unreadable | None]:
    """Parse one JSON line; an unusable line becomes an Unreadable (row filled by caller)."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Unreadable(-1, "invalid_utf8", str(exc), preview(line))
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:  # NaN, Infinity and -Infinity: not JSON, but written by Python's json and pandas
            obj = json.loads(line)
        except ValueError:
            return None, Unreadable(-1, "malformed_json", str(exc), preview(line))
    if not isinstance(obj, dict):
        return None, Unreadable(-1, "not_an_object", f"a JSON {type(obj).__name__}", preview(line))
    return obj, None


def _json_lines_batches(source: SourceFile) -> Iterator[DictBatch | Damaged]:
    batch = DictBatch(source)
    batch_bytes = 0
    row = offset = 0  # the next line to read and where it starts
    damaged = None
    try:
        with _open_binary(source) as handle:
            for line in handle:
                index, row, offset = row, row + 1, offset + len(line)
                if index == 0:
                    line = line.removeprefix(_BOM)  # a UTF-8 byte-order mark is not part of the data
                if not line.strip():
                    continue  # blank lines are not records
                obj, bad = _parse_line(line)
                if bad is not None:
                    bad.row = index
                    batch.unreadable.append(bad)
                else:
                    batch.rows.append(index)
                    batch.objects.append(obj)
                batch_bytes += len(line)
                if len(batch.rows) + len(batch.unreadable) >= JSON_BATCH_ROWS or batch_bytes >= BATCH_BYTES:
                    yield batch
                    batch, batch_bytes = DictBatch(source), 0
    except DAMAGE_ERRORS as exc:
        damaged = Damaged.at(source, row, offset, exc)
    if batch.rows or batch.unreadable:
        yield batch
    if damaged is not None:
        yield damaged


def _json_array_batches(source: SourceFile) -> Iterator[DictBatch | Damaged]:
    batch = DictBatch(source)
    row = batch_chars = 0
    with _open_binary(source) as handle:
        if handle.read(len(_BOM)) != _BOM:
            handle.seek(0)
        items = sized_json_array(handle)
        while True:
            try:
                obj, chars = next(items)
            except StopIteration:
                break
            except DAMAGE_ERRORS as exc:  # the bytes, not the JSON: a damaged .gz
                if batch.rows or batch.unreadable:
                    yield batch
                yield Damaged.at(source, row, None, exc)
                return
            except (MalformedJSON, UnicodeDecodeError) as exc:
                # A broken array cannot be resynchronized: what follows is one unreadable record.
                reason = "invalid_utf8" if isinstance(exc, UnicodeDecodeError) else "malformed_json"
                batch.unreadable.append(Unreadable(row, reason, f"{exc} (the rest of the array is unreadable)", ""))
                break
            if isinstance(obj, dict):
                batch.rows.append(row)
                batch.objects.append(obj)
            else:
                batch.unreadable.append(
                    Unreadable(row, "not_an_object", f"a JSON {type(obj).__name__}", preview(json.dumps(obj)))
                )
            row += 1
            batch_chars += chars
            if len(batch.rows) + len(batch.unreadable) >= JSON_BATCH_ROWS or batch_chars >= BATCH_BYTES:
                yield batch
                batch, batch_chars = DictBatch(source), 0
    if batch.rows or batch.unreadable:
        yield batch


def peek_columns(source: SourceFile, max_rows: int = 200) -> list[str]:
    """The top-level column names of a file (for JSON: the keys of its first objects).
    FileDamaged if the file is damaged before its first record."""
    if source.format in ("parquet", "arrow"):
        return list(arrow_schema(source).names)
    keys: dict[str, None] = {}
    seen = 0
    for batch in _json_batches(source):
        if isinstance(batch, Damaged):
            if seen == 0:
                raise FileDamaged(batch)
            break
        for obj in batch.objects:
            keys.update(dict.fromkeys(obj))
            seen += 1
            if seen >= max_rows:
                return list(keys)
    return list(keys)
