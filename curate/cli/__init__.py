"""The `oxa` command line: one module per command group, each a thin layer over its
stage's config and `run_*` function.

The trainer's commands (train, model, eval, demo, synth model) join through the `oxa.cli`
entry point that the train package declares (pyproject.toml), so that the curation layer
never imports the trainer: imports run train -> curate.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from curate.cli import ingest, score, select, subsets, synth, trace, verify, workspace
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
for _commands in (workspace, ingest, trace, verify, score, select, subsets, synth):
    _commands.register(app)
for _plugin in _PLUGINS:
    _plugin.load()(app)


def main() -> None:
    try:
        app()
    except OxaError as exc:
        typer.echo(f"error: {exc}", err=True)  # plain, unwrapped: paths and SQL stay whole
        sys.exit(2)
