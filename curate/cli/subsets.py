"""`oxa subsets list | show | diff` and `oxa export`: published subsets and their exports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.common import WorkspaceArg, console
from curate.subsets import (
    ExportConfig,
    diff_subsets,
    inputs_changed_since,
    list_subsets,
    resolve_subset,
    run_export,
)
from curate.subsets.export import FORMATS as EXPORT_FORMATS
from curate.subsets.export import VERL_DATA_SOURCE
from curate.subsets.subsets import intact_card
from curate.workspace import Workspace

SubsetArg = Annotated[str, typer.Argument(help="NAME (its newest version), NAME/VERSION or NAME/VERSION-PREFIX.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app: the `subsets` group and `export`."""
    subsets_app = typer.Typer(help="Published subsets: list, show, diff.", no_args_is_help=True)
    app.add_typer(subsets_app, name="subsets")
    subsets_app.command("list")(subsets_list)
    subsets_app.command("show")(subsets_show)
    subsets_app.command("diff")(subsets_diff)
    app.command()(export)


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


def subsets_show(
    workspace: WorkspaceArg,
    subset: SubsetArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole card.json.")] = False,
) -> None:
    """A subset's card: what it holds, how it was selected, whether its files are intact, and whether
    the workspace's rows it was selected from are still the same."""
    ws = Workspace.open(workspace)
    folder = resolve_subset(ws, subset)
    card = intact_card(folder)  # a damaged folder stops here, naming its files and `oxa check`
    if as_json:
        console.print_json(data=card)
        return
    since = inputs_changed_since(ws, card)
    table = Table(title=f"{card['name']}/{card['version']}", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("path", str(folder))
    table.add_row("rows", f"{card['rows']:,} {card['unit']}")
    table.add_row("created", f"{card['created_at']} (run {card['run_id']})")
    table.add_row("description", card["description"] or "-")
    table.add_row("checksums", "OK (the files match card.json and checksums.sha256)")
    if since is None:
        made = card["provenance"]
        inputs = (
            f"not compared: fingerprinted by oxa {made['oxa_version']} under DuckDB "
            f"{made['libraries'].get('duckdb')}, in another way or with another row hash"
        )
    elif since:
        inputs = f"CHANGED since: {', '.join(since)} (select again for a version over the rows of today)"
    else:
        inputs = "the rows it was selected from, unchanged"
    table.add_row("workspace inputs", inputs)
    table.add_row("decontamination", _decontamination_line(card.get("decontamination")))
    for part in card["parts"]:
        table.add_row(
            f"{part['label']} (loss_type {part['loss_type']})",
            f"{part['strategy']}: selected {part['selected']:,} of target {part['target']:,}",
        )
    for key, value in card["selection"].items():
        table.add_row(f"  {key}", str(value))
    console.print(table)
    console.print(f"the full card: {folder / 'card.md'}")


def _decontamination_line(facts: dict | None) -> str:
    if facts is None:
        return "not recorded (a card of an older oxa)"
    if facts["run_id"] is None:
        return "NOT CHECKED against any benchmark (no oxa decontaminate run when it was selected)"
    names = ", ".join(b["name"] for b in facts["benchmarks"])
    kept = sum(n for m, n in facts["rows_matched"].items() if m != "template")
    line = f"checked against {names}; {sum(facts['dropped'].values()):,} contaminated candidates left out"
    if kept:
        line += f"; KEEPS {kept:,} contaminated rows (exclude_contaminated = false)"
    if facts["rows_unchecked"]:
        line += f"; {facts['rows_unchecked']:,} rows' problems never checked"
    return line


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


def export(
    workspace: WorkspaceArg,
    subset: SubsetArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output format: " + ", ".join(EXPORT_FORMATS) + ".")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="trl: a folder (what `trl sft --dataset_name` and `load_dataset` read), or a .parquet or .jsonl "
            "file; alpaca: .json (dataset_info.json is written beside it); verl: .parquet; hf: a folder.",
        ),
    ],
    instruction: Annotated[
        str | None,
        typer.Option(help="Appended to each problem after a newline; '' for none. Default: the paper's instruction."),
    ] = None,
    negatives: Annotated[
        str | None,
        typer.Option(
            help="trl and alpaca, for a subset with loss_type 1 rows (required then): drop (the positives only, "
            "for plain SFT), separate (the negatives in a second split or file) or keep (for trainers that read "
            "loss_type: oxa train sft, the paper's LLaMA-Factory fork)."
        ),
    ] = None,
    data_source: Annotated[
        str | None,
        typer.Option(
            help=f"verl: every row's data_source, which picks verl's default reward. Default: {VERL_DATA_SOURCE}."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
) -> None:
    """Write a subset in a trainer's format: TRL prompt/completion with loss_type,
    LLaMA-Factory alpaca JSON, verl RL prompts, or a Hugging Face datasets folder.
    A subset with loss_type 1 rows needs --negatives for trl and alpaca, whose usual
    trainers would train those rows as positives."""
    config = ExportConfig(
        subset=subset,
        format=fmt,
        output=str(output),
        negatives=negatives,
        data_source=data_source,
        overwrite=overwrite,
    )
    if instruction is not None:
        config.instruction = instruction
    stats = run_export(Workspace.open(workspace), config)
    console.print(stats["summary"])
