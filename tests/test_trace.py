"""`oxa trace`: matching stages on inline reference sources, conflicts and placeholders,
presets, reruns, and the test-bed world end to end (trace, then verify)."""

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.ingest import IngestConfig, run_ingest
from curate.trace import TraceConfig, run_trace
from curate.workspace import OxaError, Workspace
from tests.conftest import REAL_DATA, naive_problem_id, query, write_jsonl

SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."
COWS = "A farmer has 17 cows and buys 5 more at the market. How many cows does the farmer have now?"

POOL = {
    "exact": "What is $1+1$?",
    "normalized": "Compute $\\frac{1}{2}+\\frac{1}{4}$ exactly.",
    "suffix": "Find $x$ if $2x = 6$.",
    "fuzzy": COWS,
    "template": COWS.replace("17", "18"),  # differs only in a number: no reference is its own
    "conflict": "How many primes are below 12?",
    "equivalent": "What is half of one?",
    "proof": "Prove that there are infinitely many primes.",
    "notfound": "Find the number of lattice points on the circle of radius 5.",
    "empty": "What is $3 \\cdot 3$?",
    "no_box": "What is $10-3$?",
    "missing": "What is the largest prime below 100?",
}

TEACHER_SAYS = {"fuzzy": 22}  # the final answer of each problem's pool response (else 1)

NUMINA15 = [  # problem, solution, answer, question_type, source: source 1, the higher priority
    ("What  is $1+1$?\n", "1+1=2", "2"),
    ("Compute $\\dfrac{1}{2} + \\dfrac{1}{4}$ exactly", "...", "\\frac{3}{4}"),
    ("How many primes are below 12?", "2, 3, 5, 7, 11", "5"),
    ("What is half of one?", "...", "0.5"),
    ("Prove that there are infinitely many primes.", "Euclid.", "proof"),
    ("Find the number of lattice points on the circle of radius 5.", "...", "notfound"),
    ("What is $3 \\cdot 3$?", "...", ""),
    ("An unrelated problem about 42 sheep.", "...", "42"),
]
NUMINA_COT = [  # source, problem, solution, messages: source 2
    ("Find $x$ if $2x=6$.\n" + SUFFIX, "Divide: $x = \\boxed{3}$."),
    (COWS.replace("buys 5 more", "buys 5 more cows"), "So $\\boxed{22}$."),
    ("How many primes are below 12?", "They are 2, 3, 5, 7: $\\boxed{4}$."),
    ("What is half of one?", "$\\boxed{\\frac{1}{2}}$"),
    ("What is $10-3$?", "It is seven."),
]


def make_sources(tmp_path):
    first = write_jsonl(
        tmp_path / "numina15.jsonl",
        [
            {"problem": p, "solution": s, "answer": a, "question_type": "math-word-problem", "source": "olympiads"}
            for p, s, a in NUMINA15
        ],
    )
    second = tmp_path / "numina_cot.parquet"
    pq.write_table(
        pa.table(
            {
                "source": ["cn_k12"] * len(NUMINA_COT),
                "problem": [p for p, _ in NUMINA_COT],
                "solution": [s for _, s in NUMINA_COT],
                "messages": [[{"role": "user", "content": p}] for p, _ in NUMINA_COT],
            }
        ),
        second,
    )
    return first, second


@pytest.fixture
def traced_ws(ws, tmp_path):
    rows = [
        {"problem": text, "response": f"<think>{case}</think> \\boxed{{{TEACHER_SAYS.get(case, 1)}}}"}
        for case, text in POOL.items()
    ]
    pool = write_jsonl(tmp_path / "pool.jsonl", rows)
    run_ingest(ws, IngestConfig([str(pool)], mapping={"problem": "problem", "response": "response"}))
    given = write_jsonl(tmp_path / "given.jsonl", [{"problem": "What is 7 times 6?", "answer": "42"}])
    run_ingest(ws, IngestConfig([str(given)], preset="benchmark"))
    return ws


