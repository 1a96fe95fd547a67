"""`oxa sql`: run SQL against the workspace catalog and print or save the result.

Read-only in fact, not by convention: one query statement runs (SELECT, WITH, FROM,
VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN; COPY, EXPORT, ATTACH, INSTALL, LOAD, SET and
the rest are refused), in an in-memory DuckDB holding the workspace's views
(Workspace.connect) whose settings are then locked: files are read only inside the
workspace, and no extension is installed or loaded on demand (so no network either). A
result reaches a file only through -o, never inside the workspace's data.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import duckdb

from curate.workspace.errors import OxaError
from curate.workspace.resources import resource_dir, sql_text
from curate.workspace.sandbox import lock_down
from curate.workspace.workspace import Workspace

FORMATS = ("table", "csv", "json", "parquet")
_QUERY_STATEMENTS = ("SELECT", "EXPLAIN")
_BATCH_ROWS = 10_000


def named_queries() -> dict[str, str]:
    """Named queries in sql/queries/: name -> the comment line that says what it returns."""
    found = {}
    for path in sorted((resource_dir("sql") / "queries").glob("*.sql")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        found[path.stem] = first.removeprefix("--").strip()
    return found


def named_query(name: str) -> str:
    if name not in named_queries():
        raise OxaError(
            f"no named query {name!r}; known: {', '.join(named_queries())} (`oxa sql WS --list` says what each returns)"
        )
    return sql_text(f"queries/{name}.sql")


def _no_statement(query: str | None) -> OxaError:
    # None: no query at all, which is what the command line passes for `--query ""`
    what = "no query to run (--query '' names none)" if query is None else f"the query {query!r} holds no SQL statement"
    return OxaError(
        f"{what}: give one (oxa sql WS 'SELECT count(*) FROM samples') "
        "or a named query with --query NAME (`oxa sql WS --list` lists them)"
    )


def run_query(
    ws: Workspace, query: str | None, fmt: str = "table", output: Path | None = None
) -> tuple[list[str], list[tuple]] | None:
    """Run `query` read-only. With `output`, write it there (csv for 'table'); csv and
    json without one go to stdout; 'table' returns (columns, rows) for the caller."""
    if fmt not in FORMATS:
        raise OxaError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and output is None:
        raise OxaError("--format parquet needs an output file: -o FILE.parquet")
    if output is not None:
        ws.check_outside_data(output, "--output")
    if query is None or not query.strip():
        raise _no_statement(query)
    con = ws.connect()
    try:
        lock_down(con, ws.root)
        try:
            statements = con.extract_statements(query)
            if not statements:  # only comments
                raise _no_statement(query)
            if len(statements) != 1:
                raise OxaError(f"oxa sql runs one query at a time; got {len(statements)} statements")
            kind = statements[0].type.name
            if kind not in _QUERY_STATEMENTS:
                raise OxaError(
                    f"oxa sql is read-only: it runs queries (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); "
                    f"{kind} statements are refused. To save a result use -o FILE"
                )
            relation = con.sql(query)
        except duckdb.Error as exc:
            raise OxaError(f"SQL error: {exc}") from exc
        if output is not None:
            output = Path(output)
            if fmt in ("table", "csv", "parquet"):
                # the locked connection may not write files: its rows stream to another one that does
                rows = duckdb.connect().from_arrow(relation.to_arrow_reader(_BATCH_ROWS))
                if fmt == "parquet":
                    rows.write_parquet(str(output), compression="zstd")
                else:
                    rows.write_csv(str(output))
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
