"""`oxa` commands: eval (evaluation). Model libraries are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.verify import VerifierSettings
from curate.workspace.configfile import field_help
from curate.workspace.options import old_option, output_option, overwrite_option, renamed, required_output
from curate.workspace.parts import refuse_to_fill
from train.eval import EntropyConfig, EvalConfig

console = Console()
_EVAL = field_help(EvalConfig)
_ENTROPY = field_help(EntropyConfig)
_DEFAULTS = EvalConfig(model="", out="")
_ENTROPY_DEFAULTS = EntropyConfig(model="", prompts="")
_BATCH_TOKENS = "Tokens per batch of the hf backend (generation and entropy scoring), as `oxa score --batch-tokens`."


def _print_metrics(metrics: list[dict]) -> None:
    table = Table()
    for column in ("benchmark", "problems", "k", "Pass@1", "Pass@k", "length", "entropy"):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for r in metrics:
        entropy = "-" if r["mean_entropy"] is None else f"{r['mean_entropy']:.3f}"
        table.add_row(
            r["benchmark"],
            f"{r['problems']:,}",
            str(r["k"] or "-"),
            f"{100 * r['pass_at_1']:.1f}",
            f"{100 * r['pass_at_k']:.1f}",
            f"{r['mean_length']:.0f}",
            entropy,
        )
    console.print(table)


def _print_comparison(rows: list[dict], reference: str) -> None:
    from train.eval.report import with_interval

    table = Table(title=f"compared with {reference} (*: beyond the 95% interval)")
    k = rows[0]["k"]
    for column in ("run", "Pass@1", f"Pass@{k}", "length", "entropy", f"Pass@1 - {reference}"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for r in rows:
        diff = (
            ""
            if r["run"] == reference
            else with_interval(r["pass_at_1_diff"], r["pass_at_1_diff_low"], r["pass_at_1_diff_high"])
        )
        table.add_row(
            r["run"],
            with_interval(r["pass_at_1"], r["pass_at_1_low"], r["pass_at_1_high"]),
            with_interval(r["pass_at_k"], r["pass_at_k_low"], r["pass_at_k_high"]),
            f"{r['mean_length']:.0f}",
            "-" if r["mean_entropy"] is None else f"{r['mean_entropy']:.3f}",
            diff + (" *" if r.get("pass_at_1_differs") else ""),
        )
    console.print(table)


def _parse_n_for(pairs: list[str]) -> dict[str, int]:
    parsed = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not name.strip() or not value.strip().isdigit():
            raise typer.BadParameter(f"expected NAME=N (e.g. minerva=64), got {pair!r}", param_hint="--n-for")
        parsed[name.strip()] = int(value)
    return parsed


def register(app: typer.Typer, train_app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this module's commands to the top-level `oxa` app or its `train`/`model` groups."""
    eval_app = typer.Typer(
        help="Evaluate a model: Pass@1 over k samples, unbiased Pass@k, length and policy entropy (`oxa eval --model PATH`).",
        invoke_without_command=True,
        no_args_is_help=True,
    )
    app.add_typer(eval_app, name="eval")

    @eval_app.callback()
    def evaluate(
        ctx: typer.Context,
        model: Annotated[Path | None, typer.Option(help=_EVAL["model"])] = None,
        benchmarks: Annotated[str, typer.Option(help=_EVAL["benchmarks"])] = _DEFAULTS.benchmarks,
        n: Annotated[
            int, typer.Option("--n", help="Samples per problem (Pass@1 is averaged over them; Pass@k for k up to n).")
        ] = _DEFAULTS.k,
        n_for: Annotated[
            list[str] | None,
            typer.Option(
                "--n-for", metavar="NAME=N", help="Another --n for a set, e.g. minerva=64 (the paper's); repeatable."
            ),
        ] = None,
        temperature: Annotated[float, typer.Option(help=_EVAL["temperature"])] = _DEFAULTS.temperature,
        top_p: Annotated[float, typer.Option(help=_EVAL["top_p"])] = _DEFAULTS.top_p,
        max_new_tokens: Annotated[int, typer.Option(help=_EVAL["max_new_tokens"])] = _DEFAULTS.max_new_tokens,
        backend: Annotated[str, typer.Option(help=_EVAL["backend"])] = _DEFAULTS.backend,
        output: Annotated[
            Path | None,
            output_option(
                "Output folder: samples/, table.md, metrics.parquet, pass_at_k.png; a rerun into it resumes.",
                show_default="eval/<model folder name>",
            ),
        ] = None,
        seed: Annotated[int, typer.Option(help=_EVAL["seed"])] = _DEFAULTS.seed,
        instruction: Annotated[str, typer.Option(help=_EVAL["instruction"])] = _DEFAULTS.instruction,
        choice_instruction: Annotated[
            str, typer.Option(help=_EVAL["choice_instruction"])
        ] = _DEFAULTS.choice_instruction,
        shuffle_seed: Annotated[int, typer.Option(help=_EVAL["shuffle_seed"])] = _DEFAULTS.shuffle_seed,
        mmlu_subjects: Annotated[str, typer.Option(help=_EVAL["mmlu_subjects"])] = _DEFAULTS.mmlu_subjects,
        limit: Annotated[int | None, typer.Option(help=_EVAL["limit"])] = None,
        entropy: Annotated[bool, typer.Option("--entropy/--no-entropy", help=_EVAL["entropy"])] = True,
        dtype: Annotated[str, typer.Option(help=_EVAL["dtype"])] = _DEFAULTS.dtype,
        device: Annotated[str, typer.Option(help=_EVAL["device"])] = _DEFAULTS.device,
        batch_tokens: Annotated[int, typer.Option(help=_BATCH_TOKENS)] = _DEFAULTS.token_budget,
        max_model_len: Annotated[int | None, typer.Option(help=_EVAL["max_model_len"])] = None,
        workers: Annotated[int, typer.Option(help=_EVAL["workers"])] = 0,
        deadline: Annotated[
            float, typer.Option(help="Seconds per answer judged, enforced from outside the worker (then: timeout).")
        ] = VerifierSettings.deadline_s,
        require_think: Annotated[
            bool,
            typer.Option(
                "--require-think/--no-require-think",
                help="No </think> in a completion means no_answer, as `oxa verify` and the paper judge "
                "(--no-require-think: the whole completion is the answer region, for models that do not think).",
            ),
        ] = VerifierSettings.require_think,
        overwrite: Annotated[
            bool,
            overwrite_option(
                "Replace what --output holds from another configuration (or write into a folder holding other files)."
            ),
        ] = False,
        out: Annotated[Path | None, old_option("--out")] = None,
        k: Annotated[int | None, old_option("--k")] = None,
        k_for: Annotated[list[str] | None, old_option("--k-for")] = None,
        token_budget: Annotated[int | None, old_option("--token-budget")] = None,
    ) -> None:
        """Sample n completions per problem once (stored in OUTPUT/samples/), judge them as
        `oxa verify` does, score their policy entropy, and write OUTPUT/table.md,
        metrics.parquet, pass_at_k.parquet and pass_at_k.png. A rerun reuses the sets
        already done; `oxa eval report OUTPUT` recomputes the metrics without a model.

        Multiple-choice files (GPQA csv/parquet, MMLU parquet; found by their columns)
        are evaluated too: options shuffled per question, the letter asked for in
        \boxed{}, accuracy with its interval and a table per subject."""
        if ctx.invoked_subcommand is not None:
            return
        if model is None:
            raise typer.BadParameter("--model is required: the model folder to evaluate", param_hint="--model")
        from curate.workspace.progress import stage_progress, warn
        from train.eval import run_eval

        output = renamed(ctx, "output", output, "out", out)
        n = renamed(ctx, "n", n, "k", k)
        n_for = renamed(ctx, "n_for", n_for, "k_for", k_for)
        batch_tokens = renamed(ctx, "batch_tokens", batch_tokens, "token_budget", token_budget)
        config = EvalConfig(
            model=str(model),
            out=str(output or Path("eval") / model.resolve().name),
            benchmarks=benchmarks,
            k=n,
            k_for=_parse_n_for(n_for or []),
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            backend=backend,
            seed=seed,
            instruction=instruction,
            choice_instruction=choice_instruction,
            shuffle_seed=shuffle_seed,
            mmlu_subjects=mmlu_subjects,
            limit=limit,
            entropy=entropy,
            dtype=dtype,
            device=device,
            token_budget=batch_tokens,
            max_model_len=max_model_len,
            verifier=VerifierSettings(deadline_s=deadline, require_think=require_think),
            workers=workers,
            overwrite=overwrite,
        )
        with stage_progress() as report:
            result = run_eval(config, progress=report)
        for name, status in result["sets"].items():
            console.print(f"{name}: {status}")
        _print_metrics(result["report"]["metrics"])
        console.print(f"table: {result['report']['table']}; plot: {result['report']['plot']}")
        warnings = (result["contamination"] or {}).get("warnings", [])
        if warnings:  # printed before generating too; a long run scrolls them away
            warn(
                f"{len(warnings)} contamination warning(s) about the training subset: see the table's Contamination section"
            )

    @eval_app.command("report")
    def report(
        folder: Annotated[Path, typer.Argument(metavar="DIR", help="An evaluation's output folder (holds samples/).")],
        k: Annotated[
            int | None, typer.Option("--k", help="The table's Pass@k column (default: every sample stored).")
        ] = None,
        benchmarks: Annotated[
            str | None, typer.Option(help="Comma-separated set names (default: every set in DIR/samples/).")
        ] = None,
    ) -> None:
        """Recompute the metrics, table and plot from stored samples, in DIR: no model, no GPU."""
        from train.eval.report import write_report

        names = [n.strip() for n in benchmarks.split(",") if n.strip()] if benchmarks else None
        result = write_report(folder, names, k)
        _print_metrics(result["metrics"])
        console.print(f"table: {result['table']}; plot: {result['plot']}")

    @eval_app.command("compare")
    def compare(
        ctx: typer.Context,
        runs: Annotated[list[Path], typer.Argument(help="Evaluation output folders (each made by `oxa eval`).")],
        output: Annotated[
            Path | None,
            output_option(
                "Output folder (required): compare.md, compare.parquet, pass_at_k.parquet, compare.png.",
                show_default=False,
            ),
        ] = None,
        names: Annotated[
            str | None, typer.Option(help="Comma-separated labels, one per run (default: the folder names).")
        ] = None,
        reference: Annotated[
            str | None, typer.Option(help="The label the others are compared to (default: the first run).")
        ] = None,
        k: Annotated[
            int | None, typer.Option("--k", help="The largest k (default: the fewest samples per problem stored).")
        ] = None,
        overwrite: Annotated[bool, overwrite_option("Replace what --output holds.")] = False,
        out: Annotated[Path | None, old_option("--out")] = None,
    ) -> None:
        """Compare evaluations of several models on the same problems: Pass@1 and Pass@k with
        95% bootstrap intervals, length, policy entropy, and each run's difference from the
        reference with its paired interval. Needs the stored samples only."""
        from train.eval.compare import CompareConfig, run_compare

        output = required_output(renamed(ctx, "output", output, "out", out))
        refuse_to_fill(output, overwrite)
        labels = [n.strip() for n in names.split(",")] if names else None
        result = run_compare(CompareConfig([str(r) for r in runs], str(output), labels, reference, k))
        _print_comparison(result["rows"], result["reference"])
        console.print(f"table: {result['table']}; plot: {result['plot']}")

    @eval_app.command("entropy")
    def entropy_command(
        ctx: typer.Context,
        model: Annotated[Path, typer.Option(help=_ENTROPY["model"])],
        prompts: Annotated[str, typer.Option(help=_ENTROPY["prompts"])],
        n: Annotated[int, typer.Option("--n", help=_ENTROPY["n"])] = _ENTROPY_DEFAULTS.n,
        temperature: Annotated[float, typer.Option(help=_ENTROPY["temperature"])] = _ENTROPY_DEFAULTS.temperature,
        top_p: Annotated[float, typer.Option(help=_ENTROPY["top_p"])] = _ENTROPY_DEFAULTS.top_p,
        max_new_tokens: Annotated[
            int, typer.Option(help=_ENTROPY["max_new_tokens"])
        ] = _ENTROPY_DEFAULTS.max_new_tokens,
        backend: Annotated[str, typer.Option(help=_ENTROPY["backend"])] = _ENTROPY_DEFAULTS.backend,
        seed: Annotated[int, typer.Option(help=_ENTROPY["seed"])] = _ENTROPY_DEFAULTS.seed,
        instruction: Annotated[str, typer.Option(help=_ENTROPY["instruction"])] = _DEFAULTS.instruction,
        limit: Annotated[int | None, typer.Option(help=_ENTROPY["limit"])] = None,
        dtype: Annotated[str, typer.Option(help=_ENTROPY["dtype"])] = _ENTROPY_DEFAULTS.dtype,
        device: Annotated[str, typer.Option(help=_ENTROPY["device"])] = _ENTROPY_DEFAULTS.device,
        batch_tokens: Annotated[int, typer.Option(help=_BATCH_TOKENS)] = _ENTROPY_DEFAULTS.token_budget,
        output: Annotated[
            Path | None,
            output_option("Output folder for entropy.parquet (per completion) and entropy.json; none: printed only."),
        ] = None,
        overwrite: Annotated[bool, overwrite_option("Replace what --output holds.")] = False,
        out: Annotated[Path | None, old_option("--out")] = None,
        token_budget: Annotated[int | None, old_option("--token-budget")] = None,
    ) -> None:
        """The initial policy entropy of a model on a prompt set: sample n completions per
        prompt, and average over every generated token the entropy -sum_v p(v) log p(v) of
        the model's next-token distribution at that position (temperature 1, nats)."""
        from curate.workspace.progress import stage_progress
        from train.eval import run_entropy

        output = renamed(ctx, "output", output, "out", out)
        batch_tokens = renamed(ctx, "batch_tokens", batch_tokens, "token_budget", token_budget)
        if output is not None:
            refuse_to_fill(output, overwrite)
        config = EntropyConfig(
            model=str(model),
            prompts=prompts,
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            backend=backend,
            seed=seed,
            instruction=instruction,
            limit=limit,
            dtype=dtype,
            device=device,
            token_budget=batch_tokens,
            out=None if output is None else str(output),
        )
        with stage_progress() as progress:
            summary = run_entropy(config, progress=progress)
        table = Table(title=f"policy entropy of {summary['model']}")
        for column in ("set", "prompts", "completions", "tokens", "mean length", "mean entropy (nats)"):
            table.add_column(column, justify="left" if column == "set" else "right")
        for s in [*summary["sets"], summary["overall"]]:
            entropy = "-" if s["mean_entropy"] is None else f"{s['mean_entropy']:.4f}"
            table.add_row(
                s["set"],
                f"{s['prompts']:,}",
                f"{s['completions']:,}",
                f"{s['tokens']:,}",
                f"{s['mean_length']:.0f}",
                entropy,
            )
        console.print(table)
        if output is not None:
            console.print(f"per completion: {output / 'entropy.parquet'}; summary: {output / 'entropy.json'}")
