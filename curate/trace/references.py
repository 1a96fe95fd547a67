"""Reference answer sources for `oxa trace`: read, take each row's answer, key its problem.

A source is read with a REFERENCE_PRESET (or `--map`) through the readers ingest uses.
A row's answer is its answer column (a list gives accepted forms: the first is the
gold, the rest alternatives), else the last \\boxed of its solution. A row without a
usable answer (no answer, a solution without a box, a placeholder such as `proof` or
`notfound`, an answer holding a control character such as NUL) is rejected with its
reason but still matched, so that a problem whose only references are such rows is
reported as `placeholder`, not as missing. Rows whose problem is missing, empty or of
the wrong type are rejected and not matched.

Each kept row gets the keys tracing joins on: `exact_id` (the problem_id ingest would
give its problem) and `match_text`/`match_key` (curate/text/normalize.py, after stripping a
known instruction suffix), and the `answer_key` that conflict detection compares.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from curate.ingest.presets import (
    REFERENCE_FIELDS,
    REFERENCE_PRESETS,
    Preset,
    check_arrow_schema,
    detect_preset,
    extract_arrow,
    extract_dicts,
    generic_preset,
    no_preset_error,
)
from curate.ingest.sources import ArrowBatch, DictBatch, SourceFile, arrow_schema, peek_columns
from curate.text.characters import codepoint, control_character
from curate.text.extract import last_boxed
from curate.text.instructions import strip_instruction_suffixes
from curate.text.normalize import answer_keys, match_key, match_text, placeholder_keys
from curate.workspace import OxaError
from curate.workspace.schema import REJECTS

_NO_ANSWER_FIELD = ("missing_field:gold_answer", "missing_field:solution")

# Rejected rows that still take part in matching: their problem is fine, their answer not.
_MATCHABLE = (None, "no_boxed_answer", "missing_answer", "placeholder_answer", "control_character_answer")

# A kept reference row (the `refs` table that matching reads).
REFERENCE_ROWS = pa.schema(
    [
        ("ref", pa.int64()),  # the row's position in the run: ties break on it
        ("rank", pa.int32()),  # priority of its source: its position in --answers
        ("answer_source", pa.string()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("exact_id", pa.string()),
        ("match_text", pa.string()),
        ("match_key", pa.string()),
        ("gold_answer", pa.string()),
        ("gold_alternatives", pa.list_(pa.string())),
        ("answer_key", pa.string()),
        ("usable", pa.bool_()),  # false: placeholder, or no answer at all
    ]
)


def resolve_reference_presets(files: list[SourceFile], preset: str | None, mapping: dict[str, str]) -> list[Preset]:
    """The preset for each reference file: named, mapped, or detected from its columns;
    trimmed to the fields tracing reads."""
    if preset is not None and preset not in REFERENCE_PRESETS:
        raise OxaError(f"unknown reference preset {preset!r}; presets: {', '.join(REFERENCE_PRESETS)}")
    chosen = []
    for file in files:
        columns = peek_columns(file)
        base = REFERENCE_PRESETS[preset] if preset else None
        if base is None and not mapping:
            base = detect_preset(columns, REFERENCE_PRESETS)
            if base is None:
                raise no_preset_error(
                    str(file.path),
                    columns,
                    REFERENCE_PRESETS,
                    "--map problem=COL --map gold_answer=COL (or --map solution=COL: its last \\boxed)",
                )
        resolved = generic_preset(mapping, base, REFERENCE_FIELDS) if mapping else base
        resolved = replace(resolved, fields=tuple(f for f in resolved.fields if f.name in REFERENCE_FIELDS))
        if resolved.field("gold_answer") is None and resolved.field("solution") is None:
            raise OxaError(
                f"{file.path}: preset '{resolved.name}' names no answer column; "
                "add --map gold_answer=COLUMN or --map solution=COLUMN"
            )
        if file.format in ("parquet", "arrow"):
            check_arrow_schema(resolved, arrow_schema(file), str(file.path))
        chosen.append(resolved)
    return chosen


@dataclass
class ReferenceReader:
    """Turns batches of reference sources into REFERENCE_ROWS and REJECTS tables."""

    placeholders: tuple[str, ...]  # as given: compared after answer_key and lower-casing
    con: duckdb.DuckDBPyConnection  # holds the id macros (sql/macros.sql)
    read: int = 0
    kept: int = 0
    reasons: Counter = field(default_factory=Counter)
    _next_ref: int = 0

    def __post_init__(self) -> None:
        self._placeholder_keys = placeholder_keys(tuple(self.placeholders))

    def stage(self, batch: DictBatch | ArrowBatch, preset: Preset, rank: int) -> tuple[pa.Table, pa.Table]:
        """(rows to match, rejected rows) of one batch. Every record read is in exactly
        one of: kept and usable, kept but unusable (also in rejects), rejected."""

        file = batch.file
        unreadable = batch.unreadable if isinstance(batch, DictBatch) else []
        if isinstance(batch, DictBatch):
            staged = extract_dicts(preset, batch.rows, batch.objects)
        else:
            staged = extract_arrow(preset, batch.first_row, batch.table)
        n = staged.num_rows
        self.read += n + len(unreadable)
        problems = staged["problem"].to_pylist()
        golds = staged["gold_answer"].to_pylist() if "gold_answer" in staged.column_names else [None] * n
        # only the solutions of rows without an answer become Python strings: a solution
        # is read for its last \\boxed when there is no answer, and most sets give one
        unanswered = [i for i, gold in enumerate(golds) if gold is None]
        solutions = dict.fromkeys(unanswered)
        if "solution" in staged.column_names and unanswered:
            taken = staged["solution"].take(pa.array(unanswered, pa.int64())).to_pylist()
            solutions = dict(zip(unanswered, taken))
        reasons, details = staged["_reason"].to_pylist(), staged["_detail"].to_pylist()
        forms: list[list[str] | None] = []
        for i in range(n):
            answer = golds[i]
            if reasons[i] in _NO_ANSWER_FIELD and problems[i] is not None:
                # a null answer says there is none, like a placeholder: the row still matches
                reasons[i], details[i] = "missing_answer", f"the row has no answer ({details[i]})"
            if reasons[i] is None and (problems[i] is None or not problems[i].strip()):
                reasons[i], details[i] = "empty_problem", "problem is empty or blank"
            if answer is None and solutions[i] is not None:
                box, why = last_boxed(solutions[i])
                answer = None if box is None else [box]
                if reasons[i] is None and box is None:
                    reasons[i], details[i] = "no_boxed_answer", f"the solution has no usable \\boxed ({why})"
            elif answer is None and reasons[i] is None:
                reasons[i], details[i] = "missing_answer", "the row has no answer"
            damaged = next((form for form in answer or () if control_character(form)), None)
            if reasons[i] is None and damaged is not None:
                # damaged data (verify would call every answer to it bad_gold): not a gold to take
                reasons[i] = "control_character_answer"
                details[i] = f"the answer {damaged!r} holds control character {codepoint(control_character(damaged))}"
            forms.append(answer)
        firsts = [f[0] if f else None for f in forms]
        keys = answer_keys(firsts)
        for i, key in enumerate(keys):
            if reasons[i] is None and key is not None and key.lower() in self._placeholder_keys:
                reasons[i], details[i] = "placeholder_answer", f"the answer is a placeholder: {firsts[i]!r}"
        matchable = [r in _MATCHABLE for r in reasons]
        rows = self._rows(
            staged.filter(pa.array(matchable)),
            preset,
            rank,
            file,
            [(f, k) if r is None else (None, None) for f, k, r, m in zip(forms, keys, reasons, matchable) if m],
        )
        rejects = self._rejects(file, staged, reasons, details, unreadable)
        self.kept += reasons.count(None)
        return rows, rejects

    def _rows(
        self, kept: pa.Table, preset: Preset, rank: int, file: SourceFile, answers: list[tuple[list | None, str | None]]
    ) -> pa.Table:
        """REFERENCE_ROWS of the matchable rows; `answers` holds each one's (forms,
        answer_key), both None where the row has no usable answer."""
        import polars as pl

        n = kept.num_rows
        stripped, _ = strip_instruction_suffixes(kept["problem"])
        self.con.register("texts", pa.table({"t": stripped if preset.strip_instruction else kept["problem"]}))
        exact_ids = self.con.sql("SELECT oxa_problem_id(t) AS id FROM texts").to_arrow_table()["id"]
        self.con.unregister("texts")
        texts = pl.select(match_text(pl.Series(stripped, dtype=pl.String))).to_series()
        ref0 = self._next_ref
        self._next_ref += n
        return pa.table(
            {
                "ref": pa.array(range(ref0, ref0 + n), pa.int64()),
                "rank": pa.array([rank] * n, pa.int32()),
                "answer_source": [file.dataset_name] * n,
                "source_file": [str(file.path)] * n,
                "source_row": kept["_row"],
                "exact_id": exact_ids,
                "match_text": texts.to_arrow(),
                "match_key": pl.select(match_key(texts)).to_series().to_arrow(),
                "gold_answer": [f[0] if f else None for f, _ in answers],
                "gold_alternatives": [f[1:] if f else None for f, _ in answers],
                "answer_key": [k for _, k in answers],
                "usable": [f is not None for f, _ in answers],
            },
            schema=REFERENCE_ROWS,
        )

    def _rejects(self, file: SourceFile, staged: pa.Table, reasons: list, details: list, unreadable: list) -> pa.Table:
        bad = [i for i, r in enumerate(reasons) if r is not None]
        self.reasons.update(reasons[i] for i in bad)
        self.reasons.update(u.reason for u in unreadable)
        previews = pc.utf8_slice_codeunits(staged["problem"].take(pa.array(bad, pa.int64())), 0, 200).to_pylist()
        return pa.table(
            {
                "source_file": [str(file.path)] * (len(bad) + len(unreadable)),
                "source_row": [staged["_row"][i].as_py() for i in bad] + [u.row for u in unreadable],
                "source_index": pa.nulls(len(bad) + len(unreadable), pa.int32()),
                "reason": [reasons[i] for i in bad] + [u.reason for u in unreadable],
                "detail": [details[i] for i in bad] + [u.detail for u in unreadable],
                "preview": previews + [u.preview for u in unreadable],
            },
            schema=REJECTS,
        )

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())
