"""Presets: how a source's columns map onto the canonical fields. Ingest reads pools
with PRESETS; `oxa trace` reads reference answer sources with REFERENCE_PRESETS.

A preset is a list of `Field`s (canonical name, source column path, kind) plus a few
rules: a default filter, a default generator, whether instruction suffixes are stripped.
`extract_dicts` and `extract_arrow` turn a batch of either kind into the same typed
"staged" table (a column per field, `_row`, and `_reason`/`_detail` set on every record
whose fields are missing or of the wrong type). Everything after extraction is shared by all presets and formats.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc

from curate.text.characters import codepoint, lone_surrogate
from curate.workspace import OxaError

# Canonical staged fields and their Arrow types.
KIND_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "answers": pa.list_(pa.string()),  # a gold answer or a list of accepted forms
    "texts": pa.list_(pa.string()),
    "numbers": pa.list_(pa.float64()),
    "number": pa.float64(),  # ppl and n_tokens of a row holding one response
    "user_message": pa.string(),  # the last user turn of a chat `prompt` list
    "json": pa.string(),  # any value, kept as JSON text ('*': the row's unmapped fields)
}

FIELD_KINDS: dict[str, str] = {
    "problem": "text",
    "response": "text",
    "responses": "texts",
    "gold_answer": "answers",
    "source": "text",
    "category": "text",
    "generator": "text",
    "ppl": "numbers",
    "n_tokens": "numbers",
    "meta": "json",
    "solution": "text",  # reference sources for tracing: the answer is its last \\boxed
}


@dataclass(frozen=True)
class Field:
    name: str  # canonical name, a key of FIELD_KINDS
    path: str  # source column; dots reach into nested objects (`\\.` is a literal dot); '*' = all unmapped fields
    kind: str
    required: bool = False
    fallback: str | None = None  # a second path, read where `path` is absent or null


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    fields: tuple[Field, ...]
    default_filter: str | None = None  # SQL over the staged fields
    generator: str | None = None  # generator recorded when the source names none
    strip_instruction: bool = False
    detect: tuple[str, ...] = ()  # columns whose presence identifies the layout
    scorer: str | None = None  # the scoring model a PPL column names (the OXA list layouts)

    @property
    def has_responses(self) -> bool:
        return any(f.name in ("response", "responses") for f in self.fields)

    @property
    def explodes(self) -> bool:
        return any(f.name == "responses" for f in self.fields)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def source_columns(self) -> list[str] | None:
        """Top-level columns to read, or None when every column is needed."""
        if any(f.path == "*" for f in self.fields):
            return None
        return sorted({split_path(p)[0] for f in self.fields for p in (f.path, f.fallback) if p})


def split_path(path: str) -> list[str]:
    """A field path's keys: split at dots, except escaped ones (`a\\.b` is one key)."""
    return [key.replace("\x00", ".") for key in path.replace("\\.", "\x00").split(".")]


def column_path(column: str) -> str:
    """The path naming a top-level column as it is, dots and all."""
    return column.replace(".", "\\.")


def _f(name: str, path: str, required: bool = False) -> Field:
    return Field(name, path, FIELD_KINDS[name], required)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "acereason",
            "nvidia/AceReason-1.1-SFT: category, source, input, output (math rows only)",
            (
                _f("problem", "input", True),
                _f("response", "output", True),
                _f("source", "source"),
                _f("category", "category"),
            ),
            default_filter="lower(category) = 'math'",
            generator="DeepSeek-R1",
            detect=("category", "source", "input", "output"),
        ),
        Preset(
            "oxa-lists",
            "the OXA paper's per-problem rows: query, a list of responses, optional parallel PPL and token-length "
            "lists (responses/ppl/length, or the released names such as DeepSeek-R1_Response_List, "
            "DeepSeek-R1_Response_Qwen2.5-Math-7B_ppl_list, DeepSeek-R1_Response_token_len_list)",
            (
                _f("problem", "query", True),
                _f("responses", "responses", True),
                _f("ppl", "ppl"),
                _f("n_tokens", "length"),
                _f("source", "source"),
            ),
            detect=("query", "responses"),
        ),
        Preset(
            "verl",
            "verl RL prompts: data_source, prompt (chat messages), reward_model.ground_truth, extra_info",
            (
                Field("problem", "prompt", "user_message", True),
                _f("gold_answer", "reward_model.ground_truth"),
                # an oxa export keeps the pool's source in extra_info (its data_source names
                # verl's scorer); verl's own files have it, if anywhere, in data_source
                Field("source", "extra_info.source", "text", fallback="data_source"),
                _f("category", "ability"),
                _f("meta", "extra_info"),
            ),
            strip_instruction=True,
            detect=("data_source", "prompt", "reward_model"),
        ),
        Preset(
            "benchmark",
            "evaluation sets: JSON lists of {problem, answer, ...} (an answer may be a list of accepted forms)",
            (_f("problem", "problem", True), _f("gold_answer", "answer", True), _f("meta", "*")),
            detect=("problem", "answer"),
        ),
    ]
}

