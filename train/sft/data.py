"""Training rows for `oxa train sft`: the data a user holds as TRL rows with `loss_type`,
sequences over the cutoff dropped and counted (docs/train.md, what it trains on).

Sources:
- a subset: its folder WS/subsets/NAME/VERSION/, or a workspace and NAME[/VERSION] resolved
  as `oxa export` resolves them. Its checksums are checked and its rows become prompt/
  completion by the same SQL as `oxa export --format trl`, with the same instruction
  appended to each problem (the paper's);
- a file (.parquet, .jsonl, .json) or a folder of them, whose splits are named from the file
  names as `datasets` names them (train.parquet, data/test-00000-of-00001.parquet, train/...);
- a `datasets` folder (`save_to_disk`): a Dataset, or a DatasetDict of splits.
A source of one split is read whole; of several, only those `split` names (NAME, or NAME+NAME
as `datasets` joins splits), never a guess. A folder that `oxa export` wrote holds
oxa_export.json naming its subset (and an hf export the subset's card): that is recorded.

Row forms (TRL's dataset formats), each with an integer `loss_type` (0 promote, 1 suppress;
a source without the column is all positives):
- prompt/completion, conversational or plain strings: trained as TRL trains them (a plain
  row without the chat template, an EOS after the completion); the completion is trained;
- messages: the last turn, the assistant's, is the completion and the turns before it the
  prompt, so that a row's loss falls on its answer as in every other form;
- text: the whole sequence is trained (a loss_type 1 row suppresses every token of it);
- problem/response, a subset's own rows (`oxa export --format hf`): made prompt/completion
  as a subset folder's are.
Only prompt/completion and text leave this module. The instruction (`instruction`) is
appended to problem/response rows only; the other forms carry their prompts as written.

Cutoff (the paper's LLaMA-Factory `drop_exceed_length_data`): a sequence longer than
`cutoff` tokens is dropped, never truncated (a truncated trajectory would teach, or
suppress, an unfinished solution). Lengths are counted exactly as TRL tokenizes the row.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.subsets.subsets import check_checksums, file_sha256, load_card, resolve_subset
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import MissingExtra, OxaError, Workspace, WorkspaceDamaged
from curate.workspace.parts import duckdb_path
from curate.workspace.resources import sql_text
from train.sft.sources import exported_subset, pick_splits, read_source

FORMS = "prompt + completion, messages or text (TRL's forms), or problem + response (a subset's rows)"
_TOKENIZE_BATCH = 256
# a messages row as prompt/completion: the last turn is the completion, the turns before it the prompt
_MESSAGES_AS_PROMPT_COMPLETION = (
    "SELECT messages[:-2] AS prompt, messages[-1:] AS completion, loss_type FROM rows ORDER BY source_row"
)
_MESSAGES_WITHOUT_ANSWER = """
SELECT count(*) AS bad, min(source_row) AS first FROM rows
WHERE len(messages) < 2 OR messages[-1].role IS DISTINCT FROM 'assistant'
"""


@dataclass
class SftDataStats:
    """What was read and what was kept: rows_read = rows_kept + dropped_over_cutoff."""

    source: str
    kind: str  # 'subset' (folder) | 'trl' (files) | 'hf' (`datasets` folder)
    instruction: str | None  # appended (subset rows) or found at the end of the prompts
    cutoff: int | None
    form: str  # the rows as read (see the module doc): 'prompt/completion (conversational)', 'messages', ...
    split: str | None = None  # the split read, for a source that names its splits
    loss_type_column: bool = True  # False: the source has none, every row is a positive (0)
    rows_read: int = 0
    rows_kept: int = 0
    positives: int = 0
    negatives: int = 0
    dropped_over_cutoff: int = 0
    dropped_by_loss_type: dict = field(default_factory=dict)
    dropped_rows: list = field(default_factory=list)  # 0-based row numbers in the source, ascending
    max_tokens_kept: int = 0
    # a subset folder: name, version, path, checksums; an export of one: name, version and
    # "export" (its folder and oxa_export.json), with the card's sha256 and decontamination
    # where the export holds the card (hf)
    subset: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def load_sft_data(
    source: str | Path,
    tokenizer,
    cutoff: int | None,
    instruction: str = KNOWN_SUFFIXES[0],
    split: str | None = None,
    workspace: str | Path | None = None,
):
    """(datasets.Dataset of prompt/completion or text rows with loss_type, SftDataStats).

    `source` is a path, or with `workspace` a subset NAME[/VERSION]. `instruction` is appended
    (after a newline) to each problem of a subset's rows; `split` picks one of several splits.
    `cutoff` None keeps every row."""
    try:
        import datasets
    except ImportError:
        raise MissingExtra("training needs the `datasets` library: pip install 'oxa[train]'") from None
    if workspace is not None:
        path = resolve_subset(Workspace.open(workspace), str(source))
    else:
        path = Path(source).expanduser().resolve()
    table, stats = read_rows(path, instruction, split)
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


def read_rows(path: Path, instruction: str, split: str | None = None) -> tuple[pa.Table, SftDataStats]:
    """The training table of a source (prompt/completion or text, and loss_type), checked, in the source's order."""
    if (path / "card.json").is_file() and (path / "data.parquet").is_file():
        pick_splits(path, None, split)
        return _subset_rows(path, instruction)
    table, split_read, kind = read_source(path, split)
    loss_type_column = "loss_type" in table.column_names
    if not loss_type_column:
        table = table.append_column("loss_type", pa.repeat(pa.scalar(0, pa.int64()), table.num_rows))
    table, form = _training_rows(_checked_loss_type(table, path), path, instruction)
    subset_rows = form == "problem/response"
    stats = SftDataStats(
        source=str(path),
        kind=kind,
        instruction=(instruction or None) if subset_rows else _instruction_found(table),
        cutoff=None,
        form=form,
        split=split_read,
        loss_type_column=loss_type_column,
        subset=exported_subset(path),
    )
    return table, stats


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
    subset = {
        "name": card["name"],
        "version": card["version"],
        "path": str(folder),
        "card_sha256": file_sha256(folder / "card.json"),
        "data_sha256": file_sha256(data),
    }
    table = _checked_loss_type(_export_trl_rows(data, instruction), folder)
    stats = SftDataStats(str(folder), "subset", instruction or None, None, "problem/response", subset=subset)
    return table, stats


