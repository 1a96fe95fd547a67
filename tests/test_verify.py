"""`oxa verify`: every verdict kind, equality with a plain per-row math-verify loop, the
cache, settings and gold changes, resume after a kill, and the deadline pool."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import pytest
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from curate.ingest import IngestConfig, run_ingest
from curate.text.extract import as_math_input, braces_balanced, extract_answer
from curate.verify import VerifierSettings, VerifyConfig, run_verify
from curate.verify.deadline_pool import DeadlinePool, ItemFailure
from curate.workspace import OxaError
from tests.conftest import REAL_DATA, query, write_jsonl

FAST = VerifierSettings(deadline_s=3.0, parse_timeout_s=0, verify_timeout_s=0, max_answer_chars=1000)


def add_pool(ws, path: Path, rows: list[dict]) -> None:
    """Ingest rows of {problem, response[, gold]} (a row without 'gold' gives no answer)."""
    write_jsonl(path, rows)
    mapping = {"problem": "problem", "response": "response", "gold_answer": "gold"}
    run_ingest(ws, IngestConfig([str(path)], mapping=mapping))


def verdicts(ws) -> dict[tuple[str, str], tuple]:
    """(problem, response) -> (pred_answer, verdict, reason, simple_verdict), from the verify view."""
    rows = query(
        ws,
        "SELECT p.problem, s.response, v.pred_answer, v.verdict, v.reason, v.simple_verdict "
        "FROM verify AS v JOIN samples AS s USING (sample_id) JOIN problems AS p ON p.problem_id = v.problem_id",
    )
    return {(r[0], r[1]): r[2:] for r in rows}


def R(answer: str) -> str:
    return f"<think>\nwork it out\n</think>\n\nThe answer is $\\boxed{{{answer}}}$."


HUGE = "<think>" + "a long thought. " * 70_000 + "</think> so \\boxed{\\frac{1}{2}}"  # ~1.1 MB
LONG_BOX = "<think>x</think> \\boxed{" + "1" * 1_200 + "}"


def test_every_verdict_kind_with_its_reason(ws, tmp_path):
    rows = [
        {"problem": "half", "response": R("0.5"), "gold": "\\frac{1}{2}"},
        {"problem": "half", "response": R("\\dfrac{1}{2}"), "gold": "\\frac{1}{2}"},
        {"problem": "half", "response": R("3"), "gold": "\\frac{1}{2}"},
        {"problem": "half", "response": "<think>no box</think> it is one half", "gold": "\\frac{1}{2}"},
        {"problem": "half", "response": "<think>x</think> \\boxed{\\frac{1}{2", "gold": "\\frac{1}{2}"},
        {"problem": "half", "response": HUGE, "gold": "\\frac{1}{2}"},
        {"problem": "half", "response": "<think>x</think> \\boxed{½}", "gold": "\\frac{1}{2}"},
        {"problem": "half", "response": LONG_BOX, "gold": "\\frac{1}{2}"},
        {"problem": "tower", "response": R("9^{9^{9^{9}}}"), "gold": "5"},
        {"problem": "tower", "response": R("10^{10^{10}}!"), "gold": "5"},
        {"problem": "no gold", "response": R("1")},
        {"problem": "empty gold", "response": R("1"), "gold": ""},  # a placeholder: ingest gives no gold
        {"problem": "unbalanced gold", "response": R("1"), "gold": "\\frac{1}{"},
        {"problem": "unparseable gold", "response": R("1"), "gold": "\\boxed{}"},
    ]
    add_pool(ws, tmp_path / "pool.jsonl", rows)
    start = time.perf_counter()
    stats = run_verify(ws, VerifyConfig(FAST, workers=2))
    # the two hung pairs run side by side and cost about one deadline, not a hang
    assert time.perf_counter() - start < 30
    got = verdicts(ws)
    assert got["half", R("0.5")] == ("0.5", "correct", None, "incorrect")
    assert got["half", R("\\dfrac{1}{2}")] == ("\\dfrac{1}{2}", "correct", None, "correct")
    assert got["half", R("3")] == ("3", "incorrect", None, "incorrect")
    assert got["half", "<think>no box</think> it is one half"] == (None, "no_answer", "no_box", "no_answer")
    assert got["half", "<think>x</think> \\boxed{\\frac{1}{2"] == (None, "no_answer", "unbalanced_box", "no_answer")
    assert got["half", HUGE] == ("\\frac{1}{2}", "correct", None, "correct")
    assert got["half", "<think>x</think> \\boxed{½}"] == ("½", "incorrect", None, "incorrect")
    assert got["half", LONG_BOX][1:] == ("error", "answer_too_long: 1,200 characters", "incorrect")
    assert len(got["half", LONG_BOX][0]) == 1000  # stored cut to max_answer_chars
    for tower in ("9^{9^{9^{9}}}", "10^{10^{10}}!"):
        assert got["tower", R(tower)] == (tower, "timeout", "killed after the 3 s deadline", "incorrect")
    by_problem = dict(
        query(
            ws, "SELECT p.problem, v.reason FROM verify v JOIN problems p USING (problem_id) WHERE verdict = 'bad_gold'"
        )
    )
    assert by_problem == {
        "no gold": "the problem has no gold answer (run oxa trace)",
        "empty gold": "the problem has no gold answer (run oxa trace)",
        "unbalanced gold": "the gold answer's braces do not balance",
        "unparseable gold": "the gold answer does not parse",
    }
    assert stats["funnel"] == {"samples": 14, "already_verified": 0, "verified": 14}
    assert stats["verdicts"] == {
        "correct": 3,
        "bad_gold": 4,
        "incorrect": 2,
        "no_answer": 2,
        "timeout": 2,
        "error": 1,
    }
    assert stats["agreement"] == {
        "both_decided": 5,
        "agree": 4,
        "rate": 0.8,
        "math_verify_only_correct": 1,
        "simple_only_correct": 0,
    }
    assert stats["workers"]["killed_at_deadline"] == 2
    # the verdicts are in the run folder's stats and in the catalog's runs table
    recorded = json.loads((ws.run_dir("verify", stats["run_id"]) / "stats.json").read_text())
    assert recorded["verdicts"] == stats["verdicts"]


def test_math_verify_own_timeouts_are_recorded_as_timeouts(ws, tmp_path):
    add_pool(ws, tmp_path / "pool.jsonl", [{"problem": "tower", "response": R("9^{9^{9}}"), "gold": "5"}])
    settings = VerifierSettings(deadline_s=20.0, parse_timeout_s=1, verify_timeout_s=1)
    stats = run_verify(ws, VerifyConfig(settings, workers=1))
    assert stats["verdicts"] == {"timeout": 1}
    assert stats["reasons"] == {"timeout: math-verify's comparison timed out": 1}
    assert stats["workers"]["killed_at_deadline"] == 0


def test_require_think_and_lenient_extraction(ws, tmp_path):
    rows = [
        {"problem": "p", "response": "\\boxed{4}", "gold": "4"},
        {"problem": "p", "response": "<think>x</think> The final answer is 4.", "gold": "4"},
        {"problem": "p", "response": "<think>x</think> \\boxed{4}", "gold": "4"},
    ]
    add_pool(ws, tmp_path / "pool.jsonl", rows)
    assert VerifierSettings().require_think  # the paper's rule is the default
    run_verify(ws, VerifyConfig())
    assert {r: v[1:3] for (_, r), v in verdicts(ws).items()} == {
        "\\boxed{4}": ("no_answer", "no_think"),
        "<think>x</think> The final answer is 4.": ("no_answer", "no_box"),
        "<think>x</think> \\boxed{4}": ("correct", None),
    }
    run_verify(ws, VerifyConfig(VerifierSettings(extraction="lenient", require_think=False)))
    assert {r: v[:3] for (_, r), v in verdicts(ws).items()} == {  # the view follows the last run's settings
        "\\boxed{4}": ("4", "correct", None),
        "<think>x</think> The final answer is 4.": ("4", "correct", None),
        "<think>x</think> \\boxed{4}": ("4", "correct", None),
    }
    assert query(
        ws,
        "SELECT count(*), count(DISTINCT settings_hash) FROM read_parquet(?)",
        [str(ws.table_folder("verify") / "verify-*.parquet")],
    ) == [(6, 2)]


# -- the same verdicts as a plain per-row loop ---------------------------------------------

_CONFIG = [LatexExtractionConfig(), ExprExtractionConfig()]


def plain_verdict(row: tuple[str | None, str]) -> str:
    """The reference: math-verify called row by row, with the extraction and gold
    wrapping of curate/text/extract.py and the documented verdict precedence."""
    gold, response = row
    if gold is None or not gold.strip() or not braces_balanced(gold):
        return "bad_gold"
    parsed_gold = parse(as_math_input(gold), _CONFIG)
    if not parsed_gold:
        return "bad_gold"
    answer, _ = extract_answer(response)
    if answer is None:
        return "no_answer"
    parsed = parse(as_math_input(answer), _CONFIG)
    return "correct" if parsed and verify(parsed_gold, parsed) else "incorrect"


def answer_forms(p: int) -> tuple[str, list[str], list[str]]:
    """Problem p's gold, equivalent forms of it and wrong answers (distinct per problem)."""
    k = p // 6 + 2
    return [
        (str(k), [str(k), f"{k}.0", f"\\frac{{{2 * k}}}{{2}}", f"0{k}"], [str(k + 1), str(-k)]),
        (
            f"\\frac{{{k}}}{{{k + 1}}}",
            [f"\\dfrac{{{k}}}{{{k + 1}}}", f"{k}/{k + 1}", f"\\frac{{{2 * k}}}{{{2 * k + 2}}}"],
            [f"\\frac{{{k + 1}}}{{{k}}}"],
        ),
        (
            f"{k}\\sqrt{{2}}",
            [f"\\sqrt{{{2 * k * k}}}", f"{k} \\sqrt{{2}}", f"\\sqrt{{2}} \\cdot {k}"],
            [f"\\sqrt{{{k}}}"],
        ),
        (f"({k}, {k + 1})", [f"({k},{k + 1})", f"\\left({k}, {k + 1}\\right)"], [f"({k + 1}, {k})", f"({k}, {k + 2})"]),
        (f"{k}\\pi", [f"\\pi {k}", f"{k} \\pi"], [f"{k + 1}\\pi", f"{3.14 * k:.2f}"]),
        (f"x^2+{k}", [f"{k}+x^2", f"x^{{2}} + {k}"], [f"x^2-{k}"]),
    ][p % 6]


