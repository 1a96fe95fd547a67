"""Versioned, immutable subsets: WS/subsets/<name>/<version>/ (docs/architecture.md §5).

A version is the content hash of the selection (only the fields its strategy reads;
name, description and owner are cosmetic), the fingerprints of the views it read, and
the oxa version. A view's fingerprint is an order-free digest of its rows as selection
sees them (sql/subsets/table_fingerprint.sql): how the rows are split into parts (by
shard, batch or a resumed run) does not change it, and whatever changes the rows does,
the verify run whose settings the view follows included. Where a row came from (its
source path and row number, an ingest run) is left out, so the same source bytes
ingested from another path, or after a `touch`, give the same version. The same inputs
give the same version, and a version folder, once renamed into place whole, is never
written again.

A subset folder: data.parquet, card.json, card.md and README.md (the same card: the
Hugging Face Hub reads README.md), plots/*.png, and checksums.sha256 (`sha256sum -c`).

The card is the authority over the folder: card.json records the sha256 of data.parquet
and the plots, and checksums.sha256 (which anyone can rewrite with `sha256sum`) only adds
the files the card cannot record (card.json itself, card.md, README.md). A folder is read
only when its card names its own path (a copied folder names another) and its files match
both records; otherwise the reader stops with WorkspaceDamaged, naming the folder and
`oxa check WS --repair`, which moves the version aside so that the same select publishes
it anew.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import duckdb

from curate import __version__
from curate.workspace import OxaError, Workspace, WorkspaceDamaged
from curate.workspace.parts import (
    atomic_target,
    duckdb_path,
    file_sha256,
    fingerprint,
    part_files,
    remove_stale_temp_files,
)
from curate.workspace.progress import warn
from curate.workspace.resources import sql_text
from curate.workspace.schema import GIVEN
from curate.workspace.workspace import score_view_name

CHECKSUMS = "checksums.sha256"
CARD = "card.json"
DATA = "data.parquet"
_CARD_KEYS = ("name", "version", "created_at", "selection", "rows", "unit", "description", "files")
_CHECKSUM_LINE = re.compile(r"(?P<digest>[0-9a-f]{64})  (?P<name>.+)")  # one line of `sha256sum` output
# How the inputs' fingerprints in a card were made (card.json provenance.inputs_fingerprint):
# cards without it hashed part names, which cannot be compared with the rows of today.
INPUTS_FINGERPRINT = "rows"
# contamination and contamination_checked: what the last `oxa decontaminate` found and
# checked, each row carrying its settings' fingerprint (benchmarks and method)
_INPUT_VIEWS = ("problems", "samples", "answers", "verify", "contamination", "contamination_checked")
# Left out of a view's fingerprint: where a row came from (a path and a row number that
# differ between two workspaces holding the same data), and the response text, which
# sample_id already hashes (reading every response of a large pool would take minutes).
_PROVENANCE = frozenset({"source_file", "source_row", "source_index"})
_LEFT_OUT = {"samples": _PROVENANCE | {"response"}}


def input_fingerprints(ws: Workspace, score_tags: list[str]) -> dict[str, str]:
    """Per input view (and scores/<tag>), the fingerprint of its rows (see the module's
    docstring); the DuckDB version is part of it, since the row hash is DuckDB's."""
    views = {table: table for table in _INPUT_VIEWS}
    views.update({f"scores/{tag}": score_view_name(tag) for tag in sorted(score_tags)})
    con = ws.connect()
    try:
        return {table: _view_fingerprint(con, view, _LEFT_OUT.get(table, _PROVENANCE)) for table, view in views.items()}
    finally:
        con.close()


def inputs_changed_since(ws: Workspace, card: dict) -> list[str] | None:
    """The input views whose rows differ now from when the subset was selected (empty:
    none; a scores tag since removed counts), or None when the card's fingerprints were
    made another way (by an older oxa, or under another DuckDB) and cannot be compared."""
    provenance = card["provenance"]
    if provenance.get("inputs_fingerprint") != INPUTS_FINGERPRINT:
        return None
    if provenance["libraries"].get("duckdb") != duckdb.__version__:  # the row hash is DuckDB's
        return None
    now = input_fingerprints(ws, [tag for tag in card["scorers"] if tag in ws.score_tags()])
    return sorted(table for table, then in provenance["inputs"].items() if now.get(table) != then)


