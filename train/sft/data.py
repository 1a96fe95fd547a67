"""Training rows for `oxa train sft`: a subset or an export as TRL prompt/completion rows
with `loss_type`, sequences over the cutoff dropped and counted.

Accepted inputs:
- a subset folder WS/subsets/<name>/<version>/ (data.parquet + card.json): its checksums
  are checked and its rows become prompt/completion by the same SQL as `oxa export
  --format trl`, with the same instruction appended to each problem (the paper's);
- an `oxa export --format trl` file (.parquet or .jsonl), or a folder of such files: the
  prompts already hold the instruction they were exported with (recorded when known);
- a `datasets` folder (`save_to_disk`) of prompt/completion/loss_type rows.

Cutoff (the paper's LLaMA-Factory `drop_exceed_length_data`): a sequence whose chat-
templated prompt + completion is longer than `cutoff` tokens is dropped, never truncated
(a truncated trajectory would teach, or suppress, an unfinished solution). Lengths are
counted exactly as TRL tokenizes a conversational prompt/completion row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.subsets.subsets import check_checksums, file_sha256, load_card
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import MissingExtra, OxaError, WorkspaceDamaged
from curate.workspace.parts import duckdb_path
from curate.workspace.resources import sql_text

COLUMNS = ("prompt", "completion", "loss_type")
_TOKENIZE_BATCH = 256


@dataclass
class SftDataStats:
    """What was read and what was kept: rows_read = rows_kept + dropped_over_cutoff."""

    source: str
    kind: str  # 'subset' | 'trl' | 'hf'
    instruction: str | None  # appended (subset) or found at the end of the prompts (export)
    cutoff: int | None
    rows_read: int = 0
    rows_kept: int = 0
    positives: int = 0
    negatives: int = 0
    dropped_over_cutoff: int = 0
    dropped_by_loss_type: dict = field(default_factory=dict)
    dropped_rows: list = field(default_factory=list)  # 0-based row numbers in the source, ascending
    max_tokens_kept: int = 0
    subset: dict | None = None  # name, version, checksums of a subset folder

    def to_dict(self) -> dict:
        return asdict(self)


def load_sft_data(source: str | Path, tokenizer, cutoff: int | None, instruction: str = KNOWN_SUFFIXES[0]):
    """(datasets.Dataset of prompt/completion/loss_type, SftDataStats) from a subset or an export.

    `instruction` is appended (after a newline) to each problem of a subset folder; exports
    already carry theirs. `cutoff` None keeps every row."""
    try:
        import datasets
    except ImportError:
        raise MissingExtra("training needs the `datasets` library: pip install 'oxa[train]'") from None
    table, stats = read_rows(Path(source).expanduser().resolve(), instruction)
    stats.cutoff = cutoff
    stats.rows_read = table.num_rows
    if cutoff is not None and table.num_rows:
        lengths = sequence_lengths(table, tokenizer)
        keep = [n <= cutoff for n in lengths]
        dropped = [i for i, kept in enumerate(keep) if not kept]
        if dropped:
            types = table["loss_type"].to_pylist()
            for i in dropped:
                key = str(types[i])
                stats.dropped_by_loss_type[key] = stats.dropped_by_loss_type.get(key, 0) + 1
            table = table.filter(pa.array(keep))
        stats.dropped_rows = dropped
        stats.dropped_over_cutoff = len(dropped)
        stats.max_tokens_kept = max((n for n in lengths if n <= cutoff), default=0)
    stats.rows_kept = table.num_rows
    stats.negatives = int(pc.sum(table["loss_type"]).as_py() or 0)
    stats.positives = table.num_rows - stats.negatives
    return datasets.Dataset(datasets.table.InMemoryTable(table)), stats


def read_rows(path: Path, instruction: str) -> tuple[pa.Table, SftDataStats]:
    """The prompt/completion/loss_type table of a source, checked, in the source's order."""
    if (path / "card.json").is_file() and (path / "data.parquet").is_file():
        return _subset_rows(path, instruction)
    if path.is_dir() and (path / "state.json").is_file():  # datasets save_to_disk
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise OxaError(f"{path} holds splits {', '.join(loaded)} but no 'train' split to train on")
            loaded = loaded["train"]
        table, kind = loaded.data.table, "hf"
    else:
        files = _export_files(path)
        reader = "read_parquet" if files[0].suffix == ".parquet" else "read_json"
        query = f"SELECT * FROM {reader}($files)"
        table = duckdb.connect().sql(query, params={"files": [duckdb_path(f) for f in files]}).to_arrow_table()
        kind = "trl"
    table = _checked(table, path)
    found = None
    if table.num_rows:
        prompt = table["prompt"][0].as_py()[-1]["content"]
        found = next((s for s in KNOWN_SUFFIXES if prompt.endswith(s)), None)
    return table, SftDataStats(source=str(path), kind=kind, instruction=found, cutoff=None)


