"""`oxa demo`: the whole pipeline on the test bed, with its summary tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.workspace import OxaError
from curate.workspace.options import old_option, output_option, renamed
from curate.workspace.progress import stage_progress

console = Console()


def register(app: typer.Typer, train_app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this module's commands to the top-level `oxa` app or its `train`/`model` groups."""
    app.command()(demo)


def demo(
    ctx: typer.Context,
    output: Annotated[
        Path,
        output_option(
            "Folder for the world, the models, the workspace and the results; a demo's folder is resumed "
            "(a new one, an empty one or an earlier demo's)."
        ),
    ] = Path("oxa-demo"),
    fast: Annotated[
        bool, typer.Option(help="A smaller world, shorter training and evaluation (about 2 minutes).")
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            help="How many of the independent steps (the trainings; the GRPO runs, evaluations and entropies) "
            "run side by side, each on one CPU thread; by default as many as the CPUs this process may use. "
            "The other steps run alone on two threads. The results do not change with it.",
            show_default=False,
        ),
    ] = None,
    workdir: Annotated[Path | None, old_option("--workdir")] = None,
) -> None:
    """The whole OXA pipeline end to end on the test bed (a synthetic world and tiny models):
    ingest -> trace -> verify -> score -> self-distill -> verify -> score -> decontaminate
    against the held-out problems (a few planted in the pool) -> select SFT / SFT_LP / OXA_MLE /
    OXA_Full -> train each -> GRPO from SFT and OXA_Full -> evaluate on held-out problems ->
    compare with SFT, with 95% intervals.

    A second run reuses the steps that are done (OUTPUT/demo.json)."""
    from train.demo import STATE, DemoConfig, run_demo

    output = renamed(ctx, "output", output, "workdir", workdir)
    # resumed, never overwritten: a folder holding anything but a demo is refused
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not (output / STATE).is_file():
        raise OxaError(
            f"{output} holds files but no demo ({STATE}); choose another --output (a new or empty folder, "
            "or an earlier demo's, which is resumed)"
        )
    config = DemoConfig(workdir=output, fast=fast, threads=threads)
    console.rule(f"oxa demo{' --fast' if fast else ''} --threads {config.threads}: {config.workdir}")
    summary = run_demo(config, say=console.print, display=stage_progress)
    _print_demo_summary(summary)


def _print_demo_summary(summary: dict) -> None:
    from train.eval.report import with_interval  # brings polars: only once there is a summary

    console.rule("summary")
    table = Table("step", "what it did", title="funnels")
    for step, line in summary["funnels"].items():
        table.add_row(step, line)
    console.print(table)
    table = Table("origin", "verdict", "rows", title="verdicts (candidates)")
    for row in summary["verdicts"]:
        table.add_row(row["origin"], str(row["verdict"]), f"{row['rows']:,}")
    console.print(table)
    comparison = summary["comparison"]
    k = comparison["rows"][0]["k"]
    table = Table(
        "model", "trained on", "Pass@1 [95%]", f"Pass@{k} [95%]", "length", "entropy",
        title=f"held-out problems: {comparison['rows'][0]['problems']} problems x {k} samples",
    )  # fmt: skip
    from train.demo import CLIP_COV_RUN

    rl_starts = {CLIP_COV_RUN[0]: CLIP_COV_RUN[1]}  # a GRPO run named otherwise than its SFT model
    for row in comparison["rows"]:
        start = row["run"].split("+")[0]
        subset = summary["subsets"].get(rl_starts.get(start, start))
        trained_on = "(pre-trained)" if row["run"] == "base" else f"{subset['name']}/{subset['version'][:8]}"
        table.add_row(
            row["run"] if "+" not in row["run"] else f"{row['run']} (RLVR)",
            trained_on,
            with_interval(row["pass_at_1"], row["pass_at_1_low"], row["pass_at_1_high"]),
            with_interval(row["pass_at_k"], row["pass_at_k_low"], row["pass_at_k_high"]),
            f"{row['mean_length']:.0f}",
            _fmt(row["mean_entropy"]),
        )
    console.print(table)
    for line in summary["against_reference"]:
        console.print(f"  {line}")
    entropy = ", ".join(f"{m} {v:.3f}" for m, v in summary["policy_entropy"].items())
    console.print(f"initial policy entropy (RL prompts, sampled as GRPO's rollouts), nats per token: {entropy}")
    rlvr = ", ".join(f"{m} {e['initial']:.3f} -> {e['final']:.3f}" for m, e in summary["rlvr_entropy"].items() if e)
    console.print(f"policy entropy during RLVR (first -> last GRPO step), nats per token: {rlvr}")
    console.print(f"table and plot: {comparison['table']}, {comparison['plot']}")
    console.print(f"total {summary['wall_seconds']:.0f} s; everything is in {summary['workdir']}:")
    console.print(f"  oxa status {summary['workspace']}    oxa subsets list {summary['workspace']}")
    console.print("  subsets/<name>/<version>/card.md, train/<method>/, entropy/<method>/, grpo/<method>/curves.png,")
    console.print("  eval/<method>/, compare/compare.md and compare.png, summary.json")


def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else ("" if value is None else str(value))
