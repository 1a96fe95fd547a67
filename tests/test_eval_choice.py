"""`oxa eval` on multiple-choice sets (GPQA, MMLU layouts): shuffling, the letter judge,
accuracy with its interval, per-subject tables, and a run with a tiny model."""

import csv
import random

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate.benchmarks.choice import (
    MMLU_STEM,
    ChoiceQuestion,
    extract_letter,
    judge_letters,
    render,
    shuffle_options,
)
from curate.benchmarks.sets import load_prompt_set, problem_seed, resolve_sets
from curate.cli import app
from curate.workspace import OxaError
from train.eval.evaluate import SAMPLES
from train.eval.report import write_report

runner = CliRunner()

GPQA_ROWS = [
    {
        "Record ID": "rec1",
        "Question": "Which gas is a noble gas?",
        "Correct Answer": "Argon",
        "Incorrect Answer 1": "Nitrogen",
        "Incorrect Answer 2": "Oxygen",
        "Incorrect Answer 3": "Chlorine",
        "High-level domain": "Chemistry",
    },
    {
        "Record ID": "rec2",
        "Question": "What is the SI unit of force?\nPick one.",  # a line break inside a quoted csv field
        "Correct Answer": "newton ",
        "Incorrect Answer 1": "joule",
        "Incorrect Answer 2": "watt",
        "Incorrect Answer 3": "pascal",
        "High-level domain": "Physics",
    },
    {
        "Record ID": "rec3",
        "Question": "Which organelle makes ATP?",
        "Correct Answer": "mitochondrion",
        "Incorrect Answer 1": "ribosome",
        "Incorrect Answer 2": "nucleus",
        "Incorrect Answer 3": "vacuole",
        "High-level domain": "Biology",
    },
]
MMLU_ROWS = [
    {"question": "2 + 3 = ?", "subject": "high_school_mathematics", "choices": ["4", "5", "6", "7"], "answer": 1},
    {"question": "Who wrote the Republic?", "subject": "philosophy", "choices": ["Plato", "Kant", "Hume", "Marx"], "answer": 0},
    {"question": "Unit of charge?", "subject": "college_physics", "choices": ["volt", "ohm", "coulomb", "tesla"], "answer": 2},
    {"question": "Bones in the adult body?", "subject": "anatomy", "choices": ["106", "206", "306", "406"], "answer": 1},
    {"question": "7 * 6 = ?", "subject": "high_school_mathematics", "choices": ["42", "36", "48", "49"], "answer": 0},
]  # fmt: skip


def _gpqa_csv(path):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(GPQA_ROWS[0]))
        writer.writeheader()
        writer.writerows(GPQA_ROWS)
    return path


def _mmlu_parquet(path, rows=MMLU_ROWS):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_shuffle_records_its_seed_and_tracks_the_correct_letter():
    question = ChoiceQuestion("q?", ("right", "w1", "w2", "w3"), 0, None, 0)
    letters = []
    for i in range(200):
        seed = problem_seed(0, f"question-{i}")
        shuffled = shuffle_options(question, seed)
        order = [0, 1, 2, 3]
        random.Random(seed).shuffle(order)  # the documented rule, from the recorded seed alone
        assert shuffled.seed == seed and list(shuffled.order) == order
        assert shuffled.options == tuple(question.options[i] for i in order)
        assert shuffled.options["ABCD".index(shuffled.letter)] == "right"
        assert shuffle_options(question, seed) == shuffled  # deterministic
        letters.append(shuffled.letter)
    assert all(35 <= letters.count(letter) <= 65 for letter in "ABCD")  # the correct answer moves about
    assert render("q?", ("x", "y")) == "q?\n\nA) x\nB) y"


