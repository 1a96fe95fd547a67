"""`oxa decontaminate`: find the pool problems that hold a benchmark problem."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from curate.benchmarks.names import BUILTIN
from curate.cli.common import WorkspaceArg, console
from curate.decontaminate.config import DecontaminateConfig
from curate.workspace import Workspace
from curate.workspace.progress import stage_progress


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""
    app.command(
        epilog="Methods: exact (the same text after normalization), contained (the whole benchmark problem "
        "inside a longer text), near (light edits), template (the benchmark problem with other numbers or "
        "expressions; kept by selection unless drop_templates = true). Guide: docs/decontaminate.md."
    )(decontaminate)


def decontaminate(
    workspace: WorkspaceArg,
    against: Annotated[
        str,
        typer.Option(
            help="Comma-separated benchmarks: built-in names (" + ", ".join(BUILTIN) + ") or files and folders "
            "`oxa eval --benchmarks` reads (benchmark-layout JSON/JSONL, verl parquet, GPQA csv, MMLU parquet, "
            "a subset folder)."
        ),
    ] = ",".join(BUILTIN),
    ngram: Annotated[
        int,
        typer.Option(
            help="Tokens per n-gram of the index (a token: a word, a number, a LaTeX command or a symbol). "
            "open-r1 uses 8 words, lm-evaluation-harness 13."
        ),
    ] = DecontaminateConfig.ngram,
    min_coverage: Annotated[
        float,
        typer.Option(
            help="Share (0-1) of a benchmark problem's tokens that n-grams shared with the pool text must cover "
            "for a match; shared boilerplate alone covers far less."
        ),
    ] = DecontaminateConfig.min_coverage,
    responses: Annotated[
        bool,
        typer.Option("--responses", help="Also check every response (a benchmark problem quoted in a solution)."),
    ] = False,
    mmlu_subjects: Annotated[
        str, typer.Option(help="An MMLU file's subjects: 'stem', 'all' or comma-separated names.")
    ] = DecontaminateConfig.mmlu_subjects,
) -> None:
    """Check the pool's problems against benchmark problems into the `contamination` table.

    Texts are compared after oxa's normalization (LaTeX spelling, math delimiters, case,
    whitespace), as token n-grams with numbers masked; a pair that shares enough is then
    checked exactly: how much of the benchmark problem it covers, and whether the
    benchmark's numbers and expressions are in it. `oxa select` leaves out contaminated
    problems by default. A rerun with the same settings checks only new problems.
    """
    from curate.decontaminate.decontaminate import run_decontaminate  # the stage, when it runs (not for --help)
    from curate.decontaminate.matching import METHODS

    ws = Workspace.open(workspace)
    config = DecontaminateConfig(
        against=[a.strip() for a in against.split(",") if a.strip()],
        ngram=ngram,
        min_coverage=min_coverage,
        responses=responses,
        mmlu_subjects=mmlu_subjects,
    )
    with stage_progress() as report:
        stats = run_decontaminate(ws, config, progress=report)
    table = Table(title=f"decontaminate {stats['run_id']}")
    table.add_column("benchmark")
    table.add_column("problems", justify="right")
    fields = list(stats["checked"])
    for method in METHODS:
        for field in fields:
            table.add_column(method if field == "problem" else f"{method} (responses)", justify="right")
    for bench in stats["benchmarks"]:
        found = stats["matches"][bench["name"]]
        table.add_row(
            bench["name"],
            f"{bench['problems']:,}",
            *(f"{found[f'{field}_{method}']:,}" for method in METHODS for field in fields),
        )
    console.print(table)
    console.print(stats["summary"])
    console.print(
        f'matches: oxa sql {workspace} "SELECT * FROM contamination"; run folder: '
        f"{ws.run_dir('decontaminate', stats['run_id'])}"
    )