# Reference sources for `oxa trace`: where a data set keeps each problem's answer.
# Fields: problem, and gold_answer or solution (whose last \\boxed is the answer);
# `source` is kept for the record. verl and benchmark are the ingest presets.
REFERENCE_PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "numina-1.5",
            "AI-MO/NuminaMath-1.5: problem, solution, answer (may be 'proof' or 'notfound'), source, question_type",
            (_f("problem", "problem", True), _f("gold_answer", "answer"), _f("source", "source")),
            detect=("problem", "answer", "question_type"),
        ),
        Preset(
            "numina-cot",
            "AI-MO/NuminaMath-CoT: problem, solution (the answer is its last \\boxed), messages, source",
            (_f("problem", "problem", True), _f("solution", "solution"), _f("source", "source")),
            detect=("problem", "solution", "messages"),
        ),
        Preset(
            "openmathreasoning",
            "nvidia/OpenMathReasoning: problem, expected_answer, problem_source, generated_solution",
            (_f("problem", "problem", True), _f("gold_answer", "expected_answer"), _f("source", "problem_source")),
            detect=("problem", "expected_answer"),
        ),
        Preset(
            "deepscaler",
            "agentica-org/DeepScaleR-Preview-Dataset: problem, answer, solution",
            (_f("problem", "problem", True), _f("gold_answer", "answer")),
        ),
        PRESETS["verl"],
        PRESETS["benchmark"],
    ]
}

GENERIC_FIELDS = (
    "problem",
    "response",
    "responses",
    "gold_answer",
    "source",
    "category",
    "generator",
    "ppl",
    "n_tokens",
    "meta",
)
REFERENCE_FIELDS = ("problem", "gold_answer", "solution", "source")


def generic_preset(
    mapping: dict[str, str], base: Preset | None = None, mappable: tuple[str, ...] = GENERIC_FIELDS
) -> Preset:
    """A preset from `--map field=column` pairs, optionally over a named preset."""
    unknown = sorted(set(mapping) - set(mappable))
    if unknown:
        raise OxaError(f"unknown field(s) in --map: {', '.join(unknown)}; mappable fields: {', '.join(mappable)}")
    fields = {f.name: f for f in (base.fields if base else ())}
    for name, path in mapping.items():
        kind = FIELD_KINDS[name]
        if name == "problem" and fields.get("problem") and fields["problem"].kind == "user_message":
            kind = "text"
        fields[name] = Field(name, path, kind, required=name in ("problem", "response", "responses"))
    if "problem" not in fields:
        raise OxaError("--map must name the problem column, e.g. --map problem=question")
    if "response" in fields and "responses" in fields:
        raise OxaError("--map response=... and responses=... exclude each other: map one")
    if "response" in fields:  # one response per row: its PPL and length are numbers, not lists
        for name in ("ppl", "n_tokens"):
            if name in fields and fields[name].kind == "numbers":
                fields[name] = replace(fields[name], kind="number")
    if base is None:
        return Preset("custom", "column mapping given with --map", tuple(fields.values()))
    return replace(base, name=f"{base.name}+map", fields=tuple(fields.values()))


