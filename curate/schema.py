"""The canonical tables' Arrow schemas (DESIGN.md §3).

Later stages may add columns; the catalog's views read parts with union_by_name, so an
added column shows up as NULL in older parts.
"""

from __future__ import annotations

import pyarrow as pa

PROBLEMS = pa.schema(
    [
        ("problem_id", pa.string()),
        ("problem", pa.string()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("gold_answer", pa.string()),
        ("instruction", pa.string()),  # instruction suffix stripped from the text, if any
        ("meta", pa.string()),  # JSON of the source row's other fields, where kept
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
    ]
)

SAMPLES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("problem_id", pa.string()),
        ("response", pa.string()),
        ("origin", pa.string()),  # 'teacher' | 'self'
        ("generator", pa.string()),
        ("n_chars", pa.int64()),
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("source_index", pa.int32()),  # position in the row's response list, where exploded
    ]
)

ANSWERS = pa.schema(
    [
        ("problem_id", pa.string()),
        ("gold_answer", pa.string()),
        ("gold_alternatives", pa.list_(pa.string())),  # other accepted forms, e.g. minerva's
        ("answer_source", pa.string()),
        ("match_method", pa.string()),  # 'exact' | 'normalized' | 'fuzzy' | 'given'
        ("match_score", pa.float64()),
        ("conflict", pa.bool_()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
    ]
)

VERIFY = pa.schema(
    [
        ("sample_id", pa.string()),
        ("pred_answer", pa.string()),
        ("verdict", pa.string()),  # correct|incorrect|no_answer|bad_gold|timeout|error
        ("verifier", pa.string()),
        ("settings_hash", pa.string()),
    ]
)

SCORES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("n_tokens", pa.int64()),
        ("nll_sum", pa.float64()),
        ("ppl", pa.float64()),
        ("truncated", pa.bool_()),
    ]
)

REJECTS = pa.schema(
    [
        ("source_file", pa.string()),
        ("source_row", pa.int64()),  # 0-based: line index in JSONL, item or row index otherwise
        ("source_index", pa.int32()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("preview", pa.string()),  # the start of the offending record, made printable
    ]
)

# Part folders of the workspace and the schema each one holds.
TABLE_FOLDERS: dict[str, tuple[str, pa.Schema]] = {
    "problems": ("pool/problems", PROBLEMS),
    "samples": ("pool/samples", SAMPLES),
    "answers": ("answers", ANSWERS),
    "verify": ("verify", VERIFY),
}
