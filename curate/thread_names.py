"""Names for the threads that oxa starts, as the operating system shows them (`top -H`,
`perf`, /proc/PID/task/TID/comm), so that a profile can tell them apart.

Each of these threads works alone, one task after another (a part writer, a read-ahead,
verify's judging of a batch), or in a pool of a fixed few (decontamination's `oxa:pairs`,
up to 4), unlike the pools of DuckDB, Polars, pyarrow and verify's workers, which divide
their work over all the cores. bench/pipeline.py reads the prefix to tell what more cores
cannot shorten. Linux only; elsewhere naming does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

PREFIX = "oxa:"  # the OS keeps 15 bytes of a name
_PR_SET_NAME = 15


@cache
def _prctl():
    return ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def name_this_thread(role: str) -> None:
    """Name the calling thread PREFIX + role in the OS (cut to 15 bytes)."""
    try:
        prctl = _prctl()
    except (AttributeError, OSError):  # no C library to ask
        return
    if prctl is not None:
        prctl(_PR_SET_NAME, (PREFIX + role).encode()[:15], 0, 0, 0)