def test_gpqa_csv_and_parquet_load_the_same_shuffled_questions(tmp_path):
    path = _gpqa_csv(tmp_path / "gpqa_diamond.csv")
    ((name, resolved),) = resolve_sets(str(path))
    gpqa = load_prompt_set(name, resolved, shuffle_seed=7)
    assert (name, gpqa.kind, len(gpqa.problems)) == ("gpqa_diamond", "choice", 3)
    for problem, row in zip(gpqa.problems, GPQA_ROWS):
        assert problem.shuffle_seed == problem_seed(7, problem.problem_id)
        wrong = [row[f"Incorrect Answer {i}"] for i in (1, 2, 3)]
        order = [0, 1, 2, 3]
        random.Random(problem.shuffle_seed).shuffle(order)
        assert problem.choices == tuple([row["Correct Answer"].strip(), *wrong][i] for i in order)
        letter = problem.gold[0]
        assert problem.choices["ABCD".index(letter)] == row["Correct Answer"].strip()
        assert problem.problem == render(row["Question"], problem.choices)
        assert problem.subject == row["High-level domain"]
    assert gpqa.problems[1].problem.startswith("What is the SI unit of force?\nPick one.\n\nA) ")

    parquet = tmp_path / "gpqa.parquet"
    pq.write_table(pa.Table.from_pylist(GPQA_ROWS), parquet)
    same = load_prompt_set("gpqa", parquet, shuffle_seed=7)
    assert same.problems == gpqa.problems  # the same ids, seeds and order from either layout
    other = load_prompt_set(name, resolved, shuffle_seed=8)
    assert [p.problem_id for p in other.problems] == [p.problem_id for p in gpqa.problems]
    assert [p.choices for p in other.problems] != [p.choices for p in gpqa.problems]

    other_csv = tmp_path / "other.csv"
    other_csv.write_text("problem,answer\n1+1?,2\n")
    with pytest.raises(OxaError, match=r"other.csv has columns \['problem', 'answer'\]; a csv set must be in GPQA's"):
        load_prompt_set("other", other_csv)
    bad = dict(GPQA_ROWS[0], **{"Incorrect Answer 2": " "})
    pq.write_table(pa.Table.from_pylist([GPQA_ROWS[1], bad]), parquet)
    with pytest.raises(OxaError, match=rf"{parquet} row 1: an option is missing or empty"):
        load_prompt_set("gpqa", parquet)


def test_mmlu_layout_and_its_subjects(tmp_path):
    path = _mmlu_parquet(tmp_path / "test-00000-of-00001.parquet")
    stem = load_prompt_set("mmlu", path)  # the default: MMLU-STEM
    assert stem.kind == "choice"
    assert [p.subject for p in stem.problems] == [
        "high_school_mathematics",
        "college_physics",
        "high_school_mathematics",
    ]
    assert [p.choices["ABCD".index(p.gold[0])] for p in stem.problems] == ["5", "coulomb", "42"]
    assert "anatomy" not in MMLU_STEM and len(MMLU_STEM) == 18
    assert len(load_prompt_set("mmlu", path, mmlu_subjects="all").problems) == 5
    named = load_prompt_set("mmlu", path, mmlu_subjects="philosophy, anatomy")
    assert [p.subject for p in named.problems] == ["philosophy", "anatomy"]
    assert [p.source_row for p in named.problems] == [1, 3]
    with pytest.raises(
        OxaError, match=r"has no questions of subject\(s\) astronomy; it holds anatomy, college_physics"
    ):
        load_prompt_set("mmlu", path, mmlu_subjects="astronomy,philosophy")
    _mmlu_parquet(path, [dict(MMLU_ROWS[0], answer=4)])
    with pytest.raises(OxaError, match=rf"{path} row 0: answer 4 is no index of its 4 choices"):
        load_prompt_set("mmlu", path)
    _mmlu_parquet(path, [dict(MMLU_ROWS[1])])
    with pytest.raises(OxaError, match="holds no question of the chosen subjects; pass --mmlu-subjects all"):
        load_prompt_set("mmlu", path)


