"""Training presets (configs/train/*.toml): the paper's SFT settings (appendix A.3) by name;
a preset of one's own is a TOML or YAML file of the same keys.

A preset is a table of OXAConfig fields (TRL SFTConfig / transformers TrainingArguments
plus the ul_* fields) with two keys of its own: `description`, and `global_batch_size`,
the number of sequences per optimizer step. The batch a preset states is global; the
gradient accumulation that reaches it depends on the launch, so it is derived here:
gradient_accumulation_steps = global_batch_size / (per_device_train_batch_size x ranks).
`--set KEY=VALUE` overrides any key; values are parsed by transformers' own argument
parser, so every field takes the text its command-line flag takes. `deepspeed = "zero2"`
(or "zero3") names the DeepSpeed config shipped in configs/deepspeed/.

Resolution needs no torch: `resolve_preset` gives the final settings as a dict, and
`training_config` builds the OXAConfig from them (importing TRL).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from pathlib import Path

from curate.workspace import MissingExtra, OxaError
from curate.workspace.configfile import apply_overrides, preset_files, read_config_file
from curate.workspace.resources import resource_dir

# Keys of a preset that are not OXAConfig fields.
PRESET_KEYS = ("description", "global_batch_size")


@dataclass(frozen=True)
class ResolvedPreset:
    """A preset after overrides and the batch arithmetic; `settings` are OXAConfig fields."""

    name: str
    description: str
    global_batch_size: int
    world_size: int
    overrides: tuple[str, ...]
    settings: dict


def presets_dir() -> Path:
    return resource_dir("configs") / "train"


def training_preset_names() -> list[str]:
    return sorted(preset_files(presets_dir()))


def load_preset(ref: str, folder: Path | None = None, kind: str = "training preset") -> tuple[str, dict]:
    """(name, table) of a preset shipped in `folder` (configs/train/) or of a TOML or YAML file,
    read as `oxa select` reads its configs (curate/workspace/configfile.py)."""
    shipped = preset_files(folder or presets_dir())
    path = shipped.get(ref) or Path(ref)
    if not path.is_file():
        raise OxaError(
            f"no {kind} or file {ref!r}; give a .toml or .yaml file or one of: " + ", ".join(sorted(shipped))
        )
    return path.stem, read_config_file(path)


def world_size() -> int:
    """Processes of this launch: WORLD_SIZE as set by `accelerate launch` and torchrun (1 without)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_preset(ref: str, overrides: list[str] | None = None, ranks: int | None = None) -> ResolvedPreset:
    """The preset's settings with `overrides` (KEY=VALUE) applied and gradient accumulation derived."""
    name, table = load_preset(ref)
    overrides = list(overrides or [])
    for item in overrides:
        if item.partition("=")[0].strip() == "gradient_accumulation_steps":
            raise OxaError(
                "gradient_accumulation_steps is derived from global_batch_size, per_device_train_batch_size and "
                "the number of processes; set global_batch_size (or per_device_train_batch_size) instead"
            )
    settings = apply_overrides(table, overrides)
    description = str(settings.pop("description", ""))
    global_batch = _positive_int(settings.pop("global_batch_size", None), "global_batch_size")
    per_device = _positive_int(settings.get("per_device_train_batch_size", 8), "per_device_train_batch_size")
    ranks = ranks or world_size()
    if global_batch % (per_device * ranks):
        raise OxaError(
            f"global_batch_size {global_batch} is not a multiple of per_device_train_batch_size {per_device} x "
            f"{ranks} processes; change one of them (--set global_batch_size=... or per_device_train_batch_size=...)"
        )
    settings["gradient_accumulation_steps"] = global_batch // (per_device * ranks)
    return ResolvedPreset(name, description, global_batch, ranks, tuple(overrides), settings)


def _positive_int(value, key: str) -> int:
    try:
        number = int(str(value).replace("_", ""))
    except ValueError:
        number = 0
    if number < 1:
        raise OxaError(f"{key} must be a positive whole number, got {value!r}")
    return number


def training_config(resolved: ResolvedPreset, output_dir: str, **fields):
    """The OXAConfig of a resolved preset; `fields` (e.g. max_steps) are set last."""
    from transformers import HfArgumentParser

    from train.sft import OXAConfig

    values = resolved.settings | {"output_dir": output_dir} | {k: v for k, v in fields.items() if v is not None}
    shipped = resource_dir("configs") / "deepspeed" / f"{values.get('deepspeed')}.json"
    if isinstance(values.get("deepspeed"), str) and shipped.is_file():
        values["deepspeed"] = str(shipped)  # `deepspeed = "zero2"`: the shipped configs/deepspeed/zero2.json
    argv = []
    for key, value in values.items():
        argv += [f"--{key}", *as_args(value)]
    try:
        config, unknown = HfArgumentParser(
            OXAConfig, exit_on_error=False, allow_abbrev=False
        ).parse_args_into_dataclasses(args=argv, return_remaining_strings=True, look_for_args_file=False)
    except (argparse.ArgumentError, ValueError) as exc:
        raise OxaError(f"preset {resolved.name!r}: {exc}") from None
    except PackageNotFoundError as exc:  # deepspeed asked for but not installed
        raise MissingExtra(f"preset {resolved.name!r}: {exc}; install it (pip install deepspeed)") from None
    if unknown:
        keys = [a[2:] for a in unknown if a.startswith("--")]
        raise OxaError(
            f"preset {resolved.name!r}: unknown setting(s) {', '.join(keys) or unknown}; keys are OXAConfig fields "
            "(TRL SFTConfig, transformers TrainingArguments, ul_*) or " + ", ".join(PRESET_KEYS)
        )
    return config


def as_args(value) -> list[str]:
    """A setting as the command-line tokens transformers' HfArgumentParser reads (GRPO's too)."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return [json.dumps(value)]
    return [str(value)]