# The OXA list layouts. The released data names its lists after the generator and the
# scorer: DeepSeek-R1_Response_List with DeepSeek-R1_Response_Qwen2.5-Math-7B_ppl_list and
# DeepSeek-R1_Response_token_len_list; r1_response_list with r1_response_qwen3_1.7b_ppl_list;
# dps_7b_sample_list with dps_7b_sample_Qwen2.5-Math-7B_ppl_list.
_RESPONSE_LIST = re.compile(r"^(?P<stem>.*(?:response|sample))_list$", re.IGNORECASE)
_LENGTH_SUFFIXES = ("_token_len_list", "_token_length_list", "_len_list", "_length_list")
_PROBLEM_COLUMNS = ("query", "problem", "question")


def list_layout(columns: list[str]) -> Preset | None:
    """The oxa-lists preset bound to a file's columns: the problem, the responses list,
    its PPL list (whose name gives the scorer) and token-length list; None when the
    columns hold no such layout."""
    present = set(columns)
    problem = next((c for c in _PROBLEM_COLUMNS if c in present), None)
    if problem is None:
        return None
    scorer = None
    if "responses" in present:
        responses, ppl, length = "responses", "ppl" if "ppl" in present else None, "length"
    else:
        lists = [(c, m.group("stem")) for c in columns if (m := _RESPONSE_LIST.match(c))]
        if len(lists) != 1:
            if len(lists) > 1:
                raise OxaError(
                    f"the columns hold {len(lists)} response lists ({', '.join(c for c, _ in lists)}); "
                    "name one with --map responses=COLUMN (and --map ppl=COLUMN --map n_tokens=COLUMN)"
                )
            return None
        responses, stem = lists[0]
        scored = [(c, m.group(1)) for c in columns if (m := re.match(rf"^{re.escape(stem)}_(.+)_ppl_list$", c, re.I))]
        if len(scored) > 1:
            raise OxaError(
                f"the columns hold PPL lists of {len(scored)} scorers ({', '.join(c for c, _ in scored)}); "
                "ingest one at a time with --map ppl=COLUMN --scores-tag TAG"
            )
        ppl, scorer = scored[0] if scored else (None, None)
        length = next((stem + s for s in _LENGTH_SUFFIXES if stem + s in present), "length")
    fields = [_f("problem", column_path(problem), True), _f("responses", column_path(responses), True)]
    if ppl is not None:
        fields.append(_f("ppl", column_path(ppl)))
    if length in present:
        fields.append(_f("n_tokens", column_path(length)))
    fields += [_f(name, name) for name in ("source",) if name in present]
    if "answer" in present:
        fields.append(_f("gold_answer", "answer"))
    base = PRESETS["oxa-lists"]
    return replace(base, fields=tuple(fields), scorer=scorer)


def scorer_tag(scorer: str) -> str:
    """The scores tag a PPL column's scorer name gives: Qwen2.5-Math-7B -> qwen2.5-math-7b."""
    return re.sub(r"[\s_]+", "-", scorer.strip()).lower()


def detect_preset(columns: list[str], presets: dict[str, Preset] = PRESETS) -> Preset | None:
    present = set(columns)
    for preset in presets.values():
        if preset.detect and set(preset.detect) <= present:
            return preset
    return None


def no_preset_error(
    file: str,
    columns: list[str],
    presets: dict[str, Preset] = PRESETS,
    mapping_hint: str = "--map problem=COL --map response=COL [--map gold_answer=COL --map source=COL --map generator=COL]",
) -> OxaError:
    listed = "\n".join(f"  {p.name}: {p.description}" for p in presets.values())
    return OxaError(
        f"{file} fits no preset; its columns are: {', '.join(columns) or '(none)'}.\n"
        f"Presets (--preset NAME):\n{listed}\n"
        f"Or map columns yourself: {mapping_hint}"
    )


# -- extraction -------------------------------------------------------------------------


class _WrongType(Exception):
    pass