def outcomes(ws, stats) -> dict[str, tuple]:
    path = ws.run_dir("trace", stats["run_id"]) / "outcomes.parquet"
    rows = (
        duckdb.connect()
        .sql(f"SELECT problem_id, outcome, gold_answer, answer_source, conflict FROM read_parquet('{path}')")
        .fetchall()
    )
    by_id = {r[0]: r[1:] for r in rows}
    return {case: by_id[naive_problem_id(text)] for case, text in POOL.items()}


def test_trace_stages_conflicts_and_placeholders(traced_ws, tmp_path):
    first, second = make_sources(tmp_path)
    stats = run_trace(traced_ws, TraceConfig([str(first), str(second)]))
    assert outcomes(traced_ws, stats) == {
        "exact": ("exact", "2", "numina15", False),
        "normalized": ("normalized", "\\frac{3}{4}", "numina15", False),
        "suffix": ("normalized", "3", "numina_cot", False),  # the answer is the solution's last \boxed
        "fuzzy": ("fuzzy", "22", "numina_cot", False),
        "template": ("unmatched", None, None, False),
        "conflict": ("exact", "5", "numina15", True),  # priority: the first source's answer, flagged
        "equivalent": ("exact", "0.5", "numina15", False),  # 0.5 and \frac{1}{2}: math-verify finds them equal
        "proof": ("placeholder", None, None, False),
        "notfound": ("placeholder", None, None, False),
        "empty": ("placeholder", None, None, False),
        "no_box": ("placeholder", None, None, False),
        "missing": ("unmatched", None, None, False),
    }
    assert stats["problems"] == {
        "pool": 13,
        "given": 1,
        "exact": 3,
        "normalized": 2,
        "fuzzy": 1,
        "conflict_dropped": 0,
        "fuzzy_unconfirmed": 0,
        "placeholder": 4,
        "unmatched": 2,
    }
    assert stats["references"] == {"read": 13, "kept": 9, "rejected": 4}
    assert stats["rejects"] == {"no_boxed_answer": 1, "placeholder_answer": 3}
    assert stats["conflicts"] == {
        "differing_answers": 2,
        "equivalent_by_math_verify": 1,
        "conflicts": 1,
        "policy": "consensus",
        "by_resolution": {
            "equivalent": 1,
            "consensus": 0,
            "priority_no_agreement": 1,  # the pool's response says 1: neither 5 nor 4
            "priority": 0,
            "dropped": 0,
        },
    }
    rejected = (
        duckdb.connect()
        .sql(
            f"SELECT source_row, reason FROM read_parquet('{traced_ws.run_dir('trace', stats['run_id'])}/rejects/*.parquet') "
            "ORDER BY source_file, source_row"
        )
        .fetchall()
    )
    assert rejected == [
        (4, "placeholder_answer"),
        (5, "placeholder_answer"),
        (6, "placeholder_answer"),
        (4, "no_boxed_answer"),
    ]
    answers = query(
        traced_ws,
        "SELECT match_method, match_score >= 0.9, conflict, source_row FROM answers "
        "WHERE match_method <> 'given' ORDER BY match_method, source_row",
    )
    assert answers == [
        ("exact", True, False, 0),
        ("exact", True, True, 2),
        ("exact", True, False, 3),
        ("fuzzy", True, False, 1),
        ("normalized", True, False, 0),
        ("normalized", True, False, 1),
    ]
    # the given answer is kept, and gold picks it
    assert query(traced_ws, "SELECT gold_answer, match_method FROM gold WHERE gold_answer = '42'") == [("42", "given")]


def test_drop_policy_and_a_rerun_replace_the_previous_trace(traced_ws, tmp_path):
    first, second = make_sources(tmp_path)
    run_trace(traced_ws, TraceConfig([str(first), str(second)]))
    stats = run_trace(traced_ws, TraceConfig([str(second), str(first)], on_conflict="drop", fuzzy=False))
    got = outcomes(traced_ws, stats)
    assert got["conflict"] == ("conflict_dropped", "4", "numina_cot", True)
    assert got["equivalent"] == ("exact", "\\frac{1}{2}", "numina_cot", False)  # numina_cot now comes first
    assert got["fuzzy"][0] == "unmatched"
    assert stats["problems"]["conflict_dropped"] == 1
    assert len(list(traced_ws.table_folder("answers").glob("trace-*.parquet"))) == 1
    assert query(traced_ws, "SELECT count(*) FROM answers WHERE match_method <> 'given'") == [(4,)]
    assert query(traced_ws, "SELECT count(*) FROM gold") == [(5,)]