def _export_trl_rows(data: Path, instruction: str) -> pa.Table:
    params = {"data": duckdb_path(data), "suffix": f"\n{instruction}" if instruction else ""}
    return duckdb.connect().sql(sql_text("export/trl_prompt_completion.sql"), params=params).to_arrow_table()


def _training_rows(table: pa.Table, path: Path, instruction: str) -> tuple[pa.Table, str]:
    """(prompt/completion or text rows with loss_type, the form read); see the module doc."""
    columns = table.column_names
    # TRL's precedence: prompt/completion, then messages, then text
    if "prompt" in columns and "completion" in columns:
        kind = _kind_of(table, path, ["prompt", "completion"])
        form = "prompt/completion (conversational)" if kind == "conversation" else "prompt/completion"
        return _present(table, path, ["prompt", "completion"]), form
    if "messages" in columns:
        _kind_of(table, path, ["messages"], "conversation")
        return _messages_as_prompt_completion(_present(table, path, ["messages"]), path), "messages"
    if "text" in columns:
        _kind_of(table, path, ["text"], "string")
        return _present(table, path, ["text"]), "text"
    if "problem" in columns and "response" in columns:
        _kind_of(table, path, ["problem", "response"], "string")
        rows = _present(table, path, ["problem", "response"])
        with tempfile.TemporaryDirectory(prefix="oxa-sft-") as tmp:  # through the export's own SQL, which reads parquet
            pq.write_table(rows, Path(tmp) / "data.parquet")
            return _export_trl_rows(Path(tmp) / "data.parquet", instruction), "problem/response"
    raise OxaError(
        f"{path} has columns {', '.join(columns)}; oxa train sft reads rows of {FORMS}, with a loss_type or not"
    )


_HOLDS = {"conversation": "conversations (lists of role/content turns)", "string": "strings"}


