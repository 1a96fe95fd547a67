"""`oxa export`: a published subset in the format a trainer reads (docs/architecture.md §5).

- trl: TRL conversational prompt/completion rows with `loss_type` (.parquet or .jsonl).
- alpaca: LLaMA-Factory alpaca JSON (instruction = problem + instruction, input "",
  output, history [], loss_type), the layout the paper's code trains on (.json).
- verl: verl RL prompt parquet with exactly the schema of verl's own files, one row per
  problem (gold answer as the rule-based reward's ground truth).
- hf: a Hugging Face `datasets` folder (`save_to_disk`) of the subset's data as it is.

The instruction appended to each problem defaults to the paper's (appendix A.3). The
subset's files are checked first against the sha256 its card.json records and
checksums.sha256 lists (subsets.intact_card); the output is written under a temporary name
and renamed into place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from curate.subsets.subsets import intact_card, resolve_subset
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import MissingExtra, OxaError, Workspace
from curate.workspace.parts import atomic_target, duckdb_path
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun
from curate.workspace.schema import VERL_PROMPTS

FORMATS = ("trl", "alpaca", "verl", "hf")
EXPORT_MARKER = "oxa_export.json"  # in every hf export folder: what --overwrite may replace
_BATCH_ROWS = 1000


@dataclass
class ExportConfig:
    """What to export, how, and where. Every field is also an `oxa export` option."""

    subset: str = field(metadata={"help": "NAME (newest version), NAME/VERSION or NAME/VERSION-PREFIX"})
    format: str = field(metadata={"help": "trl | alpaca | verl | hf"})
    output: str = field(
        metadata={"help": "file (trl: .parquet or .jsonl; alpaca: .json; verl: .parquet) or folder (hf)"}
    )
    instruction: str = field(
        default=KNOWN_SUFFIXES[0],
        metadata={"help": "appended to each problem after a newline (the paper's); empty: the problem alone"},
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an existing output"})


def run_export(ws: Workspace, config: ExportConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Export a subset; returns the run's stats (also in runs/export/<run>/stats.json)."""
    if config.format not in FORMATS:
        raise OxaError(f"unknown export format {config.format!r}; choose one of {', '.join(FORMATS)}")
    folder = resolve_subset(ws, config.subset)
    card = intact_card(folder)
    output = Path(config.output).expanduser().resolve()
    _check_output(config, output, card["unit"])
    _check_target(ws, config, output)
    output.parent.mkdir(parents=True, exist_ok=True)
    resolved = asdict(config) | {"subset": f"{card['name']}/{card['version']}", "output": str(output)}
    run = StageRun(ws, "export", resolved)
    try:
        if progress:
            progress(f"exporting {resolved['subset']} as {config.format}")
        params = {
            "data": str(folder / "data.parquet"),
            "suffix": f"\n{config.instruction}" if config.instruction else "",
        }
        replaced = None
        try:
            with atomic_target(output) as tmp:
                rows = _WRITERS[config.format](params, tmp, output)
                if config.format == "hf":
                    (tmp / EXPORT_MARKER).write_text(json.dumps({"subset": resolved["subset"]}) + "\n")
                replaced = _move_aside(output)
        except BaseException:
            if replaced is not None and not output.exists():  # the old output back where it was
                replaced.rename(output)
            raise
        run.published = str(output)  # in place: a failure from here on is not "nothing was done"
        if replaced is not None:  # the new output is in place: the old one goes
            shutil.rmtree(replaced)
        summary = f"{resolved['subset']} -> {output} ({config.format}, {rows:,} rows)"
        return run.finish({"summary": summary, "subset": resolved["subset"], "output": str(output), "rows": rows})
    except BaseException as exc:
        run.fail(exc)
        raise


