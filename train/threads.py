"""How small-model work shares the CPUs: steps that do not depend on one another run side
by side, one torch thread each, in worker processes; a step that runs alone takes two
threads that sleep, not spin, while they wait for each other.

Why (BENCHMARKS.md, "Demo"; `bench/demo.py --step-times`): torch's OpenMP threads spin
while they wait, so beside one busy neighbour process on a 2-CPU machine a two-thread
training step of a tiny model ran about 3x slower than alone; one thread lost nothing
there, and two that sleep while they wait (OMP_WAIT_POLICY=PASSIVE) about 1.7x, while
alone they are as fast as two spinning ones and 1.6x faster than one. Independent steps
side by side, one thread each, use the CPUs whole when the machine is idle and give way in
proportion when it is not. A thread count changes the order of float sums, so each is a
fixed setting here, never read from the machine or its load; how many steps run side by
side changes nothing but the time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SIDE_BY_SIDE_THREADS = 1  # torch threads of a step that may run beside others, wherever it runs
ALONE_THREADS = 2  # torch threads of a step that runs alone (the tiny models' build, scoring, sampling)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as taskset or a container's
    cpuset leaves it), not the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS has no affinity mask


@contextmanager
def torch_threads(count: int):
    """Run the block on `count` torch threads; the caller's count comes back after."""
    import torch

    was = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(was)


def _start_worker(prepare: Callable[[], None] | None) -> None:
    import torch

    torch.set_num_threads(SIDE_BY_SIDE_THREADS)
    if prepare:
        prepare()


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = work()
    return result, time.monotonic() - started


class SideBySide:
    """Up to `workers` steps at once, each on SIDE_BY_SIDE_THREADS torch thread: in worker
    processes started on first use (spawned: a fork would copy torch's threads and locks),
    or in this process, one after another, when one worker is asked for or one step is
    left. A step is a picklable callable (a module-level function, or a partial of one)
    that seeds itself, so where it runs does not change its result. `prepare` (picklable)
    runs once in each worker, first: what the caller did to its own process (quieter logs)."""

    def __init__(self, workers: int, prepare: Callable[[], None] | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be 1 or more; got {workers}")
        self.workers, self.prepare = workers, prepare
        self._pool = None

    def run(self, works: Sequence[Callable[[], Any]]) -> Iterator[tuple[int, Any, float]]:
        """(index in `works`, result, seconds) of each step, as each finishes."""
        if self.workers == 1 or len(works) == 1:
            with torch_threads(SIDE_BY_SIDE_THREADS):
                for index, work in enumerate(works):
                    yield index, *_timed(work)
            return
        from concurrent.futures import as_completed

        futures = {self._executor().submit(_timed, work): index for index, work in enumerate(works)}
        for future in as_completed(futures):
            yield futures[future], *future.result()

    def _executor(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.prepare,),
            )
        return self._pool

    def __enter__(self) -> SideBySide:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
