"""`oxa trace`: gold answers from reference data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.common import WorkspaceArg, console, parse_map
from curate.ingest.presets import REFERENCE_PRESETS
from curate.trace import TraceConfig, run_trace
from curate.workspace import Workspace
from curate.workspace.progress import stage_progress


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""
    epilog = "Reference presets: " + "; ".join(f"{p.name}: {p.description}" for p in REFERENCE_PRESETS.values())
    app.command(epilog=epilog)(trace)


def trace(
    workspace: WorkspaceArg,
    answers: Annotated[
        list[Path],
        typer.Option(
            "--answers",
            help="A reference source (file or folder, any format ingest reads); repeat for more, highest priority first.",
        ),
    ],
    preset: Annotated[
        str | None,
        typer.Option(help="Reference layout: " + ", ".join(REFERENCE_PRESETS) + ". Default: detected per file."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN for a layout no preset fits; fields: problem, gold_answer, solution (its last \\boxed is the answer), source.",
        ),
    ] = None,
    on_conflict: Annotated[
        str,
        typer.Option(
            help="Sources disagree: 'consensus' takes the answer most of the problem's teacher responses agree with "
            "(more than any other answer; else as 'priority', resolution priority_no_agreement); 'priority' keeps "
            "the best match's answer (ties: the first --answers); 'drop' gives the problem no answer. Each "
            "conflict keeps conflict = true; `oxa sql WS --query trace_conflicts` lists how each was settled."
        ),
    ] = TraceConfig.on_conflict,
    check_equivalent: Annotated[
        bool,
        typer.Option(
            "--check-equivalent/--no-check-equivalent", help="Ask math-verify whether differing answers are equal."
        ),
    ] = True,
    fuzzy: Annotated[bool, typer.Option("--fuzzy/--no-fuzzy", help="Run the fuzzy stage.")] = True,
    fuzzy_threshold: Annotated[
        float, typer.Option(help="Rapidfuzz ratio (0-1) a fuzzy match needs.")
    ] = TraceConfig.fuzzy_threshold,
    fuzzy_same_numbers: Annotated[
        bool,
        typer.Option(
            "--fuzzy-same-numbers/--fuzzy-any-numbers",
            help="A fuzzy match must keep the problem's numbers (templated problems differ only in them).",
        ),
    ] = True,
    confirm_min_responses: Annotated[
        int,
        typer.Option(
            help="A fuzzy match's answer is taken only when at least this many of the problem's teacher responses "
            "agree with it (math-verify) and no other answer has more; else the problem is fuzzy_unconfirmed."
        ),
    ] = TraceConfig.confirm_min_responses,
    keep_unconfirmed: Annotated[
        bool,
        typer.Option(
            "--keep-unconfirmed",
            help="Also take unconfirmed fuzzy matches whose text differs only by drift (typos, dropped words, a "
            "label), e.g. for a pool without responses. A substituted word still needs confirmation.",
        ),
    ] = False,
) -> None:
    """Trace each pool problem's gold answer in reference data sets into `answers`.

    Matching runs in stages: exact (the same problem_id), normalized (LaTeX spacing,
    \\left/\\right, \\dfrac, unicode forms, instruction suffixes, case and whitespace
    folded), fuzzy (token blocking + rapidfuzz ratio; a changed expression is never a
    match, and the answer must be confirmed by the problem's own teacher responses).
    Problems with a given answer keep it.
    The outcome of every problem is in runs/trace/<run>/outcomes.parquet; rejected
    reference rows (placeholders such as 'proof' or 'notfound', no answer) in rejects/.
    """
    ws = Workspace.open(workspace)
    config = TraceConfig(
        sources=[str(a) for a in answers],
        preset=preset,
        mapping=parse_map(map_ or []),
        on_conflict=on_conflict,
        check_equivalent=check_equivalent,
        fuzzy=fuzzy,
        fuzzy_threshold=fuzzy_threshold,
        fuzzy_same_numbers=fuzzy_same_numbers,
        confirm_min_responses=confirm_min_responses,
        keep_unconfirmed=keep_unconfirmed,
    )
    with stage_progress() as report:
        stats = run_trace(ws, config, progress=report)
    table = Table(title=f"trace {stats['run_id']}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    refs = stats["references"]
    table.add_row("reference rows read", f"{refs['read']:,}")
    table.add_row("  with a usable answer", f"{refs['kept']:,}")
    for reason, n in stats["rejects"].items():
        table.add_row(f"  rejected: {reason}", f"{n:,}")
    for outcome, n in stats["problems"].items():
        table.add_row("pool problems" if outcome == "pool" else f"  {outcome}", f"{n:,}")
    conflicts = stats["conflicts"]
    table.add_row("differing answers", f"{conflicts['differing_answers']:,}")
    table.add_row("  equal by math-verify", f"{conflicts['equivalent_by_math_verify']:,}")
    table.add_row(f"  conflicts ({conflicts['policy']})", f"{conflicts['conflicts']:,}")
    for resolution, n in conflicts["by_resolution"].items():
        if n and resolution != "equivalent":
            table.add_row(f"    {resolution}", f"{n:,}")
    console.print(table)
    console.print(f"run folder: {ws.run_dir('trace', stats['run_id'])}")
