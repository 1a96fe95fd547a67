"""Config files for stages: TOML or YAML, shipped presets by name, `--set KEY=VALUE`
overrides, and strict conversion into a config dataclass.

A config dataclass documents each field with `field(metadata={"help": ...})`; the same
help is what `oxa ... --help` lists. Unknown keys, missing required keys and values of
the wrong type fail with the key's name and what to do, never silently.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from curate.workspace.errors import OxaError
from curate.workspace.resources import resource_dir

_SUFFIXES = (".toml", ".yaml", ".yml")


def preset_files(folder: Path) -> dict[str, Path]:
    """The presets in a folder (TOML or YAML files), by file name without its suffix (a name
    written in both: the .toml, which the reversed order puts last)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir(), reverse=True) if p.suffix in _SUFFIXES and p.is_file()}


def preset_names() -> list[str]:
    """The presets shipped in configs/, by file name without its suffix."""
    return sorted(preset_files(resource_dir("configs")))


def load_config_file(ref: str | Path) -> dict:
    """A config as a dict, from a TOML/YAML file or a preset name in configs/."""
    path = Path(ref)
    if not path.is_file():
        path = preset_files(resource_dir("configs")).get(str(ref))
        if path is None:
            raise OxaError(
                f"no config file or preset {str(ref)!r}; give a .toml/.yaml file or one of the presets: "
                + ", ".join(preset_names())
            )
    return read_config_file(path)


def read_config_file(path: Path) -> dict:
    """The table of settings a TOML file (by its suffix) or a YAML file holds."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OxaError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}); save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise OxaError(f"cannot parse {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise OxaError(f"{path} must hold a table of settings (key = value), not a {type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: list[str], aliases: dict[str, str] | None = None) -> dict:
    """A copy of `data` with each `KEY=VALUE` set; dotted keys reach into tables
    (`positives.mu=3.0`). A key replaces the same field under another name (`--set n=`
    over a preset's `N`, with `aliases`). Values stay text here; conversion to the
    field's type happens in `build_config`."""
    aliases = aliases or {}
    data = _deep_copy(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OxaError(f"--set takes KEY=VALUE, e.g. --set N=1000; got {item!r}")
        *tables, leaf = key.split(".")
        target = data
        for table in tables:
            target = target.setdefault(table, {})
            if not isinstance(target, dict):
                raise OxaError(f"--set {key}: {table!r} is a value, not a table")
        field_name = aliases.get(leaf, leaf)
        for other in [k for k in target if k != leaf and aliases.get(k, k) == field_name]:
            del target[other]
        target[leaf] = value.strip()
    return data


def _deep_copy(data: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def build_config(cls: type, data: dict, aliases: dict[str, str] | None = None, where: str = "config") -> Any:
    """An instance of dataclass `cls` from `data`; `aliases` maps alternative key names
    (the paper's symbols, e.g. N) to fields. Nested dataclass fields take tables."""
    aliases = aliases or {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = aliases.get(key, key)
        if name not in fields:
            raise OxaError(
                f"unknown key {key!r} in {where}; known keys: {', '.join(fields)}"
                + (f" (aliases: {', '.join(f'{a}={n}' for a, n in aliases.items())})" if aliases else "")
            )
        if name in values:
            raise OxaError(f"{where} sets {name!r} twice (once as an alias); keep one")
        values[name] = _convert(value, hints[name], f"{where}.{name}" if where != "config" else name, aliases)
    missing = [
        name
        for name, f in fields.items()
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise OxaError(
            f"{where} is missing {', '.join(repr(m) for m in missing)}: "
            + "; ".join(f"{m}: {fields[m].metadata.get('help', '')}" for m in missing)
        )
    return cls(**values)


def _convert(value: Any, hint: Any, key: str, aliases: dict[str, str]) -> Any:
    """`value` as type `hint`; text from --set is parsed, other mismatches fail."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None or (isinstance(value, str) and value.lower() in ("null", "none") and type(None) in options):
        if type(None) in options:
            return None
        raise OxaError(f"{key} must be set (null is not allowed here)")
    for option in options:
        if dataclasses.is_dataclass(option):
            if not isinstance(value, dict):
                raise OxaError(f"{key} must be a table of settings, got {value!r}")
            return build_config(option, value, aliases, where=key)
    wanted = next(o for o in options if o is not type(None))
    try:
        return _scalar(value, wanted)
    except (TypeError, ValueError):
        raise OxaError(f"{key} must be {wanted.__name__}, got {value!r}") from None


def _scalar(value: Any, wanted: type) -> Any:
    if wanted is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(value)
    if wanted is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        if isinstance(value, str):
            try:  # exactly, however large (a float holds 53 bits)
                return int(value.replace("_", "").strip())
            except ValueError:
                pass
        # 50_000 and 5e4 are both fine in text; the value must be a whole number
        number = float(value.replace("_", "")) if isinstance(value, str) else value
        if not math.isfinite(number) or not float(number).is_integer():
            raise ValueError(value)
        return int(number)
    if wanted is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value.replace("_", "")) if isinstance(value, str) else float(value)
    if wanted is str:
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    raise TypeError(f"unsupported config type {wanted}")


def field_help(cls: type) -> dict[str, str]:
    """Field name -> its help text, for the CLI's --help."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
