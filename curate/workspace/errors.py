"""Errors meant for the user: the CLI prints their message alone, without a traceback."""


class OxaError(Exception):
    """Bad input or a bad request: the message names the value and what to do."""


class WorkspaceBusy(OxaError):
    """Another process is writing the same workspace (or holds its catalog)."""


class MissingExtra(OxaError):
    """A model-backed feature was asked for without the extra that brings its libraries."""
