"""problem_id and sample_id: the SQL macros against a naive Python reference."""

import duckdb
import pytest

from curate.workspace.resources import sql_text
from tests.conftest import naive_normalize, naive_problem_id, naive_sample_id

TRICKY = [
    "What is $1+1$?",
    "  What is $1+1$?  ",
    "What\tis\n\n$1+1$?",
    "What\u00a0is\u3000$1+1$?\r\n",
    "What is $1+1$?\u2028",
    "Cafe\u0301 problem",  # NFD e + combining acute -> NFC é
    "Café problem",
    "x^2 + y^2 = z^2",
    "x^{2} + y^{2} = z^{2}",
    "Line one\x0b\x0cline two",
    "tab\t \t mixed   spaces",
    "zero\u200bwidth",  # not a separator: kept
]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute(sql_text("macros.sql"))
    return c


@pytest.mark.parametrize("text", TRICKY)
def test_normalize_and_ids_match_reference(con, text):
    normalized, pid, sid = con.execute(
        "SELECT oxa_normalize_problem($t), oxa_problem_id($t), oxa_sample_id(oxa_problem_id($t), $r)",
        {"t": text, "r": "<think>x</think> \\boxed{2}"},
    ).fetchone()
    assert normalized == naive_normalize(text)
    assert pid == naive_problem_id(text)
    assert sid == naive_sample_id(text, "<think>x</think> \\boxed{2}")


def test_whitespace_and_nfc_variants_share_one_id():
    assert len({naive_problem_id(t) for t in TRICKY[:5]}) == 1
    assert naive_problem_id(TRICKY[5]) == naive_problem_id(TRICKY[6])
    assert naive_problem_id("x^2 + y^2 = z^2") != naive_problem_id("x^{2} + y^{2} = z^{2}")
    assert naive_problem_id("zero\u200bwidth") != naive_problem_id("zerowidth")