def test_reference_presets_and_mappings(ws, tmp_path):
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"problem": "What is $2^{10}$?", "response": "\\boxed{1024}"}])
    run_ingest(ws, IngestConfig([str(pool)], mapping={"problem": "problem", "response": "response"}))
    omr = write_jsonl(
        tmp_path / "omr.jsonl",
        [
            {
                "problem": "What is $2^{10}$?",
                "expected_answer": "1024",
                "problem_source": "aops",
                "generated_solution": "",
            }
        ],
    )
    stats = run_trace(ws, TraceConfig([str(omr)]))
    assert stats["files"][0]["preset"] == "openmathreasoning" and stats["problems"]["exact"] == 1
    custom = write_jsonl(tmp_path / "custom.jsonl", [{"q": "What is $2^{10}$?", "final": {"value": "1024"}}])
    stats = run_trace(ws, TraceConfig([str(custom)], mapping={"problem": "q", "gold_answer": "final.value"}))
    assert stats["files"][0]["preset"] == "custom" and stats["problems"]["exact"] == 1
    with pytest.raises(OxaError, match="(?s)fits no preset.*--map gold_answer=COL"):
        run_trace(ws, TraceConfig([str(custom)]))
    with pytest.raises(OxaError, match="names no answer column"):
        run_trace(ws, TraceConfig([str(custom)], mapping={"problem": "q"}))
    with pytest.raises(OxaError, match="unknown reference preset 'numina'"):
        run_trace(ws, TraceConfig([str(custom)], preset="numina"))
    with pytest.raises(OxaError, match="unknown field.*response"):
        run_trace(ws, TraceConfig([str(custom)], mapping={"problem": "q", "response": "final"}))
    with pytest.raises(OxaError, match="conflict policy 'vote'"):
        run_trace(ws, TraceConfig([str(custom)], on_conflict="vote"))


def test_verl_and_benchmark_files_trace_the_real_problems(ws):
    verl = REAL_DATA / "formats" / "aime24.verl.parquet"  # prompts with an instruction suffix
    aime = json.loads((REAL_DATA / "benchmarks" / "aime24.json").read_text())
    pool = write_jsonl(
        ws.root.parent / "pool.jsonl", [{"problem": item["problem"], "response": "\\boxed{0}"} for item in aime]
    )
    run_ingest(ws, IngestConfig([str(pool)], mapping={"problem": "problem", "response": "response"}))
    stats = run_trace(ws, TraceConfig([str(verl), str(REAL_DATA / "benchmarks" / "aime24.json")]))
    assert stats["problems"]["pool"] == 30 and stats["problems"]["unmatched"] == 0
    assert stats["conflicts"]["conflicts"] == 0  # verl's ground truth and the benchmark agree
    assert query(ws, "SELECT count(*) FROM gold WHERE match_method IN ('exact', 'normalized')") == [(30,)]


# -- the test-bed world: every traceable problem by the expected method -------------------

EXPECTED = {"exact": "exact", "normalized": "normalized", "fuzzy": "fuzzy", "agree": "exact"}


