"""What the command modules share: the console, the workspace argument, FIELD=COLUMN options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.workspace import OxaError

console = Console()

WorkspaceArg = Annotated[Path, typer.Argument(help="Workspace folder (made by `oxa init`).")]


def parse_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not name or not column:
            raise OxaError(f"--map takes FIELD=COLUMN, e.g. --map problem=question; got {pair!r}")
        mapping[name.strip()] = column.strip()
    return mapping
