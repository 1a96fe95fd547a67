"""Answer extraction and the normalizations that tracing and the simple verdict use."""

import time

import polars as pl
import pyarrow as pa
import pytest

from curate.text.extract import (
    answer_region,
    as_math_input,
    braces_balanced,
    extract_answer,
    extract_answers,
    last_boxed,
)
from curate.text.instructions import strip_instruction_suffixes
from curate.text.normalize import answer_keys, match_key, match_text


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>try \\boxed{1}</think>\n\nSo $\\boxed{\\frac{1}{2}}$.", ("\\frac{1}{2}", None)),
        ("<think>a</think> b </think> last \\boxed{3}", ("3", None)),  # after the last </think>
        ("<think>only inside \\boxed{1}</think> no box after", (None, "no_box")),
        ("no think tag, \\boxed{7}", ("7", None)),
        ("\\fbox{x+1} then \\boxed{ 2 }", ("2", None)),
        ("\\boxed{5} and finally \\fbox{\\sqrt{2}}", ("\\sqrt{2}", None)),
        ("\\boxed {\\frac{a}{b^{2}}}", ("\\frac{a}{b^{2}}", None)),  # a space before the brace
        ("\\boxed{\\{1, 2\\}}", ("\\{1, 2\\}", None)),  # escaped braces are literal
        ("\\boxed{(1, 2)} as in \\boxed", ("(1, 2)", None)),  # a bare mention is no box
        ("\\boxed 5", (None, "no_box")),
        ("the answer is \\boxed{1 + {2", (None, "unbalanced_box")),  # truncated
        ("\\boxed{}", (None, "empty_box")),
        ("\\boxed{  }", (None, "empty_box")),
        ("\\boxed{½ ∞ 𝟙}", ("½ ∞ 𝟙", None)),
        ("", (None, "no_box")),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


def test_require_think():
    assert extract_answer("\\boxed{1}", require_think=True) == (None, "no_think")
    assert extract_answer("<think>x</think>\\boxed{1}", require_think=True) == ("1", None)
    assert answer_region("a</think>b", require_think=True) == "b"
    assert answer_region("ab", require_think=True) is None
    assert answer_region("ab") == "ab"


def test_batch_extraction_and_a_one_megabyte_response():
    huge = "<think>" + "x = y + 1. " * 100_000 + "</think> so \\boxed{42}"
    truncated = "<think>" + "{" * 200_000 + "</think> \\boxed{" + "1" * 1_000_000
    start = time.perf_counter()
    answers, reasons = extract_answers([huge, truncated, None, "\\boxed{1}"])
    assert time.perf_counter() - start < 2.0  # str.rfind and one regex scan; not quadratic
    assert answers == ["42", None, None, "1"]
    assert reasons == [None, "unbalanced_box", "no_box", None]
    assert last_boxed("\\boxed{a}\\boxed{b}") == ("b", None)


def test_as_math_input_wraps_answers_so_all_of_them_parses():
    assert as_math_input(" 2^{99} ") == "\\boxed{2^{99}}"
    assert as_math_input("$\\frac{1}{2}$") == "\\boxed{\\frac{1}{2}}"
    assert as_math_input("4.5e3") == "\\boxed{4500}"
    assert as_math_input("8.7 \\times 10^{8}") == "\\boxed{870000000}"
    assert as_math_input("-1.25\\cdot10^2") == "\\boxed{-125}"
    assert as_math_input("-1.2E-3\n") == "\\boxed{-1.2 \\times 10^{-3}}"
    assert as_math_input("7e300") == "\\boxed{7 \\times 10^{300}}"
    assert as_math_input("\\boxed{3}") == "\\boxed{3}"


def test_braces_balanced():
    assert braces_balanced("\\frac{1}{2}") and braces_balanced("\\{1\\}") and braces_balanced("")
    assert not braces_balanced("\\frac{1}{") and not braces_balanced("}{")


def test_match_text_folds_drift_between_copies_of_a_problem():
    variants = [
        "Find $x$ if $\\frac{x}{2} = 3$ and $y^{2} = 4$.",
        "Find  $x$ if $\\dfrac{x}{2}=3$ and $y^2 = 4$",
        "FIND $x$ if $\\left. \\tfrac{x}{2}\\,=\\!3 \\right.$ and $y^{2}=4$.",
        "Find \\(x\\) if \\(\\frac{x}{2} = 3\\) and \\(y^{2} = 4\\)．",
        "Find $x$ if $\\frac{x}{2} = 3$ and $y^{2} = 4$.\nPlease reason step by step, and put your final answer within \\boxed{}.",
    ]
    stripped, _ = strip_instruction_suffixes(pa.array(variants))
    keys = pl.select(match_key(match_text(pl.Series(stripped.to_pylist())))).to_series().to_list()
    assert len(set(keys)) == 1, keys
    texts = pl.select(match_text(pl.Series(["Find  x ’s  −1 value."]))).to_series().to_list()
    assert texts == ["find x 's -1 value"]


def test_answer_keys():
    assert answer_keys(
        ["\\dfrac{1}{2}", "$\\frac{1}{2}$", " \\frac{1}{2}. ", "\\left(1, 2\\right)", "1\\,000", None]
    ) == [
        "\\frac{1}{2}",
        "\\frac{1}{2}",
        "\\frac{1}{2}",
        "(1,2)",
        "1000",
        None,
    ]
    assert answer_keys(["\\text{(A)}", "A", "a"]) == ["(A)", "A", "a"]  # case is kept


def test_commands_followed_by_a_digit_are_folded():
    # \dfrac12 is \frac12: a command name ends before a digit too, not only before a brace
    assert answer_keys(["\\dfrac12", "\\tfrac34", "\\dbinom52", "x\\leq5", "\\geq 0", "\\displaystyle1"]) == [
        "\\frac12",
        "\\frac34",
        "\\binom52",
        "x\\le5",
        "\\ge0",
        "1",
    ]
    # a longer command that only starts the same way is left alone
    assert answer_keys(["\\leqslant", "\\dfracx", "\\tbinomial"]) == ["\\leqslant", "\\dfracx", "\\tbinomial"]


def test_bare_box_mentions_after_the_answer_and_spaces_in_exponents():
    """The last command is found past any number of bare mentions in prose (found in one
    pass: searching back from each was quadratic, 40 s on a 4 MiB looping trace), and an
    exponent's spaces are read without backtracking (a long run of them took seconds)."""
    from curate.text.extract import as_math_input, last_boxed

    prose = " I will put it in \\boxed later." * 2000
    assert last_boxed("\\boxed{7}" + prose) == ("7", None)
    assert last_boxed("\\fbox {8} then \\boxed{9}" + prose) == ("9", None)
    assert last_boxed(prose) == (None, "no_box")
    assert as_math_input("8.7 \\times 10^ { 8 }") == "\\boxed{870000000}"
    assert as_math_input("8.7 \\times 10^  8") == "\\boxed{870000000}"
    assert as_math_input("2 \\cdot 10^{-3}") == "\\boxed{2 \\times 10^{-3}}"
    spaces = "1 \\times 10^" + " " * 20_000 + "x"
    assert as_math_input(spaces) == f"\\boxed{{{spaces}}}"
