"""What `oxa check` finds in subsets/: version folders that are no version, or whose files
differ from their card (docs/architecture.md §5).

One finding per version folder, the first problem in the order below, since `--repair`
moves the whole folder aside (QUARANTINE; nothing is deleted) and the same `oxa select`
then publishes the version anew:

- subset-empty: a version folder with nothing in it;
- subset-incomplete: one without card.json, data.parquet or checksums.sha256;
- subset-damaged: card.json unreadable, or (deep) files whose sha256 differ from the card
  or from checksums.sha256;
- subset-copied: a card that names another subset or version than the folder's path (a
  copied folder: its rows would be read twice under one name and version);
- subset-checksums: checksums.sha256 listing other sha256 than card.json records.

deep=False (inside `oxa status`) reads directory listings, card.json and checksums.sha256
as text, and no data file. The temporary folders of a publish (`.*.partial`) are left to
the findings over temporary files.
"""

from __future__ import annotations

from pathlib import Path

from curate.check.finding import QUARANTINE, Finding
from curate.subsets.subsets import (
    CARD,
    CHECKSUMS,
    DATA,
    card_of_another,
    check_checksums,
    checksums_disagree,
    disagree,
    read_card,
    read_checksums,
    version_folders,
)
from curate.workspace import Workspace

_REQUIRED = (CARD, DATA, CHECKSUMS)
_FIX = (
    "`oxa check WS --repair` moves it aside (nothing is deleted); the same `oxa select` then publishes the version anew"
)


def subset_findings(ws: Workspace, deep: bool) -> list[Finding]:
    """A finding for each version folder under subsets/ that is no whole version (see the
    module's docstring); deep=True hashes every file the records name."""
    findings = []
    for folder in version_folders(ws):
        found = _folder_finding(folder, deep)
        if found is not None:
            kind, problem = found
            findings.append(Finding(kind, folder.relative_to(ws.root).as_posix(), problem, _FIX, QUARANTINE))
    return findings


def _folder_finding(folder: Path, deep: bool) -> tuple[str, str] | None:
    """(kind, problem) of the first thing wrong with a version folder, or None."""
    entries = {p.name for p in folder.iterdir()}
    if not entries:
        return "subset-empty", "an empty version folder (no subset version is there)"
    missing = [name for name in _REQUIRED if name not in entries]
    if missing:
        return "subset-incomplete", f"a version folder without {', '.join(missing)}"
    card = read_card(folder)
    if card is None:
        return (
            "subset-damaged",
            f"{CARD} is not a readable subset card (not JSON, or without its facts or the sha256 of {DATA})",
        )
    named = card_of_another(folder, card)
    if named is not None:
        return "subset-copied", f"its {CARD} is the card of {named} (a copied folder)"
    if deep:
        damaged = [name for name in check_checksums(folder) if name != CHECKSUMS]
        if damaged:
            return "subset-damaged", f"{disagree(damaged)} with the sha256 recorded in {CARD} and {CHECKSUMS}"
    if checksums_disagree(read_checksums(folder), card):
        return "subset-checksums", f"{CHECKSUMS} lists other sha256 than {CARD} records (or is not `sha256sum` output)"
    return None
