"""The learnable world (drills in strategy styles): every equation a response writes is
the arithmetic it claims, except the one slip of a wrong answer; each style writes what
docs/test-bed.md says; problems with the same numbers read apart; held-out problems are new."""

import json
import re
from collections import Counter
from fractions import Fraction

import pytest
from rapidfuzz import fuzz

from curate.synth.drills import DRILLS
from curate.synth.references import DISTINCT_BELOW, loose
from curate.synth.styles import STRATEGIES
from curate.synth.world import WorldConfig, build_world, load_manifest
from curate.trace.fuzzy import numbers_in
from curate.workspace import OxaError

DRILL_WORLD = WorldConfig(problems=210, heldout=21, reference_only=28, corpus_problems=35)
# "a op b = c", and the chained forms the strategies write: "a + b = a + t + o = m + o = v"
EQUATION = re.compile(r"(-?\d+) ([-+*/]) \(?(-?\d+)\)? = (-?\d+)")
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: Fraction(a, b)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drills") / "world"
    build_world(folder, DRILL_WORLD)
    return folder


def rows(world) -> list[dict]:
    return [json.loads(line) for line in (world / "pool" / "teacher.jsonl").read_text().splitlines()]


def wrong_steps(text: str) -> int:
    """How many 'a op b = c' of the reasoning do not hold (chains: every link checked)."""
    think = text.split("</think>")[0]
    wrong = 0
    for line in think.splitlines():
        for chain in re.findall(r"-?\d+(?: [-+*/] \(?-?\d+\)?)+(?: = -?\d+(?: [-+*/] -?\d+)*)+", line):
            sides = [eval(side.replace("(", "").replace(")", ""), {}, {}) for side in chain.split(" = ")]  # noqa: S307
            wrong += any(Fraction(s).limit_denominator() != Fraction(sides[0]).limit_denominator() for s in sides[1:])
    return wrong


def test_each_style_writes_true_arithmetic_and_slips_once(world):
    manifest, pool = load_manifest(world), rows(world)
    assert manifest["families"] == list(DRILLS) and manifest["styles"] == list(STRATEGIES)
    by_style = Counter()
    for sample in manifest["samples"]:
        text = pool[sample["row"]]["output"]
        by_style[sample["style"]] += 1
        if sample["flaw"] in ("none", "equivalent_form", "missing_box", "missing_think_close"):
            assert wrong_steps(text) == 0, text
        elif sample["flaw"] == "wrong_answer":  # one slip, carried through: the chain from it on agrees with it
            assert wrong_steps(text) >= 1, text
    # every style on every problem in turn: the counts differ by at most one per problem's share
    assert set(by_style) == set(STRATEGIES) and max(by_style.values()) - min(by_style.values()) < 0.1 * len(pool)


def test_styles_write_what_the_readme_says(world):
    manifest, pool = load_manifest(world), rows(world)
    clean = [s for s in manifest["samples"] if s["flaw"] == "none"]
    for sample in clean:
        text = pool[sample["row"]]["output"]
        think = text.split("</think>")[0][len("<think>\n") :].strip()
        lines = think.splitlines()
        if sample["style"] == "terse":
            assert all(EQUATION.fullmatch(line) for line in lines), think
        elif sample["style"] == "worded":
            assert lines[0].startswith(("First,", "To start,")) and lines[-1].startswith("So ")
        elif sample["style"] == "split":
            assert lines[0] in ("Split the numbers into tens and ones.", "Work with tens and ones.", "Use place value.")
        elif sample["style"] == "check":
            assert lines[0] in ("Check each step by undoing it.", "Verify every step.", "Each step gets a check.")
            assert any(", check: " in line for line in lines[1:])
        elif sample["style"] == "noisy":
            assert all(EQUATION.search(line) for line in lines) and not all(EQUATION.fullmatch(line) for line in lines)
    splits = [pool[s["row"]]["output"] for s in clean if s["style"] == "split"]
    assert any(re.search(r"\d+ \+ \d+ = \d+ \+ \d+ \+ \d+ = \d+ \+ \d+ = \d+", t) for t in splits)  # by tens and ones
    assert any(re.search(r"\d+ \* \d+ = \d+ \* \d+ \+ \d+ \* \d+ = \d+ \+ \d+ = \d+", t) for t in splits)


def test_problems_with_the_same_numbers_read_apart_and_held_out_ones_are_new(world):
    manifest, pool = load_manifest(world), rows(world)
    problems = sorted({r["input"] for r in pool if r["category"] == "math"})
    assert len(problems) == len(manifest["problems"]) == DRILL_WORLD.problems
    heldout = [item["problem"] for item in json.loads((world / "heldout.json").read_text())]
    every = problems + heldout
    assert not set(heldout) & set(problems)
    by_numbers: dict[tuple, list[str]] = {}
    for text in every:
        by_numbers.setdefault(tuple(sorted(numbers_in(text).elements())), []).append(loose(text))
    pairs = [(a, b) for group in by_numbers.values() for i, a in enumerate(group) for b in group[i + 1 :]]
    assert all(fuzz.ratio(a, b) < DISTINCT_BELOW for a, b in pairs)
    assert {item["family"] for item in json.loads((world / "heldout.json").read_text())} == set(DRILLS)


def test_strategies_need_drills(tmp_path):
    with pytest.raises(
        OxaError, match=r"styles terse, split rewrite the steps of the drills .* families mean have none"
    ):
        build_world(tmp_path / "w", WorldConfig(problems=8, families=["restock", "mean"], styles=["terse", "split"]))
    with pytest.raises(OxaError, match=r"family list \['restock', 'restock'\]: name each once"):
        build_world(tmp_path / "w", WorldConfig(problems=8, families=["restock", "restock"]))
    with pytest.raises(OxaError, match="style list \\['poetic'\\]"):
        build_world(tmp_path / "w", WorldConfig(problems=8, styles=["poetic"]))
