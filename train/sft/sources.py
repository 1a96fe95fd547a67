"""Where `oxa train sft`'s rows come from: a file, a folder of files named by split as
`datasets` names them, a `datasets` folder (`save_to_disk`), and the subset an `oxa export`
folder names (its oxa_export.json). A source of several splits is read only by the names
asked for, never a guess. The rows' forms are train/sft/data.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from curate.subsets.export import EXPORT_MARKER
from curate.subsets.subsets import file_sha256, read_card
from curate.workspace import OxaError
from curate.workspace.parts import duckdb_path

DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def read_source(path: Path, split: str | None) -> tuple[pa.Table, str | None, str]:
    """(the rows of the splits read, their names where the source names splits, kind)."""
    if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.Dataset):
            pick_splits(path, None, split)
            return loaded.data.table, None, "hf"
        picked = pick_splits(path, list(loaded), split)
        try:
            table = pa.concat_tables([loaded[name].data.table for name in picked], promote_options="default")
        except pa.ArrowInvalid as exc:
            raise OxaError(
                f"{path}: the splits {', '.join(picked)} differ in their columns ({exc}); train on one"
            ) from None
        return table, "+".join(picked), "hf"
    if path.is_file():
        if path.suffix not in DATA_SUFFIXES:
            raise OxaError(
                f"{path} is not a file of training rows (.parquet, .jsonl or .json); give one, a folder of them, a "
                "subset folder (WS/subsets/NAME/VERSION) or a `datasets` folder"
            )
        picked, files = pick_splits(path, None, split), [path]
    else:
        by_split = split_files(path)
        picked = pick_splits(path, list(by_split), split)
        files = [file for name in picked for file in by_split[name]]
    if len({f.suffix for f in files}) > 1:
        raise OxaError(f"{path} mixes {', '.join(sorted({f.suffix for f in files}))} files; keep one format")
    reader = "read_parquet" if files[0].suffix == ".parquet" else "read_json"
    query = f"SELECT * FROM {reader}($files, union_by_name = true)"
    table = duckdb.connect().sql(query, params={"files": [duckdb_path(f) for f in files]}).to_arrow_table()
    return table, "+".join(picked) if picked else None, "trl"


def split_files(folder: Path) -> dict[str, list[Path]]:
    """The data files of a folder by split, the splits named from the file names as
    `datasets.load_dataset(folder)` names them (no names: one split, train)."""
    if not folder.is_dir():
        raise OxaError(
            f"{folder} does not exist; give WS NAME (a subset of a workspace), a subset folder "
            "(WS/subsets/NAME/VERSION), a file of training rows or a folder of them"
        )
    from datasets.data_files import DataFilesDict, EmptyDatasetError, get_data_patterns

    try:
        patterns = get_data_patterns(str(folder))
    except EmptyDatasetError:
        patterns = {}
    by_split = {}
    for name, found in DataFilesDict.from_patterns(patterns, base_path=str(folder)).items():
        files = sorted(f for f in map(Path, found) if f.suffix in DATA_SUFFIXES and f.name != EXPORT_MARKER)
        if files:
            by_split[str(name)] = files
    if not by_split:
        raise OxaError(
            f"{folder} holds no files of training rows (.parquet, .jsonl or .json) and is neither a subset folder "
            "(data.parquet + card.json) nor a `datasets` folder"
        )
    return by_split


def pick_splits(path: Path, names: list[str] | None, split: str | None) -> list[str] | None:
    """The splits to read: those `split` names (NAME, or NAME+NAME as `datasets` joins splits),
    or the only one; several and none named is an error naming them. `names` None: a source
    without splits, read whole (`datasets` calls it train); None comes back."""
    if names is None:
        if split not in (None, "train"):
            raise OxaError(f"{path} holds one set of rows, without splits; leave out --split {split}")
        return None
    if split is None:
        if len(names) > 1:
            example = "train" if "train" in names else names[0]
            raise OxaError(
                f"{path} holds the splits {', '.join(names)}; name the one to train on with --split (e.g. --split "
                f"{example}), or several joined by + (--split {'+'.join(names)})"
            )
        return names
    wanted = split.split("+")
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise OxaError(f"{path} has no split {unknown[0]!r}; its splits: {', '.join(names)}")
    return wanted


def exported_subset(path: Path) -> dict | None:
    """The subset an `oxa export` folder was written from, as its oxa_export.json names it, with the
    sha256 and decontamination of the subset's card where the export holds it (hf); None for other sources."""
    marker = path / EXPORT_MARKER
    if not marker.is_file():
        return None
    try:
        facts = json.loads(marker.read_text(encoding="utf-8"))
        name, _, version = facts["subset"].partition("/")
    except (ValueError, KeyError, TypeError, AttributeError):
        name = version = ""
    if not (name and version):
        raise OxaError(
            f'{marker} does not name the subset it was exported from (NAME/VERSION under "subset"); export the '
            "subset again, or train on the subset folder itself"
        )
    subset = {"name": name, "version": version, "export": {"path": str(path), **facts}}
    card = read_card(path)
    if card is not None and (card.get("name"), card.get("version")) == (name, version):
        subset |= {"card_sha256": file_sha256(path / "card.json"), "decontamination": card.get("decontamination")}
    return subset
