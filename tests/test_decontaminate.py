"""`oxa decontaminate`: planted copies of the shipped benchmark problems are found under the
right method, look-alikes are not, and selection leaves out what was found."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.decontaminate import DecontaminateConfig, run_decontaminate
from curate.decontaminate.matching import classify
from curate.decontaminate.ngrams import tokenize
from curate.select import SelectConfig, run_select
from curate.workspace import OxaError, Workspace
from curate.workspace.resources import benchmarks_dir
from tests.conftest import naive_problem_id, naive_sample_id, query
from tests.pools import TAG, add_pool


def bench(name: str, row: int) -> str:
    return json.loads((benchmarks_dir() / f"{name}.json").read_text(encoding="utf-8"))[row]["problem"]


LOTTERY = bench("aime24", 3)  # Jen's lottery: \tfrac{m}{n}, "Find $m+n$."
GAME = bench("aime24", 2)  # Alice and Bob take 1 or 4 tokens, n <= 2024
LOGS = bench("aime24", 1)
CHAIRS = bench("aime25", 24)  # "Find the remainder when $N$ is divided by $1000$."
COMPLEX = bench("aime25", 7)

# pool problem -> (benchmark, row, method) it must match; None: it must match nothing
PLANTED = {
    "exact copy": (LOGS, ("aime24", 1, "exact")),
    "formatting drift": (
        LOTTERY.replace("\\tfrac", "\\dfrac").replace("$S.$", "\\(S\\).").replace(". ", ".\n\n", 2),
        ("aime24", 3, "exact"),
    ),
    "instruction around it": (
        "Solve the following problem carefully. "
        + COMPLEX
        + " Please reason step by step, and put your final answer within \\boxed{}.",
        ("aime25", 7, "contained"),
    ),
    "a word changed": (LOTTERY.replace("Jen enters a lottery", "Jen joins a lottery"), ("aime24", 3, "near")),
    "clauses reordered": (
        GAME.replace(
            "The players take turns with Alice going first. On each turn, the player removes either $1$ token "
            "or $4$ tokens from the stack.",
            "On each turn, the player removes either $1$ token or $4$ tokens from the stack. The players take "
            "turns with Alice going first.",
        ),
        ("aime24", 2, "near"),
    ),
    "numbers changed": (
        GAME.replace("$4$ tokens", "$3$ tokens").replace("$2024$", "$2025$"),
        ("aime24", 2, "template"),
    ),
    "remainder boilerplate": (
        "Let $N$ be the number of ordered pairs of positive integers $(a,b)$ with $a+b\\le 50$ such that $ab$ "
        "is a perfect square. Find the remainder when $N$ is divided by $1000$.",
        None,
    ),
    "m+n boilerplate": (
        "The probability that a randomly chosen positive divisor of $30^4$ is a perfect cube is $\\frac{m}{n}$, "
        "where $m$ and $n$ are relatively prime positive integers. Find $m+n$.",
        None,
    ),
    "unrelated": ("What is the sum of the first $100$ positive odd integers?", None),
}


def pool_rows() -> list[dict]:
    rows = [
        {"problem": text, "response": f"answer {i}", "verdict": "correct", "ppl": 2.0 + i / 100, "n_tokens": 100}
        for i, (text, _) in enumerate(PLANTED.values())
    ]
    two = {"problem": f"{LOGS}\n\n{CHAIRS}", "response": "both", "verdict": "correct", "ppl": 3.0, "n_tokens": 90}
    return [*rows, two]


@pytest.fixture
def pool(ws: Workspace, tmp_path: Path) -> Workspace:
    add_pool(ws, tmp_path, pool_rows())
    return ws


def matches(ws: Workspace) -> set[tuple]:
    return set(query(ws, "SELECT problem_id, benchmark, benchmark_problem, method FROM contamination"))


def test_planted_cases_are_found_under_their_method_and_look_alikes_are_not(pool):
    stats = run_decontaminate(pool, DecontaminateConfig())
    expected = {
        (naive_problem_id(text), *found) for text, found in PLANTED.values() if found is not None
    } | {  # two problems in one row: each is inside the longer text
        (naive_problem_id(f"{LOGS}\n\n{CHAIRS}"), "aime24", 1, "contained"),
        (naive_problem_id(f"{LOGS}\n\n{CHAIRS}"), "aime25", 24, "contained"),
    }
    assert matches(pool) == expected
    assert stats["checked"] == {"problem": {"pool": 10, "checked_before": 0, "checked_now": 10}}
    assert stats["contaminated"] == {"problem": 6}
    assert stats["template_only"] == {"problem": 1}
    assert stats["matches"]["aime24"]["problem_template"] == 1
    assert [b["name"] for b in stats["benchmarks"]] == ["aime24", "aime25", "brumo25", "cmimc25", "hmmt25", "minerva"]
    assert sum(b["problems"] for b in stats["benchmarks"]) == 432
    [(score, evidence)] = query(pool, "SELECT score, evidence FROM contamination WHERE method = 'template'")
    assert score == 1.0  # every word is there; the numbers are not
    assert evidence.startswith("numbers not in the candidate: 2024, 4")
    [(near_score,)] = query(
        pool, "SELECT score FROM contamination WHERE method = 'near' AND benchmark_problem = 3 AND benchmark = 'aime24'"
    )
    assert 0.8 <= near_score < 1.0


def test_coverage_and_numbers_decide_against_a_naive_reading():
    """classify() on token lists, against the rules written out by hand."""
    [bench_tokens, copy, template, fragment] = tokenize(
        [CHAIRS, "Hint: " + CHAIRS, CHAIRS.replace("16", "18"), "Find the remainder when $N$ is divided by $1000$."]
    )
    assert classify(bench_tokens, copy, 8, 0.8).method == "contained"
    assert classify(bench_tokens, template, 8, 0.8).method == "template"
    assert classify(bench_tokens, fragment, 8, 0.8) is None  # 10 of the problem's tokens
    # a benchmark problem shorter than n is matched as a whole
    [short, inside] = tokenize(["Compute $2^{10}$.", "Please compute $2^{10}$. Thanks."])
    assert len(short) < 8 and classify(short, inside, 8, 0.8).method == "contained"


def test_the_same_numbers_in_other_roles_are_another_problem():
    """The full demo's drill: the held-out problem's numbers, all of them, in other places
    (its answer is 8; the pool's, 14). A number in a covered stretch must stand inside an
    n-gram the candidate holds with its numbers as they are; one word changed keeps them."""
    held_out = (
        "On Monday in Hohhot it was 11 degrees. It fell by 5 degrees and then rose by 2. What is the temperature now?"
    )
    [bench_tokens, shuffled, edited] = tokenize(
        [
            held_out,
            "Last night in Helsinki it was 5 degrees. It fell by 2 degrees and then rose by 11. What is the temperature now?",
            held_out.replace("Monday", "Tuesday"),
        ]
    )
    match = classify(bench_tokens, shuffled, 8, 0.8)
    assert (match.method, round(match.score, 6)) == ("template", 0.846154)
    assert match.evidence == "numbers in other places: 11, 5, 2"
    assert classify(bench_tokens, edited, 8, 0.8).method == "near"


def test_a_rerun_checks_only_new_problems_and_other_settings_replace_the_matches(pool, tmp_path):
    first = run_decontaminate(pool, DecontaminateConfig())
    again = run_decontaminate(pool, DecontaminateConfig())
    assert again["checked"]["problem"] == {"pool": 10, "checked_before": 10, "checked_now": 0}
    assert again["contaminated"] == first["contaminated"] and again["fingerprint"] == first["fingerprint"]
    add_pool(pool, tmp_path, [{"problem": CHAIRS, "response": "x", "verdict": "correct", "ppl": 2.0, "n_tokens": 5}])
    third = run_decontaminate(pool, DecontaminateConfig())
    assert third["checked"]["problem"] == {"pool": 11, "checked_before": 10, "checked_now": 1}
    assert third["contaminated"] == {"problem": 7}
    only_2025 = run_decontaminate(pool, DecontaminateConfig(against=["aime25"]))
    assert only_2025["fingerprint"] != first["fingerprint"] and only_2025["parts_removed"] > 0
    assert {m[1] for m in matches(pool)} == {"aime25"}
    assert query(pool, "SELECT count(*) FROM contamination_checked") == [(11,)]


def test_responses_that_quote_a_benchmark_problem(ws, tmp_path):
    quoting = f"We recall the problem: {CHAIRS} The answer is 15."
    add_pool(ws, tmp_path, [{"problem": "How many chairs?", "response": quoting, "verdict": "correct"}])
    run_decontaminate(ws, DecontaminateConfig(against=["aime25"], responses=True))
    assert query(ws, "SELECT sample_id, field, benchmark_problem, method FROM contamination") == [
        (naive_sample_id("How many chairs?", quoting), "response", 24, "contained")
    ]


def test_parts_are_the_same_whatever_the_batches_and_in_id_order(ws, tmp_path, monkeypatch):
    """Texts are read in DuckDB's order, in batches bounded by bytes; the parts hold the
    checked ids and the matches in id order, byte for byte the same for any batch size."""
    import curate.decontaminate.decontaminate as stage

    rows = [
        {"problem": f"Problem {i}: how many chairs?", "response": f"Answer {i}. " + (CHAIRS if i % 3 == 0 else "x" * i),
         "verdict": "correct"}
        for i in range(40)
    ]  # fmt: skip
    add_pool(ws, tmp_path, rows)
    config = DecontaminateConfig(against=["aime25"], responses=True)

    def parts() -> dict[str, bytes]:
        return {
            p.name: p.read_bytes()
            for table in ("contamination", "contamination_checked")
            for p in sorted(ws.table_folder(table).glob("decontaminate-*.parquet"))
        }

    batches = []
    scan_batch = stage._Scan.batch
    monkeypatch.setattr(
        stage._Scan, "batch", lambda self, *args: (batches.append(len(args[1])), scan_batch(self, *args))
    )
    whole = run_decontaminate(ws, config)
    one_batch = parts()
    assert batches == [40, 40]  # the problems, then the responses
    for table in ("contamination", "contamination_checked"):
        for path in ws.table_folder(table).glob("decontaminate-*.parquet"):
            path.unlink()
    batches.clear()
    monkeypatch.setattr(stage, "_READ_ROWS", 3)
    monkeypatch.setattr(stage, "_BATCH_BYTES", 200)  # a response or two a batch
    small = run_decontaminate(ws, config)
    assert len(batches) > 10 and sum(batches) == 80 and max(batches) < 40
    assert parts() == one_batch and small["contaminated"] == whole["contaminated"] == {"problem": 0, "response": 14}
    checked = query(ws, "SELECT sample_id FROM contamination_checked WHERE field = 'response'")
    assert [s for (s,) in checked] == sorted(naive_sample_id(r["problem"], r["response"]) for r in rows)
    found = query(ws, "SELECT sample_id FROM contamination WHERE field = 'response'")
    assert [s for (s,) in found] == sorted(naive_sample_id(r["problem"], r["response"]) for r in rows[::3])


def test_a_failure_mid_run_ends_the_reading_and_pairing_threads_and_publishes_nothing(ws, tmp_path, monkeypatch):
    """The reading thread and the pairing threads end before the run's connection closes,
    and a failed run leaves no parts."""
    import threading

    import curate.decontaminate.decontaminate as stage

    add_pool(ws, tmp_path, [{"problem": f"Problem {i}?", "response": CHAIRS, "verdict": "correct"} for i in range(30)])
    monkeypatch.setattr(stage, "_READ_ROWS", 2)
    monkeypatch.setattr(stage, "_BATCH_BYTES", 100)
    calls = []

    def fail_on_the_third(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the third batch")

    monkeypatch.setattr(stage._Scan, "batch", fail_on_the_third)
    with pytest.raises(RuntimeError, match="the third batch"):
        run_decontaminate(ws, DecontaminateConfig(against=["aime25"], responses=True))
    assert [t.name for t in threading.enumerate() if t.name.startswith(("read-ahead", "ThreadPoolExecutor"))] == []
    assert not list(ws.table_folder("contamination").rglob("decontaminate-*.parquet"))


def test_masked_tokens_are_the_tokens_masked():
    """masked_tokens_expr cuts the masked tokens without the unmasked list: the same lists."""
    import polars as pl

    from curate.decontaminate.ngrams import masked, masked_tokens_expr, tokens_expr

    texts = [CHAIRS, "x12y and \\alpha2 + 10^{13} - a_{7}b # 3#4 ", "\\frac{1}{2}^{23}", "", "$2^{10}$ 007 1.5e3"]
    frame = pl.DataFrame({"t": texts}).with_columns(tokens_expr(pl.col("t")).alias("tokens"))
    expected = frame.select(masked(pl.col("tokens")))["tokens"].to_list()
    assert frame.select(masked_tokens_expr(pl.col("t")))["t"].to_list() == expected
    assert expected[1][:4] == ["x", "#", "y", "and"]


def test_benchmark_files_and_bad_settings(ws, tmp_path):
    own = tmp_path / "mine.jsonl"
    own.write_text(json.dumps({"problem": GAME, "answer": "809"}) + "\n", encoding="utf-8")
    add_pool(ws, tmp_path, [{"problem": GAME, "response": "r", "verdict": "correct"}])
    stats = run_decontaminate(ws, DecontaminateConfig(against=[str(own)]))
    assert stats["benchmarks"][0]["name"] == "mine" and stats["contaminated"] == {"problem": 1}
    with pytest.raises(OxaError, match="'aime26' is neither a built-in set"):
        run_decontaminate(ws, DecontaminateConfig(against=["aime26"]))
    with pytest.raises(OxaError, match="--min-coverage is a share in"):
        run_decontaminate(ws, DecontaminateConfig(min_coverage=1.5))


def _select(ws: Workspace, **settings) -> dict:
    config = SelectConfig(name="lp", strategy="lowest_ppl", scores_tag=TAG, n=2, allow_shortfall=True, **settings)
    return run_select(ws, config)


def test_selection_leaves_out_contaminated_candidates_and_the_card_says_so(pool):
    unchecked = _select(pool)
    assert unchecked["warnings"][0].startswith("no `oxa decontaminate` run in this workspace")
    assert unchecked["decontamination"]["run_id"] is None and unchecked["decontamination"]["rows_unchecked"] == 2
    card = (Path(unchecked["path"]) / "card.md").read_text(encoding="utf-8")
    assert "**Not checked against any benchmark**" in card

    run = run_decontaminate(pool, DecontaminateConfig())
    clean = _select(pool)
    assert clean["version"] != unchecked["version"]
    funnel = clean["parts"][0]["funnel"]
    assert funnel["input"] == 10 and funnel["dropped"]["contaminated"] == 6 and funnel["selected"] == 2
    data = pq.read_table(Path(clean["path"]) / "data.parquet")
    # lowest PPL first among the clean rows: the template match (kept by default), then the boilerplate one
    assert data["problem"].to_pylist() == [PLANTED["numbers changed"][0], PLANTED["remainder boilerplate"][0]]
    facts = json.loads((Path(clean["path"]) / "card.json").read_text(encoding="utf-8"))["decontamination"]
    assert facts["run_id"] == run["run_id"] and facts["fingerprint"] == run["fingerprint"]
    assert [b["name"] for b in facts["benchmarks"]] == [b["name"] for b in run["benchmarks"]]
    assert facts["dropped"] == {"selection": 6}
    assert facts["rows_matched"] == {"exact": 0, "contained": 0, "near": 0, "template": 1}
    assert facts["rows_unchecked"] == 0 and clean["warnings"] == []
    card = (Path(clean["path"]) / "card.md").read_text(encoding="utf-8")
    assert f"`oxa decontaminate` run `{run['run_id']}`" in card and "6 candidates dropped" in card

    no_templates = _select(pool, drop_templates=True)
    assert no_templates["parts"][0]["funnel"]["dropped"]["contaminated"] == 7
    assert no_templates["version"] != clean["version"]
    kept = _select(pool, exclude_contaminated=False)
    assert kept["parts"][0]["funnel"]["dropped"]["contaminated"] == 0
    assert kept["warnings"] == [
        "the subset keeps rows that hold a benchmark problem (exact 2): exclude_contaminated = false"
    ]  # the two lowest PPLs

    run_decontaminate(pool, DecontaminateConfig(against=["aime25"]))  # other benchmarks: another version
    assert _select(pool)["version"] not in {clean["version"], unchecked["version"]}


def test_problem_selection_counts_contaminated_problems(pool):
    run_decontaminate(pool, DecontaminateConfig())
    config = SelectConfig(name="rl", strategy="pass_rate", n=4, k=1, min_pass_rate=0.0, max_pass_rate=1.0)
    stats = run_select(pool, config)
    funnel = stats["parts"][0]["funnel"]
    assert funnel == {"unit": "problems", "input": 10, "dropped": {**funnel["dropped"]}, "selected": 4}
    assert funnel["dropped"]["contaminated"] == 6 and funnel["dropped"]["beyond_target"] == 0
    assert stats["parts"][0]["details"]["samples"]["contaminated"] == 6
    chosen = set(pq.read_table(Path(stats["path"]) / "data.parquet")["problem_id"].to_pylist())
    clean = {"numbers changed", "remainder boilerplate", "m+n boilerplate", "unrelated"}
    assert chosen == {naive_problem_id(PLANTED[kind][0]) for kind in clean}


def test_the_same_pool_gives_the_same_parts_byte_for_byte(pool, tmp_path):
    other = Workspace.init(tmp_path / "other")
    (tmp_path / "other-pool").mkdir()
    add_pool(other, tmp_path / "other-pool", pool_rows()[::-1])  # the same problems, ingested in another order
    for ws in (pool, other):
        run_decontaminate(ws, DecontaminateConfig(against=["aime24"]))

    def parts(ws: Workspace) -> dict[str, bytes]:
        folder = ws.root / "contamination"
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("decontaminate-*.parquet")}

    assert parts(pool) == parts(other) and len(parts(pool)) == 2


def test_a_gpqa_file_is_matched_on_its_question_not_its_options(ws, tmp_path):
    import csv

    question = (
        "A spin-1/2 particle is in a linear superposition $0.5|\\uparrow\\rangle+\\frac{\\sqrt{3}}{2}|\\downarrow\\rangle$ "
        "of its spin-up and spin-down states. What is the expectation value up to one decimal place of the operator "
        "$10\\sigma_z+5\\sigma_x$?"
    )
    path = tmp_path / "gpqa_diamond.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
        )
        writer.writerow([question, "-0.7", "0.85", "1.65", "-1.4"])
    add_pool(ws, tmp_path, [{"problem": f"{question}\nPut the final answer in a box.", "response": "r"}])
    stats = run_decontaminate(ws, DecontaminateConfig(against=[str(path)]))
    assert stats["benchmarks"][0] | {"sha256": None} == {
        "name": "gpqa_diamond", "path": str(path), "sha256": None, "problems": 1, "kind": "choice",
    }  # fmt: skip
    assert [m[1:] for m in matches(ws)] == [("gpqa_diamond", 0, "contained")]


def test_the_vectorized_coverage_equals_a_naive_one_over_all_pairs():
    """ngrams.BenchmarkIndex.candidates (hashes, Polars) against matching.coverage on
    every (text, benchmark problem) pair: the same pairs reach the coverage."""
    import polars as pl

    from curate.decontaminate.matching import coverage
    from curate.decontaminate.ngrams import BenchmarkIndex, masked, tokens_expr

    sets = ["aime24", "aime25", "hmmt25"]
    texts = [bench(name, row) for name in sets for row in range(30)]
    pool = [text for text, _ in PLANTED.values()] + [f"{LOGS}\n\n{CHAIRS}", CHAIRS[:120], "Compute $2^{10}$."]
    for min_coverage in (0.5, 0.8):
        index = BenchmarkIndex.build(texts, 8, min_coverage)
        frame = (
            pl.DataFrame({"t": pool})
            .with_row_index("row")
            .with_columns(tokens_expr(pl.col("t")).alias("tokens"))
            .with_columns(masked(pl.col("tokens")).alias("masked"))
        )
        pairs = index.candidates(frame)
        vectorized = set(zip(pairs["row"].to_pylist(), pairs["bench"].to_pylist()))
        pool_tokens = frame["tokens"].to_list()
        naive = {
            (row, b)
            for row, tokens in enumerate(pool_tokens)
            for b, bench_tokens in enumerate(index.tokens)
            if coverage(bench_tokens, tokens, 8)[0] >= min_coverage
        }
        assert vectorized == naive and len(naive) >= 8
