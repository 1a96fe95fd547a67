"""Multiple-choice benchmarks in `oxa eval` (the paper's out-of-domain GPQA diamond and
MMLU-STEM, Fig. 4d): the public file layouts, option shuffling, and the letter judge.

Layouts, found by their columns: GPQA (`Question`, `Correct Answer`, `Incorrect Answer
1`..`3`, and `High-level domain` as the subject where present; csv as gpqa_diamond.csv,
or parquet) and MMLU (`question`, `choices` list, `answer` index, `subject`; cais/mmlu's
parquet). Each question's options are shuffled with Python's `random.Random(seed)`, the
seed derived from (--shuffle-seed, question id) and stored with the samples; the
question is shown with lettered options, and the answer is the letter of the correct
option. The letter judge replaces math-verify for these sets (see `extract_letter`).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from curate.ingest.sources import ArrowBatch, SourceFile, read_batches
from curate.text.extract import NO_THINK, answer_region, last_boxed
from curate.workspace import OxaError

GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
GPQA_SUBJECT = "High-level domain"
MMLU_COLUMNS = ("question", "choices", "answer", "subject")
# MMLU-STEM: the subjects of the "STEM" category in the MMLU authors' categories.py
# (hendrycks/test): physics, chemistry, biology, computer science, math, engineering.
# lm-evaluation-harness's mmlu_stem group also counts anatomy (19 subjects).
MMLU_STEM = (
    "abstract_algebra",
    "astronomy",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "electrical_engineering",
    "elementary_mathematics",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_mathematics",
    "high_school_physics",
    "high_school_statistics",
    "machine_learning",
)
CHOICE_INSTRUCTION = (
    "Let's reason step by step. Enclose the reasoning process within <think>...</think>, then summarize it "
    "and present the letter of the correct option within \\boxed{} — for example: "
    "<think>reasoning process here</think> \\boxed{letter here}."
)
LETTERS = string.ascii_uppercase
# how a letter was found (the samples' `reason`), in order of precedence
BOXED, ANSWER_IS, BARE_LETTER = "boxed", "answer_is", "bare_letter"
NO_LETTER = "no_letter"

_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|mathit|textrm)\s*\{(.*)\}$", re.DOTALL)
_LEADING_LETTER = re.compile(r"^\(?([A-Za-z])(?:\)|\.|:)(?:\s|$)")
# "answer is (B)", "Answer: C", "**Answer:** (D)", "the answer is option B."; the letter
# must stand in brackets or be followed by punctuation or the end of its line
_ANSWER_IS = re.compile(
    r"(?i:answer)(?:\s+is\b\s*:?|\s*:)[\s\*]*(?i:option\s+)?(?:[\(\[]\s*([A-Z])\s*[\)\]]|\$?\**([A-Z])(?=[\s\*\$]*$|[.,;:\*\$]))",
    re.MULTILINE,
)
_BARE = re.compile(r"\(([A-Z])\)|^[^\w\n]*([A-Z])[^\w\n]*$", re.MULTILINE)


@dataclass(frozen=True)
class ChoiceQuestion:
    question: str
    options: tuple[str, ...]  # in the file's order
    correct: int  # index of the correct option in `options`
    subject: str | None
    source_row: int


@dataclass(frozen=True)
class Shuffled:
    options: tuple[str, ...]  # in the order shown, lettered A, B, ...
    order: tuple[int, ...]  # order[i]: the file position of the option shown as LETTERS[i]
    letter: str  # the correct option's letter
    seed: int


def choice_layout(columns: list[str]) -> str | None:
    """'gpqa' or 'mmlu' when the columns hold that layout, else None."""
    if set(GPQA_COLUMNS) <= set(columns):
        return "gpqa"
    if set(MMLU_COLUMNS) <= set(columns):
        return "mmlu"
    return None


def parse_subjects(spec: str) -> tuple[str, ...] | None:
    """--mmlu-subjects: 'stem' (MMLU_STEM), 'all' (None: no filter) or comma-separated names."""
    if spec.strip() == "stem":
        return MMLU_STEM
    if spec.strip() == "all":
        return None
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    if not names:
        raise OxaError(f"--mmlu-subjects {spec!r} names no subject; use stem, all, or names such as college_physics")
    return names


def read_choice_questions(file: SourceFile, layout: str) -> list[ChoiceQuestion]:
    """Every question of a file in its layout, in file order; a malformed row fails naming it."""
    questions = []
    for row, record in enumerate(_records(file)):
        where = f"{file.path} row {row}"
        if layout == "gpqa":
            question = record["Question"]
            options = [record[c] for c in GPQA_COLUMNS[1:]]
            correct, subject = 0, record.get(GPQA_SUBJECT)
        else:
            question, options, correct, subject = (record[c] for c in MMLU_COLUMNS)
            if not isinstance(options, list | tuple) or not isinstance(correct, int) or isinstance(correct, bool):
                raise OxaError(f"{where}: choices must be a list and answer an index, got {options!r} and {correct!r}")
            if not 0 <= correct < len(options):
                raise OxaError(
                    f"{where}: answer {correct} is no index of its {len(options)} choices; fix or drop the row"
                )
        if not isinstance(question, str) or not question.strip():
            raise OxaError(f"{where}: the question is empty; fix or drop the row")
        if any(not isinstance(o, str) or not o.strip() for o in options):
            raise OxaError(f"{where}: an option is missing or empty ({options!r}); fix or drop the row")
        if not 2 <= len(options) <= len(LETTERS):
            raise OxaError(f"{where}: {len(options)} options; a question needs 2 to {len(LETTERS)}")
        stripped = tuple(o.strip() for o in options)
        subject = subject.strip() if isinstance(subject, str) and subject.strip() else None
        questions.append(ChoiceQuestion(question.strip(), stripped, correct, subject, row))
    return questions


def _records(file: SourceFile) -> list[dict]:
    if file.format == "csv":
        options = pacsv.ParseOptions(newlines_in_values=True)
        # every column as text: an option such as -0.7 is an answer, not a number to infer
        as_text = pacsv.ConvertOptions(column_types=dict.fromkeys(GPQA_COLUMNS, pa.string()))
        return pacsv.read_csv(file.path, parse_options=options, convert_options=as_text).to_pylist()
    records: list[dict] = []
    for batch in read_batches(file):
        if isinstance(batch, ArrowBatch):
            records += batch.table.to_pylist()
        elif batch.unreadable:
            bad = batch.unreadable[0]
            raise OxaError(f"{file.path} row {bad.row}: {bad.reason} ({bad.detail}); fix or drop the row")
        else:
            records += batch.objects
    return records


def keep_subjects(questions: list[ChoiceQuestion], subjects: tuple[str, ...] | None, path: Path, named: bool):
    """The questions of the listed subjects; a subject named by the user that the file lacks fails."""
    if subjects is None:
        return questions
    present = {q.subject for q in questions}
    missing = sorted(set(subjects) - present)
    if named and missing:
        raise OxaError(
            f"{path} has no questions of subject(s) {', '.join(missing)}; it holds {', '.join(sorted(map(str, present)))}"
        )
    kept = [q for q in questions if q.subject in set(subjects)]
    if not kept:
        raise OxaError(f"{path} holds no question of the chosen subjects; pass --mmlu-subjects all or other names")
    return kept


def question_key(question: ChoiceQuestion) -> str:
    """The text a question's id is hashed from: the question and its options in file order."""
    return question.question + "\n\n" + "\n".join(question.options)


