"""From a staged batch (a preset's extracted fields) to checked records.

Each step works on a whole batch at once (Arrow compute or DuckDB): exploding response
lists, filling defaults, evaluating filters, and content checks that set a reject reason.
A record keeps the first reason that applies to it.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.ingest.presets import KIND_TYPES
from curate.text.instructions import strip_instruction_suffixes
from curate.workspace import OxaError
from curate.workspace.schema import valid_ppl

# The columns every staged batch has after fill_defaults; --where may use these (with
# `source_row` for the staged `_row`).
STAGED_COLUMNS: dict[str, pa.DataType] = {
    "problem": pa.string(),
    "response": pa.string(),
    "source": pa.string(),
    "category": pa.string(),
    "generator": pa.string(),
    "gold_answer": pa.string(),
    "gold_alternatives": pa.list_(pa.string()),
    "meta": pa.string(),
    "ppl": pa.float64(),
    "n_tokens": pa.float64(),
}
WHERE_COLUMNS = (*STAGED_COLUMNS, "source_row")


def explode_responses(con: duckdb.DuckDBPyConnection, staged: pa.Table) -> pa.Table:
    """One record per element of `responses` (with its ppl and n_tokens, where given);
    a row already rejected, or whose lists cannot be paired, stays one record."""
    lists = [c for c in ("ppl", "n_tokens") if c in staged.column_names]
    mismatch = "".join(
        f" WHEN {c} IS NOT NULL AND len({c}) <> len(responses) THEN 'list_length_mismatch'" for c in lists
    )
    con.register("staged", staged)
    checked = con.sql(
        f"""SELECT * REPLACE (
                CASE WHEN _reason IS NOT NULL THEN _reason
                     WHEN len(responses) = 0 THEN 'missing_field:responses'{mismatch}
                END AS _reason,
                CASE WHEN _reason IS NOT NULL THEN _detail
                     WHEN len(responses) = 0 THEN 'the responses list is empty'
                     ELSE 'responses has ' || len(responses) || ' elements, a parallel list differs'
                END AS _detail)
            FROM staged"""
    ).to_arrow_table()
    con.register("checked", checked)
    exclude = ", ".join(["responses", *lists])
    as_null = "".join(f", NULL::DOUBLE AS {c}" for c in lists)
    unnested = "".join(f", unnest({c}) AS {c}" for c in lists)
    exploded = con.sql(
        f"""SELECT * EXCLUDE ({exclude}), NULL::VARCHAR AS response{as_null}, NULL::INTEGER AS _sub
            FROM checked WHERE _reason IS NOT NULL
            UNION ALL
            SELECT * EXCLUDE ({exclude}), unnest(responses) AS response{unnested},
                   unnest(range(len(responses)))::INTEGER AS _sub
            FROM checked WHERE _reason IS NULL
            ORDER BY _row, _sub NULLS FIRST"""
    ).to_arrow_table()
    con.unregister("staged")
    con.unregister("checked")
    null_element = pc.and_(pc.is_null(exploded["response"]), pc.is_valid(exploded["_sub"]))
    exploded = _replace(exploded, "_reason", pc.if_else(null_element, "missing_field:response", exploded["_reason"]))
    return _replace(
        exploded, "_detail", pc.if_else(null_element, "a null element of the responses list", exploded["_detail"])
    )


def fill_defaults(staged: pa.Table, dataset_name: str, generator: str | None) -> pa.Table:
    """Give every batch the STAGED_COLUMNS: a blank source becomes the file's data-set
    name, a missing generator the given one, and the gold list its first form plus the
    alternatives."""
    n = staged.num_rows
    columns = {name: staged[name] for name in staged.column_names}
    source = columns.get("source", pa.nulls(n, pa.string()))
    blank = pc.equal(pc.utf8_trim_whitespace(source), "")
    columns["source"] = pc.coalesce(pc.if_else(blank, pa.scalar(None, pa.string()), source), pa.scalar(dataset_name))
    columns["generator"] = pc.coalesce(
        columns.get("generator", pa.nulls(n, pa.string())), pa.scalar(generator, pa.string())
    )
    golds = columns.pop("gold_answer", pa.nulls(n, KIND_TYPES["answers"])).to_pylist()
    columns["gold_answer"] = pa.array([g[0] if g else None for g in golds], pa.string())
    columns["gold_alternatives"] = pa.array([g[1:] if g else None for g in golds], pa.list_(pa.string()))
    for name, typ in STAGED_COLUMNS.items():
        columns.setdefault(name, pa.nulls(n, typ))
    return pa.table(columns)


def empty_staged() -> pa.Table:
    return pa.table(
        {
            **{n: pa.nulls(0, t) for n, t in STAGED_COLUMNS.items()},
            "_row": pa.nulls(0, pa.int64()),
            "_reason": pa.nulls(0, pa.string()),
        }
    )


def filter_mask(con: duckdb.DuckDBPyConnection, staged: pa.Table, filters: list[str]) -> pa.ChunkedArray | None:
    """True where a record passes every filter (None: no filters). Records already
    rejected pass, so that they are counted as rejects."""
    if not filters:
        return None
    condition = " AND ".join(f"({f})" for f in filters)
    # Hand DuckDB only the columns the condition names (not the long texts it ignores).
    named = [c for c in WHERE_COLUMNS if re.search(rf"\b{c}\b", condition)]
    columns = {c: staged["_row" if c == "source_row" else c] for c in named}
    columns["_reason"] = staged["_reason"]
    con.register("staged", pa.table(columns))
    try:
        return con.sql(
            f"SELECT _reason IS NOT NULL OR coalesce(({condition}), false) AS keep FROM staged"
        ).to_arrow_table()["keep"]
    except duckdb.Error as exc:
        raise OxaError(f"the filter {condition!r} failed: {exc}; columns: {', '.join(WHERE_COLUMNS)}") from exc
    finally:
        con.unregister("staged")


def check_content(
    staged: pa.Table,
    keep: pa.ChunkedArray | None,
    texts: list[str],
    strip_instruction: bool,
    max_record_bytes: int,
) -> pa.Table:
    """Set a reject reason on kept records with bad content (filtered ones keep a null
    reason: they are not rejects), strip instruction suffixes, add `instruction`."""
    reason, detail = staged["_reason"], staged["_detail"]
    if keep is not None:
        reason = pc.if_else(keep, reason, pa.scalar(None, pa.string()))

    def flag(mask: pa.ChunkedArray, code: str, text: str) -> None:
        nonlocal reason, detail
        mask = pc.and_(pc.fill_null(mask, False), pc.is_null(reason))
        if keep is not None:
            mask = pc.and_(mask, keep)
        reason = pc.if_else(mask, code, reason)
        detail = pc.if_else(mask, text, detail)

    for name in texts:
        column, invalid = null_invalid_utf8(staged[name])
        staged = _replace(staged, name, column)
        flag(invalid, f"invalid_utf8:{name}", f"{name} is not valid UTF-8")
        flag(pc.match_substring_regex(column, r"\x00"), f"nul_byte:{name}", f"{name} contains a NUL byte")
    instruction = pa.nulls(staged.num_rows, pa.string())
    if strip_instruction:
        problem, instruction = strip_instruction_suffixes(staged["problem"])
        staged = _replace(staged, "problem", problem)
    staged = staged.append_column("instruction", instruction)
    for name in texts:
        flag(pc.match_substring_regex(staged[name], r"^[\s\p{Z}]*$"), f"empty_{name}", f"{name} is empty or blank")
    size = pc.add(pc.binary_length(staged["problem"]), pc.fill_null(pc.binary_length(staged["response"]), 0))
    flag(
        pc.greater(size, max_record_bytes),
        "record_too_large",
        f"problem + response exceed --max-record-bytes {max_record_bytes}",
    )
    return _replace(_replace(staged, "_reason", reason), "_detail", detail)


def drop_invalid_scores(staged: pa.Table) -> tuple[pa.Table, pa.Table]:
    """A PPL or token length the source gives that cannot be one (schema.valid_ppl:
    NaN, infinite, below 1; a length that is not a whole number >= 0) costs the record
    its score, not the record: both values become null. Returns (staged, the records
    whose score was dropped, with _reason and _detail saying why)."""
    given_ppl, given_n = pc.is_valid(staged["ppl"]), pc.is_valid(staged["n_tokens"])
    ppl = staged["ppl"].to_numpy(zero_copy_only=False).astype(np.float64)
    n_tokens = staged["n_tokens"].to_numpy(zero_copy_only=False).astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad_n = given_n.to_numpy(zero_copy_only=False) & ~((n_tokens >= 0) & (np.floor(n_tokens) == n_tokens))
    bad_ppl = given_ppl.to_numpy(zero_copy_only=False) & ~valid_ppl(ppl)
    accepted = pc.is_null(staged["_reason"]).to_numpy(zero_copy_only=False)
    bad = (bad_ppl | bad_n) & accepted
    if not bad.any():
        return staged, staged.slice(0, 0)
    mask = pa.array(bad)
    reasons = np.where(bad_ppl, "invalid_ppl", "invalid_n_tokens")[bad]
    details = [
        f"PPL {p!r}: a PPL is a finite number >= 1"
        if r == "invalid_ppl"
        else f"token length {n!r}: not a whole number >= 0"
        for p, n, r in zip(ppl[bad].tolist(), n_tokens[bad].tolist(), reasons.tolist())
    ]
    dropped = staged.filter(mask)
    dropped = _replace(_replace(dropped, "_reason", pa.array(reasons, pa.string())), "_detail", pa.array(details))
    for name in ("ppl", "n_tokens"):
        staged = _replace(staged, name, pc.if_else(mask, pa.scalar(None, pa.float64()), staged[name]))
    return staged, dropped


def null_invalid_utf8(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.Array]:
    """The column with invalid UTF-8 values set to null, and the mask of those values.
    Arrow string data read from parquet or Arrow files is not checked on read."""
    try:
        column.validate(full=True)
        return column, pa.array([False] * len(column), pa.bool_())
    except pa.ArrowInvalid:
        raw = column.cast(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary())
        mask = pa.array([value is not None and not _is_utf8(value) for value in raw.to_pylist()], pa.bool_())
        return pc.if_else(mask, pa.nulls(len(column), column.type), raw.cast(column.type, safe=False)), mask


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _replace(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)
