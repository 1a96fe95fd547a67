"""`oxa` commands: train sft and model prepare (OXA trainer). Model libraries are imported inside the commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError
from curate.workspace.options import (
    OldPositionalCommand,
    old_argument,
    old_option,
    output_option,
    overwrite_option,
    renamed,
    required_output,
)
from train.sft.presets import training_preset_names

console = Console()
err_console = Console(stderr=True)


def register(app: typer.Typer, train_app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this module's commands to the top-level `oxa` app or its `train`/`model` groups."""
    train_app.command("sft")(sft)
    model_app.command("prepare", cls=OldPositionalCommand)(prepare)


def sft(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Model folder (see `oxa model prepare`) or hub id.")],
    preset: Annotated[
        str,
        typer.Option(
            help="Training preset in configs/train/ (" + ", ".join(training_preset_names()) + ") or a .toml/.yaml file."
        ),
    ],
    output: Annotated[Path, output_option("Output folder: the model, checkpoints and oxa_train.json.")],
    workspace: Annotated[
        Path | None,
        typer.Argument(
            metavar="WS",
            help="Workspace of the subset to train on, with NAME, as `oxa export WS NAME` takes them (or give --subset).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME[/VERSION]",
            help="The subset of WS: NAME (its newest version), NAME/VERSION or NAME/VERSION-PREFIX.",
            show_default=False,
        ),
    ] = None,
    subset: Annotated[
        Path | None,
        typer.Option(
            help="Instead of WS NAME: a subset folder (WS/subsets/NAME/VERSION), a .parquet/.jsonl/.json file or a "
            "folder of them (an `oxa export`), or a `datasets` save_to_disk folder; rows of TRL prompt/completion, "
            "messages or text, with or without loss_type (none: every row a positive).",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="The split to train on (NAME, or NAME+NAME for several), required of data that holds several: "
            "train.parquet and test.parquet, data/train-*.parquet and data/test-*.parquet, a DatasetDict ...",
            show_default=False,
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE over the preset: any OXAConfig field (TRL SFTConfig, TrainingArguments, ul_alpha, "
            "ul_global, ul_normalization, ...) or global_batch_size; e.g. --set learning_rate=1e-4.",
        ),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    instruction: Annotated[
        str,
        typer.Option(
            help="Appended to each problem of a subset's rows after a newline ('' for none); rows in TRL's forms "
            "carry theirs."
        ),
    ] = KNOWN_SUFFIXES[0],
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue from the newest checkpoint in --output (checkpoints saved with save_only_model=false)."
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        overwrite_option("Train into an --output that holds files (an earlier run: trained again from the start)."),
    ] = False,
    no_overwrite: Annotated[bool, old_option("--no-overwrite")] = False,
) -> None:
    """SFT with the OXA unlikelihood term (OXA_Full; ul_alpha=0 gives OXA_MLE) on a subset, with a preset.

    The data: WS NAME (a subset of a workspace, NAME or NAME/VERSION) or --subset PATH (a
    subset folder, an export, rows in TRL's forms); data of several splits needs --split.
    Sequences longer than the preset's max_length (the cutoff) are dropped and counted.
    gradient_accumulation_steps = global_batch_size / (per_device_train_batch_size x processes).
    Several GPUs: accelerate launch --config_file configs/accelerate/zero2.yaml -m curate.cli train sft ...
    """
    from train.sft import SftRunConfig, run_sft

    overwrite = renamed(ctx, "overwrite", overwrite, "no_overwrite", False)
    if workspace is not None and subset is not None:
        raise OxaError(
            f"give the data once: WS NAME or --subset PATH, not both (got {workspace} and --subset {subset})"
        )
    if subset is None and (workspace is None or name is None):
        raise OxaError(
            "give the data to train on: WS NAME (a subset of a workspace, NAME or NAME/VERSION) or --subset PATH "
            "(a subset folder, an export, a file or folder of rows in TRL's forms)"
            + (f"; {workspace} came without NAME" if workspace is not None else "")
        )
    config = SftRunConfig(
        subset=name if workspace is not None else str(subset),
        workspace=str(workspace) if workspace is not None else None,
        split=split,
        model=model,
        preset=preset,
        output=str(output),
        overrides=list(set_ or []),
        max_steps=max_steps,
        instruction=instruction,
        resume=resume,
        overwrite=overwrite,
    )
    record = run_sft(config, progress=lambda message: err_console.print(f"[dim]{message}[/]"))
    if os.environ.get("RANK", "0") != "0":
        return  # under accelerate launch: one summary, from the main process
    data = record["data"]
    table = Table(title=f"oxa train sft -> {output}", show_header=False)
    source = data["source"]
    if data["subset"]:
        subset_name = f"{data['subset']['name']}/{data['subset']['version']}"
        source = subset_name if data["kind"] == "subset" else f"{subset_name}, exported to {source}"
    table.add_row("data", source + (f" (split {data['split']})" if data["split"] else ""))
    table.add_row("form", data["form"] + ("" if data["loss_type_column"] else ", no loss_type: every row a positive"))
    table.add_row(
        "rows",
        f"{data['rows_read']:,} read, {data['rows_kept']:,} kept, {data['dropped_over_cutoff']:,} over the cutoff of {data['cutoff']}",
    )
    table.add_row("kept", f"{data['positives']:,} positives, {data['negatives']:,} negatives")
    table.add_row(
        "preset",
        f"{record['preset']['name']} (global batch {record['preset']['global_batch_size']}, "
        f"{record['preset']['world_size']} process{'es' if record['preset']['world_size'] > 1 else ''})",
    )
    table.add_row("steps", f"{record['global_step']:,}")
    table.add_row("train loss", f"{record['metrics'].get('train_loss', float('nan')):.4f}")
    console.print(table)


def prepare(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="Model folder to start from (Hugging Face layout).")],
    out: Annotated[Path | None, old_argument()] = None,
    output: Annotated[Path | None, output_option("New model folder (required).", show_default=False)] = None,
    rope_theta: Annotated[float | None, typer.Option(help="RoPE base (the paper: 1e6 for Qwen2.5-Math).")] = None,
    max_position_embeddings: Annotated[
        int | None, typer.Option(help="Context positions (the paper: 40000 for Qwen2.5-Math).")
    ] = None,
    no_system_prompt: Annotated[
        bool, typer.Option("--no-system-prompt", help="Take the default system turn out of the chat template.")
    ] = False,
    chat_template: Annotated[
        Path | None, typer.Option(help="A file whose text replaces the chat template (when the automatic edit cannot).")
    ] = None,
    overwrite: Annotated[bool, overwrite_option("Replace an existing --output folder.")] = False,
    no_overwrite: Annotated[bool, old_option("--no-overwrite")] = False,
) -> None:
    """The paper's model changes (A.3): rope theta, max positions, no default system prompt.

    Weights and other files are copied as they are; OUTPUT/oxa_prepare.json records every change.
    """
    from train.sft import PrepareConfig, prepare_model

    output = required_output(renamed(ctx, "output", output, "out", out))
    overwrite = renamed(ctx, "overwrite", overwrite, "no_overwrite", False)

    record = prepare_model(
        PrepareConfig(
            source=str(source),
            output=str(output),
            rope_theta=rope_theta,
            max_position_embeddings=max_position_embeddings,
            no_system_prompt=no_system_prompt,
            chat_template=str(chat_template) if chat_template else None,
            overwrite=overwrite,
        )
    )
    for key, (old, new) in record["changes"]["config.json"].items():
        console.print(f"config.json {key}: {old} -> {new}", markup=False)
    template = record["changes"].get("chat_template")
    if template and "replaced_by" in template:
        console.print(f"chat template replaced by {template['replaced_by']}")
    elif template:
        removed = template["removed_default_system_prompt"]
        console.print(
            f"chat template: removed the default system prompt {removed!r}"
            if removed
            else "chat template: it writes no default system prompt; unchanged",
            markup=False,
        )
    console.print(f"{output}: {len(record['files'])} files; record in {output}/oxa_prepare.json")