OPTIONS = ("12", "7", "x + 1", "none of these")


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("so \\boxed{B}", ("B", "boxed")),
        ("\\boxed{(c)}", ("C", "boxed")),  # lower case counts inside a box
        ("\\boxed{\\text{D}}", ("D", "boxed")),
        ("\\boxed{C) x + 1}", ("C", "boxed")),
        ("\\boxed{X + 1}", ("C", "boxed")),  # the text of exactly one option
        ("\\boxed{E}", (None, "no_letter")),  # no fifth option
        ("The answer is (B).", ("B", "answer_is")),
        ("Answer: C", ("C", "answer_is")),
        ("**Answer:** (D)", ("D", "answer_is")),
        ("so the answer is: $A$", ("A", "answer_is")),
        ("The answer is option B.", ("B", "answer_is")),
        ("The answer is A bit unclear", (None, "no_letter")),  # an article, not a letter
        ("(A) is wrong and so is (B); it must be (C)", ("C", "bare_letter")),
        ("After all that:\n**D**\n", ("D", "bare_letter")),
        ("A ball rolls down a hill.", (None, "no_letter")),
        # precedence: a boxed letter over a phrase, a phrase over a bare letter, the last of each
        ("\\boxed{A} though the answer is (B)", ("A", "boxed")),
        ("\\boxed{12}\\boxed{7}", ("B", "boxed")),
        ("(C) looks right. The answer is (B). Or (D)?", ("B", "answer_is")),
        ("Answer: A ... no wait, Answer: D.", ("D", "answer_is")),
        ("\\boxed{42} the answer is (A)", ("A", "answer_is")),  # a box that names no option gives way
        ("<think>\\boxed{A}</think> The answer is (D)", ("D", "answer_is")),  # only after </think>
        ("<think>it is \\boxed{A}</think>", (None, "no_letter")),
    ],
)
def test_letter_extraction_rules_and_precedence(completion, expected):
    assert extract_letter(completion, OPTIONS) == expected


def test_letter_judge_verdicts():
    completions = ["\\boxed{B}", "The answer is (A).", "no idea", "\\boxed{B}"]
    golds = ["B", "B", "B", "A"]
    assert judge_letters(golds, [OPTIONS] * 4, completions) == [
        ("B", "correct", "boxed"),
        ("A", "incorrect", "answer_is"),
        (None, "no_answer", "no_letter"),
        ("B", "incorrect", "boxed"),
    ]
    assert judge_letters(["B"], [OPTIONS], ["\\boxed{B}"], require_think=True) == [(None, "no_answer", "no_think")]


def test_choice_samples_are_judged_by_their_letters(tmp_path):
    from train.eval.evaluate import _samples
    from train.eval.sampling import GENERATED

    gpqa = load_prompt_set("gpqa", _gpqa_csv(tmp_path / "gpqa.csv"), shuffle_seed=5)
    rows = []
    for p in gpqa.problems:
        wrong = next(letter for letter in "ABCD" if letter != p.gold[0])
        for i, text in enumerate([f"<think>hm</think> \\boxed{{{p.gold[0]}}}", f"The answer is ({wrong}).", "no idea"]):
            rows.append({"problem_id": p.problem_id, "sample_index": i, "completion": text, "token_ids": [1, 2]})
    generated = pa.Table.from_pylist([dict(r, finish_reason="stop") for r in rows], GENERATED)
    samples = _samples(gpqa, generated, None, None, require_think=False).to_pylist()
    assert [(s["verdict"], s["reason"]) for s in samples] == [
        ("correct", "boxed"),
        ("incorrect", "answer_is"),
        ("no_answer", "no_letter"),
    ] * 3
    for s, p in zip(samples[::3], gpqa.problems):
        assert (s["gold_answer"], s["pred_answer"], s["choices"]) == ([p.gold[0]], p.gold[0], list(p.choices))
        assert (s["subject"], s["shuffle_seed"], s["n_tokens"]) == (p.subject, p.shuffle_seed, 2)


