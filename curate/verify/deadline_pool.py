"""A process pool in which every item has a wall-clock deadline, enforced from outside.

math-verify's own timeouts use SIGALRM: they work only in a process's main thread and
cannot interrupt a long call into C (a huge integer power). So each worker is a
process with its own pipe; the parent knows when each worker's current item started
and kills a worker that runs past the deadline. The item is recorded as timed out,
the worker replaced, and the run goes on. A worker that dies (out of memory, a crash)
costs only its current item. Workers are recycled after `max_items_per_worker` items,
which bounds what sympy's caches gather, and may run under an address-space limit.

Workers come from a fork server that has imported the `preload` modules once, so a
replacement starts in milliseconds and never inherits the parent's threads.

Workers die with the parent whatever signal ends it, SIGKILL included: each worker drops
its handle on the fork server's liveness pipe (so the fork server exits when the parent
does), asks Linux for SIGKILL when its parent, the fork server, exits (PR_SET_PDEATHSIG),
and watches the pool's owner from a thread as a fallback elsewhere. multiprocessing's
temp folder (the fork server's socket) is named with its owner's pid, and the next pool
removes the folders of owners that died.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from curate.workspace.errors import refuse_in_a_rerun_main
from curate.workspace.parts import owner_is_dead, owner_tag, process_alive


@dataclass(frozen=True)
class ItemFailure:
    """What the pool returns for an item that gave no result."""

    kind: str  # 'timeout' (killed at the deadline) | 'died' (the worker exited) | 'raised'
    detail: str


def _worker_main(
    conn: Connection,
    fn: Callable[[Any], Any],
    initializer: Callable[..., None] | None,
    initargs: tuple,
    memory_limit_mb: int | None,
    owner_pid: int,
) -> None:
    _die_with(owner_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    if memory_limit_mb:  # a limit on growth: a worker starts with what its fork server had mapped
        limit = _mapped_bytes() + memory_limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if initializer is not None:
        initializer(*initargs)
    conn.send(_READY)
    while True:
        try:
            chunk = conn.recv()
        except EOFError:  # the parent is gone
            return
        if chunk is None:
            return
        for index, item in chunk:
            try:
                result = fn(item)
            except Exception as exc:  # reported as the item's failure
                result = ItemFailure("raised", type(exc).__name__)
            conn.send((index, result))


_PR_SET_PDEATHSIG = 1
_OWNER_WATCH_S = 1.0


def _die_with(owner_pid: int) -> None:
    """End this worker when the pool's owner ends, however it ends (a worker deep in a C
    call, e.g. a huge integer power, never reads its pipe)."""
    from multiprocessing import forkserver

    # The fork server exits when every holder of its liveness pipe has; each child gets a
    # copy, which a worker (it starts no processes) closes, leaving the owner the only one.
    alive_fd = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        os.close(alive_fd)
        forkserver._forkserver._forkserver_alive_fd = None
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # when the fork server exits
    if not process_alive(owner_pid):  # it ended before the death signal was set
        os._exit(1)
    threading.Thread(target=_watch_owner, args=(owner_pid,), name="watch-owner", daemon=True).start()


def _watch_owner(owner_pid: int) -> None:
    """The fallback where there is no death signal: poll the owner (this thread runs
    whenever the worker's main thread releases the GIL)."""
    while process_alive(owner_pid):
        time.sleep(_OWNER_WATCH_S)
    os._exit(1)


def _own_temp_dir() -> None:
    """Give multiprocessing a temp folder named with this process (`oxa-mp~<host>~<pid>-*`)
    instead of an anonymous /tmp/pymp-*, which a killed parent leaves behind, and remove
    the folders of parents that died."""
    from multiprocessing import process, util

    for stale in Path(tempfile.gettempdir()).glob("oxa-mp~*"):
        if owner_is_dead(stale.name):
            shutil.rmtree(stale, ignore_errors=True)
    config = process.current_process()._config
    if config.get("tempdir") is None:
        folder = tempfile.mkdtemp(prefix=f"oxa-mp{owner_tag()}-")
        util.Finalize(None, shutil.rmtree, args=(folder, True), exitpriority=-100)
        config["tempdir"] = folder


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # not Linux
        return 0


_READY = (-1, None)  # a worker's first message: it started and ran its initializer
_STARTUP_TIMEOUT_S = 120.0


class _Worker:
    def __init__(self, pool: DeadlinePool) -> None:
        self.conn, child = pool._ctx.Pipe()
        self.process = pool._ctx.Process(
            target=_worker_main,
            args=(child, pool.fn, pool.initializer, pool.initargs, pool.memory_limit_mb, os.getpid()),
            daemon=True,
        )
        self.process.start()
        child.close()
        self.assigned: deque[int] = deque()  # item indices sent, in order; the first is running
        self.started = 0.0  # when the running item started
        self.served = 0
        self.ready = False
        self.created = time.monotonic()

    def stop(self, kill: bool) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join()
        self.conn.close()


def _main_modules() -> list[str]:
    """Modules for the fork server to import once, so that a new worker starts in
    milliseconds: multiprocessing runs the parent's main module again in every worker.
    A main run by path (the `oxa` script) the fork server imports itself ('__main__');
    for one run with `-m` (`python -m curate.cli`), the modules its namespace uses."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    names = {"__main__"}
    if spec is not None and spec.name and not spec.name.endswith("__main__"):
        used = set()
        for value in vars(main).values():
            module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(module, str):
                used.add(module)
        loaded = list(sys.modules)
        for module in used:  # `import a.b` binds `a`: take the loaded a.* too
            names.update(name for name in loaded if name == module or name.startswith(module + "."))
        names -= {spec.name, "__mp_main__"}
    return sorted(names)


class DeadlinePool:
    """Run `fn(item)` over items in worker processes; an item running longer than
    `deadline_s` seconds is killed and returned as ItemFailure('timeout', ...)."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        workers: int,
        deadline_s: float,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
        preload: Sequence[str] = (),
        max_items_per_worker: int = 2000,
        memory_limit_mb: int | None = None,
        chunk_size: int = 8,
    ) -> None:
        refuse_in_a_rerun_main("a pool of oxa workers")
        self.fn, self.initializer, self.initargs = fn, initializer, initargs
        self.deadline_s = deadline_s
        self.max_items_per_worker = max_items_per_worker
        self.memory_limit_mb = memory_limit_mb
        self.chunk_size = chunk_size
        self.stats = {"started": 0, "recycled": 0, "killed_at_deadline": 0, "died": 0}
        _own_temp_dir()
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload([*preload, *_main_modules()])
        self._workers = [self._start() for _ in range(max(1, workers))]

    def _start(self) -> _Worker:
        self.stats["started"] += 1
        return _Worker(self)

    def __enter__(self) -> DeadlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    def close(self, kill: bool = False) -> None:
        for worker in self._workers:
            worker.stop(kill=kill or bool(worker.assigned))
        self._workers = []

    def map(self, items: Sequence[Any]) -> list[Any]:
        """Results in the order of `items`; an item without one gets an ItemFailure."""
        results: list[Any] = [None] * len(items)
        for index, result in self.imap_unordered(items):
            results[index] = result
        return results

    def imap_unordered(self, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """(index, result) for every item, as they finish."""
        self._done: deque[tuple[int, Any]] = deque()
        self._pending = deque(range(len(items)))
        outstanding = len(items)
        while outstanding:
            for slot, worker in enumerate(self._workers):
                if worker.ready and not worker.assigned and self._pending:
                    if worker.served >= self.max_items_per_worker:
                        worker.stop(kill=False)
                        self.stats["recycled"] += 1
                        worker = self._workers[slot] = self._start()
                    else:
                        self._assign(worker, items)
            # a worker's deadline runs from when it has an item, not while it starts
            busy = {w.conn: w for w in self._workers if w.assigned}
            starting = {w.conn: w for w in self._workers if not w.ready}
            wake = [w.started + self.deadline_s for w in busy.values()]
            wake += [w.created + _STARTUP_TIMEOUT_S for w in starting.values()]
            for conn in wait([*busy, *starting], timeout=max(0.0, min(wake) - time.monotonic())):
                self._receive(busy.get(conn) or starting[conn])
            for worker in starting.values():
                if not worker.ready and time.monotonic() - worker.created > _STARTUP_TIMEOUT_S:
                    self.close(kill=True)
                    raise RuntimeError(f"a pool worker did not start within {_STARTUP_TIMEOUT_S} s")
            for worker in busy.values():
                if worker in self._workers and worker.assigned and self._overdue(worker):
                    self._receive(worker)  # a result may have arrived meanwhile
                    if worker.assigned and self._overdue(worker):
                        self.stats["killed_at_deadline"] += 1
                        self._replace(worker, "timeout", f"killed after the {self.deadline_s:g} s deadline")
            while self._done:
                outstanding -= 1
                yield self._done.popleft()

    def _assign(self, worker: _Worker, items: Sequence[Any]) -> None:
        # small chunks near the end keep every worker busy to the last item
        size = max(1, min(self.chunk_size, len(self._pending) // (2 * len(self._workers))))
        chunk = [self._pending.popleft() for _ in range(min(size, len(self._pending)))]
        worker.conn.send([(i, items[i]) for i in chunk])
        worker.assigned.extend(chunk)
        worker.started = time.monotonic()

    def _overdue(self, worker: _Worker) -> bool:
        return time.monotonic() - worker.started > self.deadline_s

    def _receive(self, worker: _Worker) -> None:
        """Take every result the worker has sent; a closed pipe means it died."""
        try:
            while worker.conn.poll():
                index, result = worker.conn.recv()
                if index == _READY[0]:
                    worker.ready = True
                    continue
                self._done.append((index, result))
                worker.assigned.popleft()
                worker.served += 1
                worker.started = time.monotonic()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            if not worker.ready:  # not the item's fault: every worker would fail the same way
                self.close(kill=True)
                raise RuntimeError(f"a pool worker failed to start (exit code {worker.process.exitcode})") from None
            self.stats["died"] += 1
            self._replace(worker, "died", f"worker exited with code {worker.process.exitcode}")

    def _replace(self, worker: _Worker, kind: str, detail: str) -> None:
        """Record the worker's running item (if any) as failed, put the rest of its chunk
        back at the front of the queue, and start a fresh worker in its slot."""
        if worker.assigned:
            self._done.append((worker.assigned.popleft(), ItemFailure(kind, detail)))
        self._pending.extendleft(reversed(worker.assigned))
        worker.assigned.clear()
        worker.stop(kill=True)
        self._workers[self._workers.index(worker)] = self._start()
