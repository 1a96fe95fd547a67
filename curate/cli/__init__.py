"""The `oxa` command line: one module per command group, each a thin layer over its
stage's config and `run_*` function.

The trainer's commands (train, model, eval, demo, synth model) join through the `oxa.cli`
entry point that the train package declares (pyproject.toml), so that the curation layer
never imports the trainer: imports run train -> curate.

Guide: docs/cli.md.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from curate.cli import decontaminate, ingest, score, select, subsets, synth, trace, verify, workspace
from curate.workspace import OxaError

PLUGIN_GROUP = "oxa.cli"  # entry points: callables taking the app, adding commands to it

_PLUGINS = sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)

app = typer.Typer(
    help="oxa: curate long chain-of-thought math data (OXA), query it with SQL, train on it.",
    epilog=None
    if _PLUGINS
    else "The trainer's commands (train, model, eval, demo, synth model) need oxa installed: pip install -e .",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _commands in (workspace, ingest, trace, verify, decontaminate, score, select, subsets, synth):
    _commands.register(app)
for _plugin in _PLUGINS:
    _plugin.load()(app)


def main() -> None:
    command = typer.main.get_command(app)
    unwrap_help(command)
    try:
        command()
    except OxaError as exc:
        typer.echo(f"error: {exc}", err=True)  # plain, unwrapped: paths and SQL stay whole
        sys.exit(2)


def unwrap_help(command) -> None:
    """Join the source-wrapped lines of every command's help: typer keeps a docstring's line
    breaks, and a terminal narrower than the source then breaks each line once more."""
    if command.help:
        command.help = "\n\n".join(_unwrap_paragraph(p) for p in command.help.split("\n\n"))
    for sub in getattr(command, "commands", {}).values():
        unwrap_help(sub)


def _unwrap_paragraph(paragraph: str) -> str:
    """A line ending a sentence or a lead-in (., :), and one before an option or an indented line, keeps
    its break: those are lists and statements written one per line."""
    lines = paragraph.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        if out[-1].rstrip().endswith((".", ":")) or line.startswith(("-", " ")):
            out.append(line)
        else:
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
    return "\n".join(out)
