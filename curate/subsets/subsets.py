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
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb

from curate import __version__
from curate.workspace import OxaError, Workspace
from curate.workspace.parts import (
    atomic_target,
    duckdb_path,
    file_sha256,
    fingerprint,
    part_files,
    remove_stale_temp_files,
)
from curate.workspace.resources import sql_text
from curate.workspace.schema import GIVEN
from curate.workspace.workspace import score_view_name

CHECKSUMS = "checksums.sha256"
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


def publish(ws: Workspace, name: str, version: str, fill: Callable[[Path], None]) -> Path:
    """Write a subset version: `fill(folder)` writes its files into a temporary folder,
    which gets its checksums and is then renamed into place whole. The temporary folders
    of killed runs beside it go first."""
    final = subset_dir(ws, name, version)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(final.parent)
    try:
        with atomic_target(final) as tmp:
            tmp.mkdir()
            fill(tmp)
            write_checksums(tmp)
    except OSError as exc:
        if final.exists():
            raise OxaError(f"subset {name}/{version} appeared while this one was written; it is kept as it is") from exc
        raise
    return final


def write_checksums(folder: Path) -> None:
    """checksums.sha256 over every other file in the folder, in `sha256sum` format."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    lines = [f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files]
    (folder / CHECKSUMS).write_text("".join(lines), encoding="utf-8")


def check_checksums(folder: Path) -> list[str]:
    """The files of a subset folder whose contents no longer match checksums.sha256."""
    listed = folder / CHECKSUMS
    if not listed.is_file():
        return [CHECKSUMS]
    bad = []
    for line in listed.read_text(encoding="utf-8").splitlines():
        digest, _, relative = line.partition("  ")
        path = folder / relative
        if not path.is_file() or file_sha256(path) != digest:
            bad.append(relative)
    return bad


def load_card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text(encoding="utf-8"))


def list_subsets(ws: Workspace, name: str | None = None) -> list[dict]:
    """Every subset version (or every version of `name`), oldest first, from the folders."""
    root = ws.root / "subsets"
    found = []
    for card in root.glob(f"{name or '*'}/*/card.json"):
        facts = json.loads(card.read_text(encoding="utf-8"))
        found.append(
            {
                "name": facts["name"],
                "version": facts["version"],
                "created_at": facts["created_at"],
                "strategy": facts["selection"]["strategy"],
                "rows": facts["rows"],
                "unit": facts["unit"],
                "description": facts["description"],
                "path": str(card.parent),
            }
        )
    return sorted(found, key=lambda s: (s["created_at"], s["name"], s["version"]))


def resolve_subset(ws: Workspace, ref: str) -> Path:
    """A subset folder from NAME (its newest version), NAME/VERSION or NAME/VERSION-PREFIX."""
    name, _, version = ref.partition("/")
    versions = list_subsets(ws, name) if (ws.root / "subsets" / name).is_dir() else []
    if not versions:
        known = sorted({s["name"] for s in list_subsets(ws)})
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
    """What differs between two subset versions: selection, inputs, rows and overlap."""
    a, b = load_card(first), load_card(second)
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
