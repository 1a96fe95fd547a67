"""Tracing with the pool's own evidence: fuzzy matches confirmed by the problem's teacher
responses, templated near-duplicates refused, conflicts settled by consensus and listed."""

import duckdb
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.ingest import IngestConfig, run_ingest
from curate.trace import TraceConfig, run_trace
from curate.trace.fuzzy import CHANGED_EXPRESSION, SUBSTITUTED_WORD, text_edit
from tests.conftest import naive_problem_id, query, write_jsonl

# pool problem -> (the answers its teacher responses end with, the reference's text, its answer)
CASES = {
    # templated near-duplicates: a wrong gold if taken
    "expression": (
        "Let $f(x) = \\frac{2x+3}{px-2}$. Find the constant $p$ such that $f(f(x)) = x$ for all $x$ in the domain.",
        ["2", "2"],
        "Let $f(x) = \\frac{x-3}{ax-2}$. Find the constant $a$ such that $f(f(x)) = x$ for all $x$ in the domain.",
        "1",
    ),
    "equation": (
        "Find the number of functions $f$ from the reals to the reals with $f(x+y) = f(x) + f(y)$ that are continuous.",
        ["\\infty"],
        "Find the number of functions $f$ from the reals to the reals with $f(xy) = f(x) f(y)$ that are continuous.",
        "4",
    ),
    "quantity": (
        "A rectangle in the figure has sides 3 and 5 centimetres long. What is the perimeter of the rectangle?",
        ["16", "16", "15"],
        "A rectangle in the figure has sides 3 and 5 centimetres long. What is the area of the rectangle?",
        "15",
    ),
    # real copies with drift: kept when the pool confirms their answer
    "typo": (
        "A farmer has seventeen cows and buys five more at the market. How many cows does the farmer have now?",
        ["22", "22"],
        "A farmer has seventeen cows and buys five more at the makret. How many cows does the farmer have now?",
        "22",
    ),
    "dropped_word": (
        "Each of the boxes holds twelve pencils and there are four boxes. How many pencils are in all the boxes?",
        ["48", "47"],
        "Each of boxes holds twelve pencils and there are four boxes. How many pencils are in all the boxes?",
        "48",
    ),
    "prefix": (
        "What is the sum of the interior angles of a convex hexagon, measured in degrees, as a whole number?",
        ["720.0"],  # math-verify: 720.0 is 720
        "Problem 12. What is the sum of the interior angles of a convex hexagon, measured in degrees, as a whole number?",
        "720",
    ),
    "fraction": (
        "A fair coin is tossed once. What is the probability that the fair coin shows heads when it lands on the table?",
        ["0.5", "\\frac{1}{2}"],
        "A fair coin is tossed once. What is the probablity that the fair coin shows heads when it lands on the table?",
        "\\dfrac12",
    ),
    # drift, but the pool's responses all disagree with the reference
    "disputed": (
        "A train leaves the station at noon and travels at sixty miles per hour. How far has the train gone by three?",
        ["150", "150"],
        "A train leaves the station at noon and travels at sixty miles per hour. How far has the train gone by thre?",
        "180",
    ),
}


def build(ws, tmp_path, cases=CASES):
    rows = [
        {"problem": problem, "response": f"<think>attempt {i}</think> The answer is $\\boxed{{{answer}}}$."}
        for problem, answers, _, _ in cases.values()
        for i, answer in enumerate(answers)
    ]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    run_ingest(ws, IngestConfig([str(pool)], mapping={"problem": "problem", "response": "response"}))
    refs = [{"problem": ref, "answer": answer} for _, _, ref, answer in cases.values()]
    return write_jsonl(tmp_path / "refs.jsonl", refs)


def outcomes(ws, stats, cases=CASES) -> dict:
    path = ws.run_dir("trace", stats["run_id"]) / "outcomes.parquet"
    rows = duckdb.sql(f"SELECT problem_id, outcome, gold_answer, support FROM read_parquet('{path}')").fetchall()
    by_id = {r[0]: r[1:] for r in rows}
    return {case: by_id[naive_problem_id(problem)] for case, (problem, *_) in cases.items()}


def test_text_edits_tell_drift_from_templated_neighbours():
    assert text_edit("find p such that f(x) = (2x+3)/(px-2)", "find a such that f(x) = (x-3)/(ax-2)") == (
        CHANGED_EXPRESSION
    )
    assert text_edit("solve x^2+1=5 for the root", "solve x^2-1=5 for the root") == CHANGED_EXPRESSION
    assert text_edit("what is the perimeter of it?", "what is the area of it?") == SUBSTITUTED_WORD
    assert text_edit("how many cows are there?", "what number of cows are there?") == SUBSTITUTED_WORD
    # drift: a typo, a dropped or an added word, a label before the text
    assert text_edit("buys five more at the market", "buys five more at the makret") is None
    assert text_edit("each of the boxes holds", "each of boxes holds") is None
    assert text_edit("buys 5 more at the market", "buys 5 more cows at the market") is None
    assert text_edit("what is the sum?", "problem 12. what is the sum?") is None


