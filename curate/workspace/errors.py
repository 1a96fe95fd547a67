"""Errors meant for the user: the CLI prints their message alone, without a traceback, and
exits with the code that says what happened (README, "Exit codes")."""

# What an `oxa` command's exit status means. 1 is left to Python: an unexpected error
# (a bug), with its traceback.
EXIT_OK = 0
EXIT_ERROR = 2  # bad input or request, or a busy workspace: nothing was written or published
EXIT_COMMITTED = 3  # the data was published, a later step (its record, the catalog) failed
EXIT_DAMAGED = 4  # the workspace is damaged (`oxa check` found something, or a command met it)
EXIT_NO_SPACE = 5  # the disk filled up: nothing was published, rerun after freeing space


class OxaError(Exception):
    """Bad input or a bad request: the message names the value and what to do."""

    exit_code = EXIT_ERROR


class WorkspaceBusy(OxaError):
    """Another process is writing the same workspace (or holds its catalog)."""


class MissingExtra(OxaError):
    """A model-backed feature was asked for without the extra that brings its libraries."""


class DataCommitted(OxaError):
    """A stage published its data, then a later step of its own (the run's record, the
    catalog) failed: the data is whole and kept; the message says what is left to do."""

    exit_code = EXIT_COMMITTED


class WorkspaceDamaged(OxaError):
    """A file of the workspace is damaged, missing or foreign: the message names it and
    `oxa check`."""

    exit_code = EXIT_DAMAGED


class DiskFull(OxaError):
    """The disk filled up while oxa wrote: nothing half-written was published."""

    exit_code = EXIT_NO_SPACE


def refuse_in_a_rerun_main(action: str) -> None:
    """Fail when this process is multiprocessing running the parent's main module again.

    oxa's verification and judging workers come from a fork server, and Python's
    multiprocessing imports the parent's main module there first (as `__mp_main__`). A
    script whose calls are not under `if __name__ == "__main__":` would run them a second
    time in that process: ingest and select again, load models, start pools of its own.
    The test is Python's own (multiprocessing.spawn's `_check_not_importing_main`): the
    `_inheriting` mark, set only while the main module is imported that way, so a stage
    started by a process's target function runs as usual.
    """
    import sys

    if "multiprocessing" not in sys.modules:  # no process of this kind: nothing to check
        return
    from multiprocessing import process

    if getattr(process.current_process(), "_inheriting", False):
        main = sys.modules.get("__mp_main__")
        script = getattr(main, "__file__", None) or "the main module"
        raise OxaError(
            f"{action} was called while Python's multiprocessing ran {script} again in an oxa worker process "
            "(workers import the main module); put the script's top-level calls under "
            '`if __name__ == "__main__":`'
        )
