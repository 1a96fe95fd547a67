"""Whether the data a model was trained on was checked against the sets it is evaluated on.

A Pass@k gain on a benchmark whose problems were in the training rows is no result, and
the number alone does not say so. `oxa train sft` records in OUTPUT/oxa_train.json the
subset it trained on and that subset card's "decontamination" object (which benchmark
files `oxa decontaminate` checked it against, by their SHA-256, and which of its rows a
match names; curate/subsets/cards.py). `oxa eval` reads that record from the model folder
and compares it with the sets it evaluates, so that the warning sits where the number is
read: one line per warning on stderr when the run starts, and the same lines in
table.md's Contamination section (and in OUT/config.json, which `oxa eval report` reads).

- A set counts as checked when its digest (PromptSet.digest, the SHA-256 of its files'
  bytes, as decontamination records it) is among the card's benchmarks; a set of the
  same name with other bytes is another set, so names alone never count.
- The record is found in the model folder; for a TRL checkpoint (`checkpoint-N`), in the
  run's output above it; for an `oxa train grpo` output (oxa_grpo.json), in the model
  the GRPO run started from, followed the same way: found by its path from the GRPO
  output first (a folder moved or copied whole, the demo's), then by its recorded path,
  and only if its own record is the one the GRPO run saw (by SHA-256).
- A model without a record (a base model, one trained elsewhere) gets no warning: there
  is nothing to compare.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from curate.benchmarks.sets import PromptSet
from curate.decontaminate.matching import CONTAMINATED, METHODS
from curate.subsets.subsets import file_sha256
from train.sft.run import RECORD as SFT_RECORD

GRPO_RECORD = "oxa_grpo.json"  # train/grpo/grpo.py RECORD, not imported: that module loads TRL
_CHECKPOINT = re.compile(r"checkpoint-\d+")
_MAX_STEPS = 16  # GRPO runs chained from one another; the bound ends a cycle of records


@dataclass
class Training:
    """How a model came from an `oxa train sft` output: `steps` name the `oxa train grpo`
    runs between (the model's own first), `sft` is that output (None: no oxa record, or
    the chain breaks), `trained` names it in the lines, `broken` says where the chain
    stopped (a GRPO run's start model is gone: what it was trained on cannot be read)."""

    steps: list[str] = field(default_factory=list)
    sft: Path | None = None
    trained: str = "the model"
    broken: str | None = None


def find_training(model: Path) -> Training:
    """Follow the records from the model folder to the `oxa train sft` output it comes from."""
    found = Training()
    folder = model
    for _ in range(_MAX_STEPS):
        records = [name for name in (SFT_RECORD, GRPO_RECORD) if (folder / name).is_file()]
        if not records and _CHECKPOINT.fullmatch(folder.name):
            folder = folder.parent  # a TRL checkpoint inside a run's output: the run's record is there
        if (folder / SFT_RECORD).is_file():
            found.sft = folder
            return found
        if not (folder / GRPO_RECORD).is_file():
            return found
        start, changed = _start_model(folder, json.loads((folder / GRPO_RECORD).read_text(encoding="utf-8")))
        found.steps.append(f"`oxa train grpo` trained {found.trained} from {start}")
        if not start.is_dir() or changed:
            found.broken = (
                f"{found.trained} was trained by `oxa train grpo` from {start}, which "
                f"{changed or 'no longer exists'}: not known what that model was trained on"
            )
            return found
        folder, found.trained = start, str(start)
    return found


def start_model_record(model: Path, output: Path) -> dict:
    """What an `oxa train grpo` record keeps of its start model besides the resolved path:
    the path from the output folder, so that a folder moved or copied whole with its start
    model (the demo's) still finds it, and the digest of the start model's own oxa record
    (when it has one), so that a model found elsewhere is known to be that one."""
    kept: dict = {"model_from_output": os.path.relpath(model, output)}
    for name in (SFT_RECORD, GRPO_RECORD):
        if (model / name).is_file():
            kept["model_record"] = {"file": name, "sha256": file_sha256(model / name)}
            break
    return kept


def _start_model(output: Path, record: dict) -> tuple[Path, str | None]:
    """Where a GRPO run's start model is now: beside its output as it was, else at its
    recorded path, either only if its oxa record is the one the run saw; with what changed
    when no folder is (None: found, or gone). Records written before oxa kept these facts
    name the recorded path alone."""
    recorded = Path(record["model"])
    places = [output / record["model_from_output"]] if "model_from_output" in record else []
    places = [place for place in [*places, recorded] if place.is_dir()]
    expected = record.get("model_record")
    for place in places:
        if expected is None or _digest(place / expected["file"]) == expected["sha256"]:
            return place.resolve(), None
    if not places:
        return recorded, None
    return places[0].resolve(), f"holds another {expected['file']} than the one that run started from"


def _digest(path: Path) -> str | None:
    return file_sha256(path) if path.is_file() else None


def load_training_record(folder: Path) -> dict:
    """An `oxa train sft` output's record, with its subset's decontamination facts. A record
    written before oxa recorded them gets them from the subset's card, read where the run
    copied it (OUTPUT/subset/card.json) or from the subset folder, if its checksum is the
    one recorded; with neither, the subset's record stays without them (not known)."""
    record = json.loads((folder / SFT_RECORD).read_text(encoding="utf-8"))
    subset = (record.get("data") or {}).get("subset")
    if subset and "decontamination" not in subset:
        cards = [folder / "subset" / "card.json", *([Path(subset["path"]) / "card.json"] if "path" in subset else [])]
        for card in cards:
            if card.is_file() and file_sha256(card) == subset.get("card_sha256"):
                subset["decontamination"] = json.loads(card.read_text(encoding="utf-8")).get("decontamination")
                break
    return record


def contamination_warnings(record: dict, sets: Sequence[PromptSet]) -> list[dict]:
    """One {"benchmark", "line"} per way the training data may hold problems of `sets`:
    "benchmark" names the set a line is about, or is None for a line about the whole
    subset. `record` is an oxa_train.json (load_training_record's): its data.subset's
    "decontamination" is the card's object, None for a card that records none (an older
    oxa), and absent where it is not known."""
    names = ", ".join(s.name for s in sets)
    data = record.get("data") or {}
    subset = data.get("subset")
    if not subset:
        source = data.get("source", "?")
        return [
            _whole(
                f"training data {source} is not a subset folder (an export): "
                f"not known whether it was checked against {names}"
            )
        ]
    label = f"training subset {subset['name']}/{subset['version']}"
    if "decontamination" not in subset:
        return [
            _whole(
                f"{label}: neither its oxa_train.json nor a card with its checksum records its decontamination: "
                f"not known whether it was checked against {names}"
            )
        ]
    facts = subset["decontamination"]
    if facts is None:
        return [
            _whole(
                f"{label} has a card from an oxa that recorded no decontamination: "
                f"not known whether it was checked against {names}"
            )
        ]
    if facts["run_id"] is None:
        return [
            _whole(
                f"{label} was not checked against any benchmark (no `oxa decontaminate` run when it was selected): "
                f"problems of {names} may be among its rows"
            )
        ]
    run = facts["run_id"]
    checked = {b["sha256"]: b for b in facts["benchmarks"]}
    checked_names = ", ".join(b["name"] for b in facts["benchmarks"]) or "nothing"
    warnings = []
    for s in sets:
        if s.digest in checked:
            continue
        line = (
            f"{label} was not checked against {s.name} (sha256 {s.digest[:16]}): "
            f"decontamination run {run} checked {checked_names}"
        )
        other = [b["sha256"][:16] for b in facts["benchmarks"] if b["name"] == s.name]
        if other:
            line += f"; its {s.name} was another file (sha256 {', '.join(other)})"
        warnings.append({"benchmark": s.name, "line": line})
    kept = {m: facts["rows_matched"].get(m, 0) for m in CONTAMINATED if facts["rows_matched"].get(m, 0)}
    if kept:
        listed = ", ".join(f"{m} {n:,}" for m, n in kept.items())
        exclude = str(facts["exclude_contaminated"]).lower()
        warnings.append(
            _whole(
                f"{label} keeps rows that decontamination run {run} matched to a benchmark problem "
                f"({listed}; exclude_contaminated = {exclude})"
            )
        )
    if facts.get("rows_unchecked"):
        warnings.append(
            _whole(
                f"{label} holds {facts['rows_unchecked']:,} rows whose problem decontamination run {run} "
                "never checked (ingested after it)"
            )
        )
    return warnings


def check_model(model: Path, sets: Sequence[PromptSet]) -> dict | None:
    """What `oxa eval` records about a model's training data: {"trained_on": lines saying
    what the model was trained on and what that was checked against, "warnings":
    contamination_warnings'}, or None for a model without an oxa training record. The
    check only advises: a damaged record is one more warning, never a failed evaluation."""
    try:
        return _check_model(model, sets)
    except (OSError, ValueError, KeyError, TypeError) as error:
        what = f"{type(error).__name__}: {error}"
        line = f"a training record of the model cannot be read ({what}): not known what it was trained on"
        return {"trained_on": [], "warnings": [_whole(line)]}


def _check_model(model: Path, sets: Sequence[PromptSet]) -> dict | None:
    training = find_training(model)
    if training.broken:
        return {"trained_on": training.steps, "warnings": [_whole(training.broken)]}
    if training.sft is None:
        return None
    record = load_training_record(training.sft)
    data = record.get("data") or {}
    subset = data.get("subset")
    what = f"subset {subset['name']}/{subset['version']}" if subset else str(data.get("source"))
    trained_on = [
        *training.steps,
        f"`oxa train sft` trained {training.trained} on {what} (record: {training.sft / SFT_RECORD})",
    ]
    facts = subset.get("decontamination") if subset else None
    if facts and facts["run_id"]:
        listed = ", ".join(f"{b['name']} (sha256 {b['sha256'][:16]})" for b in facts["benchmarks"])
        matched = ", ".join(f"{m} {facts['rows_matched'].get(m, 0):,}" for m in METHODS)
        trained_on.append(f"decontamination run {facts['run_id']} checked that subset against {listed}")
        trained_on.append(f"rows of the subset it matched: {matched}; rows unchecked: {facts['rows_unchecked']:,}")
    return {"trained_on": trained_on, "warnings": contamination_warnings(record, sets)}


def _whole(line: str) -> dict:
    return {"benchmark": None, "line": line}