def _kind_of(table: pa.Table, path: Path, columns: list[str], wanted: str | None = None) -> str:
    """'conversation' or 'string', what every one of `columns` holds (`wanted`, if given); an error otherwise."""
    kinds = [_kind(table.schema.field(c).type) for c in columns]
    if None in kinds or len(set(kinds)) > 1 or (wanted and kinds[0] != wanted):
        found = " and ".join(
            f"{c} holds {_HOLDS[kind] if kind else table.schema.field(c).type}" for c, kind in zip(columns, kinds)
        )
        holds = _HOLDS[wanted] if wanted else f"{_HOLDS['conversation']} or strings, both alike"
        raise OxaError(f"{path}: {found}; {' and '.join(columns)} must hold {holds}")
    return kinds[0]


def _kind(type_: pa.DataType) -> str | None:
    """'conversation' (a list of role/content structs), 'string' or None (neither)."""
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        turn = type_.value_type
        if pa.types.is_struct(turn) and {"role", "content"} <= {turn.field(i).name for i in range(turn.num_fields)}:
            return "conversation"
    return None


def _present(table: pa.Table, path: Path, columns: list[str]) -> pa.Table:
    """`columns` and loss_type, or an error for a row without one of them."""
    for name in columns:
        if table[name].null_count:
            raise OxaError(f"{path}: {table[name].null_count:,} rows have no {name}; give every row one")
    return table.select([*columns, "loss_type"])


def _messages_as_prompt_completion(table: pa.Table, path: Path) -> pa.Table:
    """messages rows as prompt/completion, or an error naming the first row without an answer to train."""
    connection = duckdb.connect()
    connection.register("rows", table.append_column("source_row", pa.array(np.arange(table.num_rows))))
    [(bad, first)] = connection.sql(_MESSAGES_WITHOUT_ANSWER).fetchall()
    if bad:
        raise OxaError(
            f"{path}: {bad:,} messages rows (the first: row {first}) do not end with an assistant turn after at "
            "least one other turn; the last assistant turn is what a row trains"
        )
    return connection.sql(_MESSAGES_AS_PROMPT_COMPLETION).to_arrow_table()


def _checked_loss_type(table: pa.Table, path: Path) -> pa.Table:
    """The table with loss_type as int64, or a clear error for a value other than 0 or 1."""
    loss_type = table["loss_type"]
    bad = pc.sum(pc.invert(pc.fill_null(pc.is_in(loss_type, pa.array([0, 1], loss_type.type)), False))).as_py()
    if bad:
        values = sorted({v for v in loss_type.to_pylist() if v not in (0, 1)}, key=str)
        raise OxaError(
            f"{path}: {bad:,} rows have a loss_type other than 0 or 1 ({', '.join(map(str, values[:5]))}); "
            "use 0 to promote a row and 1 to suppress it"
        )
    return table.set_column(table.column_names.index("loss_type"), "loss_type", loss_type.cast(pa.int64()))


def _instruction_found(table: pa.Table) -> str | None:
    """The known instruction the first prompt ends with, if any."""
    if not table.num_rows or "prompt" not in table.column_names:
        return None
    prompt = table["prompt"][0].as_py()
    text = prompt if isinstance(prompt, str) else (prompt[-1]["content"] if prompt else None)
    return next((s for s in KNOWN_SUFFIXES if isinstance(text, str) and text.endswith(s)), None)


def sequence_lengths(table: pa.Table, tokenizer) -> list[int]:
    """Tokens of each row as TRL's SFTTrainer tokenizes it: a conversational prompt + completion through
    the chat template; a plain prompt + completion, or a text, as one string with the tokenizer's
    special tokens and an EOS after it (TRL's add_eos, where it does not end with one already)."""
    columns = ["text"] if "text" in table.column_names else ["prompt", "completion"]
    conversational = columns != ["text"] and _kind(table.schema.field("prompt").type) == "conversation"
    eos = tokenizer.eos_token
    lengths: list[int] = []
    for batch in table.select(columns).to_batches(_TOKENIZE_BATCH):
        parts = [batch[c].to_pylist() for c in columns]
        if conversational:
            texts = tokenizer.apply_chat_template([p + c for p, c in zip(*parts)], tokenize=False)
            ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        else:
            texts = ["".join(row) + ("" if row[-1].endswith(eos) else eos) for row in zip(*parts)]
            ids = tokenizer(texts)["input_ids"]
        lengths += [len(row) for row in ids]
    return lengths
