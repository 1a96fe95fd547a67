"""The command line's shared grammar, for curate's commands and the trainer's alike:
`-o/--output` for every path a command writes, `--overwrite` as a plain flag, and the
old spellings a renamed option keeps, hidden, for one release (docs/cli.md, the
conventions; tests/test_cli_grammar.py keeps the rules).

It lives beside the workspace's other shared pieces, not in curate.cli, because the
trainer's command modules import it and curate.cli loads them as its plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from curate.workspace.errors import OxaError


def output_option(help: str, **kwargs: Any) -> Any:
    """`-o/--output`: the one spelling of every path a command writes."""
    return typer.Option("--output", "-o", help=help, **kwargs)


def overwrite_option(help: str) -> Any:
    """`--overwrite`, a plain flag: without it an existing, non-empty output is refused."""
    return typer.Option("--overwrite", help=help)


def old_option(*names: str) -> Any:
    """An old spelling kept, hidden, for one release; `renamed` reads it."""
    return typer.Option(*names, hidden=True, show_default=False)


def old_argument() -> Any:
    """An output once given as a positional argument: still read, hidden, for one release."""
    return typer.Argument(hidden=True, show_default=False)


class OldPositionalCommand(TyperCommand):
    """A command whose old positional output (`old_argument`) stays out of its usage line
    as it stays out of its help: `cls=` of the command."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not (param.param_type_name == "argument" and getattr(param, "hidden", False)):
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def renamed(ctx: typer.Context, name: str, value: Any, old: str, old_value: Any) -> Any:
    """The value of parameter `name`, given under its own spelling or under `old`, the one it
    had before (hidden now, read for one release, with a note on stderr); both is an error."""
    if not _given(ctx, old):
        return value
    params = {p.name: p for p in ctx.command.params}
    new_spelling, old_spelling = _spelling(params[name]), _spelling(params[old])
    if _given(ctx, name):
        raise OxaError(f"{old_spelling} is the old spelling of {new_spelling}: give {new_spelling} only")
    typer.echo(f"note: {old_spelling} is deprecated and goes in the next release; write {new_spelling}", err=True)
    return old_value


def required_output(value: Path | None) -> Path:
    """The output of a command that has no default, once its old spelling has been read."""
    if value is None:
        raise OxaError("give the output path: -o/--output PATH")
    return value


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _spelling(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"the positional {param.name.upper()}"
    return "/".join(sorted(param.opts, key=len))