def _type_name(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(type(value), type(value).__name__)


def _answer_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _WrongType(f"expected a string or a number, got {_type_name(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _WrongType(f"expected a finite number, got {value}")
        return repr(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def convert_value(kind: str, value: object) -> object:
    """One source value as the field kind's Python value; _WrongType if it does not fit."""
    if kind == "text":
        if not isinstance(value, str):
            raise _WrongType(f"expected a string, got {_type_name(value)}")
        return value
    if kind == "answers":
        if isinstance(value, list):
            if not value:
                raise _WrongType("expected an answer, got an empty list")
            return [_answer_text(v) for v in value]
        return [_answer_text(value)]
    if kind == "texts":
        if not isinstance(value, list) or not all(v is None or isinstance(v, str) for v in value):
            raise _WrongType(f"expected a list of strings, got {_type_name(value)}")
        return value
    if kind == "numbers":
        if not isinstance(value, list) or not all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value
        ):
            raise _WrongType(f"expected a list of numbers, got {_type_name(value)}")
        return [None if v is None else float(v) for v in value]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _WrongType(f"expected a number, got {_type_name(value)}")
        return float(value)
    if kind == "user_message":
        if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
            raise _WrongType(f"expected a list of chat messages, got {_type_name(value)}")
        users = [m.get("content") for m in value if m.get("role") == "user"]
        if not users or not isinstance(users[-1], str):
            raise _WrongType("the chat messages hold no user turn with text content")
        return users[-1]
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    raise AssertionError(kind)


def _get_path(obj: dict, path: str) -> object:
    value: object = obj
    for key in split_path(path):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def extract_dicts(preset: Preset, rows: list[int], objects: list[dict]) -> pa.Table:
    mapped_top = {split_path(f.path)[0] for f in preset.fields if f.path != "*"}
    columns: dict[str, list] = {f.name: [] for f in preset.fields}
    reasons: list[str | None] = []
    details: list[str | None] = []
    for obj in objects:
        reason = detail = None
        for f in preset.fields:
            if f.path == "*":
                rest = {k: v for k, v in obj.items() if k not in mapped_top}
                value = json.dumps(rest, ensure_ascii=False, sort_keys=True) if rest else None
            else:
                raw = _get_path(obj, f.path)
                if raw is None and f.fallback:
                    raw = _get_path(obj, f.fallback)
                value = None
                if raw is None:
                    if f.required and reason is None:
                        reason, detail = f"missing_field:{f.name}", f"no value at '{f.path}'"
                else:
                    try:
                        value = convert_value(f.kind, raw)
                    except _WrongType as exc:
                        if reason is None:
                            reason, detail = f"wrong_type:{f.name}", f"'{f.path}': {exc}"
            columns[f.name].append(value)
        reasons.append(reason)
        details.append(detail)
    arrays = {f.name: _typed_array(f, columns[f.name], reasons, details) for f in preset.fields}
    arrays["_row"] = pa.array(rows, pa.int64())
    arrays["_reason"] = pa.array(reasons, pa.string())
    arrays["_detail"] = pa.array(details, pa.string())
    return pa.table(arrays)


def _typed_array(f: Field, values: list, reasons: list[str | None], details: list[str | None]) -> pa.Array:
    """A field's values as Arrow. A value holding a lone surrogate (JSON's unpaired
    `\\ud800` escape, which Python's json decodes but UTF-8 cannot store) becomes null and
    rejects its record, `lone_surrogate:<field>`, rather than failing the whole batch."""
    try:
        return pa.array(values, KIND_TYPES[f.kind])
    except UnicodeEncodeError:  # the rare case: find the records, clean the batch
        where = "the unmapped fields" if f.path == "*" else f"'{f.path}'"
        for i, value in enumerate(values):
            if (char := lone_surrogate(value)) is None:
                continue
            values[i] = None
            if reasons[i] is None:
                reasons[i] = f"lone_surrogate:{f.name}"
                details[i] = (
                    f"{where} holds {codepoint(char)}, half of a surrogate pair without its other half "
                    f"(an unpaired \\u{ord(char):04x} escape), which UTF-8 text cannot hold"
                )
        return pa.array(values, KIND_TYPES[f.kind])


def _field_column(table: pa.Table, f: Field) -> pa.ChunkedArray | None:
    """A field's column: its path's, with its fallback's values where that is absent or null."""
    column = _arrow_column(table, f.path)
    other = _arrow_column(table, f.fallback) if f.fallback else None
    if column is None or other is None:
        return other if column is None else column
    return pc.coalesce(column, other.cast(column.type))


def _arrow_column(table: pa.Table, path: str) -> pa.ChunkedArray | None:
    head, *rest = split_path(path)
    if head not in table.column_names:
        return None
    column = table.column(head)
    for key in rest:
        if not pa.types.is_struct(column.type) or column.type.get_field_index(key) < 0:
            return None
        column = pc.struct_field(column, key)
    return column


def check_arrow_schema(preset: Preset, schema: pa.Schema, file: str) -> None:
    """Fail early, naming the column, when a typed file cannot fit the preset."""
    empty = schema.empty_table()
    for f in preset.fields:
        if f.path == "*":
            continue
        column = _field_column(empty, f)
        if column is None:
            if f.required:
                raise OxaError(
                    f"{file} has no column '{f.path}', which preset '{preset.name}' needs for "
                    f"{f.name}; its columns are: {', '.join(schema.names)}. "
                    f"Map one with --map {f.name}=COLUMN, or pick another --preset"
                )
            continue
        if _arrow_kind_fits(f.kind, column.type) is False:
            raise OxaError(
                f"{file}: column '{f.path}' has type {column.type}, but {f.name} needs {f.kind} "
                f"({KIND_TYPES[f.kind]}); map another column with --map {f.name}=COLUMN"
            )


def _arrow_kind_fits(kind: str, typ: pa.DataType) -> bool:
    textual = pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ)
    if kind == "text":
        return textual
    if kind == "number":
        return pa.types.is_integer(typ) or pa.types.is_floating(typ)
    if kind in ("texts", "numbers", "answers"):
        if kind == "answers" and (textual or pa.types.is_integer(typ) or pa.types.is_floating(typ)):
            return True
        if not (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
            return False
        inner = typ.value_type
        inner_text = pa.types.is_string(inner) or pa.types.is_large_string(inner)
        if kind == "numbers":
            return pa.types.is_integer(inner) or pa.types.is_floating(inner)
        return inner_text or (kind == "answers" and (pa.types.is_integer(inner) or pa.types.is_floating(inner)))
    return True  # user_message and json are converted value by value


def extract_arrow(preset: Preset, first_row: int, table: pa.Table) -> pa.Table:
    n = table.num_rows
    mapped_top = {split_path(f.path)[0] for f in preset.fields if f.path != "*"}
    arrays: dict[str, pa.Array | pa.ChunkedArray] = {}
    reason = pa.nulls(n, pa.string())
    detail = pa.nulls(n, pa.string())
    for f in preset.fields:
        target = KIND_TYPES[f.kind]
        if f.path == "*":
            rest = table.drop_columns([c for c in table.column_names if c in mapped_top])
            values = [
                json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) if r else None for r in rest.to_pylist()
            ]
            arrays[f.name] = pa.array(values, target)
            continue
        column = _field_column(table, f)
        if column is None:
            arrays[f.name] = pa.nulls(n, target)
            continue
        if f.kind in ("user_message", "json"):
            converted, errors = [], []
            for value in column.to_pylist():
                try:
                    converted.append(None if value is None else convert_value(f.kind, value))
                    errors.append(None)
                except _WrongType as exc:
                    converted.append(None)
                    errors.append(f"'{f.path}': {exc}")
            column = pa.array(converted, target)
            bad = pa.array([e is not None for e in errors])
            reason = pc.if_else(pc.and_(bad, pc.is_null(reason)), f"wrong_type:{f.name}", reason)
            detail = pc.if_else(pc.and_(bad, pc.is_null(detail)), pa.array(errors, pa.string()), detail)
        elif f.kind == "answers" and not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
            as_text = (
                column
                if pa.types.is_string(column.type)
                else pa.array([None if v is None else _answer_text(v) for v in column.to_pylist()], pa.string())
            )
            column = pc.if_else(pc.is_null(as_text), pa.nulls(n, target), _singleton_lists(as_text))
        else:
            column = column.cast(target)
        arrays[f.name] = column
        if f.required:
            missing = pc.and_(pc.is_null(column), pc.is_null(reason))
            reason = pc.if_else(missing, f"missing_field:{f.name}", reason)
            detail = pc.if_else(missing, f"no value at '{f.path}'", detail)
    arrays["_row"] = pa.array(range(first_row, first_row + n), pa.int64())
    arrays["_reason"] = reason
    arrays["_detail"] = detail
    return pa.table(arrays)


def _singleton_lists(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    offsets = pa.array(range(len(values) + 1), pa.int32())
    return pa.ListArray.from_arrays(offsets, values)
