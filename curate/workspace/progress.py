"""The progress every long `oxa` command shows, on stderr.

On a terminal: a live bar, gone when the work ends. In a log (stderr piped: nohup, SLURM,
a CI job): a plain line at most every LOG_INTERVAL_S seconds with done/total, the rate
and the time left, and the last state at the end, so that a log says how far a job got
and how long it had to go.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

err_console = Console(stderr=True)
LOG_INTERVAL_S = 30.0

ProgressFn = Callable[[str, int, int], None]  # (what, done, total; total 0: unknown)


def warn(message: str) -> None:
    """One warning line on stderr, unwrapped (paths and commands stay whole in logs)."""
    err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


def _log_line(line: str) -> None:
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def stage_progress(unit: str = "") -> Iterator[ProgressFn]:
    """`report(what, done, total)` moves a bar on a terminal and writes LogProgress lines
    elsewhere; `unit` 'bytes' shows sizes (1.2 GB) instead of counts."""
    if not err_console.is_terminal:
        log = LogProgress(_log_line, unit)
        try:
            yield log
        finally:
            log.close()
        return
    amount = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), amount, TimeElapsedColumn())
    with Progress(*columns, TimeRemainingColumn(), console=err_console, transient=True) as progress:
        task = progress.add_task("starting", total=None)

        def report(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total or None)

        yield report


class LogProgress:
    """A ProgressFn for logs: the first report, then at most one line every `interval`
    seconds, and at close() the last state if it was not written. The rate counts from
    the first report of the current phase (a phase starts again when `done` goes back or
    `total` changes); the time left is (total - done) / rate."""

    def __init__(
        self,
        write: Callable[[str], None],
        unit: str = "",
        interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write, self.unit, self.interval, self.clock = write, unit, interval, clock
        self._phase: tuple[float, int, int] | None = None  # (started, done then, total)
        self._last: tuple[str, int, int] | None = None
        self._written: tuple[str, int, int] | None = None
        self._written_at: float | None = None

    def __call__(self, what: str, done: int, total: int) -> None:
        now = self.clock()
        if self._phase is None or total != self._phase[2] or (self._last and done < self._last[1]):
            self._phase = (now, done, total)
        self._last = (what, done, total)
        if self._written_at is None or now - self._written_at >= self.interval:
            self._write(now)

    def close(self) -> None:
        if self._last is not None and self._last != self._written:
            self._write(self.clock())

    def _write(self, now: float) -> None:
        assert self._last is not None and self._phase is not None
        what, done, total = self._last
        started, done_then, _ = self._phase
        seconds = now - started
        rate = (done - done_then) / seconds if seconds > 0 else 0.0
        parts = [
            f"{self._amount(done)}/{self._amount(total)} ({100 * done / total:.1f}%)" if total else self._amount(done)
        ]
        if rate > 0:
            parts.append(f"{self._amount(rate)}/s")
            if total:
                parts.append(f"ETA {_duration(max(total - done, 0) / rate)}")
        parts.append(f"elapsed {_duration(seconds)}")
        self.write(f"{what}: {', '.join(parts)}")
        self._written, self._written_at = self._last, now

    def _amount(self, value: float) -> str:
        if self.unit != "bytes":
            return f"{value:,.0f}"
        for suffix in ("B", "KB", "MB", "GB"):
            if value < 1000:
                return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1000
        return f"{value:.1f} TB"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
