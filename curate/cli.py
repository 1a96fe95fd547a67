"""The `oxa` command line: a thin layer over the stage functions."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from curate.errors import OxaError
from curate.ingest import IngestConfig, run_ingest
from curate.presets import PRESETS
from curate.query import named_queries, named_query, run_query
from curate.records import WHERE_COLUMNS
from curate.resources import benchmarks_dir
from curate.workspace import Workspace

app = typer.Typer(
    help="oxa: curate long chain-of-thought math data (OXA), query it with SQL, train on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

WorkspaceArg = Annotated[Path, typer.Argument(help="Workspace folder (made by `oxa init`).")]


@app.command()
def init(workspace: WorkspaceArg) -> None:
    """Create a workspace: catalog.duckdb, pool/, answers/, verify/, scores/, runs/, subsets/."""
    ws = Workspace.init(workspace)
    console.print(
        f'workspace ready at [bold]{ws.root}[/]; query it with `oxa sql {workspace} "SELECT ..."`'
        f" or `duckdb {ws.catalog_path}`"
    )


@app.command()
def status(workspace: WorkspaceArg) -> None:
    """Row counts per table, and the stage runs with their config fingerprints."""
    info = Workspace.open(workspace).status()
    tables = Table(title=f"workspace {info['root']}")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, rows in info["tables"].items():
        tables.add_row(name, f"{rows:,}")
    console.print(tables)
    if not info["runs"]:
        console.print("no stage runs yet")
        return
    runs = Table(title="runs")
    for column in ("stage", "run id", "config fingerprint", "status", "summary"):
        runs.add_column(column)
    for run in info["runs"]:
        runs.add_row(run["stage"], run["run_id"], run["config_fingerprint"], run["status"], run["summary"])
    console.print(runs)


def _parse_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not name or not column:
            raise OxaError(f"--map takes FIELD=COLUMN, e.g. --map problem=question; got {pair!r}")
        mapping[name.strip()] = column.strip()
    return mapping


@app.command(epilog="Presets: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()))
def ingest(
    workspace: WorkspaceArg,
    sources: Annotated[
        list[Path],
        typer.Argument(
            help="Files or folders: .jsonl/.ndjson/.json (.gz), .parquet, .arrow, `datasets` save_to_disk folders."
        ),
    ],
    preset: Annotated[
        str | None,
        typer.Option(help="Source layout: " + ", ".join(PRESETS) + ". Default: detected from each file's columns."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN (dots reach nested fields); fields: problem, response, responses, gold_answer, source, category, generator, ppl, n_tokens, meta. Overrides the preset's column for that field.",
        ),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            help="Keep only records where this SQL predicate holds; columns: " + ", ".join(WHERE_COLUMNS) + "."
        ),
    ] = None,
    all_categories: Annotated[
        bool,
        typer.Option(
            "--all-categories",
            help="Keep rows the preset filters out by default (acereason keeps category 'math' only).",
        ),
    ] = False,
    generator: Annotated[
        str | None, typer.Option(help="Generator to record when the source names none (acereason: DeepSeek-R1).")
    ] = None,
    strip_instruction: Annotated[
        bool | None,
        typer.Option(
            "--strip-instruction/--keep-instruction",
            help="Strip known instruction suffixes from problems (default: per preset; verl strips).",
        ),
    ] = None,
    scores_tag: Annotated[
        str | None, typer.Option(help="Tag for the PPL lists a source carries (oxa-lists): kept as scores/<tag>/.")
    ] = None,
    max_record_bytes: Annotated[
        int, typer.Option(help="Reject records whose problem + response exceed this many bytes.")
    ] = 4 * 2**20,
) -> None:
    """Add pool sources to a workspace: problems, samples, and the answers they give.

    Ingesting the same data twice adds nothing. Every record read is accepted, a duplicate,
    rejected with a reason (in runs/ingest/<run>/rejects/), or filtered out.
    """
    ws = Workspace.open(workspace)
    config = IngestConfig(
        sources=[str(s) for s in sources],
        preset=preset,
        mapping=_parse_map(map_ or []),
        where=where,
        all_categories=all_categories,
        generator=generator,
        strip_instruction=strip_instruction,
        scores_tag=scores_tag,
        max_record_bytes=max_record_bytes,
    )
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True
    ) as progress:
        task = progress.add_task("reading")

        def report(records: int, file) -> None:
            progress.update(task, description=f"{file.path.name}: {records:,} records")

        stats = run_ingest(ws, config, progress=report)
    _print_ingest_summary(ws, stats)


def _print_ingest_summary(ws: Workspace, stats: dict) -> None:
    table = Table(title=f"ingest {stats['run_id']}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    funnel = stats["funnel"]
    for key in ("read", "accepted", "duplicate", "rejected", "filtered"):
        table.add_row(key, f"{funnel[key]:,}")
    for where, n in stats["duplicates"].items():
        if n:
            table.add_row(f"  duplicate {where.replace('_', ' ')}", f"{n:,}")
    for reason, n in stats["rejects"].items():
        table.add_row(f"  rejected: {reason}", f"{n:,}")
    for what, n in stats["added"].items():
        table.add_row(f"new {what}", f"{n:,}")
    if stats["instructions_stripped"]:
        table.add_row("instruction suffixes stripped", f"{stats['instructions_stripped']:,}")
    console.print(table)
    console.print(f"run folder: {ws.run_dir('ingest', stats['run_id'])}")


@app.command()
def sql(
    workspace: WorkspaceArg,
    query: Annotated[
        str | None,
        typer.Argument(
            help="A SQL query over the views problems, samples, answers, gold, verify, candidates, scores_<tag>, runs."
        ),
    ] = None,
    named: Annotated[
        str | None, typer.Option("--query", "-q", help="Run a named query from sql/queries/ instead (see --list).")
    ] = None,
    list_queries: Annotated[bool, typer.Option("--list", help="List the named queries.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or parquet.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to this file.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show in --format table.")] = 50,
) -> None:
    """Run SQL against the workspace catalog (read-only)."""
    if list_queries:
        for name, what in named_queries().items():
            console.print(f"[bold]{name}[/]: {what}")
        return
    if (query is None) == (named is None):
        raise OxaError("give either a query or --query NAME (see `oxa sql WS --list`)")
    text = named_query(named) if named else query
    result = run_query(Workspace.open(workspace), text, fmt, output)
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


@app.command()
def demo(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder for the demo.")] = Path("oxa-demo"),
    fresh: Annotated[bool, typer.Option(help="Delete the demo workspace first.")] = True,
) -> None:
    """The main job, end to end on the shipped data: ingest the six benchmark sets and a
    verl prompt file into a workspace, then summarize the pool with SQL."""
    if fresh and (workspace / "catalog.duckdb").exists():
        shutil.rmtree(workspace)
    ws = Workspace.init(workspace)
    console.rule("ingest the benchmark sets (preset benchmark)")
    _print_ingest_summary(ws, run_ingest(ws, IngestConfig([str(benchmarks_dir())], preset="benchmark")))
    console.rule("ingest verl prompts for AIME 2024 (preset verl): the same problems, nothing new")
    verl = benchmarks_dir().parent / "formats" / "aime24.verl.parquet"
    _print_ingest_summary(ws, run_ingest(ws, IngestConfig([str(verl)], preset="verl")))
    console.rule("oxa sql --query pool_summary")
    _print_rows(*run_query(ws, named_query("pool_summary")), limit=50)
    console.print(f'\nexplore it: oxa sql {workspace} "SELECT * FROM problems LIMIT 5"  |  oxa status {workspace}')


def main() -> None:
    try:
        app()
    except OxaError as exc:
        typer.echo(f"error: {exc}", err=True)  # plain, unwrapped: paths and SQL stay whole
        sys.exit(2)


if __name__ == "__main__":
    main()
