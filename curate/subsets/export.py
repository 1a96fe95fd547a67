"""`oxa export`: a published subset in the format a trainer reads (docs/architecture.md §5,
docs/exports.md).

- trl: TRL conversational prompt/completion rows with `loss_type`: a folder in the Hub's
  own layout (data/train-00000-of-00001.parquet), which `datasets.load_dataset(DIR)` and
  `trl sft --dataset_name DIR` read as it is, or one .parquet or .jsonl file.
- alpaca: LLaMA-Factory alpaca JSON (instruction = problem + instruction, input "",
  output, history [], loss_type), the layout the paper's code trains on (.json), and its
  entry in the dataset_info.json beside it, which LLaMA-Factory needs to find it.
- verl: verl RL prompt parquet in the schema of verl's own files, one row per problem:
  `data_source` a name verl's default reward scores as math, the gold answer as its
  ground truth, the pool's source and problem_id in `extra_info`.
- hf: a Hugging Face `datasets` folder (`save_to_disk`) of the subset's data as it is,
  with its card.

An export never changes what a row trains. TRL's SFTTrainer and LLaMA-Factory as released
drop `loss_type` and train every row with cross-entropy, so a trl or alpaca export of a
subset holding loss_type 1 rows (wrong answers, to be suppressed) is refused until
`negatives` says what to do with them: drop (the positives only), separate (the
negatives in a second split or file) or keep (for trainers that read loss_type).

The subset's files are checked first against the sha256 its card.json records
(subsets.intact_card); every output is written under a temporary name and renamed into
place, so a failed export leaves nothing behind. Every folder export holds
oxa_export.json, naming the subset, the format, the negatives choice and its splits.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__
from curate.subsets.subsets import intact_card, resolve_subset
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import MissingExtra, OxaError, Workspace
from curate.workspace.parts import atomic_target, atomic_write_text, duckdb_path, refuse_to_replace, temp_path
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun
from curate.workspace.schema import VERL_PROMPTS

FORMATS = ("trl", "alpaca", "verl", "hf")
NEGATIVES = ("drop", "separate", "keep")
EXPORT_MARKER = "oxa_export.json"  # in every folder export: what it holds, and what --overwrite may replace
# The trainer that drops loss_type and trains every row with cross-entropy, per format.
DROPS_LOSS_TYPE = {"trl": "TRL's SFTTrainer", "alpaca": "LLaMA-Factory as released"}
# verl's default reward (verl/utils/reward_score/__init__.py, default_compute_score) sends
# this name to its MATH scorer (reward_score/math.py): the completion's last \boxed{}
# against ground_truth, the answer form the paper's instruction asks for. The name is
# the one verl's own examples/data_preprocess/math_dataset.py writes.
VERL_DATA_SOURCE = "DigitalLearningGmbH/MATH-lighteval"
# verl's prompt schema with extra_info extended by the pool's source and oxa's problem id:
# verl hands extra_info to the reward function as it is, and its own preprocessing adds
# keys there too (examples/data_preprocess/gsm8k.py: answer, question).
_VERL_EXTRA_INFO = pa.struct(
    [*VERL_PROMPTS.field("extra_info").type, pa.field("source", pa.string()), pa.field("problem_id", pa.string())]
)
VERL_EXPORT = VERL_PROMPTS.set(VERL_PROMPTS.get_field_index("extra_info"), pa.field("extra_info", _VERL_EXTRA_INFO))
# A split of a trl folder: the Hub's sharded layout, the first pattern `datasets` tries
# (datasets/data_files.py SPLIT_PATTERN_SHARDED), so the split is named by the file.
TRL_SPLIT_FILE = "data/{split}-00000-of-00001.parquet"
# LLaMA-Factory's alpaca columns (its data/README.md), as dataset_info.json maps them.
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}
_FILE_SUFFIXES = (".parquet", ".jsonl", ".json")  # any other name is a folder, for the formats that write one
_BATCH_ROWS = 1000


@dataclass
class ExportConfig:
    """What to export, how, and where. Every field is also an `oxa export` option."""

    subset: str = field(metadata={"help": "NAME (newest version), NAME/VERSION or NAME/VERSION-PREFIX"})
    format: str = field(metadata={"help": "trl | alpaca | verl | hf"})
    output: str = field(
        metadata={"help": "trl: a folder, or a .parquet or .jsonl file; alpaca: .json; verl: .parquet; hf: a folder"}
    )
    instruction: str = field(
        default=KNOWN_SUFFIXES[0],
        metadata={"help": "appended to each problem after a newline (the paper's); empty: the problem alone"},
    )
    negatives: str | None = field(
        default=None,
        metadata={
            "help": "trl and alpaca, for a subset with loss_type 1 rows: drop (positives only), separate "
            "(negatives in a second split or file) or keep (for trainers that read loss_type)"
        },
    )
    data_source: str | None = field(
        default=None, metadata={"help": f"verl: every row's data_source (default {VERL_DATA_SOURCE})"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an existing output"})

    def check(self) -> None:
        if self.format not in FORMATS:
            raise OxaError(f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.negatives is not None:
            if self.format not in DROPS_LOSS_TYPE:
                what = "prompts, no responses" if self.format == "verl" else "the subset's rows as they are"
                raise OxaError(f"--negatives applies to --format trl and alpaca; --format {self.format} writes {what}")
            if self.negatives not in NEGATIVES:
                raise OxaError(f"unknown --negatives {self.negatives!r}; choose one of {', '.join(NEGATIVES)}")
        if self.data_source is not None:
            if self.format != "verl":
                raise OxaError(f"--data-source applies to --format verl, not {self.format}")
            if not self.data_source.strip():
                raise OxaError(f"--data-source is empty; leave it out for {VERL_DATA_SOURCE}")


@dataclass
class _Job:
    """One export: the config, the subset it reads and where each split goes."""

    config: ExportConfig
    card: dict
    data: Path  # the subset's data.parquet
    output: Path
    negatives: str | None = None  # the --negatives in effect (None: not given, and none needed)
    subset_negatives: int = 0  # the subset's loss_type 1 rows (trl and alpaca)

    @property
    def subset(self) -> str:
        return f"{self.card['name']}/{self.card['version']}"

    @property
    def into_folder(self) -> bool:
        return self.config.format == "hf" or (
            self.config.format == "trl" and self.output.suffix not in (".parquet", ".jsonl")
        )

    @property
    def suffix(self) -> str:
        return f"\n{self.config.instruction}" if self.config.instruction else ""

    def split_paths(self) -> dict[str, Path]:
        """Where each split goes: a path in the output folder, or a file of its own."""
        splits = ("train", "negatives") if self.negatives == "separate" else ("train",)
        if self.config.format == "hf":
            return {"train": self.output}
        if self.into_folder:
            return {split: self.output / TRL_SPLIT_FILE.format(split=split) for split in splits}
        negatives = self.output.with_name(f"{self.output.stem}.negatives.json")  # alpaca (a trl file has no split)
        return {split: self.output if split == "train" else negatives for split in splits}

    def targets(self) -> list[Path]:
        """The paths renamed into place: the output, and a negatives file beside it."""
        return [self.output] if self.into_folder else list(self.split_paths().values())


def run_export(ws: Workspace, config: ExportConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Export a subset; returns the run's stats (also in runs/export/<run>/stats.json)."""
    config.check()
    folder = resolve_subset(ws, config.subset)
    card = intact_card(folder)
    job = _Job(config, card, folder / "data.parquet", Path(config.output).expanduser().resolve())
    _check_output(job)
    _settle_negatives(job)
    for target in job.targets():
        _check_target(ws, config, target, job.into_folder)
    info = _dataset_info(job) if config.format == "alpaca" else None  # checked before anything is written
    job.output.parent.mkdir(parents=True, exist_ok=True)
    resolved = asdict(config) | {"subset": job.subset, "output": str(job.output)}
    run = StageRun(ws, "export", resolved)
    try:
        if progress:
            progress(f"exporting {job.subset} as {config.format}")
        replaced = None
        try:
            with contextlib.ExitStack() as stack:
                tmps = [stack.enter_context(atomic_target(target)) for target in job.targets()]
                rows = _WRITERS[config.format](job, tmps)
                if job.into_folder:
                    marker = _marker(job, rows)
                    (tmps[0] / EXPORT_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
                replaced = _move_aside(job.output)
        except BaseException:
            if replaced is not None and not job.output.exists():  # the old output back where it was
                replaced.rename(job.output)
            raise
        run.published = str(job.output)  # in place: a failure from here on is not "nothing was done"
        if info is not None:
            atomic_write_text(info[0], json.dumps(info[1], indent=2, ensure_ascii=False) + "\n")
        if replaced is not None:  # the new output is in place: the old one goes
            shutil.rmtree(replaced)
        return run.finish(_stats(job, rows))
    except BaseException as exc:
        run.fail(exc)
        raise


def _stats(job: _Job, rows: dict[str, int]) -> dict:
    total = sum(rows.values())
    detail = f"{total:,} rows"
    if job.negatives == "separate":
        detail += f": {rows['train']:,} train, {rows['negatives']:,} negatives"
        if not job.into_folder:
            detail += f" in {job.split_paths()['negatives'].name}"
    elif job.negatives == "drop":
        detail += f"; {job.subset_negatives:,} loss_type 1 rows left out"
    summary = f"{job.subset} -> {job.output} ({job.config.format}, {detail})"
    if job.config.format == "trl" and not job.into_folder:
        summary += "; `trl sft --dataset_name` reads a folder: give -o without .parquet/.jsonl for one"
    return {
        "summary": summary,
        "subset": job.subset,
        "output": str(job.output),
        "rows": total,
        "negatives": job.negatives,
        "splits": {split: {"path": str(path), "rows": rows[split]} for split, path in job.split_paths().items()},
    }


def _marker(job: _Job, rows: dict[str, int]) -> dict:
    """oxa_export.json: which subset the folder holds and how (`oxa train sft` records it)."""
    return {
        "subset": job.subset,
        "name": job.card["name"],
        "version": job.card["version"],
        "format": job.config.format,
        "negatives": job.negatives,
        "instruction": None if job.config.format == "hf" else job.config.instruction,
        "splits": {
            split: {"path": path.relative_to(job.output).as_posix(), "rows": rows[split]}
            for split, path in job.split_paths().items()
        },
        "oxa_version": __version__,
    }


def _settle_negatives(job: _Job) -> None:
    """Count the subset's loss_type 1 rows and take the --negatives choice: a subset that
    holds some needs one for a format whose usual trainer would train them as positives."""
    config = job.config
    if config.format not in DROPS_LOSS_TYPE:
        return
    if config.negatives == "separate" and config.format == "trl" and not job.into_folder:
        raise OxaError(
            f"--negatives separate writes the negatives as a second split of a folder; {job.output.name!r} is one "
            f"file: give --output a folder (a name without .parquet or .jsonl), e.g. {job.output.with_suffix('')}"
        )
    [(job.subset_negatives,)] = _query("export/negative_rows.sql", job.data).fetchall()
    if job.subset_negatives and config.negatives is None:
        second = "split" if config.format == "trl" else "file"
        raise OxaError(
            f"subset {job.subset} holds {job.subset_negatives:,} loss_type 1 rows (wrong answers to suppress), which "
            f"{DROPS_LOSS_TYPE[config.format]} trains as positives; choose --negatives drop (positives only, for "
            f"plain SFT), --negatives separate (the negatives in a second {second}) or --negatives keep (for "
            "trainers that read loss_type: oxa train sft, the paper's LLaMA-Factory fork)"
        )
    job.negatives = config.negatives


def _check_output(job: _Job) -> None:
    fmt, output = job.config.format, job.output
    if fmt in ("alpaca", "verl"):
        wanted = ".json" if fmt == "alpaca" else ".parquet"
        if output.suffix != wanted:
            raise OxaError(f"--format {fmt} writes {wanted}; got {output.name!r}")
        if fmt == "alpaca" and output.name == "dataset_info.json":
            raise OxaError(
                "--output dataset_info.json is where LLaMA-Factory lists its datasets; name the file otherwise"
            )
    elif output.suffix in _FILE_SUFFIXES and job.into_folder:
        what = "a folder, .parquet or .jsonl" if fmt == "trl" else "a folder"
        raise OxaError(f"--format {fmt} writes {what}; got {output.name!r}")
    if job.card["unit"] == "problems" and fmt in DROPS_LOSS_TYPE:
        raise OxaError(
            f"subset {job.config.subset} holds problems without responses (a prompt set); export it as verl or hf"
        )


def _check_target(ws: Workspace, config: ExportConfig, output: Path, folder: bool) -> None:
    """The output never lands on or in the workspace's data, the working directory or a
    folder above either; --overwrite replaces a file, or a folder that oxa exported (it
    holds EXPORT_MARKER), and nothing else."""
    root = ws.root
    if root.is_relative_to(output) or Path.cwd().resolve().is_relative_to(output):
        what = "the workspace or a folder holding it" if root.is_relative_to(output) else "the working directory"
        raise OxaError(f"--output {output} is {what}; export to a file or folder of its own")
    ws.check_outside_data(output, "--output")
    if not (output.exists() or output.is_symlink()):
        return
    refuse_to_replace(output, config.overwrite)
    if folder and not (output.is_dir() and (output / EXPORT_MARKER).is_file()):
        raise OxaError(
            f"--overwrite replaces only a folder that `oxa export` wrote (it holds {EXPORT_MARKER}); "
            f"{output} is not one: remove it yourself or choose another path"
        )
    if not folder and not output.is_file():
        raise OxaError(f"--overwrite replaces a file; {output} is not a regular file: choose another path")


def _dataset_info(job: _Job) -> tuple[Path, dict]:
    """LLaMA-Factory's dataset_info.json beside the alpaca file, with this export's entries
    merged in: one per file, named after the subset (`-negatives` for the negatives)."""
    path = job.output.parent / "dataset_info.json"
    info: dict = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OxaError(f"{path} is not valid JSON ({exc}); fix or remove it, and export again") from None
        if not isinstance(info, dict):
            raise OxaError(f"{path} holds a JSON {type(info).__name__}, not LLaMA-Factory's object of datasets")
    for split, file in job.split_paths().items():
        name = job.card["name"] if split == "train" else f"{job.card['name']}-negatives"
        known = info.get(name)
        if known is not None and not (isinstance(known, dict) and known.get("file_name") == file.name):
            raise OxaError(
                f"{path} already has a dataset {name!r} that is not {file.name}; export into another folder, "
                "or remove that entry"
            )
        info[name] = {"file_name": file.name, "formatting": "alpaca", "columns": dict(ALPACA_COLUMNS)}
    return path, info


def _move_aside(output: Path) -> Path | None:
    """An exported folder being replaced, renamed out of the way (a folder cannot be
    renamed onto a non-empty one); files are replaced by the rename itself."""
    if not output.is_dir():
        return None
    aside = output.with_name(f".{output.name}.{uuid.uuid4().hex}.replaced")
    output.rename(aside)
    return aside


def _query(name: str, data: Path, **params) -> duckdb.DuckDBPyRelation:
    return duckdb.connect().sql(sql_text(name), params={"data": duckdb_path(data), **params})


class _Sink:
    """One output file, written a batch at a time: parquet, JSON lines, or one JSON list
    (alpaca; a subset of long responses is large)."""

    def __init__(self, path: Path, schema: pa.Schema, layout: str) -> None:
        self.layout, self.rows = layout, 0
        if layout == "parquet":
            self._writer = pq.ParquetWriter(path, schema, compression="zstd")
        else:
            self._handle = open(path, "w", encoding="utf-8")
            if layout == "json":
                self._handle.write("[")

    def write(self, batch: pa.RecordBatch) -> None:
        if self.layout == "parquet":
            self._writer.write_batch(batch)
        elif self.layout == "jsonl":
            for record in batch.to_pylist():
                self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            for i, record in enumerate(batch.to_pylist(), start=self.rows):
                self._handle.write(("\n" if i == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
        self.rows += batch.num_rows

    def close(self) -> None:
        if self.layout == "parquet":
            self._writer.close()
            return
        if self.layout == "json":
            self._handle.write("\n]\n")
        self._handle.close()


def _write_rows(job: _Job, query: str, files: dict[str, Path], layout: str) -> dict[str, int]:
    """The rows of `query` into one file per split: with --negatives drop or separate,
    loss_type 1 rows leave the train split (for the negatives split, or for nowhere)."""
    reader = _query(query, job.data, suffix=job.suffix).to_arrow_reader(_BATCH_ROWS)
    with contextlib.ExitStack() as stack:
        sinks = {split: _Sink(path, reader.schema, layout) for split, path in files.items()}
        for sink in sinks.values():
            stack.callback(sink.close)
        for batch in reader:
            if job.negatives in ("drop", "separate"):
                negative = pc.fill_null(pc.equal(batch["loss_type"], 1), False)
                sinks["train"].write(batch.filter(pc.invert(negative)))
                if "negatives" in sinks:
                    sinks["negatives"].write(batch.filter(negative))
            else:
                sinks["train"].write(batch)
    return {split: sink.rows for split, sink in sinks.items()}


def _write_trl(job: _Job, tmps: list[Path]) -> dict[str, int]:
    query = "export/trl_prompt_completion.sql"
    if not job.into_folder:
        return _write_rows(job, query, {"train": tmps[0]}, "jsonl" if job.output.suffix == ".jsonl" else "parquet")
    (tmps[0] / "data").mkdir(parents=True)
    files = {split: tmps[0] / path.relative_to(job.output) for split, path in job.split_paths().items()}
    return _write_rows(job, query, files, "parquet")


def _write_alpaca(job: _Job, tmps: list[Path]) -> dict[str, int]:
    return _write_rows(job, "export/alpaca_records.sql", dict(zip(job.split_paths(), tmps)), "json")


def _write_verl(job: _Job, tmps: list[Path]) -> dict[str, int]:
    data_source = job.config.data_source or VERL_DATA_SOURCE
    table = _query("export/verl_prompts.sql", job.data, suffix=job.suffix, data_source=data_source).to_arrow_table()
    missing = table["reward_model"].combine_chunks().field("ground_truth").null_count
    if missing:
        raise OxaError(
            f"{missing:,} problems of this subset have no gold answer, which verl's reward needs; "
            "trace their answers first, or select with the filter `gold_answer IS NOT NULL`"
        )
    pq.write_table(table.cast(VERL_EXPORT), tmps[0], compression="zstd")
    return {"train": table.num_rows}


def _write_hf(job: _Job, tmps: list[Path]) -> dict[str, int]:
    """A `save_to_disk` folder of the rows as they are, with the subset's card beside them
    (card.md as README.md, the name the Hub reads, and card.json)."""
    try:
        import datasets
    except ImportError:
        raise MissingExtra("--format hf needs the `datasets` library: pip install 'oxa[train]'") from None
    # save_to_disk copies from an Arrow file that datasets maps: oxa writes that file
    # itself (the subset's row groups one at a time), beside the output, on its disk, not
    # in the system's temporary folder (often memory), where Dataset.from_parquet would
    # convert it (4.7 GB for a 2.6M pool's subset of R1 responses); removed after
    cache = temp_path(tmps[0].with_name(f"{tmps[0].name}-cache.arrow"))
    try:
        parquet = pq.ParquetFile(job.data)
        with pa.OSFile(str(cache), "wb") as sink, pa.ipc.new_stream(sink, parquet.schema_arrow) as stream:
            for group in range(parquet.num_row_groups):
                stream.write_table(parquet.read_row_group(group))
        dataset = datasets.Dataset.from_file(str(cache))  # a file name, not a glob pattern
        dataset.save_to_disk(str(tmps[0]))
        rows = dataset.num_rows
        del dataset  # unmapped before its file is removed
    finally:
        cache.unlink(missing_ok=True)
    shutil.copyfile(job.data.parent / "card.md", tmps[0] / "README.md")
    shutil.copyfile(job.data.parent / "card.json", tmps[0] / "card.json")
    return {"train": rows}


_WRITERS: dict[str, Callable[[_Job, list[Path]], dict[str, int]]] = {
    "trl": _write_trl,
    "alpaca": _write_alpaca,
    "verl": _write_verl,
    "hf": _write_hf,
}