def inputs_on_disk(ws: Workspace, score_tags: list[str]) -> list[tuple]:
    """What the input views read, as files: each part's name, size and modification time,
    and the verify and decontaminate runs that finished (their views follow the last). Cheap, and
    different whenever input_fingerprints may be: a run compares it before and after."""
    folders = [ws.table_folder(table) for table in _INPUT_VIEWS]
    folders += [ws.scores_folder(tag) for tag in sorted(score_tags)]
    files = [p for folder in folders for p in part_files(folder)]
    files += sorted((ws.root / "runs" / "verify").glob("*/stats.json"))
    files += sorted((ws.root / "runs" / "decontaminate").glob("*/stats.json"))
    return [(p.relative_to(ws.root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def _view_fingerprint(con: duckdb.DuckDBPyConnection, view: str, left_out: frozenset[str]) -> str:
    names = sorted(row[0] for row in con.sql(f'DESCRIBE "{view}"').fetchall() if row[0] not in left_out)
    given_reason = view == "verify" and "reason" in names  # a given verdict's reason names its ingest run
    columns = [
        'CASE WHEN settings_hash = $given THEN NULL ELSE "reason" END'
        if given_reason and name == "reason"
        else f'"{name}"'
        for name in names
    ]
    query = sql_text("subsets/table_fingerprint.sql").replace("{columns}", ", ".join(columns))
    params = {"given": GIVEN} if given_reason else {}
    [(n_rows, row_hash_sum)] = con.execute(query.replace("{view}", f'"{view}"'), params).fetchall()
    return fingerprint(
        {"columns": names, "rows": n_rows, "row_hash_sum": row_hash_sum, "duckdb": duckdb.__version__}, 16
    )


def subset_version(selection: dict, inputs: dict[str, str]) -> str:
    return fingerprint({"selection": selection, "inputs": inputs, "oxa_version": __version__}, 16)


def subset_dir(ws: Workspace, name: str, version: str) -> Path:
    return ws.root / "subsets" / name / version


def existing_version(ws: Workspace, name: str, version: str) -> Path | None:
    """The folder of `name/version` when that version is published whole; None when
    there is nothing to keep, so that it may be published: no folder, or an empty one (a
    folder with no entry at all holds nothing of a user's, and the rename of publish()
    takes the place of an empty folder only). Any other folder is kept as it is: one
    without a card, a copy of another version or files that differ from the card are
    WorkspaceDamaged naming `oxa check WS --repair`, never "exists already", which sent
    the user round in a loop."""
    folder = subset_dir(ws, name, version)
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return None
    intact_card(folder)
    return folder


def publish(ws: Workspace, name: str, version: str, fill: Callable[[Path], None]) -> Path:
    """Write a subset version: `fill(folder)` writes its files into a temporary folder,
    which gets its checksums and is then renamed into place whole (onto an empty folder
    too, see existing_version). The temporary folders of killed runs beside it go first."""
    final = subset_dir(ws, name, version)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(final.parent)
    try:
        with atomic_target(final) as tmp:
            tmp.mkdir()
            fill(tmp)
            write_checksums(tmp)
    except OSError as exc:
        if final.exists() and any(final.iterdir()):
            raise OxaError(f"subset {name}/{version} appeared while this one was written; it is kept as it is") from exc
        raise
    return final


def write_checksums(folder: Path) -> None:
    """checksums.sha256 over every other file in the folder, in `sha256sum` format."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    lines = [f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files]
    (folder / CHECKSUMS).write_text("".join(lines), encoding="utf-8")


def read_checksums(folder: Path) -> dict[str, str] | None:
    """checksums.sha256 as {file: sha256}; None when it is missing or a line is not
    `sha256sum` output over a file inside the folder."""
    try:
        lines = (folder / CHECKSUMS).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    matches = [_CHECKSUM_LINE.fullmatch(line) for line in lines]
    if not all(m and _inside(m["name"]) for m in matches):
        return None
    return {m["name"]: m["digest"] for m in matches}


def _inside(name: str) -> bool:
    """A record's file name names a file inside the folder: no record is followed out of it."""
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def read_card(folder: Path) -> dict | None:
    """card.json, or None when it is missing, not JSON, lacks a fact that listing a subset
    reads, or records no sha256 of data.parquet."""
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict) or not all(key in card for key in _CARD_KEYS) or card_hashes(card) is None:
        return None
    return card


def card_of_another(folder: Path, card: dict) -> str | None:
    """The `name/version` a card names when it is not its folder's path (a copied folder,
    whose rows would be read twice under one name and version), else None."""
    named = f"{card['name']}/{card['version']}"
    return named if named != f"{folder.parent.name}/{folder.name}" else None


def card_hashes(card: dict) -> dict[str, str] | None:
    """The sha256 per file that a card records (data.parquet and the plots); None when
    it records none for data.parquet."""
    try:
        hashes = {name: facts["sha256"] for name, facts in card["files"].items()}
    except (KeyError, TypeError, AttributeError):
        return None
    return hashes if isinstance(hashes.get(DATA), str) and all(map(_inside, hashes)) else None


def checksums_disagree(listed: dict[str, str] | None, card: dict | None) -> bool:
    """Whether checksums.sha256 lists another sha256 than the card records for one of its
    files, or none: the text alone, nothing hashed."""
    if listed is None:
        return True
    recorded = card_hashes(card) if card is not None else {}
    return any(listed.get(name) != digest for name, digest in recorded.items())


def check_checksums(folder: Path) -> list[str]:
    """The files of a subset folder that are damaged, sorted: those whose contents differ
    from the sha256 card.json records (the authority) or, for a file the card cannot
    record (card.json, card.md, README.md), from checksums.sha256; checksums.sha256
    itself when it disagrees with the card; card.json when it is unreadable. Every file
    named in either record is hashed: a data.parquet rewritten together with
    checksums.sha256 still differs from its card."""
    card, listed = read_card(folder), read_checksums(folder)
    expected = dict(listed or {})
    expected.update(card_hashes(card) if card is not None else {})  # the card wins
    bad = {name for name, digest in expected.items() if not _matches(folder / name, digest)}
    if card is None:
        bad.add(CARD)
    if checksums_disagree(listed, card):
        bad.add(CHECKSUMS)
    return sorted(bad)


def disagree(files: list[str]) -> str:
    """`a.parquet disagrees`, `a, b disagree`: the start of a line naming damaged files."""
    return f"{', '.join(files)} {'disagrees' if len(files) == 1 else 'disagree'}"


def _repair_hint(folder: Path) -> str:
    """The way out of a damaged version folder (subsets/<name>/<version>/ of a workspace)."""
    return (
        f"run `oxa check {folder.parents[2]} --repair` to move the version aside (nothing is deleted), "
        "then the same `oxa select` publishes it anew"
    )


def _matches(path: Path, digest: str) -> bool:
    # a link in the folder is no file of the subset: it could take a read outside it
    return path.is_file() and not path.is_symlink() and file_sha256(path) == digest


def intact_card(folder: Path) -> dict:
    """The card of a subset folder that names its own path and whose files match it (see
    check_checksums); WorkspaceDamaged naming the folder and the damaged files otherwise."""
    card = version_card(folder)
    damaged = check_checksums(folder)
    if damaged:
        raise WorkspaceDamaged(
            f"subset {folder} is damaged: {disagree(damaged)} with the sha256 that its card.json and "
            f"checksums.sha256 record; {_repair_hint(folder)}"
        )
    return card


def version_card(folder: Path) -> dict:
    """The card of a version folder, read without hashing anything: WorkspaceDamaged when
    there is none, it is unreadable, or it names another subset or version than the
    folder's path (a copied folder: `cp -r subsets/a subsets/b`)."""
    if not (folder / CARD).is_file():
        raise WorkspaceDamaged(f"subset folder {folder} holds no {CARD} (empty or half-copied); {_repair_hint(folder)}")
    card = read_card(folder)
    if card is None:
        raise WorkspaceDamaged(f"{folder / CARD} is not a readable subset card; {_repair_hint(folder)}")
    named = card_of_another(folder, card)
    if named is not None:
        raise WorkspaceDamaged(
            f"subset folder {folder} holds the card of {named} (a copied folder?), so it is not read; {_repair_hint(folder)}"
        )
    return card


def load_card(folder: Path) -> dict:
    return json.loads((folder / CARD).read_text(encoding="utf-8"))


def version_folders(ws: Workspace, name: str = "*") -> list[Path]:
    """The version folders under subsets/ (of subset `name`): the temporary folders of a
    publish in progress (hidden) and symbolic links (refused when the workspace opens)
    are none."""
    return sorted(
        p
        for p in (ws.root / "subsets").glob(f"{name}/*")
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and not p.parent.name.startswith(".")
    )


def _read_versions(ws: Workspace, name: str = "*") -> tuple[list[dict], dict[Path, str]]:
    """The subset versions (oldest first), and the version folders that are none, with why
    in one line (no card, an unreadable card, a copied folder)."""
    found, skipped = [], {}
    for folder in version_folders(ws, name):
        if not any(folder.iterdir()):  # no version, nothing of a user's: select publishes into it
            continue
        try:
            facts = version_card(folder)
        except WorkspaceDamaged as exc:
            skipped[folder] = str(exc)
            continue
        found.append(
            {
                "name": facts["name"],
                "version": facts["version"],
                "created_at": facts["created_at"],
                "strategy": facts["selection"].get("strategy"),
                "rows": facts["rows"],
                "unit": facts["unit"],
                "description": facts["description"],
                "path": str(folder),
            }
        )
    return sorted(found, key=lambda s: (s["created_at"], s["name"], s["version"])), skipped


def list_subsets(ws: Workspace, name: str | None = None) -> list[dict]:
    """Every subset version (or every version of `name`), oldest first, from the folders;
    a folder that is no version is left out, with a warning line naming it."""
    found, skipped = _read_versions(ws, name or "*")
    for reason in skipped.values():
        warn(reason)
    return found


def resolve_subset(ws: Workspace, ref: str) -> Path:
    """A subset folder from NAME (its newest version), NAME/VERSION or NAME/VERSION-PREFIX.
    A damaged folder that the reference may mean (any, for NAME alone: it may be the
    newest) is refused rather than passed over."""
    name, _, version = ref.partition("/")
    versions, skipped = _read_versions(ws, name) if (ws.root / "subsets" / name).is_dir() else ([], {})
    meant = [reason for folder, reason in skipped.items() if folder.name.startswith(version)]
    if meant:
        raise WorkspaceDamaged(meant[0])
    if not versions:
        known = sorted({s["name"] for s in _read_versions(ws)[0]})
        raise OxaError(f"no subset named {name!r} in {ws.root}; subsets: {', '.join(known) or 'none yet'}")
    if not version:
        return Path(versions[-1]["path"])
    matches = [s for s in versions if s["version"].startswith(version)]
    if len(matches) != 1:
        listed = ", ".join(s["version"] for s in versions)
        what = "no version" if not matches else "more than one version"
        raise OxaError(f"{what} of {name!r} starts with {version!r}; versions: {listed}")
    return Path(matches[0]["path"])


def diff_subsets(first: Path, second: Path) -> dict:
    """What differs between two subset versions: selection, inputs, rows and overlap
    (both checked whole first: a damaged data.parquet is named, not read)."""
    a, b = intact_card(first), intact_card(second)
    key = "sample_id" if a["unit"] == b["unit"] == "samples" else "problem_id"
    with duckdb.connect() as con:  # its own connection: the module-level default is shared
        overlap = con.execute(
            sql_text("subsets/subset_overlap.sql").replace("{key}", key),
            {"first": duckdb_path(first / "data.parquet"), "second": duckdb_path(second / "data.parquet")},
        ).fetchone()
    return {
        "first": f"{a['name']}/{a['version']}",
        "second": f"{b['name']}/{b['version']}",
        "selection": _changed(_flatten(a["selection"]), _flatten(b["selection"])),
        "inputs": _changed(a["provenance"]["inputs"], b["provenance"]["inputs"]),
        "oxa_version": _changed({"oxa": a["provenance"]["oxa_version"]}, {"oxa": b["provenance"]["oxa_version"]}),
        "rows": [a["rows"], b["rows"]],
        "overlap": {"key": key, "common": overlap[0], "only_first": overlap[1], "only_second": overlap[2]},
        "distributions": _changed(_flatten(a["distributions"]), _flatten(b["distributions"])),
    }


def _flatten(obj: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _changed(a: dict, b: dict) -> dict[str, list]:
    return {k: [a.get(k), b.get(k)] for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}
