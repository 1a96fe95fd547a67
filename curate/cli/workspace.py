"""`oxa init`, `oxa status` and `oxa sql`: the workspace and its catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.common import WorkspaceArg, console
from curate.workspace import OxaError, Workspace
from curate.workspace.query import describe, named_queries, named_query, run_query


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""
    app.command()(init)
    app.command()(status)
    app.command()(sql)


def init(workspace: WorkspaceArg) -> None:
    """Create a workspace: catalog.duckdb, pool/, answers/, verify/, scores/, runs/, subsets/."""
    ws = Workspace.init(workspace)
    console.print(
        f'workspace ready at [bold]{ws.root}[/]; query it with `oxa sql {workspace} "SELECT ..."`'
        f" or `duckdb {ws.catalog_path}`"
    )


def status(workspace: WorkspaceArg) -> None:
    """Row counts, stage runs, unfinished writes and stray files of a workspace.

    Row counts per table, the stage runs with their config fingerprints (a run without
    results is 'running', or 'killed' when its process is gone: a killed ingest added
    nothing; a killed verify or score kept its whole parts, which its rerun skips), the
    temporary files of unfinished writes ('stale' ones, left by a killed run, are removed
    by the next writer of their folder), files in the tables' folders that no table reads,
    and whether the catalog file waits for a process."""
    ws = Workspace.open(workspace)
    info = ws.status()
    tables = Table(title=f"workspace {info['root']}")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, rows in info["tables"].items():
        tables.add_row(name, f"{rows:,}")
    console.print(tables)
    if info["tables_unreadable"]:
        console.print(
            f"row counts unavailable: {info['tables_unreadable']}", markup=False, highlight=False, soft_wrap=True
        )
    _print_quick_check(ws, workspace)
    if info["unfinished_writes"]:
        unfinished = Table(title="unfinished writes (not in any table)")
        unfinished.add_column("temporary file")
        unfinished.add_column("state")
        for entry in info["unfinished_writes"]:
            unfinished.add_row(entry["path"], entry["state"])
        console.print(unfinished)
    if info["stray_files"]:
        console.print(
            f"{len(info['stray_files'])} file(s) in the tables' folders are not oxa parts and no table reads them "
            "(move them out of the workspace):",
            markup=False,
            soft_wrap=True,
        )
        for path in info["stray_files"]:
            console.print(f"  {path}", markup=False, highlight=False, soft_wrap=True)
    if info["catalog"]:
        console.print(f"catalog: {info['catalog']}", markup=False, highlight=False, soft_wrap=True)
    if not info["runs"]:
        console.print("no stage runs yet")
        return
    runs = Table(title="runs")
    for column in ("stage", "run id", "config fingerprint", "status", "summary"):
        runs.add_column(column)
    for run in info["runs"]:
        runs.add_row(run["stage"], run["run_id"], run["config_fingerprint"], run["status"], run["summary"])
    console.print(runs)


def _print_quick_check(ws: Workspace, workspace: Path) -> None:
    """The cheap part of `oxa check` (no hashing, no rows read), and when the whole of it
    is needed. Temporary files and stray files have their own tables below."""
    from curate.check import run_check

    report = run_check(ws, deep=False)
    shown = [f for f in report.findings if f.kind not in ("stale-temporary", "stray-file")]
    for line in [*(f.line() for f in shown), *(n for n in report.notes if "being written" not in n)]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if report.findings:
        console.print(
            f"damage or leftovers found: `oxa check {workspace}` checks everything (it hashes every part), "
            f"`oxa check {workspace} --repair` acts on what it can",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def sql(
    workspace: WorkspaceArg,
    query: Annotated[
        str | None,
        typer.Argument(
            help="A SQL query over the views problems, samples, answers, gold, verify, candidates, scores_<tag>, runs "
            "(with --describe: the view to describe)."
        ),
    ] = None,
    named: Annotated[
        str | None, typer.Option("--query", "-q", help="Run a named query from sql/queries/ instead (see --list).")
    ] = None,
    list_queries: Annotated[bool, typer.Option("--list", help="List the named queries.")] = False,
    describe_view: Annotated[
        bool,
        typer.Option(
            "--describe",
            help="List the views and tables with what each holds; `--describe VIEW`: its columns, as SQL writes "
            "them, with types and comments.",
        ),
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or parquet.")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the result to this file (a new one, or --overwrite).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --output file.")] = False,
    limit: Annotated[int, typer.Option(help="Rows to show in --format table.")] = 50,
) -> None:
    """Run one SQL query against the workspace's views (read-only).

    Only queries run (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN): no COPY,
    EXPORT, ATTACH, INSTALL or SET; files are read only inside the workspace, extensions
    are neither installed nor loaded. Save a result with -o (not into pool/, answers/,
    verify/, scores/, subsets/ or runs/). Works while another program holds catalog.duckdb.
    `--describe` lists the views with their comments, `--describe VIEW` one view's columns."""
    if describe_view:
        if named or list_queries or output is not None or fmt != "table":
            raise OxaError(
                "--describe prints the catalog's comments; it takes a view name, not --query, --list, --format or -o "
                "(query duckdb_columns() for those)"
            )
        title, columns, rows = describe(Workspace.open(workspace), query)
        if title:
            console.print(title, markup=False, highlight=False, soft_wrap=True)
        _print_rows(columns, rows, limit=len(rows))
        return
    if list_queries:
        for name, what in named_queries().items():
            console.print(f"[bold]{name}[/]: {what}")
        return
    if (query is None) == (named is None):
        raise OxaError(
            "give either a query or --query NAME (see `oxa sql WS --list`; `oxa sql WS --describe` lists the views)"
        )
    text = named_query(named) if named else query
    result = run_query(Workspace.open(workspace), text, fmt, output, overwrite)
    if result is None:
        if output is not None:
            console.print(f"wrote {output}")
        return
    _print_rows(*result, limit=limit)


def _print_rows(columns: list[str], rows: list[tuple], limit: int) -> None:
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows[:limit]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console.print(table)
    if len(rows) > limit:
        console.print(f"... {len(rows) - limit:,} more rows (--limit, or --format csv/json/parquet -o FILE)")
