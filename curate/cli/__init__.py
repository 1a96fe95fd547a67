"""The `oxa` command line: one module per command group, each a thin layer over its
stage's config and `run_*` function.

The trainer's commands (train, model, eval, demo, synth model) join through the `oxa.cli`
entry point that the train package declares (pyproject.toml), so that the curation layer
never imports the trainer: imports run train -> curate.

Guide: docs/cli.md.
"""

from __future__ import annotations

import errno
import re
import sys
from importlib.metadata import entry_points

import typer

from curate.backends.base import sleep_while_waiting
from curate.cli import check, decontaminate, ingest, score, select, subsets, synth, trace, verify, workspace
from curate.workspace import DiskFull, OxaError, WorkspaceDamaged

PLUGIN_GROUP = "oxa.cli"
# what DuckDB and Arrow say when a file's bytes are wrong: worth hashing the parts to find it
_DAMAGE_WORDS = re.compile(
    r"parquet|magic bytes|out of buffer|corrupt|decompress|zstd|snappy|thrift|footer|page header|checksum",
    re.IGNORECASE,
)  # entry points: callables taking the app, adding commands to it

_PLUGINS = sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)

app = typer.Typer(
    help="oxa: curate long chain-of-thought math data (OXA), query it with SQL, train on it.",
    epilog=None
    if _PLUGINS
    else "The trainer's commands (train, model, eval, demo, synth model) need oxa installed: pip install -e .",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
)


def _print_version(value: bool) -> None:
    if value:
        from curate import __version__

        typer.echo(f"oxa {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print oxa's version and exit."
    ),
) -> None:
    """The options of `oxa` itself (the commands have their own)."""


for _commands in (workspace, check, ingest, trace, verify, decontaminate, score, select, subsets, synth):
    _commands.register(app)
for _plugin in _PLUGINS:
    _plugin.load()(app)


def main() -> None:
    sleep_while_waiting()  # before any command loads torch
    command = typer.main.get_command(app)
    unwrap_help(command)
    try:
        command()
    except OxaError as exc:
        _exit_with(exc)
    except Exception as exc:
        explained = explain_failure(exc)
        if explained is None:
            raise  # a bug: its traceback, exit status 1
        _exit_with(explained)


def _exit_with(exc: OxaError) -> None:
    typer.echo(f"error: {exc}", err=True)  # plain, unwrapped: paths and SQL stay whole
    sys.exit(exc.exit_code)


def explain_failure(exc: BaseException) -> OxaError | None:
    """One line for what a library raised where the cause is the machine's or the data's,
    not oxa's: a full disk (wherever it surfaced: Python, DuckDB, Arrow), or a damaged file
    of a workspace this command opened, found by `oxa check`'s passes and named."""
    chain = _chain(exc)
    full = next((e for e in chain if _no_space(e)), None)
    if full is not None:
        where = getattr(full, "filename", None)
        return DiskFull(
            f"the disk is full (no space left on the device) while writing {where or 'the output'}; nothing "
            "half-written was published (temporary files go with the next run of the stage, or `oxa check WS "
            "--repair`); free space and run the command again"
        )
    if not any(_is_read_error(e) for e in chain):
        return None
    from curate.check import find_damage
    from curate.workspace.workspace import OPENED

    deep = any(_DAMAGE_WORDS.search(str(e)) for e in chain)  # else only the quick pass: no hashing for a bug
    for ws in dict.fromkeys(OPENED):
        found = find_damage(ws, deep=deep)
        if found:
            more = f" ({len(found) - 1} more)" if len(found) > 1 else ""
            return WorkspaceDamaged(
                f"{ws.root / found[0].path} {found[0].problem}{more}; run `oxa check {ws.root}` to see the damage, "
                f"and `oxa check {ws.root} --repair` to set it aside"
            )
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return "No space left on device" in str(exc)


def _is_read_error(exc: BaseException) -> bool:
    """An error of DuckDB or Arrow, or of reading a file: what a damaged part raises."""
    module = type(exc).__module__ or ""
    return module.startswith(("duckdb", "_duckdb", "pyarrow")) or isinstance(exc, (OSError, EOFError))


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
