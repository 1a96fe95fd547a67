"""`oxa sql`: run SQL against the workspace catalog and print or save the result."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import duckdb

from curate.workspace.errors import OxaError
from curate.workspace.resources import resource_dir, sql_text
from curate.workspace.workspace import Workspace

FORMATS = ("table", "csv", "json", "parquet")


def named_queries() -> dict[str, str]:
    """Named queries in sql/queries/: name -> the comment line that says what it returns."""
    found = {}
    for path in sorted((resource_dir("sql") / "queries").glob("*.sql")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        found[path.stem] = first.removeprefix("--").strip()
    return found


def named_query(name: str) -> str:
    if name not in named_queries():
        raise OxaError(f"no named query {name!r}; known: {', '.join(named_queries())}")
    return sql_text(f"queries/{name}.sql")


def run_query(
    ws: Workspace, query: str, fmt: str = "table", output: Path | None = None
) -> tuple[list[str], list[tuple]] | None:
    """Run `query` read-only. With `output`, write it there (csv for 'table'); csv and
    json without one go to stdout; 'table' returns (columns, rows) for the caller."""
    if fmt not in FORMATS:
        raise OxaError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and output is None:
        raise OxaError("--format parquet needs an output file: -o FILE.parquet")
    con = ws.connect(read_only=True)
    try:
        try:
            relation = con.sql(query)
        except duckdb.Error as exc:
            raise OxaError(f"SQL error: {exc}") from exc
        if relation is None:
            raise OxaError("the statement returned no result; oxa sql runs queries (SELECT ...)")
        if output is not None:
            output = Path(output)
            if fmt in ("table", "csv"):
                relation.write_csv(str(output))
            elif fmt == "parquet":
                relation.write_parquet(str(output), compression="zstd")
            else:
                output.write_text(_json_text(relation), encoding="utf-8")
            return None
        if fmt == "csv":
            sys.stdout.write(_csv_text(relation))
            return None
        if fmt == "json":
            sys.stdout.write(_json_text(relation))
            return None
        return relation.columns, relation.fetchall()
    finally:
        con.close()


def _json_text(relation: duckdb.DuckDBPyRelation) -> str:
    rows = [dict(zip(relation.columns, row)) for row in relation.fetchall()]
    return json.dumps(rows, ensure_ascii=False, indent=1, default=str) + "\n"


def _csv_text(relation: duckdb.DuckDBPyRelation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(relation.columns)
    writer.writerows(relation.fetchall())
    return buffer.getvalue()