def _naive_interval(accuracies: list[float], seed: int) -> tuple[float, float]:
    """The percentile bootstrap written out: 2,000 resamples of questions with replacement."""
    draws = np.random.default_rng(seed).integers(0, len(accuracies), size=(2000, len(accuracies)))
    means = [sum(accuracies[i] for i in row) / len(row) for row in draws]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _choice_samples(out, name, questions):
    """questions: (id, subject, [verdicts]); the options stored mark the set as multiple choice."""
    rows = [
        {
            "problem_id": pid,
            "source_row": i,
            "problem": f"question {pid}",
            "gold_answer": ["A"],
            "sample_index": j,
            "completion": "\\boxed{A}",
            "n_tokens": 10 * (j + 1),
            "finish_reason": "stop",
            "pred_answer": None if v == "no_answer" else "A",
            "verdict": v,
            "reason": "boxed",
            "entropy_mean": 0.25,
            "subject": subject,
            "choices": ["a", "b", "c", "d"],
            "shuffle_seed": i,
        }
        for i, (pid, subject, verdicts) in enumerate(questions)
        for j, v in enumerate(verdicts)
    ]
    (out / "samples").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, SAMPLES), out / "samples" / f"{name}.parquet")


def test_report_accuracy_interval_and_subject_tables(tmp_path):
    out = tmp_path / "out"
    C, W, N = "correct", "incorrect", "no_answer"
    questions = [
        ("m1", "college_physics", [C, C]),
        ("m2", "college_physics", [W, C]),
        ("m3", "college_physics", [W, W]),
        ("m4", "high_school_mathematics", [C, N]),
        ("m5", "high_school_mathematics", [C, C]),
        ("m6", "abstract_algebra", [W, N]),
    ]
    _choice_samples(out, "mmlu", questions)
    math = [{"problem_id": "p1", "verdict": C}, {"problem_id": "p1", "verdict": W}]
    math = [
        dict(r, source_row=0, problem="p", gold_answer=["1"], sample_index=j, completion="", n_tokens=5)
        | {"finish_reason": "stop", "entropy_mean": None}
        for j, r in enumerate(math)
    ]
    pq.write_table(pa.Table.from_pylist(math, SAMPLES), out / "samples" / "aime.parquet")
    report = write_report(out, ["aime", "mmlu"])

    metrics = {r["benchmark"]: r for r in report["metrics"]}
    accuracies = [sum(v == C for v in vs) / len(vs) for _, _, vs in questions]
    mmlu = metrics["mmlu"]
    assert (mmlu["kind"], mmlu["problems"], mmlu["samples"]) == ("choice", 6, 12)
    assert mmlu["pass_at_1"] == pytest.approx(sum(accuracies) / 6)  # 3 / 6
    low, high = _naive_interval(accuracies, seed=1)  # the set's position in the report
    assert (mmlu["pass_at_1_low"], mmlu["pass_at_1_high"]) == pytest.approx((low, high), abs=1e-12)
    assert mmlu["no_answer_rate"] == pytest.approx(2 / 12) and mmlu["mean_entropy"] == pytest.approx(0.25)
    # the average is the math sets' (the paper's Avg. covers the math benchmarks)
    assert metrics["aime"]["kind"] == "math" and metrics["average"]["kind"] == "math"
    assert metrics["average"]["pass_at_1"] == pytest.approx(0.5) and metrics["average"]["problems"] == 1

    subjects = pl.read_parquet(out / "subjects.parquet").to_dicts()
    assert [s["subject"] for s in subjects] == ["abstract_algebra", "college_physics", "high_school_mathematics"]
    for position, s in enumerate(subjects):
        own = [a for (_, subject, _), a in zip(questions, accuracies) if subject == s["subject"]]
        assert s["questions"] == len(own) and s["accuracy"] == pytest.approx(sum(own) / len(own))
        expected = _naive_interval(own, seed=position)
        assert (s["accuracy_low"], s["accuracy_high"]) == pytest.approx(expected, abs=1e-12)
    assert subjects[1]["accuracy"] == pytest.approx(0.5) and subjects[2]["no_answer_rate"] == pytest.approx(0.25)

    table = (out / "table.md").read_text()
    assert "| aime | 1 | 2 | 50.0 [50.0, 50.0] |" in table
    assert "## Multiple choice" in table
    mmlu_line = next(line for line in table.splitlines() if line.startswith("| mmlu |"))
    low_pct, high_pct = f"{100 * low:.1f}", f"{100 * high:.1f}"
    assert mmlu_line == f"| mmlu | 6 | 2 | 50.0 [{low_pct}, {high_pct}] | 15 | 0.250 | 16.7 | 0.0 |"
    assert "### mmlu by subject" in table
    assert "| abstract_algebra | 1 | 0.0 [0.0, 0.0] | 15 | 0.250 | 50.0 |" in table

    # a run of multiple-choice sets alone: their average, and no math table
    (out / "samples" / "aime.parquet").unlink()
    _choice_samples(out, "gpqa", [("g1", None, [C, W]), ("g2", None, [W, W])])
    alone = {r["benchmark"]: r for r in write_report(out)["metrics"]}
    assert alone["average"]["kind"] == "choice"
    assert alone["average"]["pass_at_1"] == pytest.approx((0.25 + 0.5) / 2)
    assert "| Pass@1 |" not in (out / "table.md").read_text().split("## Pass@k")[0]