def generated_rows(seed: int, problems: int, per_problem: int) -> list[dict]:
    """Responses shaped like a teacher pool: most share the modal (correct) answer."""
    rng = random.Random(seed)
    rows = []
    for p in range(problems):
        gold, equivalent, wrong = answer_forms(p)
        modal = rng.choice(equivalent)
        for k in range(per_problem):
            roll = rng.random()
            if roll < 0.6:
                response = R(modal)
            elif roll < 0.75:
                response = R(rng.choice(equivalent))
            elif roll < 0.9:
                response = R(rng.choice(wrong))
            elif roll < 0.95:
                response = f"<think>{k}</think> no box"
            else:
                response = R(rng.choice(wrong)).replace("}$.", "")  # truncated
            rows.append({"problem": f"Problem {p}: find it.", "response": f"{response} % {k}", "gold": gold})
    rows.append({"problem": "no gold", "response": R("1")})
    return rows


def test_verdicts_equal_a_plain_per_row_math_verify_loop(ws, tmp_path):
    rows = generated_rows(seed=7, problems=240, per_problem=9)  # 2,161 rows
    add_pool(ws, tmp_path / "pool.jsonl", rows)
    stats = run_verify(ws, VerifyConfig(VerifierSettings(), workers=2))
    with get_context("forkserver").Pool(2) as pool:
        expected = pool.map(plain_verdict, [(r.get("gold"), r["response"]) for r in rows], chunksize=64)
    got = verdicts(ws)
    assert [got[r["problem"], r["response"]][1] for r in rows] == expected
    assert stats["funnel"]["verified"] == len(rows)
    assert stats["distinct"]["pairs"] < len(rows) / 3  # each distinct pair judged once


