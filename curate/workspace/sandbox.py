"""The sandbox every user expression that becomes SQL runs in (docs/architecture.md §2).

`oxa sql` queries, selection filters (`where` of a config or `--set where=...`) and the
`--where` of ingest, score and generate all run on a DuckDB connection locked the same
way: files are read only inside the workspace (its own parts), no extension is installed
or loaded on demand (so no network), and the settings are then locked so that the
expression cannot change them back. Before it reaches SQL, an expression is parsed on its
own (`check_expression`): it must be one expression (a filter cannot close its
parenthesis and append a query), and a selection filter, whose rows decide a version,
may not call a function whose value changes from run to run (random, now, uuid, ...).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import duckdb

from curate.workspace.errors import OxaError
from curate.workspace.parts import duckdb_path

_WRAPPED = "oxa_expression"
# Values that differ between two runs over the same rows, beside DuckDB's VOLATILE
# functions: the clock and the session (CONSISTENT_WITHIN_QUERY: one value per query)
_CLOCK_FUNCTIONS = frozenset(
    {
        "now", "today", "get_current_time", "get_current_timestamp", "transaction_timestamp", "current_date",
        "current_localtime", "current_localtimestamp", "current_setting", "getvariable", "txid_current",
        "current_query", "current_database", "current_schema", "current_schemas",
    }
)  # fmt: skip
# keywords that parse as column names and read the clock
_CLOCK_KEYWORDS = frozenset({"current_timestamp", "current_date", "current_time", "localtime", "localtimestamp"})


def lock_down(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """No file outside `root`, no extension installed or loaded, and settings that a
    query cannot change back (DuckDB's own switches)."""
    # the folder as written, and as oxa's globs spell a `[`, `*` or `?` in it (parts.duckdb_path)
    folders = sorted({f"{Path(root)}/", f"{duckdb_path(Path(root))}/"})
    con.execute("SET allowed_directories = $dirs", {"dirs": folders})
    for setting in ("enable_external_access", "autoinstall_known_extensions", "autoload_known_extensions"):
        con.execute(f"SET {setting} = false")
    con.execute("SET lock_configuration = true")


@cache
def _volatile_functions() -> frozenset[str]:
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE stability = 'VOLATILE'"
        ).fetchall()
    return frozenset(r[0] for r in rows) | _CLOCK_FUNCTIONS


def check_expression(expression: str, what: str, deterministic: bool = False) -> None:
    """Refuse an `expression` that is not one SQL expression, or (with `deterministic`)
    that calls a function whose value changes between runs; `what` names the option."""
    with duckdb.connect() as con:
        [(serialized,)] = con.execute(
            "SELECT json_serialize_sql($q)", {"q": f"SELECT (\n{expression}\n) AS {_WRAPPED}"}
        ).fetchall()
    tree = json.loads(serialized)
    statements = tree.get("statements", [])
    node = statements[0]["node"] if len(statements) == 1 else {}
    single = (
        not tree.get("error")
        and node.get("type") == "SELECT_NODE"
        and len(node.get("select_list", [])) == 1
        and node["select_list"][0].get("alias") == _WRAPPED
        and node.get("from_table", {}).get("type") == "EMPTY"
        and not node.get("modifiers")
        and not node.get("cte_map", {}).get("map")
    )
    if not single:
        detail = tree.get("error_message", "it reads as more than one expression")
        raise OxaError(
            f"{what} must be one SQL expression (a filter such as \"verdict = 'correct'\"); "
            f"{expression!r} is not: {detail}"
        )
    if deterministic:
        functions, columns = _names(node["select_list"][0], set(), set())
        changing = sorted((functions & _volatile_functions()) | (columns & _CLOCK_KEYWORDS))
        if changing:
            raise OxaError(
                f"{what} calls {', '.join(changing)}, whose value changes from run to run: the same config over "
                "the same rows would select other rows under the same version. Select on the rows' own "
                "columns (for a random sample, strategy 'random' with its seed)"
            )


def _names(node, functions: set[str], columns: set[str]) -> tuple[set[str], set[str]]:
    """The function names and the single-part column names anywhere in a parsed expression."""
    if isinstance(node, dict):
        if "function_name" in node:
            functions.add(str(node["function_name"]).lower())
        if node.get("class") == "COLUMN_REF" and len(node.get("column_names", [])) == 1:
            columns.add(str(node["column_names"][0]).lower())
        for value in node.values():
            _names(value, functions, columns)
    elif isinstance(node, list):
        for value in node:
            _names(value, functions, columns)
    return functions, columns
