"""Sharded stages (score, generate): which rows one worker takes (`--shard i/n`), and
the output folder the workers share.

A row belongs to shard `bucket(id) % n` where bucket is the first 60 bits of MD5 of its
id, so membership is stable across runs, machines and pool growth, and shards 0..n-1
cover every row exactly once. The default comes from the launcher: torchrun's
RANK/WORLD_SIZE, else a SLURM array's SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, else 0/1.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from curate.workspace import OxaError, WorkspaceBusy
from curate.workspace.parts import SCHEMA_PART, atomic_write_json, part_files, remove_part


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """For file names: 'shard0of2'."""
        return f"shard{self.index}of{self.count}"

    def sql(self, column: str) -> str:
        """A SQL predicate over an id column (a column name, never user text)."""
        return f"((('0x' || left(md5({column}), 15))::UBIGINT % {self.count}) = {self.index})"

    def holds(self, key: str) -> bool:
        """The same test as `sql`, in Python."""
        return int(hashlib.md5(key.encode()).hexdigest()[:15], 16) % self.count == self.index


def parse_shard(text: str | None, environ: dict[str, str] | None = None) -> Shard:
    """'i/n' from the option, else from the launcher's environment, else 0/1."""
    env = os.environ if environ is None else environ
    if text is None:
        for index, count in (("RANK", "WORLD_SIZE"), ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")):
            if env.get(index) is not None and env.get(count) is not None:
                text, origin = f"{env[index]}/{env[count]}", f"{index}/{count}"
                break
        else:
            return Shard(0, 1)
    else:
        origin = "--shard"
    first, sep, second = text.partition("/")
    try:
        shard = Shard(int(first), int(second))
    except ValueError:
        shard = None
    if not sep or shard is None or not 0 <= shard.index < shard.count:
        raise OxaError(f"{origin} must be i/n with 0 <= i < n, e.g. --shard 0/8; got {text!r}")
    return shard


def retry_busy(call: Callable, seconds: float = 300.0):
    """Run `call`, retrying while another shard's worker holds the catalog for a moment."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except WorkspaceBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2 + random.random())


def claim_folder(
    folder: Path,
    manifest: dict,
    part_prefix: str,
    overwrite: bool | None,
    what: str,
    check_only: bool = False,
) -> None:
    """Make `folder` hold outputs of this manifest's config only: a folder holding
    another config's parts is refused, or cleared of them with `overwrite` (None: the
    command has no --overwrite, and the refusal names none). With `check_only`, refuse
    or return without changing anything (before the model loads)."""
    path = folder / "manifest.json"
    old = json.loads(path.read_text()) if path.exists() else None
    others = [p for p in part_files(folder) if p.name != SCHEMA_PART and not p.name.startswith(part_prefix)]
    if (old is None or old["fingerprint"] == manifest["fingerprint"]) and not others:
        if old is None and not check_only:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, manifest)
        return
    if not overwrite:
        made = f"config {old['fingerprint']} ({old.get('model_path')})" if old else "another source (ingested)"
        fp = manifest["fingerprint"]
        if overwrite is None:
            raise OxaError(f"{folder} holds {what} made under {made}, not this config ({fp}); use a new --tag")
        raise OxaError(
            f"{folder} holds {what} made under {made}, not this config ({fp}); "
            "use a new --tag, or --overwrite to replace them"
        )
    if check_only:
        return
    for part in others:
        remove_part(part)
    atomic_write_json(path, manifest)