def test_fuzzy_matches_need_the_pools_word(ws, tmp_path):
    refs = build(ws, tmp_path)
    stats = run_trace(ws, TraceConfig([str(refs)], preset="benchmark"))
    assert outcomes(ws, stats) == {
        "expression": ("unmatched", None, None),  # a changed expression is no copy
        "equation": ("unmatched", None, None),
        # the area's 15 has one response, the perimeter's 16 has more: not the plurality
        "quantity": ("fuzzy_unconfirmed", None, None),
        "typo": ("fuzzy", "22", 2),
        "dropped_word": ("fuzzy", "48", 1),
        "prefix": ("fuzzy", "720", 1),  # 720.0: math-verify finds them equal
        "fraction": ("fuzzy", "\\dfrac12", 2),
        "disputed": ("fuzzy_unconfirmed", None, None),
    }
    assert stats["problems"]["fuzzy"] == 4 and stats["problems"]["fuzzy_unconfirmed"] == 2
    assert stats["evidence"]["answers_checked"] == 6
    assert query(ws, "SELECT count(*), count(*) FILTER (WHERE match_method = 'fuzzy') FROM gold") == [(4, 4)]


def test_confirmation_threshold_and_keeping_unconfirmed_drift(ws, tmp_path):
    refs = build(ws, tmp_path)
    strict = run_trace(ws, TraceConfig([str(refs)], preset="benchmark", confirm_min_responses=2))
    got = outcomes(ws, strict)
    assert {c for c, o in got.items() if o[0] == "fuzzy"} == {"typo", "fraction"}
    assert got["dropped_word"] == ("fuzzy_unconfirmed", None, None)  # one response of two agrees
    kept = run_trace(ws, TraceConfig([str(refs)], preset="benchmark", keep_unconfirmed=True))
    got = outcomes(ws, kept)
    assert got["disputed"] == ("fuzzy", "180", 0)  # drift only: kept, with its support on record
    assert got["quantity"] == ("fuzzy_unconfirmed", None, None)  # a substituted word needs confirmation
    assert got["expression"] == ("unmatched", None, None)


CONFLICTED = "How many primes are there below twelve?"


@pytest.mark.parametrize(
    ("said", "policy", "expected"),
    [
        (["4", "4", "5"], "consensus", ("exact", "4", "second", "consensus")),
        (["4", "5"], "consensus", ("exact", "5", "first", "priority_no_agreement")),  # a tie
        (["7"], "consensus", ("exact", "5", "first", "priority_no_agreement")),
        (["4", "4", "5"], "priority", ("exact", "5", "first", "priority")),
        (["4", "4", "5"], "drop", ("conflict_dropped", "5", "first", "dropped")),
    ],
)
def test_conflicts_are_settled_by_consensus_and_listed(ws, tmp_path, said, policy, expected):
    rows = [{"problem": CONFLICTED, "response": f"<think>{i}</think> \\boxed{{{a}}}"} for i, a in enumerate(said)]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    run_ingest(ws, IngestConfig([str(pool)], mapping={"problem": "problem", "response": "response"}))
    first = write_jsonl(tmp_path / "first.jsonl", [{"problem": CONFLICTED, "answer": "5"}])
    second = write_jsonl(tmp_path / "second.jsonl", [{"problem": CONFLICTED, "answer": "4"}])
    stats = run_trace(ws, TraceConfig([str(first), str(second)], preset="benchmark", on_conflict=policy))
    path = ws.run_dir("trace", stats["run_id"]) / "outcomes.parquet"
    assert duckdb.sql(f"SELECT outcome, gold_answer, answer_source, resolution FROM '{path}'").fetchall() == [expected]
    support = [said.count("4"), said.count("5")]
    assert query(ws, "SELECT resolution, policy, answers, answer_support, responses FROM trace_conflicts") == [
        (expected[3], policy, ["4", "5"], support, len(said))
    ]
    assert stats["conflicts"]["by_resolution"][expected[3]] == 1
    gold = query(ws, "SELECT gold_answer, conflict FROM gold")
    assert gold == ([] if policy == "drop" else [(expected[1], True)])
    listed = CliRunner().invoke(app, ["sql", str(ws.root), "--query", "trace_conflicts", "--format", "csv"])
    assert listed.exit_code == 0 and expected[3] in listed.output, listed.output
