"""Benchmark sets: the six shipped benchmarks by name, or files and folders by path.

A set is read with ingest's readers and presets (curate/ingest/sources.py, curate/ingest/presets.py):
`benchmark` (JSON lists of {problem, answer}; an answer list gives accepted forms) and
`verl` (RL prompt parquet; the instruction suffix of the prompt is stripped, as at
ingest), or a published subset folder (its data.parquet's problem and gold_answer).
Problems get the catalog's problem_id and repeated problems are evaluated once.
A file in a multiple-choice layout (GPQA csv or parquet, MMLU parquet; curate/benchmarks/choice.py)
is a set of kind 'choice': its problems are the questions with shuffled, lettered options,
and the gold is the correct letter.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa

from curate.benchmarks.choice import (
    GPQA_COLUMNS,
    choice_layout,
    keep_subjects,
    parse_subjects,
    question_key,
    read_choice_questions,
    render,
    shuffle_options,
)
from curate.benchmarks.names import BUILTIN
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
    subject: str | None = None  # multiple choice: the question's subject (MMLU) or domain (GPQA)
    choices: tuple[str, ...] = ()  # multiple choice: the options in the order shown, lettered A, B, ...
    shuffle_seed: int | None = None  # multiple choice: the seed that shuffled the options
    question: str | None = None  # multiple choice: the question without its options (decontamination reads it)


@dataclass(frozen=True)
class PromptSet:
    name: str
    path: Path
    digest: str  # SHA-256 over the source files' bytes: a changed file is a new set
    problems: tuple[Problem, ...]
    repeated: int  # rows whose problem came earlier in the set (evaluated once)
    kind: str = "math"  # 'math' (judged by math-verify) | 'choice' (the letter judge)


def problem_seed(seed: int, problem_id: str) -> int:
    """A problem's own seed, from the run's seed and the problem's id."""
    return int(hashlib.sha256(f"{seed}\n{problem_id}".encode()).hexdigest()[:8], 16)


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
            name = re.sub(r"(\.(jsonl|ndjson|json|parquet|arrow|csv))?(\.gz)?$", "", path.name)
        found.append((name, path.resolve()))
    names = [name for name, _ in found]
    if not found:
        raise OxaError(f"no benchmark named in {spec!r}; e.g. --benchmarks {','.join(BUILTIN)}")
    if len(set(names)) != len(names):
        raise OxaError(f"two benchmarks share a name in {names}; rename a file so that each set has its own")
    return found


def load_prompt_set(
    name: str,
    path: Path,
    require_answers: bool = True,
    limit: int | None = None,
    shuffle_seed: int = 0,
    mmlu_subjects: str = "stem",
) -> PromptSet:
    """The problems of one set, in file order (the first `limit` distinct ones). For a
    multiple-choice set, `shuffle_seed` shuffles the options and `mmlu_subjects` ('stem',
    'all' or comma-separated names) picks an MMLU file's subjects."""
    subset = (path / "card.json").is_file()
    if subset:
        files = [SourceFile(path / "data.parquet", "parquet")]
    elif path.is_file() and path.suffix.lower() == ".csv":  # GPQA's layout; ingest reads no csv
        files = [SourceFile(path, "csv")]
    else:
        files = discover([path])
    layouts = {file.path: None if subset else choice_layout(_columns(file)) for file in files}
    if len({layout is None for layout in layouts.values()}) > 1:
        raise OxaError(f"{path} mixes multiple-choice and math files; give each kind its own --benchmarks entry")
    digest = hashlib.sha256()
    problems: dict[str, Problem] = {}
    repeated = 0
    for file in files:
        digest.update(file.path.read_bytes())
        layout = layouts[file.path]
        if layout is not None:
            read = _read_choice_problems(file, layout, shuffle_seed, mmlu_subjects)
        else:
            read = _read_problems(file, _SUBSET_PRESET if subset else _preset_of(file), require_answers)
        for problem in read:
            if problem.problem_id in problems:
                repeated += 1
            elif limit is None or len(problems) < limit:
                problems[problem.problem_id] = problem
    if not problems:
        raise OxaError(f"{path} holds no problems")
    kind = "math" if None in layouts.values() else "choice"
    return PromptSet(name, path, digest.hexdigest(), tuple(problems.values()), repeated, kind)


def _columns(file: SourceFile) -> list[str]:
    if file.format == "csv":
        import pyarrow.csv as pacsv

        with pacsv.open_csv(file.path, parse_options=pacsv.ParseOptions(newlines_in_values=True)) as reader:
            columns = reader.schema.names
        if choice_layout(columns) is None:
            raise OxaError(
                f"{file.path} has columns {columns}; a csv set must be in GPQA's layout "
                f"({', '.join(GPQA_COLUMNS)}); give other sets as JSON, JSONL or parquet"
            )
        return columns
    return peek_columns(file)


def _read_choice_problems(file: SourceFile, layout: str, seed: int, mmlu_subjects: str) -> list[Problem]:
    """The questions with their options shuffled (seed from `seed` and the question's id) and lettered."""
    questions = read_choice_questions(file, layout)
    if layout == "mmlu":
        subjects = parse_subjects(mmlu_subjects)
        questions = keep_subjects(questions, subjects, file.path, named=mmlu_subjects.strip() not in ("stem", "all"))
    with duckdb.connect() as con:
        con.execute(sql_text("macros.sql"))
        con.register("texts", pa.table({"t": [question_key(q) for q in questions]}))
        ids = con.sql("SELECT oxa_problem_id(t) AS id FROM texts").to_arrow_table()["id"].to_pylist()
    problems = []
    for problem_id, question in zip(ids, questions):
        shuffled = shuffle_options(question, problem_seed(seed, problem_id))
        text = render(question.question, shuffled.options)
        problems.append(
            Problem(
                problem_id,
                text,
                (shuffled.letter,),
                question.source_row,
                question.subject,
                shuffled.options,
                shuffled.seed,
                question.question,
            )
        )
    return problems


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