def test_cache_new_samples_rerun_and_gold_changes(ws, tmp_path):
    rows = generated_rows(seed=1, problems=16, per_problem=6)
    add_pool(ws, tmp_path / "a.jsonl", rows)
    first = run_verify(ws, VerifyConfig(FAST))
    assert first["judged"]["pairs"] == first["distinct"]["pairs"] > 0
    again = run_verify(ws, VerifyConfig(FAST))
    assert again["funnel"] == {"samples": len(rows), "already_verified": len(rows), "verified": 0}
    # new samples whose answers were judged before: all from the cache
    more = [{**r, "response": r["response"] + " (again)"} for r in rows]
    add_pool(ws, tmp_path / "b.jsonl", more)
    third = run_verify(ws, VerifyConfig(FAST))
    assert third["funnel"]["verified"] == len(more) and third["judged"] == {"golds": 0, "pairs": 0}
    assert query(ws, "SELECT count(*), count(DISTINCT sample_id) FROM verify") == [(2 * len(rows), 2 * len(rows))]
    # new gold answers (one problem gets another, the rest none): stale verdicts leave
    # the view, and the next run verifies those samples again
    problem = rows[0]["problem"]
    n = sum(r["problem"] == problem for r in rows) * 2
    write_jsonl(tmp_path / "gold.jsonl", [{"problem": problem, "answer": "\\frac{3}{4}"}])
    answers = ws.table_folder("answers")
    for part in answers.glob("ingest-*.parquet"):
        part.unlink()  # drop the given answers; the new file gives the only one
    run_ingest(ws, IngestConfig([str(tmp_path / "gold.jsonl")], preset="benchmark"))
    # every verdict was judged against a gold that changed, but the 2 of "no gold"
    assert query(ws, "SELECT count(*) FROM verify") == [(2,)]
    fourth = run_verify(ws, VerifyConfig(FAST))
    assert fourth["funnel"]["verified"] == 2 * len(rows) - 2
    assert query(ws, "SELECT count(*) FROM verify") == [(2 * len(rows),)]
    assert query(ws, "SELECT count(*) FROM verify WHERE verdict <> 'bad_gold'") == [(n,)]