def test_eval_multiple_choice_end_to_end(tmp_path, tiny_models):
    gpqa = _gpqa_csv(tmp_path / "gpqa_diamond.csv")
    mmlu = _mmlu_parquet(tmp_path / "mmlu.parquet")
    out = tmp_path / "out"
    args = ["eval", "--model", tiny_models / "instruct", "--benchmarks", f"{gpqa},{mmlu}", "--out", out]
    args += ["--k", "2", "--max-new-tokens", "24", "--backend", "hf", "--device", "cpu", "--workers", "1"]
    args += ["--no-require-think", "--shuffle-seed", "3"]  # 24 tokens rarely close </think>: judged whole
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    for name, path, count in (("gpqa_diamond", gpqa, 3), ("mmlu", mmlu, 3)):
        samples = pl.read_parquet(out / "samples" / f"{name}.parquet")
        assert samples.columns == SAMPLES.names and samples.height == 2 * count
        problems = {p.problem_id: p for p in load_prompt_set(name, path, shuffle_seed=3).problems}
        for row in samples.to_dicts():
            problem = problems[row["problem_id"]]
            assert row["choices"] == list(problem.choices) and row["shuffle_seed"] == problem.shuffle_seed
            assert row["gold_answer"] == list(problem.gold) and row["problem"] == problem.problem
            letter, rule = extract_letter(row["completion"], problem.choices)
            verdict = "no_answer" if letter is None else "correct" if letter == problem.gold[0] else "incorrect"
            assert (row["pred_answer"], row["verdict"], row["reason"]) == (letter, verdict, rule)
        assert samples["n_tokens"].max() <= 24 and (samples["entropy_mean"] > 0).all()
    metrics = {r["benchmark"]: r for r in pl.read_parquet(out / "metrics.parquet").to_dicts()}
    assert metrics["gpqa_diamond"]["kind"] == metrics["mmlu"]["kind"] == "choice"
    subjects = pl.read_parquet(out / "subjects.parquet")
    assert subjects.filter(pl.col("benchmark") == "mmlu")["subject"].to_list() == [
        "college_physics",
        "high_school_mathematics",
    ]
    assert subjects.filter(pl.col("benchmark") == "gpqa_diamond")["subject"].to_list() == [
        "Biology",
        "Chemistry",
        "Physics",
    ]
    table = (out / "table.md").read_text()
    assert "### mmlu by subject" in table and "| mmlu | 3 | 2 |" in table

    # another shuffle is another configuration
    with pytest.raises(OxaError, match=r"another configuration \(shuffle_seed: 3 -> 4\)"):
        runner.invoke(app, [str(a) for a in args[:-1] + ["4"]], catch_exceptions=False)
