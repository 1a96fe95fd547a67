"""`oxa sql`: run SQL against the workspace catalog and print or save the result.

Read-only in fact, not by convention: one query statement runs (SELECT, WITH, FROM,
VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN; COPY, EXPORT, ATTACH, INSTALL, LOAD, SET and
the rest are refused), in an in-memory DuckDB holding the workspace's views
(Workspace.connect) whose settings are then locked: files are read only inside the
workspace, and no extension is installed or loaded on demand (so no network either). A
result reaches a file only through -o, never inside the workspace's data. `describe`
reads the catalog's comments: what each view, table and column holds.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import duckdb

from curate.workspace.errors import OxaError
from curate.workspace.parts import atomic_target, refuse_to_replace
from curate.workspace.resources import resource_dir, sql_text
from curate.workspace.sandbox import lock_down
from curate.workspace.workspace import Workspace

FORMATS = ("table", "csv", "json", "parquet")
_QUERY_STATEMENTS = ("SELECT", "EXPLAIN")
_BATCH_ROWS = 10_000
# a column name a query may write as it is, unless DuckDB reads it as SQL (one of _KEYWORDS)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category IN ('reserved', 'type_function')"


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
    ws: Workspace, query: str | None, fmt: str = "table", output: Path | None = None, overwrite: bool = False
) -> tuple[list[str], list[tuple]] | None:
    """Run `query` read-only. With `output`, write it there (csv for 'table'; an existing
    file only with `overwrite`; written whole or not at all); csv and json without one go
    to stdout; 'table' returns (columns, rows) for the caller."""
    if fmt not in FORMATS:
        raise OxaError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and output is None:
        raise OxaError("--format parquet needs an output file: -o FILE.parquet")
    if output is not None:
        ws.check_outside_data(output, "--output")
        refuse_to_replace(Path(output), overwrite)
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
            with atomic_target(Path(output)) as tmp:
                if fmt in ("table", "csv", "parquet"):
                    # the locked connection may not write files: its rows stream to another one that does
                    rows = duckdb.connect().from_arrow(relation.to_arrow_reader(_BATCH_ROWS))
                    if fmt == "parquet":
                        rows.write_parquet(str(tmp), compression="zstd")
                    else:
                        rows.write_csv(str(tmp))
                else:
                    tmp.write_text(_json_text(relation), encoding="utf-8")
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


def describe(ws: Workspace, view: str | None = None) -> tuple[str | None, list[str], list[tuple]]:
    """The catalog's own account of itself, its comments (sql/comments.sql): with no view,
    every view and table with its comment; with one (any case), a line naming it with its
    comment, and its columns, each as SQL must write it (quoted where the name needs it),
    with its type and comment. Read through the same locked connection as `run_query`."""
    con = ws.connect()
    try:
        lock_down(con, ws.root)
        relations = con.execute(
            "SELECT view_name, 'view' AS kind, comment FROM duckdb_views() WHERE NOT internal AND NOT temporary "
            "UNION ALL SELECT table_name, 'table', comment FROM duckdb_tables() WHERE NOT internal AND NOT temporary "
            "ORDER BY kind = 'table', view_name"
        ).fetchall()
        if view is None:
            return None, ["name", "kind", "comment"], relations
        found = [r for r in relations if r[0].lower() == view.lower()]
        if not found:
            raise OxaError(f"no view or table {view!r} in {ws.root}; known: {', '.join(r[0] for r in relations)}")
        name, kind, comment = found[0]
        keywords = {k for (k,) in con.execute(_KEYWORDS).fetchall()}
        columns = con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
            [name],
        ).fetchall()
    finally:
        con.close()
    rows = [(_sql_name(column, keywords), type_, text) for column, type_, text in columns]
    return f"{kind} {name}: {comment}", ["column", "type", "comment"], rows


def _sql_name(name: str, keywords: set[str]) -> str:
    """A column name as a query must write it: a score tag's '-' and '.' need quotes
    ("ppl_qwen2.5-math-1.5b"), and so does a keyword."""
    if _PLAIN_NAME.fullmatch(name) and name.lower() not in keywords:
        return name
    return '"' + name.replace('"', '""') + '"'


def _json_text(relation: duckdb.DuckDBPyRelation) -> str:
    rows = [dict(zip(relation.columns, row)) for row in relation.fetchall()]
    return json.dumps(rows, ensure_ascii=False, indent=1, default=str) + "\n"


def _csv_text(relation: duckdb.DuckDBPyRelation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(relation.columns)
    writer.writerows(relation.fetchall())
    return buffer.getvalue()
