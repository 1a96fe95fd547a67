"""`oxa ingest`: pool sources into a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.common import WorkspaceArg, console, parse_map
from curate.ingest.presets import PRESETS
from curate.ingest.records import WHERE_COLUMNS
from curate.workspace import Workspace
from curate.workspace.progress import stage_progress

DAMAGED_EXIT_CODE = 3  # the run finished, but a source file was damaged


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""
    app.command(epilog="Presets: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()))(ingest)


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
            help="FIELD=COLUMN (a column whose whole name has dots is that column; otherwise dots reach nested fields, \\. a literal dot); fields: problem, response, responses, gold_answer, source, category, generator, ppl, n_tokens, meta. Overrides the preset's column for that field.",
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
    verdict: Annotated[
        str | None,
        typer.Option(
            help="The source vouches for its responses (e.g. the official OXA data, verified by its authors): "
            "record this verdict (correct or incorrect) for each new sample, as verifier 'given' with the source "
            "and run, so selection can run without golds; `oxa verify` leaves those samples alone."
        ),
    ] = None,
    license_: Annotated[
        str | None,
        typer.Option(
            "--license",
            help="The sources' license, as the Hub names it (cc-by-4.0, apache-2.0, mit) or its name: subset cards "
            "list it for the rows they take from these files. Default: unknown.",
        ),
    ] = None,
    source_dataset: Annotated[
        list[str] | None,
        typer.Option(
            help="A data set these files come from, e.g. nvidia/AceReason-1.1-SFT (repeat for several): subset cards "
            "list it as a source data set. Default: the preset's (acereason: nvidia/AceReason-1.1-SFT).",
        ),
    ] = None,
) -> None:
    """Add pool sources to a workspace: problems, samples, and the answers they give.

    Ingesting the same data twice adds nothing. Every record read is accepted, a duplicate,
    rejected with a reason (in runs/ingest/<run>/rejects/), or filtered out. A damaged file
    (a truncated or corrupt .gz, a corrupt parquet file) keeps the rows read before the
    damage, is recorded as a `corrupt_file` reject, and the other files go on; the command
    then exits with status 3. The run's rows appear in the pool only when it ends.
    """
    from curate.ingest import IngestConfig, run_ingest  # the stage, when it runs (not for --help)

    ws = Workspace.open(workspace)
    config = IngestConfig(
        sources=[str(s) for s in sources],
        preset=preset,
        mapping=parse_map(map_ or []),
        where=where,
        all_categories=all_categories,
        generator=generator,
        strip_instruction=strip_instruction,
        scores_tag=scores_tag,
        max_record_bytes=max_record_bytes,
        verdict=verdict,
        license=license_,
        source_datasets=source_dataset or [],
    )
    with stage_progress(unit="bytes") as report:
        stats = run_ingest(ws, config, progress=report)
    _print_ingest_summary(ws, stats)
    if stats["damaged_files"]:
        for damaged in stats["damaged_files"]:  # plain, unwrapped: paths stay whole
            typer.echo(f"damaged: {damaged['path']} at row {damaged['row']:,}: {damaged['reason']}", err=True)
        typer.echo("the rows before the damage were kept; replace the file(s) and ingest them again", err=True)
        raise typer.Exit(DAMAGED_EXIT_CODE)


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
        table.add_row(f"new {what}" + (f" (scores/{stats['scores_tag']})" if what == "scores" and n else ""), f"{n:,}")
    for reason, n in stats["scores_dropped"].items():
        table.add_row(f"  score dropped, sample kept: {reason}", f"{n:,}")
    if stats["damaged_files"]:
        table.add_row("damaged files", f"{len(stats['damaged_files']):,}")
    if stats["instructions_stripped"]:
        table.add_row("instruction suffixes stripped", f"{stats['instructions_stripped']:,}")
    console.print(table)
    for path in stats["empty_files"]:
        console.print(f"empty (no records): {path}", markup=False, highlight=False, soft_wrap=True)
    for skipped in stats["skipped_files"]:
        console.print(
            f"skipped ({skipped['reason']}): {skipped['path']}", markup=False, highlight=False, soft_wrap=True
        )
    console.print(f"run folder: {ws.run_dir('ingest', stats['run_id'])}")