def test_resume_after_a_kill_has_no_duplicate_or_missing_verdicts(ws, tmp_path):
    rows = generated_rows(seed=3, problems=60, per_problem=8)
    add_pool(ws, tmp_path / "pool.jsonl", rows)
    script = (
        "import sys; from curate.workspace import Workspace; from curate.verify import VerifyConfig, run_verify\n"
        "from curate.verify.mathcheck import VerifierSettings\n"
        "if __name__ == '__main__':\n"
        "    run_verify(Workspace.open(sys.argv[1]), VerifyConfig(VerifierSettings(), workers=1, batch_rows=50,"
        " rows_per_part=50))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(ws.root)], cwd=Path(__file__).parents[1])
    deadline = time.monotonic() + 60
    while len(list(ws.table_folder("verify").glob("verify-*.parquet"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    written = len(list(ws.table_folder("verify").glob("verify-*.parquet")))
    assert 3 <= written < len(rows) / 50, "the run finished before the kill; make it slower"
    stats = run_verify(ws, VerifyConfig(VerifierSettings(), workers=2))
    assert stats["funnel"]["already_verified"] >= 150
    assert stats["cache_hits"]["pairs"] > 0  # pairs judged before the kill are not judged again
    parts = str(ws.table_folder("verify") / "verify-*.parquet")
    assert query(ws, "SELECT count(*), count(DISTINCT sample_id) FROM read_parquet(?)", [parts]) == [
        (len(rows), len(rows))
    ]
    with get_context("forkserver").Pool(2) as pool:
        expected = pool.map(plain_verdict, [(r.get("gold"), r["response"]) for r in rows], chunksize=64)
    got = verdicts(ws)
    assert [got[r["problem"], r["response"]][1] for r in rows] == expected


# -- the real benchmark answers, in equivalent and perturbed forms --------------------------

EQUIVALENT = {
    "\\frac{9 \\sqrt{23}}{23}": ["\\frac{9\\sqrt{23}}{23}", "\\dfrac{9}{\\sqrt{23}}", "9/\\sqrt{23}"],
    "1-\\frac{2}{\\pi}": ["\\frac{\\pi-2}{\\pi}", "1 - 2/\\pi", "-\\frac{2}{\\pi}+1"],
    "2^{99}": [str(2**99), "2^{99}", "4^{49} \\cdot 2"],
    "8.7 \\times 10^{8}": ["870000000", "8.7e8", "8.7 \\cdot 10^8", "87 \\times 10^{7}"],
    "4.5e33": ["4.5 \\times 10^{33}", "4.5e33", "45 \\times 10^{32}"],
    "7 \\times 10^{37}": ["7e37", "7\\times10^{37}"],
    "\\frac{-1+\\sqrt{17}}{2}, \\frac{-1-\\sqrt{17}}{2}": [
        "\\frac{-1-\\sqrt{17}}{2}, \\frac{-1+\\sqrt{17}}{2}",
        "\\dfrac{-1+\\sqrt{17}}{2},\\dfrac{-1-\\sqrt{17}}{2}",
    ],
    "2,3,\\frac{3+i\\sqrt{3}}{2},\\frac{3-i\\sqrt{3}}{2}": ["3, 2, \\frac{3-i\\sqrt{3}}{2}, \\frac{3+i\\sqrt{3}}{2}"],
    "025": ["25", "25.0"],
    "\\frac{1507^{2}}{360^{2}}": ["\\left(\\frac{1507}{360}\\right)^2", "\\frac{2271049}{129600}"],
    "\\sqrt{\\frac{95}{24}}": ["\\frac{\\sqrt{570}}{12}"],
    "2^{25} \\cdot 26!": ["26! \\cdot 2^{25}"],
    "\\sqrt{23}-2 \\sqrt{3}": ["-2\\sqrt{3}+\\sqrt{23}"],
}
PERTURBED = {
    "\\frac{9 \\sqrt{23}}{23}": ["\\frac{9\\sqrt{23}}{24}", "\\frac{9\\sqrt{22}}{23}"],
    "1-\\frac{2}{\\pi}": ["1+\\frac{2}{\\pi}", "1-\\frac{2}{e}"],
    "2^{99}": ["2^{98}", str(2**99 + 1)],
    "8.7 \\times 10^{8}": ["8.7 \\times 10^{9}", "870000001"],
    "2,3,\\frac{3+i\\sqrt{3}}{2},\\frac{3-i\\sqrt{3}}{2}": ["2,3,\\frac{3+i\\sqrt{3}}{2}"],
    "025": ["26"],
}
# math-verify reads this minerva gold as 2 (a known misparse), so its perturbation too.
MISPARSED = "\\hbar \\omega(v+1 / 2)-\\frac{E_{0}^{2} e^{2}}{2 m \\omega^{2}}"


def perturbed(gold: str) -> str:
    """A wrong answer near the gold: its first number plus one (8.7e8 -> 9.7e8; adding 1
    to a huge number is within math-verify's relative precision), or the gold plus one
    where it is tiny (math-verify rounds to 6 decimals) or has no digits."""
    if "10^{-" in gold or not re.search(r"[0-9]", gold):
        return f"{gold}+1"
    return re.sub(r"[0-9]+", lambda m: str(int(m.group()) + 1), gold, count=1)


def test_benchmark_golds_in_equivalent_forms_verify_and_perturbed_do_not(ws, tmp_path):
    run_ingest(ws, IngestConfig([str(REAL_DATA / "benchmarks")], preset="benchmark"))
    rows, expected = [], {}
    for path in sorted((REAL_DATA / "benchmarks").glob("*.json")):
        for item in json.loads(path.read_text()):
            golds = item["answer"] if isinstance(item["answer"], list) else [item["answer"]]
            gold = golds[0].strip()
            forms = {gold: "correct", gold.replace("\\frac", "\\dfrac"): "correct"}
            forms.update(dict.fromkeys(EQUIVALENT.get(gold, []), "correct"))
            forms.update(dict.fromkeys(PERTURBED.get(gold, []), "incorrect"))
            if gold != MISPARSED and "=" not in gold:  # a perturbed equation can make sympy time out
                forms[perturbed(gold)] = "incorrect"
            for form, verdict in forms.items():
                response = f"<think>\nsolve {item['problem'][:30]}\n</think>\n\nSo the answer is \\boxed{{{form}}}."
                rows.append({"problem": item["problem"], "response": response})
                expected[item["problem"], response] = (path.stem, gold, form, verdict)
    write_jsonl(tmp_path / "pool.jsonl", rows)
    run_ingest(ws, IngestConfig([str(tmp_path / "pool.jsonl")], mapping={"problem": "problem", "response": "response"}))
    stats = run_verify(ws, VerifyConfig(VerifierSettings(), workers=2))
    got = verdicts(ws)
    wrong = [(*expected[r], got[r][1]) for r in expected if got[r][1] != expected[r][3]]
    assert wrong == [], wrong
    wanted = [v for *_, v in expected.values()]
    assert stats["verdicts"] == {"correct": wanted.count("correct"), "incorrect": wanted.count("incorrect")}
    assert wanted.count("incorrect") > 400
    assert all(form in {f for _, _, f, _ in expected.values()} for forms in EQUIVALENT.values() for form in forms)


# -- the deadline pool --------------------------------------------------------------------


def pool_item(x):
    if x == "hang":
        time.sleep(60)
    if x == "die":
        os._exit(3)
    if x == "raise":
        raise ValueError("boom")
    return x * 2


def failing_start():
    raise RuntimeError("cannot start")


def test_deadline_pool_kills_hung_workers_and_survives_crashes():
    items = [1, "hang", 2, "die", 3, "raise", *range(4, 40)]
    with DeadlinePool(pool_item, workers=2, deadline_s=1.0, max_items_per_worker=10) as pool:
        start = time.perf_counter()
        results = pool.map(items)
        assert time.perf_counter() - start < 10
        assert pool.map([5]) == [10]  # the pool goes on after failures
        stats = dict(pool.stats)
    assert results[:6] == [
        2,
        ItemFailure("timeout", "killed after the 1 s deadline"),
        4,
        ItemFailure("died", "worker exited with code 3"),
        6,
        ItemFailure("raised", "ValueError"),
    ]
    assert results[6:] == [x * 2 for x in range(4, 40)]
    assert stats["killed_at_deadline"] == 1 and stats["died"] == 1 and stats["recycled"] >= 2


def test_deadline_pool_fails_clearly_when_workers_cannot_start():
    with pytest.raises(RuntimeError, match="failed to start"):
        with DeadlinePool(pool_item, workers=1, deadline_s=1.0, initializer=failing_start) as pool:
            pool.map([1])


# -- retrying timeouts and errors ---------------------------------------------------------


class _FailingPool:
    """Stands in for the DeadlinePool of one run: every item fails the same way."""

    def __init__(self, failure: ItemFailure) -> None:
        self.failure, self.stats = failure, {}

    def imap_unordered(self, items):
        return ((i, self.failure) for i in range(len(items)))

    def close(self, kill: bool = False) -> None:
        pass


def _run_with_failing_pool(ws, monkeypatch, failure: ItemFailure) -> dict:
    from curate.verify import verify as verify_module

    pool = _FailingPool(failure)
    with monkeypatch.context() as patch:
        patch.setattr(verify_module._Verify, "_start_pool", lambda self: None)
        patch.setattr(verify_module._Verify, "_pool", lambda self: pool)
        patch.setattr(verify_module._Verify, "_started_pool", lambda self: pool)
        return run_verify(ws, VerifyConfig(FAST))


RETRY_ROWS = [
    {"problem": "half", "response": R("0.5"), "gold": "\\frac{1}{2}"},
    {"problem": "half", "response": R("\\sqrt{1/4}"), "gold": "\\frac{1}{2}"},
    {"problem": "two", "response": R("2"), "gold": "2"},  # integers: decided without math-verify
]


def _verify_rows(ws) -> list[tuple]:
    folder = ws.table_folder("verify")
    return query(ws, "SELECT sample_id, verdict FROM read_parquet(?) ORDER BY ALL", [f"{folder}/verify-*.parquet"])


@pytest.mark.parametrize(
    ("failure", "verdict", "cached"),
    [
        (ItemFailure("timeout", "killed after the 3 s deadline"), "timeout", True),
        (ItemFailure("died", "worker exited with code 9"), "error", False),
    ],
)
def test_retry_judges_again_only_the_timeouts_or_errors(ws, tmp_path, monkeypatch, failure, verdict, cached):
    add_pool(ws, tmp_path / "pool.jsonl", RETRY_ROWS)
    first = _run_with_failing_pool(ws, monkeypatch, failure)
    assert first["verdicts"] == {verdict: 2, "correct": 1}
    assert first["worker_deaths"] == (0 if cached else 3)
    from curate.verify.verify import PairCache

    saved = PairCache(ws.root / "verify" / ".cache" / FAST.settings_hash()).loaded
    assert saved == (3 if cached else 0)  # two pairs and the gold; a crash is never saved
    # a plain rerun keeps them: they are verdicts under these settings
    again = run_verify(ws, VerifyConfig(FAST))
    assert again["funnel"] == {"samples": 3, "already_verified": 3, "verified": 0}
    # --retry judges just those rows, with a longer deadline under the same settings hash
    longer = VerifierSettings(deadline_s=30.0, parse_timeout_s=0, verify_timeout_s=0, max_answer_chars=1000)
    assert longer.settings_hash() == FAST.settings_hash()
    retried = run_verify(ws, VerifyConfig(longer, retry=(verdict,), workers=1))
    assert retried["funnel"] == {"samples": 3, "already_verified": 1, "verified": 2}
    assert retried["verdicts"] == {"correct": 2}
    assert retried["judged"]["pairs"] == 2
    assert retried["superseded_rows_dropped"] == 2
    assert sorted(v[1] for v in verdicts(ws).values()) == ["correct"] * 3
    rows = _verify_rows(ws)
    assert len(rows) == 3 and {v for _, v in rows} == {"correct"}  # the replaced rows are gone
    assert run_verify(ws, VerifyConfig(FAST, retry=("timeout", "error")))["funnel"]["verified"] == 0


def test_retry_takes_only_timeout_and_error():
    with pytest.raises(OxaError, match="--retry takes timeout and error"):
        VerifyConfig(retry=("incorrect",)).check()


REGION_CASES = [
    None,
    "",
    "no think at all \\boxed{1}",
    "<think>a</think>b",
    "<think>x</think>y</think>z",
    "</think>",
    "<think>é∑</think>ü \\boxed{\\frac{1}{2}}",
    "<think>a</think",
    "</think></think>q",
    "<think>never closes \\boxed{3}",
]


@pytest.mark.parametrize("require_think", [True, False])
def test_answer_regions_cut_in_duckdb_equal_answer_region(tmp_path, require_think):
    """sql/verify/answer_regions.sql cuts what curate/text/extract.py's answer_region does,
    row for row, in file order, over a row range that starts inside the file."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.text.extract import THINK_END, answer_region
    from curate.workspace.resources import sql_text

    path = tmp_path / "samples.parquet"
    pq.write_table(pa.table({"response": pa.array(REGION_CASES, pa.string())}), path, row_group_size=3)
    params = {"file": str(path), "first": 3, "end": len(REGION_CASES), "think_end": THINK_END}
    got = duckdb.sql(sql_text("verify/answer_regions.sql"), params={**params, "require_think": require_think})
    expected = [
        (row, response is None, None if response is None else answer_region(response, require_think))
        for row, response in enumerate(REGION_CASES)
    ][3:]
    assert got.fetchall() == expected


def test_row_group_runs_read_only_the_groups_with_rows_to_verify(tmp_path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.verify.verify import _row_group_runs

    path = tmp_path / "samples.parquet"
    pq.write_table(pa.table({"x": list(range(12))}), path, row_group_size=3)  # groups [0,3) [3,6) [6,9) [9,12)
    metadata = pq.ParquetFile(path).metadata
    assert _row_group_runs(metadata, np.array([1, 4, 10])) == [(0, 6), (9, 12)]
    assert _row_group_runs(metadata, np.array([7])) == [(6, 9)]
    assert _row_group_runs(metadata, np.arange(12)) == [(0, 12)]
    assert _row_group_runs(metadata, np.array([], dtype=np.int64)) == []


def test_batches_judged_beside_the_reading_give_the_verdicts_of_one_batch(ws, tmp_path, monkeypatch):
    """Small batches are judged on the judging thread while the next is read: the verdict
    rows, in order, are those of one batch; an error on that thread fails the run."""
    from curate.workspace import Workspace

    rows = generated_rows(seed=5, problems=30, per_problem=5)
    add_pool(ws, tmp_path / "pool.jsonl", rows)
    other = Workspace.init(tmp_path / "other")
    add_pool(other, tmp_path / "pool.jsonl", rows)
    run_verify(ws, VerifyConfig(FAST, workers=1))
    batched = run_verify(other, VerifyConfig(FAST, workers=1, batch_rows=16))
    assert batched["funnel"]["verified"] == len(rows)
    table = "SELECT sample_id, pred_answer, verdict, reason, simple_verdict FROM read_parquet($glob)"
    glob = {"glob": str(ws.table_folder("verify") / "verify-*.parquet")}
    other_glob = {"glob": str(other.table_folder("verify") / "verify-*.parquet")}
    assert query(ws, table, glob) == query(other, table, other_glob)

    import curate.verify.verify as verify_module

    calls = []

    def fail_on_the_third(self, batch):
        calls.append(len(batch["sample_id"]))
        if len(calls) == 3:
            raise RuntimeError("judging failed on purpose")

    third = Workspace.init(tmp_path / "third")
    add_pool(third, tmp_path / "pool.jsonl", rows)
    monkeypatch.setattr(verify_module._Verify, "_judge_buffer", fail_on_the_third)
    with pytest.raises(RuntimeError, match="judging failed on purpose"):
        run_verify(third, VerifyConfig(FAST, workers=1, batch_rows=16))
    assert calls[:3] == [16, 16, 16]