def shuffle_options(question: ChoiceQuestion, seed: int) -> Shuffled:
    """The options in the order `random.Random(seed).shuffle` puts them; the correct one's letter."""
    order = list(range(len(question.options)))
    random.Random(seed).shuffle(order)
    letter = LETTERS[order.index(question.correct)]
    return Shuffled(tuple(question.options[i] for i in order), tuple(order), letter, seed)


def render(question: str, options: tuple[str, ...]) -> str:
    """The question, a blank line, and one `A) option` line per option."""
    return question + "\n\n" + "\n".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(options))


def extract_letter(completion: str, options: tuple[str, ...], require_think: bool = False) -> tuple[str | None, str]:
    """(letter, rule) or (None, reason), from the answer region (the text after the last
    `</think>`, as for math). The rules, in precedence order: `boxed`, the last
    `\\boxed{}` when it holds an option's letter (`C`, `(C)`, `\\text{C}`, `C) text`) or
    exactly one option's text; `answer_is`, the last "answer is (C)" / "Answer: C";
    `bare_letter`, the last "(C)" or a line holding only the letter ("C.", "**C**").
    Only the options' letters count; outside a box only capitals."""
    region = answer_region(completion, require_think)
    if region is None:
        return None, NO_THINK
    letters = LETTERS[: len(options)]
    boxed, _ = last_boxed(region)
    if boxed is not None and (letter := _boxed_letter(boxed, letters, options)):
        return letter, BOXED
    for rule, pattern in ((ANSWER_IS, _ANSWER_IS), (BARE_LETTER, _BARE)):
        found = [m.group(1) or m.group(2) for m in pattern.finditer(region)]
        found = [f for f in found if f in letters]
        if found:
            return found[-1], rule
    return None, NO_LETTER


def _boxed_letter(content: str, letters: str, options: tuple[str, ...]) -> str | None:
    text = content.strip()
    while wrapped := _WRAPPER.match(text):
        text = wrapped.group(1).strip()
    bare = text.strip("()[]*. ")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    if (leading := _LEADING_LETTER.match(text)) and leading.group(1).upper() in letters:
        return leading.group(1).upper()
    same = [i for i, o in enumerate(options) if _plain(o) == _plain(text)]
    return letters[same[0]] if len(same) == 1 else None


def _plain(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".")


def judge_letters(
    golds: list[str], options: list[tuple[str, ...]], completions: list[str], require_think: bool = False
) -> list[tuple[str | None, str, str]]:
    """(pred_answer, verdict, reason) per completion: correct or incorrect with the rule
    that found the letter as the reason, or no_answer with why."""
    verdicts = []
    for gold, shown, completion in zip(golds, options, completions):
        letter, reason = extract_letter(completion, shown, require_think)
        verdict = "no_answer" if letter is None else "correct" if letter == gold else "incorrect"
        verdicts.append((letter, verdict, reason))
    return verdicts
