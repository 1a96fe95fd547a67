"""Reference-answer sources for the pool's problems, as tracing meets them in the wild.

Two layouts: `numina15` has an `answer` column (like NuminaMath-1.5: problem, solution,
answer, problem_type, question_type, source, synthetic); `numina_cot` has only a
`solution` whose last \\boxed{} is the answer (like NuminaMath-CoT: source, problem,
solution, messages). Every pool problem gets one tracing case, in exact shares:

- `exact`: one source has it, the text the same up to whitespace (the problem_id
  normalization undoes it);
- `normalized`: one source has it with LaTeX or unicode drift (`\\,`, `\\left(`,
  `\\dfrac`, ligatures and full-width punctuation, an instruction suffix) that a
  stronger normalization undoes;
- `fuzzy`: one source has it with a word-level edit (a typo, a dropped word, a numbered
  prefix, a synonym) that only fuzzy matching finds;
- `agree`: both sources have it, with the same answer;
- `conflict`: both sources have it, with different answers (one of them the gold);
- `placeholder`: a source has it with no usable answer (`proof`, `notfound`, empty, or a
  solution without \\boxed);
- `missing`: no source has it.

Problems that are not in the pool fill the sources too, as in real reference sets.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

import pyarrow as pa
from rapidfuzz import fuzz

from curate.synth.families import FAMILIES, Problem, Solution
from curate.synth.latex import tex
from curate.synth.mix import exact_mix, stream
from curate.text.instructions import KNOWN_SUFFIXES

ANSWER_FILE, SOLUTION_FILE = "numina15", "numina_cot"
TRACE_CASES = ("exact", "normalized", "fuzzy", "agree", "conflict", "placeholder", "missing")
EXPECTED_METHOD = {"exact": "exact", "normalized": "normalized", "fuzzy": "fuzzy", "agree": "exact"}
EXACT_DRIFTS = ("none", "whitespace")
NORMALIZED_DRIFTS = ("latex_spacing", "left_right", "dfrac", "unicode", "instruction")
FUZZY_DRIFTS = ("typo", "dropped_word", "prefix", "reword")
PLACEHOLDERS = ("proof", "notfound", "empty", "no_box")  # the last one: a solution without \boxed
ORIGINS = ("olympiads", "cn_k12", "orca_math", "synthetic_math", "aops_forum", "amc_aime")

# Fuzzy-matching guarantees, in rapidfuzz.fuzz.ratio over `loose` text: any two distinct
# problems of the world score below DISTINCT_BELOW; a fuzzy-drifted text scores at least
# FUZZY_AT_LEAST against its own problem. A matcher threshold between them finds each
# fuzzy case and nothing else.
DISTINCT_BELOW = 85.0
FUZZY_AT_LEAST = 92.0

_MATH = re.compile(r"\$[^$]*\$")
_REWORDS = (
    ("How many", "What number of"),
    ("What is", "Find"),
    ("Find", "Determine"),
    ("wants", "would like"),
    ("different", "distinct"),
    ("in each", "per"),
    ("makes it true", "satisfies it"),
)


def loose(text: str) -> str:
    """The text fuzzy scores are taken over: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _outside_math(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of text that are not inside $...$."""
    spans, start = [], 0
    for m in _MATH.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    return [*spans, (start, len(text))]


def _in_one_math_segment(text: str, rng: random.Random, needs: str, edit) -> str | None:
    segments = [m for m in _MATH.finditer(text) if needs in m.group(0)]
    if not segments:
        return None
    m = rng.choice(segments)
    return text[: m.start()] + edit(m.group(0)) + text[m.end() :]


def drift(text: str, kind: str, rng: random.Random) -> str | None:
    """`text` with one kind of drift, or None where the kind does not apply to it."""
    if kind == "none":
        return text
    if kind == "whitespace":
        gaps = [i for i, ch in enumerate(text) if ch == " "]
        chosen = set(rng.sample(gaps, min(len(gaps), 3)))
        fills = ("  ", "\n", "\u00a0", " \t")
        return "".join(rng.choice(fills) if i in chosen else ch for i, ch in enumerate(text)) + "\n"
    if kind == "latex_spacing":
        return _in_one_math_segment(text, rng, " ", lambda seg: seg.replace(" ", "\\, "))
    if kind == "left_right":
        return _in_one_math_segment(text, rng, "(", lambda seg: seg.replace("(", "\\left(").replace(")", "\\right)"))
    if kind == "dfrac":
        return text.replace("\\frac{", "\\dfrac{") if "\\frac{" in text else None
    if kind == "unicode":  # compatibility characters that NFKC maps back
        return text.replace("fi", "\ufb01").replace("?", "\uff1f")
    if kind == "instruction":
        return f"{text}\n{rng.choice(KNOWN_SUFFIXES)}"
    if kind == "prefix":
        k = rng.randint(1, 40)
        return rng.choice((f"Problem {k}. ", f"Question {k}: ", f"{k}. ", f"Exercise {k}. ")) + text
    if kind == "typo":
        words = [
            (start + m.start(), m.group(0))
            for start, end in _outside_math(text)
            for m in re.finditer(r"[A-Za-z]{5,}", text[start:end])
        ]
        if not words:
            return None
        at, word = rng.choice(words)
        i = rng.randrange(1, len(word) - 2)
        swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return None if swapped == word else text[:at] + swapped + text[at + len(word) :]
    if kind == "dropped_word":
        hits = [start + m.start() for start, end in _outside_math(text) for m in re.finditer(r" the ", text[start:end])]
        if not hits:
            return None
        at = rng.choice(hits)
        return text[:at] + text[at + 4 :]
    if kind == "reword":
        usable = [(old, new) for old, new in _REWORDS if old in text]
        if not usable:
            return None
        old, new = rng.choice(usable)
        return text.replace(old, new, 1)
    raise ValueError(f"unknown drift kind {kind!r}")


def _first_drift(text: str, kinds: tuple[str, ...], rng: random.Random, fuzzy: bool = False) -> tuple[str, str]:
    order = list(kinds)
    rng.shuffle(order)
    for kind in order:
        drifted = drift(text, kind, rng)
        if drifted is None or drifted == text:
            continue
        if fuzzy and fuzz.ratio(loose(drifted), loose(text)) < FUZZY_AT_LEAST:
            continue
        return kind, drifted
    raise AssertionError(f"no drift of {kinds} applies to {text!r}")


def textbook_solution(solution: Solution, boxed: bool = True, box_a_step: bool = False) -> str:
    """A short worked solution in the voice of a reference set. `box_a_step` also boxes
    the first step's math, as multi-part solutions do, so only the last box is the answer."""
    notes = [note[:1].upper() + note[1:] + "." for note in solution.notes]
    if box_a_step:
        notes[0] = _MATH.sub(lambda m: f"$\\boxed{{{m.group(0)[1:-1]}}}$", notes[0], count=1)
    answer = tex(solution.answer)
    final = f"$\\boxed{{{answer}}}$" if boxed else f"${answer}$"
    return " ".join(notes) + f" Therefore {solution.conclusion}, so the answer is {final}."


@dataclass
class _Row:
    file: str
    problem: str
    answer: str  # numina15's answer column; for numina_cot, what its last box holds ("" if none)
    solution: str
    question_type: str = "math-word-problem"
    origin: str = ""
    family: str = ""
    trace: dict | None = None  # the manifest entry of the pool problem it belongs to


def _case_rows(problem: Problem, case: str, rng: random.Random) -> tuple[dict, list[_Row]]:
    """One pool problem's tracing case: its manifest entry and its reference rows."""
    solution, gold = problem.solve(), problem.gold
    trace: dict = {"case": case, "gold": None, "method": EXPECTED_METHOD.get(case), "rows": []}
    if case in ("exact", "normalized", "fuzzy"):
        kinds = {"exact": EXACT_DRIFTS, "normalized": NORMALIZED_DRIFTS, "fuzzy": FUZZY_DRIFTS}[case]
        trace["drift"], text = _first_drift(problem.text, kinds, rng, fuzzy=case == "fuzzy")
        trace["gold"] = gold
        file = rng.choice((ANSWER_FILE, SOLUTION_FILE))
        return trace, [_Row(file, text, gold, textbook_solution(solution, box_a_step=rng.random() < 0.3))]
    if case == "agree":
        trace["gold"] = gold
        worked = textbook_solution(solution)
        return trace, [_Row(ANSWER_FILE, problem.text, gold, worked), _Row(SOLUTION_FILE, problem.text, gold, worked)]
    if case == "conflict":
        wrong = problem.slipped(rng)
        answers = [(gold, solution), (tex(wrong.answer), wrong)]
        rng.shuffle(answers)
        files = (ANSWER_FILE, SOLUTION_FILE)
        return trace, [_Row(f, problem.text, a, textbook_solution(w)) for f, (a, w) in zip(files, answers)]
    if case == "placeholder":
        kind = trace["placeholder"] = rng.choice(PLACEHOLDERS)
        unboxed = textbook_solution(solution, boxed=False)
        if kind == "no_box":
            return trace, [_Row(SOLUTION_FILE, problem.text, "", unboxed)]
        if kind == "proof":
            steps = " ".join(note[:1].upper() + note[1:] + "." for note in solution.notes)
            proof = f"Proof. {steps} This completes the proof."
            return trace, [_Row(ANSWER_FILE, problem.text, "proof", proof, question_type="proof")]
        return trace, [_Row(ANSWER_FILE, problem.text, "" if kind == "empty" else "notfound", unboxed)]
    return trace, []  # missing


def build_references(
    seed: int, pool: list[Problem], others: list[Problem], shares: dict[str, float], planted: list[Problem] = ()
):
    """The two reference tables and, per pool problem (then per planted one), what tracing
    should find for it. Planted problems (leaks.py) are outside the shares: each is an
    `exact` case, so its responses verify as a leaked benchmark problem's would."""
    rng = stream(seed, "references")
    cases = exact_mix(rng, len(pool), {case: shares.get(case, 0.0) for case in TRACE_CASES})
    cases += ["exact"] * len(planted)
    rows: list[_Row] = []
    traces: list[dict] = []
    for index, (problem, case) in enumerate(zip([*pool, *planted], cases)):
        case_rng = stream(seed, "reference", index)
        origin = case_rng.choice(ORIGINS)
        trace, mine = _case_rows(problem, case, case_rng)
        traces.append(trace)
        for row in mine:
            row.origin, row.family, row.trace = origin, problem.family, trace
        rows.extend(mine)
    for index, problem in enumerate(others):
        other_rng = stream(seed, "reference-other", index)
        file = other_rng.choice((ANSWER_FILE, SOLUTION_FILE))
        worked = textbook_solution(problem.solve())
        rows.append(
            _Row(file, problem.text, problem.gold, worked, origin=other_rng.choice(ORIGINS), family=problem.family)
        )
    rng.shuffle(rows)
    tables = {}
    for file in (ANSWER_FILE, SOLUTION_FILE):
        mine = [row for row in rows if row.file == file]
        for position, row in enumerate(mine):
            if row.trace is not None:
                row.trace["rows"].append({"file": file, "row": position, "answer": row.answer})
        tables[file] = _answer_table(mine) if file == ANSWER_FILE else _solution_table(mine)
    for trace in traces:
        trace["rows"].sort(key=lambda hit: hit["file"])
    return tables, traces


def _answer_table(rows: list[_Row]) -> pa.Table:
    return pa.table(
        {
            "problem": [r.problem for r in rows],
            "solution": [r.solution for r in rows],
            "answer": [r.answer for r in rows],
            "problem_type": [FAMILIES[r.family].topic for r in rows],
            "question_type": [r.question_type for r in rows],
            "source": [r.origin for r in rows],
            "synthetic": [r.origin == "synthetic_math" for r in rows],
        }
    )


def _solution_table(rows: list[_Row]) -> pa.Table:
    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.table(
        {
            "source": [r.origin for r in rows],
            "problem": [r.problem for r in rows],
            "solution": [r.solution for r in rows],
            "messages": pa.array(
                [[{"role": "user", "content": r.problem}, {"role": "assistant", "content": r.solution}] for r in rows],
                messages,
            ),
        }
    )
