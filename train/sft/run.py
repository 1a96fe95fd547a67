"""`oxa train sft`: OXA SFT of a model on a subset (or data in TRL's forms) with a training preset.

The output folder holds the trained model and tokenizer, TRL's checkpoints and logs, and
`oxa_train.json`: for a subset folder its name, version and checksums (its card.json and
card.md are copied into `subset/`) and its card's "decontamination" object (None for a card
without one; `oxa eval` compares it with the sets it evaluates); for an `oxa export` folder
the subset its oxa_export.json names; the form, split and source of the rows; the preset, the
overrides and the resolved training config, the rows read, kept and dropped over the
cutoff, library versions and the code's git commit. It is written when training starts
(status "running") and again at the end. Under `accelerate launch` or torchrun every
process loads the data; only the main one reports progress and writes
(tests/test_oxa_multirank.py runs it on 2 CPU processes).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from curate import __version__
from curate.subsets.subsets import load_card
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError
from curate.workspace.parts import atomic_write_json, refuse_to_fill
from train.sft.data import load_sft_data
from train.sft.model_prepare import RECORD as PREPARE_RECORD
from train.sft.presets import resolve_preset, training_config

RECORD = "oxa_train.json"


@dataclass
class SftRunConfig:
    """One `oxa train sft` run. Every field is also a command-line option."""

    subset: str = field(
        metadata={
            "help": "subset folder WS/subsets/NAME/VERSION, a file or folder of rows in TRL's forms, or a `datasets` "
            "folder; with `workspace`, a subset NAME[/VERSION]"
        }
    )
    model: str = field(metadata={"help": "model folder (prepared with `oxa model prepare`) or hub id"})
    preset: str = field(metadata={"help": "training preset in configs/train/ or a .toml file"})
    output: str = field(metadata={"help": "output folder: model, checkpoints, oxa_train.json"})
    overrides: list[str] = field(default_factory=list, metadata={"help": "KEY=VALUE settings over the preset"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimizer steps"})
    instruction: str = field(
        default=KNOWN_SUFFIXES[0],
        metadata={"help": "appended to each problem of a subset's rows (the paper's); '' for none"},
    )
    workspace: str | None = field(
        default=None, metadata={"help": "the workspace holding the subset `subset` names (as `oxa export WS NAME`)"}
    )
    split: str | None = field(
        default=None, metadata={"help": "the split to train on, of data that holds several (train, test, ...)"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from the newest checkpoint in the output folder"})
    overwrite: bool = field(
        default=False,
        metadata={"help": "train into an output folder that holds files (an earlier run: from the start)"},
    )


def run_sft(config: SftRunConfig, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Train; returns the record (also OUTPUT/oxa_train.json)."""
    from transformers import AutoTokenizer

    from train.sft.trainer import OXATrainer, check_oxa_dataset

    if os.environ.get("RANK", "0") != "0":
        progress = lambda message: None  # noqa: E731 - under a multi-process launch only the main process reports
    output = Path(config.output).expanduser().resolve()
    if (output / RECORD).is_file() and not (config.overwrite or config.resume):
        raise OxaError(f"{output} already holds a training run; choose another --output, --resume it or --overwrite")
    if os.environ.get("RANK", "0") == "0" and not config.resume:  # the main process: the others wait for it
        refuse_to_fill(output, config.overwrite)
    resolved = resolve_preset(config.preset, config.overrides)
    args = training_config(resolved, str(output), max_steps=config.max_steps)
    progress(f"loading the tokenizer of {config.model}")
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    where = f" of workspace {config.workspace}" if config.workspace else ""
    progress(f"reading {config.subset}{where} (cutoff {args.max_length} tokens)")
    dataset, stats = load_sft_data(
        config.subset, tokenizer, args.max_length, config.instruction, split=config.split, workspace=config.workspace
    )
    _check_cutoff(stats, args.max_length, args.ul_alpha)
    check_oxa_dataset(dataset, args)
    progress(f"training {stats.rows_kept:,} rows ({stats.positives:,} positives, {stats.negatives:,} negatives)")
    if args.deepspeed:
        _init_deepspeed_comm(args)
    trainer = OXATrainer(model=config.model, args=args, train_dataset=dataset, processing_class=tokenizer)
    data = stats.to_dict()
    if stats.kind == "subset":  # what the subset was checked against, for `oxa eval` (train/eval/contamination.py)
        data["subset"]["decontamination"] = load_card(Path(stats.subset["path"])).get("decontamination")
    record = {
        "status": "running",
        "started_at": _now(),
        "data": data,
        "model": _model_facts(config.model),
        "preset": {
            "name": resolved.name,
            "description": resolved.description,
            "global_batch_size": resolved.global_batch_size,
            "world_size": resolved.world_size,
            "overrides": list(resolved.overrides),
            "settings": resolved.settings,
        },
        "run": {"max_steps": config.max_steps, "resume": config.resume},
        "training_config": args.to_dict(),
        "versions": _versions(),
    }
    main = trainer.is_world_process_zero()
    trainer.accelerator.wait_for_everyone()  # every process has passed the "already holds a run" check above
    if main:
        output.mkdir(parents=True, exist_ok=True)
        if stats.kind == "subset":
            (output / "subset").mkdir(exist_ok=True)
            for name in ("card.json", "card.md"):
                if (Path(stats.subset["path"]) / name).is_file():
                    shutil.copy2(Path(stats.subset["path"]) / name, output / "subset" / name)
        atomic_write_json(output / RECORD, record)
    result = trainer.train(resume_from_checkpoint=True if config.resume else None)
    trainer.save_model(str(output))
    record |= {"status": "done", "finished_at": _now(), "global_step": result.global_step, "metrics": result.metrics}
    if main:
        atomic_write_json(output / RECORD, record)
    return record


