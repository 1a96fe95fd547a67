"""Every user expression that becomes SQL runs in `oxa sql`'s sandbox: a selection's
`where`, and the `--where` of ingest, score and generate cannot read a file outside the
workspace, reach the network, or append a query; a selection filter cannot be random."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.select import SelectConfig, run_select
from curate.workspace import OxaError, Workspace
from curate.workspace.sandbox import check_expression
from tests.conftest import write_jsonl
from tests.pools import TAG, add_pool

SECRET = "the content of a file outside the workspace"


def escapes(outside: Path) -> dict[str, str]:
    """Expressions that try to leave the workspace, and what stops each (the same reads
    tests/test_workspace.py tries through `oxa sql`)."""
    return {
        "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0": 'Permission Error: Cannot access file "/etc/passwd"',
        f"(SELECT content FROM read_text('{outside}')) LIKE '%content%'": "Permission Error",
        "(SELECT count(*) FROM read_parquet('https://example.com/x.parquet')) > 0": "Permission Error",
        "(SELECT count(*) FROM glob('/etc/*')) > 0": "Permission Error",
        "true)) UNION SELECT (1": "must be one SQL expression",
        "true; SELECT 1": "must be one SQL expression",
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


@pytest.fixture
def pool(ws: Workspace, tmp_path: Path) -> Workspace:
    rows = [
        {"problem": f"Q{i}: what is {i} + {i}?", "response": f"r{i}", "verdict": "correct", "ppl": 2.0, "n_tokens": 9}
        for i in range(6)
    ]
    add_pool(ws, tmp_path, rows)
    return ws


def _refused(run, expression: str, message: str) -> str:
    with pytest.raises(OxaError, match=re.escape(message)) as caught:
        run(expression)
    return str(caught.value)


def test_a_selection_filter_cannot_leave_the_workspace(pool, outside):
    def select(where: str) -> dict:
        return run_select(pool, SelectConfig(name="s", strategy="random", n=2, where=where))

    for expression, message in escapes(outside).items():
        error = _refused(select, expression, message)
        assert SECRET not in error
    assert not (pool.root / "subsets" / "s").exists()
    assert list((pool.root / "runs" / "select").glob("*/stats.json")) == [] or all(
        '"failed"' in p.read_text() for p in (pool.root / "runs" / "select").glob("*/stats.json")
    )
    # the workspace's own parts stay readable, as in oxa sql
    own = f"sample_id IN (SELECT sample_id FROM read_parquet('{pool.root}/pool/samples/*.parquet'))"
    assert run_select(pool, SelectConfig(name="s", strategy="random", n=2, where=own))["rows"] == 2


@pytest.mark.parametrize(
    "where",
    ["random() < 0.5", "uuid() IS NOT NULL", "now() > TIMESTAMP '2020-01-01'", "current_date > DATE '2020-01-01'"],
)
def test_a_selection_filter_must_give_the_same_rows_every_run(pool, where):
    function = re.match(r"[a-z_]+", where).group(0)
    with pytest.raises(OxaError, match=rf"selection: where calls {function}, whose value changes from run to run"):
        run_select(pool, SelectConfig(name="s", strategy="random", n=2, where=where))
    with pytest.raises(OxaError, match="calls random, whose value"):  # in either part of a mix
        run_select(
            pool,
            SelectConfig(
                name="m",
                strategy="mix",
                positives=SelectConfig(name="p", strategy="lowest_ppl", scores_tag=TAG, n=1),
                negatives=SelectConfig(name="n", strategy="lowest_ppl", scores_tag=TAG, n=1, where="random() < 2"),
            ),
        )


def test_an_ingest_filter_cannot_leave_the_workspace(ws, tmp_path, outside):
    source = write_jsonl(tmp_path / "pool.jsonl", [{"problem": "1+1?", "response": "2"}])

    def ingest(where: str) -> dict:
        return run_ingest(
            ws, IngestConfig([str(source)], mapping={"problem": "problem", "response": "response"}, where=where)
        )

    for expression, message in escapes(outside).items():
        assert SECRET not in _refused(ingest, expression, message)
    assert ws.status()["tables"]["samples"] == 0
    assert ingest("source_row >= 0")["funnel"]["accepted"] == 1


def test_score_and_generate_filters_cannot_leave_the_workspace(pool, tiny_models, outside):
    from curate.score import GenerateConfig, ScoreConfig, run_generate, run_score

    model = str(tiny_models / "instruct")
    runs = {
        "score": lambda where: run_score(pool, ScoreConfig(model, "tiny", where=where)),
        "generate": lambda where: run_generate(pool, GenerateConfig(model, "self", where=where, n=1)),
    }
    for run in runs.values():
        for expression, message in escapes(outside).items():
            assert SECRET not in _refused(run, expression, message)
    assert "tiny" not in pool.score_tags()


def test_check_expression_reads_one_expression():
    check_expression("verdict = 'correct' AND n_tokens < 4096 AND source IN ('amc_aime', 'olympiads')", "where", True)
    check_expression("ppl BETWEEN 1 AND 5 -- a comment", "where", True)
    with pytest.raises(OxaError, match=r"where must be one SQL expression .*'true\) AS kept, \(1' is not"):
        check_expression("true) AS kept, (1", "where")  # a second column after the filter
