"""Sample ids computed from Arrow buffers, and the compact set of ids ingest has seen.

`sample_ids` gives what the `oxa_sample_id` macro (sql/macros.sql) gives, hashing each
response's bytes where Arrow holds them: DuckDB's version copies every response into
`problem_id || chr(10) || response` and hashes it on one thread (a batch of long
responses is one morsel), which made it most of ingest's time at R1 lengths. hashlib
releases the GIL on long inputs, so the halves of a batch hash on separate cores.

`DigestSet` holds ids as 12-byte digests in sorted numpy runs (about 12 bytes an id,
against about 140 for a Python set of hex strings), so that the ids of a pool ten times
the size of a benchmark's still fit in memory.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID_HEX_DIGITS = 24  # the macros' ids: the first 24 hex digits of an MD5 (sql/macros.sql)
_DIGEST = np.dtype(f"S{ID_HEX_DIGITS // 2}")
# hex digit (ASCII code) -> its value; 255 marks a byte that is not a lowercase hex digit
_NIBBLE = np.full(256, 255, np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


def sample_ids(problem_ids: list[str], responses: pa.ChunkedArray, workers: ThreadPoolExecutor, parts: int) -> pa.Array:
    """`oxa_sample_id(problem_id, response)` for every row: the first 24 hex digits of
    MD5 of problem_id, a newline and the response's UTF-8 bytes (None where the response
    is null, as the macro's NULL). The rows are cut into `parts` runs hashed on `workers`."""
    array = responses.combine_chunks() if isinstance(responses, pa.ChunkedArray) else responses
    array = array.cast(pa.large_string()) if not pa.types.is_large_string(array.type) else array
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64, len(array) + 1, array.offset * 8).tolist()
    data = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")
    valid = array.is_valid().to_numpy(zero_copy_only=False).tolist()

    def hash_rows(start: int, stop: int) -> list[str | None]:
        ids: list[str | None] = []
        for i in range(start, stop):
            if not valid[i] or problem_ids[i] is None:
                ids.append(None)
                continue
            digest = hashlib.md5(problem_ids[i].encode() + b"\n")
            digest.update(data[offsets[i] : offsets[i + 1]])  # no copy; hashed without the GIL
            ids.append(digest.hexdigest()[:ID_HEX_DIGITS])
        return ids

    bounds = np.linspace(0, len(array), max(1, parts) + 1).astype(int).tolist()
    runs = [workers.submit(hash_rows, a, b) for a, b in zip(bounds, bounds[1:])]
    return pa.array([sid for run in runs for sid in run.result()], pa.string())


def digests(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Hex ids (24 lowercase hex digits each, none null) as 12-byte digests."""
    array = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    if len(array) == 0:
        return np.empty(0, _DIGEST)
    array = array.cast(pa.large_string()) if not pa.types.is_large_string(array.type) else array
    lengths = pc.binary_length(array)
    if array.null_count or pc.min(lengths).as_py() != ID_HEX_DIGITS or pc.max(lengths).as_py() != ID_HEX_DIGITS:
        raise ValueError(f"ids must be {ID_HEX_DIGITS} hex digits, not null; got {array.slice(0, 3).to_pylist()}...")
    _, offsets_buffer, data_buffer = array.buffers()
    start = np.frombuffer(offsets_buffer, np.int64, 1, array.offset * 8)[0]
    text = np.frombuffer(data_buffer, np.uint8, len(array) * ID_HEX_DIGITS, start)
    nibbles = _NIBBLE[text].reshape(len(array), ID_HEX_DIGITS)
    if (nibbles == 255).any():
        raise ValueError(f"ids must be lowercase hex digits; got {array.slice(0, 3).to_pylist()}...")
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return np.ascontiguousarray(packed).view(_DIGEST).ravel()


class DigestSet:
    """A set of 12-byte digests kept as sorted numpy runs whose sizes at least double
    from the newest to the oldest (a binary counter's carries): adding n ids costs
    O(n log n) in all, and a lookup searches O(log n) runs."""

    def __init__(self, initial: np.ndarray | None = None) -> None:
        self._runs: list[np.ndarray] = []  # oldest (largest) first
        if initial is not None and len(initial):
            self._runs.append(np.unique(initial))  # a pool's ids are unique; unique() is cheap insurance

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self._runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `keys` are in the set."""
        if not self._runs:
            return np.zeros(len(keys), bool)
        order = np.argsort(keys)
        ordered = keys[order]  # searched in order: about 5 times faster on large runs (cache)
        found = np.zeros(len(keys), bool)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, ordered), len(run) - 1)
            found[order] |= run[at] == ordered
        return found

    def add_new(self, keys: np.ndarray) -> None:
        """Add `keys`, none of which is in the set yet, each given once (what the callers
        have just looked up: not looked up again)."""
        if not len(keys):
            return
        run = np.sort(keys)
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            older = self._runs.pop()  # disjoint from `run`: merged in one copy, without a sort
            run = np.insert(older, np.searchsorted(older, run), run)
        self._runs.append(run)


def first_rows(keys: np.ndarray) -> np.ndarray:
    """A boolean mask: True at the first row holding each key."""
    first = np.zeros(len(keys), bool)
    first[np.unique(keys, return_index=True)[1]] = True
    return first