def _check_target(ws: Workspace, config: ExportConfig, output: Path) -> None:
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
    if not config.overwrite:
        raise OxaError(f"{output} exists; choose another path or pass --overwrite")
    if config.format == "hf" and not (output.is_dir() and (output / EXPORT_MARKER).is_file()):
        raise OxaError(
            f"--overwrite replaces only a folder that `oxa export --format hf` wrote (it holds {EXPORT_MARKER}); "
            f"{output} is not one: remove it yourself or choose another path"
        )
    if config.format != "hf" and not output.is_file():
        raise OxaError(f"--overwrite replaces a file; {output} is not a regular file: choose another path")


def _move_aside(output: Path) -> Path | None:
    """An exported folder being replaced, renamed out of the way (a folder cannot be
    renamed onto a non-empty one); files are replaced by the rename itself."""
    if not output.is_dir():
        return None
    aside = output.with_name(f".{output.name}.{uuid.uuid4().hex}.replaced")
    output.rename(aside)
    return aside


def _check_output(config: ExportConfig, output: Path, unit: str) -> None:
    wanted = {"trl": (".parquet", ".jsonl"), "alpaca": (".json",), "verl": (".parquet",), "hf": ("",)}[config.format]
    if output.suffix not in wanted:
        what = "a folder name without a suffix" if config.format == "hf" else " or ".join(wanted)
        raise OxaError(f"--format {config.format} writes {what}; got {output.name!r}")
    if unit == "problems" and config.format in ("trl", "alpaca"):
        raise OxaError(
            f"subset {config.subset} holds problems without responses (a prompt set); export it as verl or hf"
        )


def _query(query: str, params: dict) -> duckdb.DuckDBPyRelation:
    return duckdb.connect().sql(query, params=params | {"data": duckdb_path(params["data"])})


def _arrow_batches(query: str, params: dict) -> pa.RecordBatchReader:
    return _query(query, params).to_arrow_reader(_BATCH_ROWS)


def _write_trl(params: dict, tmp: Path, output: Path) -> int:
    reader = _arrow_batches(sql_text("export/trl_prompt_completion.sql"), params)
    rows = 0
    if output.suffix == ".jsonl":
        with open(tmp, "w", encoding="utf-8") as handle:
            for batch in reader:
                for record in batch.to_pylist():
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                rows += batch.num_rows
        return rows
    with pq.ParquetWriter(tmp, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _write_alpaca(params: dict, tmp: Path, output: Path) -> int:
    """One JSON list, written a record at a time (a subset of long responses is large)."""
    rows = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("[")
        for batch in _arrow_batches(sql_text("export/alpaca_records.sql"), params):
            for record in batch.to_pylist():
                handle.write(("\n" if rows == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
                rows += 1
        handle.write("\n]\n")
    return rows


def _write_verl(params: dict, tmp: Path, output: Path) -> int:
    table = _query(sql_text("export/verl_prompts.sql"), params).to_arrow_table()
    missing = table["reward_model"].combine_chunks().field("ground_truth").null_count
    if missing:
        raise OxaError(
            f"{missing:,} problems of this subset have no gold answer, which verl's reward needs; "
            "trace their answers first, or select with the filter `gold_answer IS NOT NULL`"
        )
    pq.write_table(table.cast(VERL_PROMPTS), tmp, compression="zstd")
    return table.num_rows


def _write_hf(params: dict, tmp: Path, output: Path) -> int:
    try:
        import datasets
    except ImportError:
        raise MissingExtra("--format hf needs the `datasets` library: pip install 'oxa[train]'") from None
    with tempfile.TemporaryDirectory(prefix="oxa-export-") as cache:
        # datasets reads its path as a glob pattern: a link with a plain name keeps a
        # workspace under run[1]/ from matching nothing
        data = Path(cache) / "data.parquet"
        data.symlink_to(Path(params["data"]).resolve())
        dataset = datasets.Dataset.from_parquet(str(data), cache_dir=str(Path(cache) / "cache"))
        dataset.save_to_disk(str(tmp))
        return dataset.num_rows


_WRITERS: dict[str, Callable[[dict, Path, Path], int]] = {
    "trl": _write_trl,
    "alpaca": _write_alpaca,
    "verl": _write_verl,
    "hf": _write_hf,
}
