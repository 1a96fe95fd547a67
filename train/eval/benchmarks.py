"""Evaluation prompt sets: the six shipped benchmarks by name, or files and folders by path.

A set is read with ingest's readers and presets (curate/ingest/sources.py, curate/ingest/presets.py):
`benchmark` (JSON lists of {problem, answer}; an answer list gives accepted forms) and
`verl` (RL prompt parquet; the instruction suffix of the prompt is stripped, as at
ingest), or a published subset folder (its data.parquet's problem and gold_answer).
Problems get the catalog's problem_id and repeated problems are evaluated once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa

from curate.ingest.presets import (
    PRESETS,
    Preset,
    check_arrow_schema,
    detect_preset,
    extract_arrow,
    extract_dicts,
    generic_preset,
    no_preset_error,
)
from curate.ingest.sources import ArrowBatch, SourceFile, arrow_schema, discover, peek_columns, read_batches
from curate.text.instructions import strip_instruction_suffixes
from curate.workspace import OxaError
from curate.workspace.resources import benchmarks_dir, sql_text

BUILTIN = ("aime24", "aime25", "brumo25", "cmimc25", "hmmt25", "minerva")
# a subset's data.parquet, or its `oxa export --format hf` folder: the catalog's columns
_SUBSET_PRESET = replace(
    generic_preset({"problem": "problem", "gold_answer": "gold_answer"}),
    name="subset",
    description="a published subset's rows: problem_id, problem, gold_answer",
    detect=("problem_id", "problem", "gold_answer"),
)
_EVAL_PRESETS = {"benchmark": PRESETS["benchmark"], "verl": PRESETS["verl"], "subset": _SUBSET_PRESET}


@dataclass(frozen=True)
class Problem:
    problem_id: str
    problem: str  # without an instruction suffix
    gold: tuple[str, ...]  # accepted answers, the gold first; () where the set has none
    source_row: int  # 0-based row (or item) of the source file


@dataclass(frozen=True)
class PromptSet:
    name: str
    path: Path
    digest: str  # SHA-256 over the source files' bytes: a changed file is a new set
    problems: tuple[Problem, ...]
    repeated: int  # rows whose problem came earlier in the set (evaluated once)


def resolve_sets(spec: str) -> list[tuple[str, Path]]:
    """(name, path) per comma-separated entry: a built-in name or a file or folder."""
    found: list[tuple[str, Path]] = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        if entry in BUILTIN:
            found.append((entry, benchmarks_dir() / f"{entry}.json"))
            continue
        path = Path(entry).expanduser()
        if not path.exists():
            raise OxaError(
                f"benchmark {entry!r} is neither a built-in set ({', '.join(BUILTIN)}) nor an existing file or folder"
            )
        if (path / "card.json").is_file():
            card = json.loads((path / "card.json").read_text(encoding="utf-8"))
            name = f"{card['name']}-{card['version'][:8]}"
        else:
            name = re.sub(r"(\.(jsonl|ndjson|json|parquet|arrow))?(\.gz)?$", "", path.name)
        found.append((name, path.resolve()))
    names = [name for name, _ in found]
    if not found:
        raise OxaError(f"no benchmark named in {spec!r}; e.g. --benchmarks {','.join(BUILTIN)}")
    if len(set(names)) != len(names):
        raise OxaError(f"two benchmarks share a name in {names}; rename a file so that each set has its own")
    return found


def load_prompt_set(name: str, path: Path, require_answers: bool = True, limit: int | None = None) -> PromptSet:
    """The problems of one set, in file order (the first `limit` distinct ones)."""
    subset = (path / "card.json").is_file()
    files = [SourceFile(path / "data.parquet", "parquet")] if subset else discover([path])
    digest = hashlib.sha256()
    problems: dict[str, Problem] = {}
    repeated = 0
    for file in files:
        digest.update(file.path.read_bytes())
        preset = _SUBSET_PRESET if subset else _preset_of(file)
        for problem in _read_problems(file, preset, require_answers):
            if problem.problem_id in problems:
                repeated += 1
            elif limit is None or len(problems) < limit:
                problems[problem.problem_id] = problem
    if not problems:
        raise OxaError(f"{path} holds no problems")
    return PromptSet(name, path, digest.hexdigest(), tuple(problems.values()), repeated)


def _preset_of(file: SourceFile) -> Preset:
    columns = peek_columns(file)
    preset = detect_preset(columns, _EVAL_PRESETS)
    if preset is None:
        raise no_preset_error(
            str(file.path),
            columns,
            _EVAL_PRESETS,
            "rename the columns to problem and answer (JSON/JSONL), or export a verl parquet",
        )
    if file.format in ("parquet", "arrow"):
        check_arrow_schema(preset, arrow_schema(file), str(file.path))
    return preset


def _read_problems(file: SourceFile, preset: Preset, require_answers: bool) -> list[Problem]:
    con = duckdb.connect()
    con.execute(sql_text("macros.sql"))
    problems: list[Problem] = []
    for batch in read_batches(file, preset.source_columns()):
        if isinstance(batch, ArrowBatch):
            staged = extract_arrow(preset, batch.first_row, batch.table)
        else:
            if batch.unreadable:
                bad = batch.unreadable[0]
                raise OxaError(f"{file.path} row {bad.row}: {bad.reason} ({bad.detail}); fix or drop the row")
            staged = extract_dicts(preset, batch.rows, batch.objects)
        texts = staged["problem"]
        if preset.strip_instruction:
            texts, _ = strip_instruction_suffixes(texts)
        con.register("texts", pa.table({"t": texts}))
        ids = con.sql("SELECT oxa_problem_id(t) AS id FROM texts").to_arrow_table()["id"].to_pylist()
        con.unregister("texts")
        rows = zip(ids, texts.to_pylist(), staged["gold_answer"].to_pylist(), staged.to_pylist())
        for problem_id, text, gold, record in rows:
            where = f"{file.path} row {record['_row']}"
            reason = record["_reason"]
            if reason and (require_answers or not reason.endswith(":gold_answer")):
                raise OxaError(f"{where}: {reason} ({record['_detail']}); fix or drop the row")
            if not text or not text.strip():
                raise OxaError(f"{where}: the problem is empty; fix or drop the row")
            forms = tuple(f for f in (gold or ()) if f.strip())
            if require_answers and not forms:
                raise OxaError(
                    f"{where}: the answer is missing or empty; every evaluation problem needs its gold answer "
                    "(fill it in, or drop the row)"
                )
            problems.append(Problem(problem_id, text, forms, record["_row"]))
    con.close()
    return problems
