"""The progress bar every long `oxa` command shows (on stderr, gone when the work ends)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True)


def warn(message: str) -> None:
    """One warning line on stderr, unwrapped (paths and commands stay whole in logs)."""
    err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr; `report(what, done, total)` (total 0: unknown) moves it."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def report(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total or None)

        yield report