def _subset_rows(folder: Path, instruction: str) -> tuple[pa.Table, SftDataStats]:
    """A subset's rows as prompt/completion by the SQL of `oxa export --format trl`."""
    changed = check_checksums(folder)  # against its card; the folder may be a copy made for training, anywhere
    if changed:
        raise WorkspaceDamaged(
            f"subset {folder} no longer matches its card ({', '.join(changed)} differ from the sha256 recorded when "
            "it was published); copy the folder again from its workspace, or there run `oxa check WS --repair` "
            "and then the same `oxa select`"
        )
    card = load_card(folder)
    data = folder / "data.parquet"
    if card.get("unit") == "problems" or "response" not in pq.read_schema(data).names:
        raise OxaError(f"subset {folder} holds problems without responses (a prompt set for GRPO), not SFT rows")
    if "loss_type" not in pq.read_schema(data).names:
        raise OxaError(f"subset {folder} has no loss_type column; re-select it with this version of oxa")
    params = {"data": duckdb_path(data), "suffix": f"\n{instruction}" if instruction else ""}
    table = duckdb.connect().sql(sql_text("export/trl_prompt_completion.sql"), params=params).to_arrow_table()
    subset = {
        "name": card["name"],
        "version": card["version"],
        "path": str(folder),
        "card_sha256": file_sha256(folder / "card.json"),
        "data_sha256": file_sha256(data),
    }
    return _checked(table, folder), SftDataStats(str(folder), "subset", instruction or None, None, subset=subset)


def _export_files(path: Path) -> list[Path]:
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".parquet", ".jsonl"))
    else:
        raise OxaError(f"{path} does not exist; give a subset folder (WS/subsets/NAME/VERSION) or an exported file")
    if not files or any(f.suffix not in (".parquet", ".jsonl") for f in files):
        raise OxaError(
            f"{path} is neither a subset folder (data.parquet + card.json) nor TRL export files (.parquet/.jsonl "
            "from `oxa export --format trl`) nor a `datasets` folder"
        )
    if len({f.suffix for f in files}) > 1:
        raise OxaError(f"{path} mixes .parquet and .jsonl files; keep one format per folder")
    return files


def _checked(table: pa.Table, path: Path) -> pa.Table:
    """prompt/completion/loss_type with loss_type 0 or 1 on every row, or a clear error."""
    missing = [c for c in ("prompt", "completion") if c not in table.column_names]
    if missing:
        raise OxaError(
            f"{path} has no {' or '.join(missing)} column (columns: {', '.join(table.column_names)}); "
            "give a subset folder or an `oxa export --format trl` file"
        )
    if "loss_type" not in table.column_names:
        raise OxaError(
            f"{path} has no loss_type column; export it with `oxa export WS SUBSET --format trl` (which writes it) "
            "or add one: 0 promotes a row (cross-entropy), 1 suppresses it (unlikelihood)"
        )
    loss_type = table["loss_type"]
    bad = pc.sum(pc.invert(pc.fill_null(pc.is_in(loss_type, pa.array([0, 1], loss_type.type)), False))).as_py()
    if bad:
        values = sorted({v for v in loss_type.to_pylist() if v not in (0, 1)}, key=str)
        raise OxaError(
            f"{path}: {bad:,} rows have a loss_type other than 0 or 1 ({', '.join(map(str, values[:5]))}); "
            "use 0 to promote a row and 1 to suppress it"
        )
    return table.select(list(COLUMNS)).cast(
        pa.schema([table.schema.field("prompt"), table.schema.field("completion"), pa.field("loss_type", pa.int64())])
    )


def sequence_lengths(table: pa.Table, tokenizer) -> list[int]:
    """Tokens of each row's chat-templated prompt + completion, as TRL's SFTTrainer tokenizes it."""
    lengths: list[int] = []
    for batch in table.select(["prompt", "completion"]).to_batches(_TOKENIZE_BATCH):
        conversations = [p + c for p, c in zip(batch["prompt"].to_pylist(), batch["completion"].to_pylist())]
        texts = tokenizer.apply_chat_template(conversations, tokenize=False)
        lengths += [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return lengths
