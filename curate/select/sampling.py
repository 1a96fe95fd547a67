"""Ordered, capped, seeded walks over candidate rows: the machinery every selection
strategy shares.

A strategy puts a set of rows in an order (longest first, lowest PPL first, or only at
random) and walks it, taking a row while it needs more and the row's problem has fewer
than d rows taken so far (the per-problem cap, counted across everything the selection
has taken). The `round_robin` fill of the Gaussian strategy walks an order in passes
instead (`ProblemCap.take_in_passes`: one row per problem, then a second, ...). Ties in
the order are broken by a seeded key derived from sample_id, then by sample_id itself,
so the order is total and never depends on the order rows arrived in.

The order is materialized lazily: a walk that needs the first k rows of a million sorts
only the rows that can be among them (a partition on the primary sort value), and
doubles that prefix when the cap makes it skip rows. Over a 2.6M-row pool only the rows
near the top of each order are ever sorted.

The seeded key: splitmix64(first 16 hex digits of sample_id, as an integer, XOR
splitmix64(seed)), in 64-bit unsigned arithmetic. Content ids are uniform, so the key
is a uniform shuffle that a different seed changes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from curate.workspace import OxaError

ID_WIDTH = 24  # oxa's content ids: 24 hex digits (sql/macros.sql)
_MIN_PREFIX = 256
IdsAt = Callable[[np.ndarray], np.ndarray]  # candidate indices -> their ids, as 'S24'


def id_view(array: pa.Array, what: str) -> np.ndarray:
    """The ids of a string array as a NumPy 'S24' array: a view of its bytes, no copy."""
    if array.null_count:
        raise OxaError(f"{array.null_count} rows have no {what}; candidates must all have one")
    if pa.types.is_string_view(array.type) or pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    n = len(array)
    if n == 0:
        return np.empty(0, dtype=f"S{ID_WIDTH}")
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=n + 1, offset=array.offset * 4)
    if not np.all(np.diff(offsets) == ID_WIDTH):
        bad = next(v for v in array.to_pylist() if len(v.encode()) != ID_WIDTH)
        raise OxaError(f"{what} {bad!r} is not an oxa content id ({ID_WIDTH} hex digits)")
    return np.frombuffer(array.buffers()[2], dtype=f"S{ID_WIDTH}", count=n, offset=int(offsets[0]))


class IdColumn:
    """An id column of any number of Arrow chunks, read at given rows as 'S24' without
    copying the column (a pool's ids are 60 MB per column; a walk reads a few)."""

    def __init__(self, column: pa.Array | pa.ChunkedArray, what: str) -> None:
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        self.views = [id_view(chunk, what) for chunk in chunks if len(chunk)]
        self.starts = np.cumsum([0] + [len(view) for view in self.views])

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if len(self.views) == 1:
            return self.views[0][rows]
        chunk_of = np.searchsorted(self.starts, rows, side="right") - 1
        ids = np.empty(len(rows), dtype=f"S{ID_WIDTH}")
        for chunk in np.unique(chunk_of):
            here = chunk_of == chunk
            ids[here] = self.views[chunk][rows[here] - self.starts[chunk]]
        return ids

    def arrow(self, rows: np.ndarray) -> pa.Array:
        """The ids of `rows` as an Arrow string array (a take on the chunked column
        would first concatenate all of it)."""
        ids = self(rows)
        offsets = np.arange(len(ids) + 1, dtype=np.int32) * ID_WIDTH
        return pa.StringArray.from_buffers(len(ids), pa.py_buffer(offsets), pa.py_buffer(ids.tobytes()))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def seeded_keys(ids: np.ndarray, seed: int) -> np.ndarray:
    """The seeded tie-break key (uint64) of each id in an 'S24' array."""
    try:
        raw = bytes.fromhex(ids.tobytes().decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        bad = next(i for i in ids.tolist() if not all(c in b"0123456789abcdefABCDEF" for c in i))
        raise OxaError(f"id {bad.decode(errors='replace')!r} is not an oxa content id (hex digits)") from None
    high = np.frombuffer(raw, dtype=np.uint8).reshape(-1, ID_WIDTH // 2)[:, :8]
    values = np.ascontiguousarray(high).view(">u8").ravel().astype(np.uint64)
    seed_mix = _splitmix64(np.array([seed % 2**64], dtype=np.uint64))[0]
    return _splitmix64(values ^ seed_mix)


class RowOrder:
    """`rows` (indices into the candidate table) ordered by `primary` ascending (none:
    by the seeded key alone), then the seeded key, then the id; walked by `next_chunk`.
    `ids_at` gives the ids of candidate rows: only the rows an order sorts are read."""

    def __init__(self, rows: np.ndarray, ids_at: IdsAt, seed: int, primary: np.ndarray | None = None) -> None:
        self.rows = rows
        self.ids_at = ids_at
        self.seed = seed
        self.primary = primary  # aligned with rows
        self.position = 0  # rows [0, position) of the order have been walked
        self._ordered = np.empty(0, dtype=np.int64)  # a prefix of the order, as positions in rows
        self._partition_keys: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def next_chunk(self, wanted: int) -> np.ndarray:
        """The next `wanted` rows of the order (fewer at its end), as candidate indices."""
        end = self.position + wanted
        if end > len(self._ordered) and len(self._ordered) < len(self.rows):
            self._extend(max(end, 2 * len(self._ordered), _MIN_PREFIX))
        chunk = self._ordered[self.position : end]
        self.position += len(chunk)
        return self.rows[chunk]

    def give_back(self, unused: int) -> None:
        """The last `unused` rows of the last chunk were not walked: the walk resumes there."""
        self.position -= unused

    @property
    def exhausted(self) -> bool:
        return self.position >= len(self.rows)

    def _extend(self, size: int) -> None:
        n = len(self.rows)
        if size >= n:
            candidates = np.arange(n)
        else:
            if self._partition_keys is None:
                self._partition_keys = (
                    self.primary if self.primary is not None else seeded_keys(self.ids_at(self.rows), self.seed)
                )
            # every row that can be among the first `size`: all rows whose sort value is
            # at most the size-th smallest (ties at the threshold included, sorted below)
            threshold = np.partition(self._partition_keys, size - 1)[size - 1]
            candidates = np.flatnonzero(self._partition_keys <= threshold)
        ids = self.ids_at(self.rows[candidates])
        sort_keys = [ids, seeded_keys(ids, self.seed)]
        if self.primary is not None:
            sort_keys.append(self.primary[candidates])
        self._ordered = candidates[np.lexsort(sort_keys)]


class ProblemCap:
    """Takes rows off orders while the selection needs more, at most `cap` per problem
    (None: no cap), counting across every order walked through this object."""

    def __init__(self, problems_at: IdsAt, cap: int | None) -> None:
        self.problems_at = problems_at
        self.cap = cap
        self.skipped = 0  # rows walked past because their problem was full
        self._code: dict[bytes, int] = {}
        self._counts = np.zeros(1024, dtype=np.int64)

    def take(self, order: RowOrder, wanted: int) -> np.ndarray:
        """Up to `wanted` more rows of `order`, in order, whose problems are under the cap."""
        taken = []
        while wanted > 0 and not order.exhausted:
            chunk = order.next_chunk(max(2 * wanted, _MIN_PREFIX))
            codes, eligible = self._eligible(chunk)
            running = np.cumsum(eligible)
            walked = len(chunk) if running[-1] <= wanted else int(np.searchsorted(running, wanted)) + 1
            order.give_back(len(chunk) - walked)
            chosen = eligible[:walked]
            self.skipped += walked - int(running[walked - 1])
            if codes is not None:
                np.add.at(self._counts, codes[:walked][chosen], 1)
            taken.append(chunk[:walked][chosen])
            wanted -= int(running[walked - 1])
        return np.concatenate(taken) if taken else np.empty(0, dtype=np.int64)

    def take_in_passes(self, order: RowOrder, wanted: int) -> np.ndarray:
        """Up to `wanted` rows of `order` in passes (the `round_robin` fill of the released
        make_OXA_MLE_data.py): pass k = 1, 2, ... walks the order from its start and takes
        a row not taken yet while more rows are wanted, its problem has fewer than k rows
        taken from this order and fewer than the cap in all. Pass k so takes each
        problem's k-th row in this order (while under the cap): the rows come in the order
        (rank within their problem, position), cut at `wanted`. The order is walked only
        as far as pass 1 needs, or to its end when pass 1 falls short.

        Rows whose problem the cap would exclude in every pass count as skipped."""
        local = np.zeros(len(self._counts), dtype=np.int64)  # rows walked per problem
        pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        first_pass = 0
        while first_pass < wanted and not order.exhausted:
            chunk = order.next_chunk(max(2 * (wanted - first_pass), _MIN_PREFIX))
            codes = self._codes(chunk)
            if len(local) < len(self._counts):
                local = np.concatenate([local, np.zeros(len(self._counts) - len(local), dtype=np.int64)])
            rank = local[codes] + _earlier_in_chunk(codes)
            opens = rank == 0
            if self.cap is not None:
                opens &= self._counts[codes] < self.cap
            running = np.cumsum(opens)
            walked = len(chunk)
            if first_pass + running[-1] >= wanted:
                walked = int(np.searchsorted(running, wanted - first_pass)) + 1
                order.give_back(len(chunk) - walked)
            np.add.at(local, codes[:walked], 1)
            first_pass += int(running[walked - 1])
            pieces.append((chunk[:walked], codes[:walked], rank[:walked]))
        if not pieces:
            return np.empty(0, dtype=np.int64)
        rows, codes, rank = (np.concatenate(p) for p in zip(*pieces))
        eligible = np.ones(len(rows), dtype=bool) if self.cap is None else rank < self.cap - self._counts[codes]
        self.skipped += int(len(rows) - eligible.sum())
        picks = np.flatnonzero(eligible)
        picks = picks[np.argsort(rank[picks], kind="stable")][:wanted]
        np.add.at(self._counts, codes[picks], 1)
        return rows[picks]

    def _codes(self, chunk: np.ndarray) -> np.ndarray:
        """A small integer per problem of each row (the index into the counts)."""
        code = self._code
        codes = np.fromiter(
            (code.setdefault(p, len(code)) for p in self.problems_at(chunk).tolist()), np.int64, len(chunk)
        )
        if len(code) > len(self._counts):
            self._counts = np.concatenate([self._counts, np.zeros(len(code) * 2, dtype=np.int64)])
        return codes

    def _eligible(self, chunk: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(problem codes, whether each row would be taken if the walk reached it): a
        row is, when its problem's count so far plus its earlier rows in the chunk is
        under the cap."""
        if self.cap is None:
            return None, np.ones(len(chunk), dtype=bool)
        codes = self._codes(chunk)
        return codes, self._counts[codes] + _earlier_in_chunk(codes) < self.cap


def _earlier_in_chunk(codes: np.ndarray) -> np.ndarray:
    """For each row, how many rows before it in `codes` have the same problem."""
    by_problem = np.argsort(codes, kind="stable")
    sorted_codes = codes[by_problem]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(codes)), 0))
    earlier = np.empty(len(codes), dtype=np.int64)
    earlier[by_problem] = np.arange(len(codes)) - first
    return earlier