def test_world_trace_and_verify_follow_the_manifest(tmp_path):
    world = pytest.importorskip("curate.synth.world")
    manifest = world.build_world(tmp_path / "world", world.WorldConfig())
    runner = CliRunner()
    ws = tmp_path / "ws"
    for args in (
        ["init", ws],
        ["ingest", ws, tmp_path / "world" / "pool" / "teacher.jsonl", "--preset", "acereason"],
        [
            "trace",
            ws,
            "--answers",
            tmp_path / "world/references/numina15.parquet",
            "--answers",
            tmp_path / "world/references/numina_cot.parquet",
        ],
    ):
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert "fuzzy" in result.output and "conflicts (consensus)" in result.output
    workspace = Workspace.open(ws)
    gold = dict(query(workspace, "SELECT problem_id, match_method || ' ' || gold_answer || ' ' || conflict FROM gold"))
    for problem in manifest["problems"]:
        trace = problem["trace"]
        found = gold.get(problem["problem_id"])
        if trace["case"] in EXPECTED:
            assert found == f"{EXPECTED[trace['case']]} {trace['gold']} false", (trace, found)
        elif trace["case"] == "conflict":  # the teacher's responses side with the right answer
            assert found is not None and found.endswith(f" {problem['gold']} true"), (trace, found)
        else:  # placeholder, missing
            assert found is None, (trace, found)

    result = runner.invoke(app, ["verify", str(ws)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "agreement where both decided" in result.output
    verdicts = dict(query(workspace, "SELECT sample_id, verdict || ' ' || coalesce(pred_answer, '-') FROM verify"))
    cases = {p["problem_id"]: p["trace"]["case"] for p in manifest["problems"]}
    expected_verdict = {
        "none": "correct",
        "equivalent_form": "correct",
        "missing_think_close": "no_answer",  # the paper's rule (the default): no </think>, no answer
        "wrong_answer": "incorrect",
        "missing_box": "no_answer",
        "truncated": "no_answer",
    }
    checked = 0
    for sample in manifest["samples"]:
        case = cases[sample["problem_id"]]
        verdict, pred = verdicts[sample["sample_id"]].split(" ", 1)
        boxed = sample["boxed"] if sample["flaw"] != "missing_think_close" else None
        assert pred == (boxed or "-") or verdict == "bad_gold"
        if case in EXPECTED:
            assert verdict == expected_verdict[sample["flaw"]], (sample, verdict, pred)
            checked += 1
        elif case in ("placeholder", "missing"):
            assert verdict == "bad_gold", (sample, verdict)
    assert checked > 500


def test_trace_and_verify_help():
    runner = CliRunner()
    trace_help = runner.invoke(app, ["trace", "--help"]).output
    assert "--answers" in trace_help and "numina-1.5" in trace_help and "--on-conflict" in trace_help
    verify_help = runner.invoke(app, ["verify", "--help"]).output
    assert "--require-think" in verify_help and "--deadline" in verify_help and "lenient" in verify_help


def test_placeholder_forms_and_null_answers_give_no_gold(ws, tmp_path):
    answers = ["see solution", "none given", "-", "?", "TBD", "None", "N/A", None, "\\dfrac12"]
    problems = [f"How many apples does box number {i} hold?" for i in range(len(answers))]
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"problem": p, "response": "\\boxed{1}"} for p in problems])
    run_ingest(ws, IngestConfig([str(pool)], mapping={"problem": "problem", "response": "response"}))
    refs = write_jsonl(tmp_path / "refs.jsonl", [{"problem": p, "answer": a} for p, a in zip(problems, answers)])
    stats = run_trace(ws, TraceConfig([str(refs)], preset="benchmark"))
    assert stats["problems"]["placeholder"] == 8 and stats["problems"]["exact"] == 1
    assert stats["problems"]["unmatched"] == 0
    assert stats["rejects"] == {"missing_answer": 1, "placeholder_answer": 7}
    assert query(ws, "SELECT gold_answer FROM answers") == [("\\dfrac12",)]


def test_placeholder_answers_given_at_ingest_are_no_gold(ws, tmp_path):
    rows = [{"problem": f"Problem number {i}?", "answer": a} for i, a in enumerate(["TBD", "-", "see  solution", "7"])]
    stats = run_ingest(ws, IngestConfig([str(write_jsonl(tmp_path / "b.jsonl", rows))], preset="benchmark"))
    assert stats["placeholder_golds"] == 3 and stats["funnel"]["accepted"] == 4
    assert query(ws, "SELECT gold_answer FROM gold") == [("7",)]


# -- a trace killed while it publishes (issue 31) ----------------------------------------

# Runs `oxa trace` in a process that SIGKILLs itself at a chosen step of its publication.
KILL_DRIVER = """
import os, signal, sys
from curate.trace import run_files
where = sys.argv[1]
publish_part, remove_part = run_files.publish_part, run_files.remove_part
def publish_or_die(part, target, *args):
    if where == "before_conflicts_move_in" and target.parent.name == "conflicts":
        os.kill(os.getpid(), signal.SIGKILL)
    return publish_part(part, target, *args)
def remove_or_die(part):
    if where == "before_old_answers_go" and part.parent.name == "answers":
        os.kill(os.getpid(), signal.SIGKILL)
    return remove_part(part)
run_files.publish_part, run_files.remove_part = publish_or_die, remove_or_die
from curate.cli import main
sys.argv = ["oxa", "trace", *sys.argv[2:]]
main()
"""

