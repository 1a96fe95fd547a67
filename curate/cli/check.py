"""`oxa check`: the workspace against its own records (fsck), and `--repair`."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.common import WorkspaceArg, console
from curate.workspace.errors import EXIT_DAMAGED
from curate.workspace.progress import stage_progress


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""
    app.command()(check)


def check(
    workspace: WorkspaceArg,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Act on what was found: move files that are not what oxa wrote aside under .oxa-quarantine/<time>/ "
            "(never deleted), remove temporary files of dead writers, record killed runs, forget lost generations "
            "as done, rebuild the catalog.",
        ),
    ] = False,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Only the cheap checks `oxa status` runs: no hashing, no rows read."),
    ] = False,
) -> None:
    """Check a workspace against its own records, one line per finding with its fix.

    Every part is hashed against the record written beside it when oxa wrote it (a part
    without one, written by an older oxa, gets one); lost parts, parts changed or cut
    short, files named like parts that are not, copies, rows whose parent is gone,
    subset folders that are empty, copied or disagree with their card, temporary files
    and locks of dead processes, killed runs and a missing or damaged catalog are found.
    Exit status 0: nothing found; 4: something found (with --repair: something is left
    that needs you). --repair never deletes data: it moves it aside."""
    from curate.check import open_for_check, repair_workspace, run_check

    ws = open_for_check(workspace)
    with stage_progress("bytes") as progress:
        report = run_check(ws, deep=not quick, progress=progress)
    for note in report.notes:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    for found in report.findings:
        console.print(found.line(), markup=False, highlight=False, soft_wrap=True)
    checked = f"{report.parts:,} parts ({report.bytes / 1e6:,.1f} MB){' hashed' if report.deep else ''}"
    if not report.findings:
        console.print(f"{ws.root}: no damage found; {checked}", markup=False, highlight=False, soft_wrap=True)
        return
    if not repair:
        console.print(
            f"{ws.root}: {len(report.findings)} finding(s); {checked}; `oxa check {workspace} --repair` acts on those "
            "it can",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_DAMAGED)
    repair_workspace(ws, report)
    for done in report.repaired:
        console.print(f"repaired: {done}", markup=False, highlight=False, soft_wrap=True)
    after = run_check(ws, deep=not quick)  # what the repair uncovered (rows of a part moved aside) or left
    for left in after.findings:
        console.print(f"left for you: {left.line()}", markup=False, highlight=False, soft_wrap=True)
    if after.findings:
        console.print(
            f"{ws.root}: {len(after.findings)} finding(s) left", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(EXIT_DAMAGED)
    console.print(f"{ws.root}: repaired; no damage left", markup=False, highlight=False, soft_wrap=True)
