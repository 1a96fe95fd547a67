"""The trainer's `oxa` commands: train sft, train grpo, model prepare, eval (and eval
entropy), demo and synth model. `register` is the `oxa.cli` entry point (pyproject.toml)
through which curate's command line takes them in; model libraries load inside commands.

Guide: docs/cli.md.
"""

from __future__ import annotations

import typer

from train.cli import demo, grpo, sft, tiny
from train.cli import eval as evaluation


def register(app: typer.Typer) -> None:
    """Add the `train` and `model` groups, `eval`, `demo` and `synth model` to the `oxa` app."""
    train_app = typer.Typer(help="Train on subsets: SFT with the OXA unlikelihood term, GRPO.", no_args_is_help=True)
    model_app = typer.Typer(
        help="Prepare model folders (RoPE and chat-template changes of the paper).", no_args_is_help=True
    )
    app.add_typer(train_app, name="train")
    app.add_typer(model_app, name="model")
    for commands in (sft, grpo, evaluation, demo, tiny):
        commands.register(app, train_app, model_app)
