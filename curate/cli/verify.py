"""`oxa verify`: a math-verify verdict for every sample."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from curate.cli.common import WorkspaceArg, console
from curate.verify import VerifierSettings, VerifyConfig, run_verify
from curate.workspace import Workspace
from curate.workspace.progress import stage_progress


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""
    app.command()(verify)


def verify(
    workspace: WorkspaceArg,
    extraction: Annotated[
        str,
        typer.Option(
            help="Where the answer comes from, inside the answer region (see --require-think). "
            "'box': the content of the region's last \\boxed{}/\\fbox{} (braces balanced), else no_answer; "
            "'lenient': math-verify's own extraction over the whole region."
        ),
    ] = VerifierSettings.extraction,
    require_think: Annotated[
        bool,
        typer.Option(
            "--require-think/--no-require-think",
            help="The answer region is the text after the last </think>. With --require-think (the default, "
            "the paper's rule) a response with no </think> has no answer (no_answer, reason no_think); "
            "with --no-require-think its whole text is the region (for pools written without thinking).",
        ),
    ] = VerifierSettings.require_think,
    workers: Annotated[int, typer.Option(help="Processes judging answers; 0 = one per CPU.")] = 0,
    deadline: Annotated[
        float, typer.Option(help="Seconds per answer, enforced from outside the worker (then: timeout).")
    ] = VerifierSettings.deadline_s,
    parse_timeout: Annotated[
        int, typer.Option(help="math-verify's own parse timeout in seconds; 0 = off.")
    ] = VerifierSettings.parse_timeout_s,
    verify_timeout: Annotated[
        int, typer.Option(help="math-verify's own comparison timeout in seconds; 0 = off.")
    ] = VerifierSettings.verify_timeout_s,
    float_rounding: Annotated[
        int, typer.Option(help="math-verify: decimal places floats are rounded to.")
    ] = VerifierSettings.float_rounding,
    numeric_precision: Annotated[
        int, typer.Option(help="math-verify: digits of numeric comparison.")
    ] = VerifierSettings.numeric_precision,
    strict: Annotated[
        bool,
        typer.Option("--strict/--no-strict", help="math-verify strict mode (variables matter, sets are not tuples)."),
    ] = True,
    max_answer_chars: Annotated[
        int, typer.Option(help="A longer extracted answer is not parsed (verdict error).")
    ] = VerifierSettings.max_answer_chars,
    retry: Annotated[
        str | None,
        typer.Option(
            help="Judge again the samples whose verdict is one of these (comma-separated: timeout,error), "
            "e.g. after a loaded machine, with a longer --deadline: the timeouts are not part of the settings "
            "hash, so the other verdicts stay. Without it, timeouts and errors are kept like any verdict.",
        ),
    ] = None,
    batch_rows: Annotated[int, typer.Option(help="Samples per batch.")] = VerifyConfig.batch_rows,
    worker_memory_mb: Annotated[
        int, typer.Option(help="Memory (address space, MiB) a worker may add before MemoryError; 0 = no limit.")
    ] = VerifyConfig.worker_memory_mb,
) -> None:
    """Judge every sample against its problem's gold answer into `verify`.

    Verdicts: correct, incorrect, no_answer, bad_gold, timeout, error, each with a reason,
    and beside them a simple verdict (normalized string equality of the last box). Each
    distinct (gold, answer) pair is judged once; verdicts are cached per settings in
    WS/verify/.cache/, so reruns and newly added samples reuse them. A rerun (or one after
    a kill) verifies only samples without a verdict under these settings and gold;
    timeouts and errors are verdicts too, judged again only with --retry.
    """
    settings = VerifierSettings(
        extraction=extraction,
        require_think=require_think,
        float_rounding=float_rounding,
        numeric_precision=numeric_precision,
        strict=strict,
        parse_timeout_s=parse_timeout,
        verify_timeout_s=verify_timeout,
        deadline_s=deadline,
        max_answer_chars=max_answer_chars,
    )
    config = VerifyConfig(
        settings,
        workers=workers,
        batch_rows=batch_rows,
        worker_memory_mb=worker_memory_mb,
        retry=tuple(v.strip() for v in (retry or "").split(",") if v.strip()),
    )
    ws = Workspace.open(workspace)
    with stage_progress() as report:
        stats = run_verify(ws, config, progress=report)
    table = Table(title=f"verify {stats['run_id']} ({stats['verifier']}, settings {stats['settings_hash']})")
    table.add_column("")
    table.add_column("math-verify", justify="right")
    table.add_column("simple", justify="right")
    funnel = stats["funnel"]
    table.add_row("samples", f"{funnel['samples']:,}", "")
    table.add_row("  already verified", f"{funnel['already_verified']:,}", "")
    for verdict in ("correct", "incorrect", "no_answer", "bad_gold", "timeout", "error"):
        simple = stats["simple_verdicts"].get(verdict)
        table.add_row(f"  {verdict}", f"{stats['verdicts'].get(verdict, 0):,}", "" if simple is None else f"{simple:,}")
    console.print(table)
    agreement = stats["agreement"]
    if agreement["both_decided"]:
        console.print(
            f"agreement where both decided: {agreement['rate']:.2%} of {agreement['both_decided']:,} "
            f"(math-verify only correct: {agreement['math_verify_only_correct']:,}; "
            f"simple only correct: {agreement['simple_only_correct']:,})"
        )
    for reason, n in list(stats["reasons"].items())[:8]:
        console.print(f"  {reason}: {n:,}")
    distinct, judged = stats["distinct"], stats["judged"]
    console.print(
        f"distinct pairs {distinct['pairs']:,}: judged now {judged['pairs']:,}, from cache "
        f"{stats['cache_hits']['pairs']:,}; workers {stats['workers'] or 'not started'}"
    )
    left = {v: stats["verdicts"].get(v, 0) for v in ("timeout", "error")}
    if any(left.values()):
        console.print(
            f"{left['timeout']:,} timeout and {left['error']:,} error verdicts are kept as they are; "
            f"to judge them again: oxa verify {workspace} --retry timeout,error [--deadline 60]"
        )
    console.print(f"run folder: {ws.run_dir('verify', stats['run_id'])}")