# conflict rows whose answer taken is not the traced answer in `answers`
DISAGREEING = """
SELECT c.problem_id, c.resolution, c.gold_answer
FROM trace_conflicts AS c
LEFT JOIN (
    SELECT problem_id, list(DISTINCT gold_answer ORDER BY gold_answer) AS traced
    FROM answers WHERE match_method <> 'given' GROUP BY problem_id
) AS a USING (problem_id)
WHERE coalesce(a.traced, []::VARCHAR[]) <> CASE WHEN c.gold_answer IS NULL THEN []::VARCHAR[] ELSE [c.gold_answer] END
"""
# traced answers flagged as a conflict that trace_conflicts does not explain
UNEXPLAINED = """
SELECT problem_id FROM answers
WHERE match_method <> 'given' AND conflict AND problem_id NOT IN (SELECT problem_id FROM trace_conflicts)
"""


@pytest.mark.parametrize("where", ["before_conflicts_move_in", "before_old_answers_go"])
def test_a_trace_killed_while_publishing_is_finished_by_the_next(traced_ws, tmp_path, where):
    import subprocess
    import sys

    from curate.trace.run_files import stale_scratch_files
    from curate.workspace.parts import owner_tag, part_files, part_of_sum, sum_files

    ws = traced_ws
    first, second = make_sources(tmp_path)
    run_trace(ws, TraceConfig([str(first), str(second)]))
    conflicts = "SELECT problem_id, resolution, gold_answer FROM trace_conflicts ORDER BY 1"
    ids = {case: naive_problem_id(POOL[case]) for case in ("conflict", "equivalent")}
    assert query(ws, conflicts) == sorted(
        [(ids["conflict"], "priority_no_agreement", "5"), (ids["equivalent"], "equivalent", "0.5")]
    )
    args = [ws.root, "--answers", second, "--answers", first, "--on-conflict", "drop", "--no-fuzzy"]
    killed = subprocess.run([sys.executable, "-c", KILL_DRIVER, where, *map(str, args)], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    [killed_dir] = [d for d in (ws.root / "runs" / "trace").iterdir() if not (d / "stats.json").exists()]

    # the conflicts of the first trace went first, and this trace's come last: no conflict
    # row disagrees with the answers, and the killed run's record says what is left to do
    assert query(ws, conflicts) == []
    assert query(ws, DISAGREEING) == []
    assert (killed_dir / "publication.json").is_file()
    trace_parts = len([p for p in part_files(ws.table_folder("answers")) if p.name.startswith("trace-")])
    traced = query(ws, "SELECT count(*) FROM answers WHERE match_method <> 'given'")
    # killed before the old answers went, both traces' answers show (6 and 4); else only the new ones
    assert (trace_parts, traced) == ((2, [(10,)]) if where == "before_old_answers_go" else (1, [(4,)]))

    # its scratch is stale (its process is gone); a live run's is not
    stale = stale_scratch_files(ws)
    assert killed_dir / "scratch.duckdb" in stale
    assert {p.parent for p in stale} == {killed_dir}
    assert {p.name for p in stale} <= {"scratch.duckdb", "scratch.duckdb.wal", "scratch.tmp"}
    live = ws.root / "runs" / "trace" / "20990101T000000Z-live"
    live.mkdir()
    (live / "config.json").write_text(json.dumps({"stage": "trace", "owner": owner_tag()}))
    (live / "scratch.duckdb").write_bytes(b"in use")
    assert live / "scratch.duckdb" not in stale_scratch_files(ws)

    stats = run_trace(ws, TraceConfig([str(second), str(first)], on_conflict="drop", fuzzy=False))
    assert stats["left_by_killed_runs"] == {
        "publications_finished": [killed_dir.name],
        "scratch_removed": [str(p) for p in stale],
    }
    assert query(ws, conflicts) == sorted(
        [(ids["conflict"], "dropped", None), (ids["equivalent"], "equivalent", "\\frac{1}{2}")]
    )
    assert query(ws, DISAGREEING) == [] and query(ws, UNEXPLAINED) == []
    assert query(ws, "SELECT count(*) FROM answers WHERE match_method <> 'given'") == [(4,)]
    for table in ("answers", "trace_conflicts"):
        folder = ws.table_folder(table)
        assert len([p for p in part_files(folder) if p.name.startswith("trace-")]) == 1
        assert all(part_of_sum(record).is_file() for record in sum_files(folder))  # no record of a removed part
    assert sorted(p.name for p in killed_dir.iterdir()) == ["config.json", "outcomes.parquet", "rejects"]
    assert stale_scratch_files(ws) == [] and (live / "scratch.duckdb").is_file()


def test_oxa_check_names_what_a_killed_trace_left_and_repair_finishes_it(traced_ws, tmp_path):
    import subprocess
    import sys

    from curate.check import repair_workspace, run_check

    ws = traced_ws
    first, second = make_sources(tmp_path)
    run_trace(ws, TraceConfig([str(first), str(second)]))
    args = [ws.root, "--answers", second, "--answers", first, "--on-conflict", "drop", "--no-fuzzy"]
    where = "before_conflicts_move_in"
    killed = subprocess.run([sys.executable, "-c", KILL_DRIVER, where, *map(str, args)], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    [killed_dir] = [d for d in (ws.root / "runs" / "trace").iterdir() if not (d / "stats.json").exists()]
    run = killed_dir.relative_to(ws.root).as_posix()
    report = run_check(ws)
    found = sorted((f.kind, f.path) for f in report.findings)
    assert ("killed-run", run) in found and ("unfinished-publication", f"{run}/publication.json") in found
    assert ("stale-scratch", f"{run}/scratch.duckdb") in found
    # and what any killed process leaves: its lock naming it, its half-written rejects part
    assert {kind for kind, _ in found} == {
        "killed-run",
        "unfinished-publication",
        "stale-scratch",
        "stale-lock",
        "stale-temporary",
    }
    repair_workspace(ws, report)
    assert query(ws, DISAGREEING) == [] and query(ws, UNEXPLAINED) == []
    assert query(ws, "SELECT count(*) FROM trace_conflicts") == [(2,)]  # the killed trace's, now in place
    assert run_check(ws).findings == []


def test_a_reference_answer_holding_a_control_character_is_not_taken(ws, tmp_path):
    problems = ["What is $6 \\cdot 7$?", "What is $2^5$?", "What is $9-4$?"]
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"problem": p, "response": "\\boxed{1}"} for p in problems])
    run_ingest(ws, IngestConfig([str(pool)], mapping={"problem": "problem", "response": "response"}))
    first = write_jsonl(
        tmp_path / "first.jsonl",
        [
            {"problem": problems[0], "answer": "42\x00"},
            {"problem": problems[1], "answer": ["32", "thirty\x1btwo"]},
            {"problem": problems[2], "answer": "5"},
        ],
    )
    second = write_jsonl(tmp_path / "second.jsonl", [{"problem": problems[0], "answer": "42"}])
    stats = run_trace(ws, TraceConfig([str(first), str(second)], preset="benchmark"))
    assert stats["rejects"] == {"control_character_answer": 2}
    rejected = (
        duckdb.connect()
        .sql(
            f"SELECT source_row, reason, detail FROM read_parquet('{ws.run_dir('trace', stats['run_id'])}/rejects/*.parquet') "
            "ORDER BY source_file, source_row"
        )
        .fetchall()
    )
    assert rejected == [
        (0, "control_character_answer", "the answer '42\\x00' holds control character U+0000"),
        (1, "control_character_answer", "the answer 'thirty\\x1btwo' holds control character U+001B"),
    ]
    # the second source answers the first problem; the second problem's only reference is unusable
    assert query(ws, "SELECT source_row, gold_answer, answer_source FROM answers ORDER BY gold_answer") == [
        (0, "42", "second"),
        (2, "5", "first"),
    ]
    assert stats["problems"]["exact"] == 2 and stats["problems"]["placeholder"] == 1
