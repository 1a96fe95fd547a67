"""`oxa` commands: score and generate (Score and generate). Model libraries are imported inside the commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer, train_app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this module's commands to the top-level `oxa` app or its `train`/`model` groups."""
