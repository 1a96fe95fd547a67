"""The `oxa` command line: a thin layer over the stage functions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from curate.cli.score import register as register_score_commands
from curate.ingest import IngestConfig, run_ingest
from curate.ingest.presets import PRESETS, REFERENCE_PRESETS
from curate.ingest.records import WHERE_COLUMNS
from curate.select import run_select
from curate.select.config import ALIASES, SelectConfig, load_select_config
from curate.subsets import (
    ExportConfig,
    check_checksums,
    diff_subsets,
    list_subsets,
    load_card,
    resolve_subset,
    run_export,
)
from curate.subsets.export import FORMATS as EXPORT_FORMATS
from curate.synth.world import WorldConfig, build_world
from curate.trace import TraceConfig, run_trace
from curate.verify import VerifierSettings, VerifyConfig, run_verify
from curate.workspace import OxaError, Workspace
from curate.workspace.configfile import field_help, preset_names
from curate.workspace.progress import err_console, stage_progress
from curate.workspace.query import named_queries, named_query, run_query
from train.cli.eval import register as register_eval_commands
from train.cli.grpo import register as register_grpo_commands
from train.cli.sft import register as register_sft_commands
from train.tiny import TinyModelConfig

app = typer.Typer(
    help="oxa: curate long chain-of-thought math data (OXA), query it with SQL, train on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

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
    workdir: Annotated[
        Path, typer.Option(help="Folder for the world, the models, the workspace and the results.")
    ] = Path("oxa-demo"),
    fast: Annotated[
        bool, typer.Option(help="A smaller world, shorter training and evaluation (about 3 minutes).")
    ] = False,
) -> None:
    """The whole OXA pipeline end to end on the test bed (a synthetic world and tiny models):
    ingest -> trace -> verify -> score -> select SFT / SFT_LP / OXA_MLE -> self-distill ->
    verify -> score -> OXA_Full -> train each briefly -> evaluate on held-out problems.

    A second run reuses the steps that are done (DIR/demo.json)."""
    from train.demo import DemoConfig, run_demo

    config = DemoConfig(workdir=workdir, fast=fast)
    console.rule(f"oxa demo{' --fast' if fast else ''}: {config.workdir}")
    with stage_progress() as progress:
        summary = run_demo(config, say=console.print, progress=progress)
    _print_demo_summary(summary)


def _print_demo_summary(summary: dict) -> None:
    console.rule("summary")
    table = Table("step", "what it did", title="funnels")
    for step, line in summary["funnels"].items():
        table.add_row(step, line)
    console.print(table)
    table = Table("origin", "verdict", "rows", title="verdicts (candidates)")
    for row in summary["verdicts"]:
        table.add_row(row["origin"], str(row["verdict"]), f"{row['rows']:,}")
    console.print(table)
    table = Table(
        "method", "subset/version", "rows", "Pass@1", "Pass@k", "length", "entropy", title="held-out problems"
    )
    for method, scores in summary["scores"].items():
        subset = summary["subsets"].get(method)
        table.add_row(
            method,
            f"{subset['name']}/{subset['version'][:8]}" if subset else "(pre-trained)",
            subset["summary"].split(": ", 1)[-1] if subset else "",
            *(_fmt(scores.get(key)) for key in ("pass_at_1", "pass_at_k", "mean_length", "mean_entropy")),
        )
    console.print(table)
    console.print(f"total {sum(summary['seconds'].values()):.0f} s; everything is in {summary['workdir']}:")
    console.print(f"  oxa status {summary['workspace']}    oxa subsets list {summary['workspace']}")
    console.print("  subsets/<name>/<version>/card.md, train/<method>/, eval/<method>/table.md, summary.json")


def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else ("" if value is None else str(value))


def _config_keys_epilog() -> str:
    symbols = {field: symbol for symbol, field in ALIASES.items()}
    keys = [
        f"{name}{f' ({symbols[name]})' if name in symbols else ''}: {text}"
        for name, text in field_help(SelectConfig).items()
    ]
    return "Config keys:\n\n" + "\n\n".join(keys)


@app.command(epilog=_config_keys_epilog())
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
    ws = Workspace.open(workspace)
    selection = load_select_config(config, set_ or [])
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True
    ) as progress:
        task = progress.add_task("reading candidates")
        stats = run_select(ws, selection, progress=lambda message: progress.update(task, description=message))
    if stats["existing"]:
        console.print(f"{stats['name']}/{stats['version']} exists already (same config and inputs): {stats['path']}")
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


subsets_app = typer.Typer(help="Published subsets: list, show, diff.", no_args_is_help=True)
app.add_typer(subsets_app, name="subsets")
SubsetArg = Annotated[str, typer.Argument(help="NAME (its newest version), NAME/VERSION or NAME/VERSION-PREFIX.")]


@subsets_app.command("list")
def subsets_list(
    workspace: WorkspaceArg,
    name: Annotated[str | None, typer.Option(help="Only the versions of this subset.")] = None,
) -> None:
    """Every subset version, oldest first."""
    found = list_subsets(Workspace.open(workspace), name)
    if not found:
        console.print("no subsets yet; make one with `oxa select WS CONFIG`")
        return
    table = Table()
    for column in ("name", "version", "created", "strategy", "rows", "description"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for s in found:
        table.add_row(
            s["name"], s["version"], s["created_at"], s["strategy"], f"{s['rows']:,} {s['unit']}", s["description"]
        )
    console.print(table)


@subsets_app.command("show")
def subsets_show(
    workspace: WorkspaceArg,
    subset: SubsetArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole card.json.")] = False,
) -> None:
    """A subset's card: what it holds, how it was selected, and whether its files are intact."""
    folder = resolve_subset(Workspace.open(workspace), subset)
    card = load_card(folder)
    if as_json:
        console.print_json(data=card)
        return
    changed = check_checksums(folder)
    table = Table(title=f"{card['name']}/{card['version']}", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("path", str(folder))
    table.add_row("rows", f"{card['rows']:,} {card['unit']}")
    table.add_row("created", f"{card['created_at']} (run {card['run_id']})")
    table.add_row("description", card["description"] or "-")
    table.add_row("checksums", "OK" if not changed else "CHANGED: " + ", ".join(changed))
    for part in card["parts"]:
        table.add_row(
            f"{part['label']} (loss_type {part['loss_type']})",
            f"{part['strategy']}: selected {part['selected']:,} of target {part['target']:,}",
        )
    for key, value in card["selection"].items():
        table.add_row(f"  {key}", str(value))
    console.print(table)
    console.print(f"the full card: {folder / 'card.md'}")


@subsets_app.command("diff")
def subsets_diff(
    workspace: WorkspaceArg,
    first: SubsetArg,
    second: SubsetArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the difference as JSON.")] = False,
) -> None:
    """How two subset versions differ: selection, inputs, rows, overlap, distributions."""
    ws = Workspace.open(workspace)
    diff = diff_subsets(resolve_subset(ws, first), resolve_subset(ws, second))
    if as_json:
        console.print_json(data=diff)
        return
    table = Table(title=f"{diff['first']} vs {diff['second']}")
    for column in ("what", "first", "second"):
        table.add_column(column, overflow="fold")
    table.add_row("rows", f"{diff['rows'][0]:,}", f"{diff['rows'][1]:,}")
    overlap = diff["overlap"]
    table.add_row(
        f"{overlap['key']}s in both: {overlap['common']:,}",
        f"only here: {overlap['only_first']:,}",
        f"only here: {overlap['only_second']:,}",
    )
    for section in ("selection", "inputs", "oxa_version", "distributions"):
        for key, (a, b) in diff[section].items():
            table.add_row(f"{section}: {key}", str(a), str(b))
    console.print(table)


@app.command()
def export(
    workspace: WorkspaceArg,
    subset: SubsetArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output format: " + ", ".join(EXPORT_FORMATS) + ".")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="trl: .parquet or .jsonl; alpaca: .json; verl: .parquet; hf: a new folder."
        ),
    ],
    instruction: Annotated[
        str | None,
        typer.Option(help="Appended to each problem after a newline; '' for none. Default: the paper's instruction."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
) -> None:
    """Write a subset in a trainer's format: TRL prompt/completion with loss_type,
    LLaMA-Factory alpaca JSON, verl RL prompts, or a Hugging Face datasets folder."""
    config = ExportConfig(subset=subset, format=fmt, output=str(output), overwrite=overwrite)
    if instruction is not None:
        config.instruction = instruction
    stats = run_export(Workspace.open(workspace), config)
    console.print(stats["summary"])


@app.command(epilog="Reference presets: " + "; ".join(f"{p.name}: {p.description}" for p in REFERENCE_PRESETS.values()))
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
            help="Sources disagree: 'priority' keeps the best match's answer (ties: the first --answers) with conflict = true; 'drop' gives the problem no answer."
        ),
    ] = "priority",
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
) -> None:
    """Trace each pool problem's gold answer in reference data sets into `answers`.

    Matching runs in stages: exact (the same problem_id), normalized (LaTeX spacing,
    \\left/\\right, \\dfrac, unicode forms, instruction suffixes, case and whitespace
    folded), fuzzy (token blocking + rapidfuzz ratio). Problems with a given answer keep it.
    The outcome of every problem is in runs/trace/<run>/outcomes.parquet; rejected
    reference rows (placeholders such as 'proof' or 'notfound', no answer) in rejects/.
    """
    ws = Workspace.open(workspace)
    config = TraceConfig(
        sources=[str(a) for a in answers],
        preset=preset,
        mapping=_parse_map(map_ or []),
        on_conflict=on_conflict,
        check_equivalent=check_equivalent,
        fuzzy=fuzzy,
        fuzzy_threshold=fuzzy_threshold,
        fuzzy_same_numbers=fuzzy_same_numbers,
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
    console.print(table)
    console.print(f"run folder: {ws.run_dir('trace', stats['run_id'])}")


@app.command()
def verify(
    workspace: WorkspaceArg,
    extraction: Annotated[
        str,
        typer.Option(
            help="'box': the answer is the last \\boxed{}/\\fbox{} after </think>; 'lenient': math-verify's own extraction over that text."
        ),
    ] = VerifierSettings.extraction,
    require_think: Annotated[
        bool, typer.Option("--require-think", help="No </think> in a response means no_answer (the paper's rule).")
    ] = False,
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
    a kill) verifies only samples without a verdict under these settings and gold.
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
    config = VerifyConfig(settings, workers=workers, batch_rows=batch_rows, worker_memory_mb=worker_memory_mb)
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
    console.print(f"run folder: {ws.run_dir('verify', stats['run_id'])}")


synth_app = typer.Typer(
    help="The test bed: a seeded synthetic math world and tiny reference models, made locally with no network.",
    no_args_is_help=True,
)
app.add_typer(synth_app, name="synth")
_WORLD = WorldConfig()
_TINY = TinyModelConfig(world="", out="")  # for the defaults of `oxa synth model`


def _parse_shares(pairs: list[str], option: str) -> dict[str, float]:
    shares = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise OxaError(f"{option} takes KIND=SHARE, e.g. {option} wrong_answer=0.2; got {pair!r}")
    return shares


@synth_app.command("world")
def synth_world(
    out: Annotated[Path, typer.Argument(help="Folder for the world (new, empty, or an earlier world to replace).")],
    seed: Annotated[int, typer.Option(help="The only source of randomness: same seed, same bytes.")] = _WORLD.seed,
    problems: Annotated[int, typer.Option(help="Pool problems, dealt to the 8 families in turn.")] = _WORLD.problems,
    min_responses: Annotated[int, typer.Option(help="Fewest teacher responses per problem.")] = _WORLD.min_responses,
    max_responses: Annotated[int, typer.Option(help="Most teacher responses per problem.")] = _WORLD.max_responses,
    heldout: Annotated[int, typer.Option(help="Evaluation problems, in no pool or reference.")] = _WORLD.heldout,
    reference_only: Annotated[
        int, typer.Option(help="Reference rows for problems outside the pool.")
    ] = _WORLD.reference_only,
    corpus_problems: Annotated[
        int, typer.Option(help="Pretraining problems for the tiny models, each written in every style.")
    ] = _WORLD.corpus_problems,
    non_math_rows: Annotated[
        int, typer.Option(help="'code' rows in the pool, which the acereason preset filters out.")
    ] = _WORLD.non_math_rows,
    flaw: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND=SHARE for a kind of flawed response (weights, normalized to sum 1); kinds: "
            + ", ".join(f"{k} (default {v})" for k, v in _WORLD.flaw_shares.items())
        ),
    ] = None,
    trace: Annotated[
        list[str] | None,
        typer.Option(
            help="CASE=SHARE for a tracing case of the pool's problems (weights); cases: "
            + ", ".join(f"{k} (default {v})" for k, v in _WORLD.trace_shares.items())
        ),
    ] = None,
) -> None:
    """Write a synthetic world: teacher pool, reference sources, held-out problems, corpus, manifest.

    The pool has the acereason layout, the references the NuminaMath-1.5 (answer column)
    and NuminaMath-CoT (last \\boxed of a solution) layouts; manifest.json records what
    is true of every problem and response. The same seed gives byte-identical files.
    """
    config = WorldConfig(
        seed=seed,
        problems=problems,
        min_responses=min_responses,
        max_responses=max_responses,
        heldout=heldout,
        reference_only=reference_only,
        corpus_problems=corpus_problems,
        non_math_rows=non_math_rows,
        flaw_shares={**_WORLD.flaw_shares, **_parse_shares(flaw or [], "--flaw")},
        trace_shares={**_WORLD.trace_shares, **_parse_shares(trace or [], "--trace")},
    )
    counts = build_world(out, config)["counts"]
    table = Table(title=f"synthetic world {out} (seed {seed})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("pool rows (pool/teacher.jsonl)", f"{counts['pool_rows']:,}")
    for kind, n in counts["samples"]["by_flaw"].items():
        table.add_row(f"  responses: {kind}", f"{n:,}")
    table.add_row("pool problems", f"{counts['problems']['pool']:,}")
    for case, n in counts["traces"]["by_case"].items():
        table.add_row(f"  tracing case: {case}", f"{n:,}")
    for name, n in counts["reference_rows"].items():
        table.add_row(f"reference rows (references/{name}.parquet)", f"{n:,}")
    table.add_row("held-out problems (heldout.json)", f"{counts['problems']['heldout']:,}")
    table.add_row("corpus documents (corpus.jsonl)", f"{counts['corpus_documents']:,}")
    console.print(table)
    console.print(f"ingest the pool: oxa ingest WS {out / 'pool' / 'teacher.jsonl'} --preset acereason")


@synth_app.command("model")
def synth_model(
    out: Annotated[Path, typer.Argument(help="Folder for base/, instruct/ and build.json.")],
    world: Annotated[Path, typer.Option(help="A folder made by `oxa synth world`.")],
    styles: Annotated[
        str, typer.Option(help="Comma-separated styles the base model is pretrained on; the others stay rare.")
    ] = ",".join(_TINY.styles),
    other_share: Annotated[
        float, typer.Option(help="Share of pretraining documents in the other styles (0: never seen).")
    ] = _TINY.other_share,
    seed: Annotated[int, typer.Option(help="Seed for initialization and data order.")] = _TINY.seed,
    pretrain_steps: Annotated[
        int, typer.Option(help=f"Pretraining steps ({_TINY.batch} sequences of {_TINY.block} tokens each).")
    ] = _TINY.pretrain_steps,
    instruct: Annotated[
        bool, typer.Option("--instruct/--no-instruct", help="Also build instruct/, the base model after a short SFT.")
    ] = _TINY.instruct,
    sft_steps: Annotated[int, typer.Option(help="SFT steps for instruct/.")] = _TINY.sft_steps,
    hidden_size: Annotated[int, typer.Option(help="Model width.")] = _TINY.hidden_size,
    heads: Annotated[int, typer.Option(help="Attention heads; hidden size / heads must be 32 or more.")] = _TINY.heads,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = _TINY.layers,
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary, special tokens included.")] = _TINY.vocab_size,
) -> None:
    """Build the world's tokenizer and tiny Qwen2 models, base/ and instruct/, on the CPU.

    base/ is pretrained mostly on the chosen styles, so the pool's perplexity under it
    spreads; instruct/ is base after a short SFT, the sampler for self-distillation. Both
    are plain Hugging Face folders (safetensors, tokenizer, chat template).
    """
    from train.tiny import build_tiny_models  # brings torch: only for this command

    config = TinyModelConfig(
        world=str(world),
        out=str(out),
        styles=[s.strip() for s in styles.split(",") if s.strip()],
        other_share=other_share,
        seed=seed,
        pretrain_steps=pretrain_steps,
        instruct=instruct,
        sft_steps=sft_steps,
        hidden_size=hidden_size,
        heads=heads,
        layers=layers,
        vocab_size=vocab_size,
    )
    info = build_tiny_models(config, progress=err_console.print)
    folders = ", ".join(str(out / name) for name in (["base", "instruct"] if instruct else ["base"]))
    console.print(f"models in {folders} ({info['seconds']:.0f} s); build record: {out / 'build.json'}")


train_app = typer.Typer(help="Train on subsets: SFT with the OXA unlikelihood term, GRPO.", no_args_is_help=True)
model_app = typer.Typer(
    help="Prepare model folders (RoPE and chat-template changes of the paper).", no_args_is_help=True
)
app.add_typer(train_app, name="train")
app.add_typer(model_app, name="model")
for _register in (register_score_commands, register_sft_commands, register_grpo_commands, register_eval_commands):
    _register(app, train_app, model_app)


def main() -> None:
    try:
        app()
    except OxaError as exc:
        typer.echo(f"error: {exc}", err=True)  # plain, unwrapped: paths and SQL stay whole
        sys.exit(2)


if __name__ == "__main__":
    main()
