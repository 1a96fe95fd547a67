"""`oxa select`: a training subset from the candidates view, published with its card."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from curate.cli.common import WorkspaceArg, console
from curate.select.config import ALIASES, SelectConfig, load_select_config
from curate.workspace import Workspace
from curate.workspace.configfile import field_help, preset_names
from curate.workspace.progress import err_console, warn


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""
    app.command(epilog=_config_keys_epilog())(select)


def _config_keys_epilog() -> str:
    symbols = {field: symbol for symbol, field in ALIASES.items()}
    keys = [
        f"{name}{f' ({symbols[name]})' if name in symbols else ''}: {text}"
        for name, text in field_help(SelectConfig).items()
    ]
    return "Config keys:\n\n" + "\n\n".join(keys)


def select(
    workspace: WorkspaceArg,
    config: Annotated[
        str, typer.Argument(help="A TOML/YAML config file, or a preset in configs/: " + ", ".join(preset_names()))
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE over the config, e.g. --set N=1000 or --set positives.mu=3.0"),
    ] = None,
) -> None:
    """Select a training subset from the candidates view and publish it as an immutable,
    versioned folder WS/subsets/<name>/<version>/ with its data card.

    The same config over the same tables gives the same version (and the same
    data.parquet); a version that exists already is reported, never rewritten.
    """
    from curate.select import run_select  # the stage, when it runs (not for --help)

    ws = Workspace.open(workspace)
    selection = load_select_config(config, set_ or [])
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True
    ) as progress:
        task = progress.add_task("reading candidates")
        stats = run_select(ws, selection, progress=lambda message: progress.update(task, description=message))
    if stats["existing"]:
        console.print(
            f"{stats['name']}/{stats['version']} exists already (same config and inputs; its files match its card): "
            f"{stats['path']}"
        )
        return
    for part in stats["parts"]:
        table = Table(title=f"{part['label']}: {part['strategy']} (loss_type {part['loss_type']})", show_header=False)
        table.add_column("what")
        table.add_column("rows", justify="right")
        funnel = part["funnel"]
        table.add_row(f"input ({funnel['unit']})", f"{funnel['input']:,}")
        for reason, n in funnel["dropped"].items():
            if n:
                table.add_row(f"  dropped: {reason}", f"{n:,}")
        table.add_row("selected", f"{funnel['selected']:,}")
        table.add_row("target", f"{part['target']:,}")
        short = [b for b in part["bins"] or [] if b["shortfall"]]
        if short:
            table.add_row("PPL bins short of target", f"{len(short)} of {len(part['bins'])}")
        console.print(table)
    console.print(f"subset [bold]{stats['name']}/{stats['version']}[/]: {stats['rows']:,} rows in {stats['path']}")
    decontamination = stats["decontamination"]
    if decontamination["run_id"]:
        names = ", ".join(b["name"] for b in decontamination["benchmarks"])
        dropped = sum(decontamination["dropped"].values())
        console.print(f"checked against {names}: {dropped:,} contaminated candidates left out")
    for line in stats["warnings"]:
        warn(line)
