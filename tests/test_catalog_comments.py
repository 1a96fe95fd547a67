"""The catalog explains itself: every view, table and column carries a comment, written
once in sql/comments.sql and sql/score_view.sql, the same in catalog.duckdb and in the
in-memory connection oxa reads through, kept when the catalog is rewritten, equal to
docs/sql.md#columns, and printed by `oxa sql WS --describe [VIEW]`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from curate.cli import main
from curate.workspace import Workspace
from curate.workspace.query import run_query
from curate.workspace.schema import SELF_SAMPLES
from curate.workspace.workspace import score_view_name

ROOT = Path(__file__).resolve().parents[1]
TAG = "qwen2.5-math-1.5b"  # a tag whose view name and column names are spelled differently
VIEWS = ("problems", "samples", "answers", "gold", "trace_conflicts", "verify", "decontamination_run")
VIEWS += ("contamination", "contamination_checked", "candidates")  # and one scores_<tag> per tag
_STATEMENT = re.compile(r"^COMMENT ON (?:VIEW|TABLE|COLUMN) (\w+|\{view\})(?:\.(\w+|\"[^\"]+\"))? IS '(.*)';$")

COMMENTS = """
SELECT view_name, NULL, comment FROM duckdb_views() WHERE NOT internal
UNION ALL SELECT table_name, NULL, comment FROM duckdb_tables() WHERE NOT internal
UNION ALL SELECT table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal
"""


def catalog_comments(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str | None], str | None]:
    """(relation, column or None) -> comment, for every view, table and column."""
    return {(relation, column): comment for relation, column, comment in con.execute(COMMENTS).fetchall()}


def file_comments(ws: Workspace) -> dict[tuple[str, str | None], str | None]:
    with duckdb.connect(str(ws.catalog_path), read_only=True) as con:
        return catalog_comments(con)


def memory_comments(ws: Workspace) -> dict[tuple[str, str | None], str | None]:
    con = ws.connect()
    try:
        return catalog_comments(con)
    finally:
        con.close()


def source_comments(tags: list[str]) -> dict[tuple[str, str | None], str]:
    """The comments as the SQL files write them, one statement a line (read here on
    their own, not through oxa's code), the score view's once per tag."""
    found = {}
    texts = [(ROOT / "sql" / "comments.sql").read_text(encoding="utf-8")]
    score_view = (ROOT / "sql" / "score_view.sql").read_text(encoding="utf-8")
    texts += [score_view.replace("{view}", score_view_name(t)).replace("{tag}", t) for t in tags]
    for text in texts:
        for line in text.splitlines():
            if line.startswith("COMMENT"):
                match = _STATEMENT.match(line)
                assert match, f"not one COMMENT statement on one line: {line}"
                relation, column, comment = match.groups()
                found[relation, column and column.strip('"')] = comment.replace("''", "'")
    return found


def documented_comments(tag: str) -> dict[tuple[str, str | None], str]:
    """The text of docs/sql.md#columns: under each `### \\`view\\`` its comment, then a
    table of its columns; code marks dropped, `<tag>` read as `tag`. candidates lists the
    columns it adds to samples', which keep their comments."""
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    section = text.split("\n## Columns\n", 1)[1].split("\n## ", 1)[0]
    found = {}
    for block in section.split("\n### ")[1:]:
        heading, _, body = block.partition("\n")
        relation = heading.strip("`")
        lines = [line for line in body.splitlines() if line.strip()]
        found[relation, None] = " ".join(line for line in lines if not line.startswith("|"))
        for row in (line for line in lines if line.startswith("| `")):  # not the header
            column, comment = (cell.strip() for cell in row.strip("|").split(" | ", 1))
            found[relation, column.strip("`")] = comment
    samples = {column: comment for (relation, column), comment in found.items() if relation == "samples" and column}
    found.update({("candidates", column): comment for column, comment in samples.items()})
    view = score_view_name(tag)

    def plain(value: str) -> str:
        return value.replace("`", "").replace("scores_<tag>", view).replace("<tag>", tag)

    return {
        (plain(relation), column and plain(column)): plain(comment) for (relation, column), comment in found.items()
    }


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with a score tag and a generated samples part (so samples and
    candidates have the columns generation adds)."""
    ws = Workspace.init(tmp_path / "ws")
    ws.ensure_scores_folder(TAG)
    part = ws.root / "pool" / "samples" / "generate-0123456789ab-0123456789abcdef.parquet"
    pq.write_table(SELF_SAMPLES.empty_table(), part)
    return ws


def test_every_view_table_and_column_has_the_comment_the_sql_files_write(ws):
    in_memory = memory_comments(ws)  # and connect() writes the catalog file
    in_file = file_comments(ws)
    assert in_memory == in_file
    relations = {relation for relation, column in in_memory if column is None}
    assert relations == {*VIEWS, score_view_name(TAG), "runs", "subsets", "oxa_meta"}
    assert ("samples", "seed") in in_memory and ("candidates", f"ppl_{TAG}") in in_memory
    missing = sorted(f"{relation}.{column}" for (relation, column), comment in in_memory.items() if not comment)
    assert not missing, f"without a comment: {missing}"
    assert in_memory == source_comments([TAG])
    assert in_memory["candidates", f"ppl_{TAG}"] == (
        f"the PPL of the sample under the scoring model {TAG} (scores_qwen2_5_math_1_5b.ppl; NULL where not "
        f'scored); in SQL: "ppl_{TAG}"'
    )


def test_docs_sql_md_holds_the_same_text(ws):
    assert documented_comments(TAG) == memory_comments(ws)


def test_the_comments_are_kept_when_the_catalog_is_rewritten(ws):
    ws.connect().close()
    digest = ws._written_digest()
    ws.ensure_scores_folder("base")  # a new tag: its view, and candidates made anew
    after = memory_comments(ws)
    assert ws._written_digest() != digest, "the catalog file was not rewritten"
    assert file_comments(ws) == after == source_comments([TAG, "base"])
    assert after["scores_base", None].startswith("One row per sample scored by the scoring model base")
    ws.rebuild_catalog("test")  # what `oxa check --repair` does
    assert file_comments(ws) == after


def test_a_column_comment_waits_for_its_column(tmp_path):
    """Without generated samples, samples has no seed column and so no comment on one;
    the rest is there, and the catalog is written."""
    ws = Workspace.init(tmp_path / "ws")
    comments = memory_comments(ws)
    assert ("samples", "seed") not in comments and comments["samples", "sample_id"]
    assert file_comments(ws) == comments
    assert all(comments.values())


def test_oxa_sql_reads_them(ws):
    columns, rows = run_query(ws, "SELECT comment FROM duckdb_views() WHERE view_name = 'gold'")
    assert rows == [(source_comments([])["gold", None],)]


def oxa(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """The real command line in this process, at a width that keeps table rows whole."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(sys, "argv", ["oxa", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in output.splitlines() if "│" in line]


def test_describe_lists_the_views_and_tables(ws, capsys, monkeypatch):
    code, out, _ = oxa(capsys, monkeypatch, "sql", str(ws.root), "--describe")
    assert code == 0
    rows = table_rows(out)
    source = source_comments([TAG])
    views = [*VIEWS, score_view_name(TAG)]
    expected = [[name, "view", source[name, None]] for name in sorted(views)]
    expected += [[name, "table", source[name, None]] for name in ("oxa_meta", "runs", "subsets")]
    assert rows == expected


def test_describe_a_view_writes_its_columns_as_sql_does(ws, capsys, monkeypatch):
    code, out, _ = oxa(capsys, monkeypatch, "sql", str(ws.root), "--describe", "Candidates")
    assert code == 0
    source = source_comments([TAG])
    assert out.splitlines()[0] == f"view candidates: {source['candidates', None]}"
    rows = table_rows(out)
    assert rows[0] == ["sample_id", "VARCHAR", source["candidates", "sample_id"]]
    assert ["verdict", "VARCHAR", source["candidates", "verdict"]] in rows
    assert rows[-2:] == [
        [f'"ppl_{TAG}"', "DOUBLE", source["candidates", f"ppl_{TAG}"]],
        [f'"n_tokens_{TAG}"', "BIGINT", source["candidates", f"n_tokens_{TAG}"]],
    ]
    # the name as written runs
    assert run_query(ws, f"SELECT {rows[-2][0]}, {rows[-1][0]} FROM candidates") == (
        [f"ppl_{TAG}", f"n_tokens_{TAG}"],
        [],
    )


def test_describe_an_unknown_view_names_the_known_ones(ws, capsys, monkeypatch):
    code, out, err = oxa(capsys, monkeypatch, "sql", str(ws.root), "--describe", "scores_qwen2.5-math-1.5b")
    assert code == 2 and out == ""
    assert err == (
        f"error: no view or table 'scores_qwen2.5-math-1.5b' in {ws.root}; known: answers, candidates, contamination, "
        "contamination_checked, decontamination_run, gold, problems, samples, scores_qwen2_5_math_1_5b, "
        "trace_conflicts, verify, oxa_meta, runs, subsets\n"
    )
    code, _, err = oxa(capsys, monkeypatch, "sql", str(ws.root), "--describe", "-o", str(ws.root / "x.csv"))
    assert code == 2 and err.startswith("error: --describe prints the catalog's comments") and err.count("\n") == 1