def _init_deepspeed_comm(args) -> None:
    """Start DeepSpeed's process group before the model loads: under ZeRO-3 the load partitions the weights
    and reads the launch's world size from it. Under a launcher on GPUs accelerate has done it already (a
    no-op then); on CPU processes (use_cpu, gloo) accelerate sets up torch.distributed only, and DeepSpeed
    wraps that group. Without a launcher this process is a group of one (DeepSpeed would look for MPI)."""
    import deepspeed

    if "WORLD_SIZE" not in os.environ:
        with socket.socket() as probe:  # a free port for the group's rendezvous
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        os.environ |= {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
        os.environ["MASTER_PORT"] = str(port)
    _ = args.device  # sets up the processes (accelerate's PartialState)
    deepspeed.init_distributed(dist_backend=args.distributed_state.backend or "gloo", auto_mpi_discovery=False)


def _check_cutoff(stats, cutoff: int, ul_alpha: float) -> None:
    """A class emptied by the cutoff gets an error that names the cutoff, not only the empty class."""
    for loss_type, what in (("0", "positive (loss_type 0)"), ("1", "negative (loss_type 1)")):
        dropped = stats.dropped_by_loss_type.get(loss_type, 0)
        left = stats.positives if loss_type == "0" else stats.negatives
        if dropped and not left and (loss_type == "0" or ul_alpha > 0):
            raise OxaError(
                f"every {what} row is longer than the cutoff of {cutoff} tokens ({dropped:,} dropped); "
                "raise it with --set max_length=N"
            )


def _model_facts(model: str) -> dict:
    """The model path, and what `oxa model prepare` changed in it when it made the folder."""
    facts: dict = {"path": model}
    prepared = Path(model) / PREPARE_RECORD
    if prepared.is_file():
        facts["prepared"] = json.loads(prepared.read_text(encoding="utf-8"))
    return facts


def _versions() -> dict:
    versions = {"oxa": __version__, "git_commit": _git_commit()}
    for package in ("torch", "transformers", "trl", "accelerate", "datasets", "deepspeed"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:  # deepspeed is optional
            versions[package] = None
    return versions


def _git_commit() -> str | None:
    """The commit of the checkout oxa runs from (None for an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
