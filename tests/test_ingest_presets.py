"""Each preset on inline fixtures and on the real files shipped in curate/data/ (from ../shared/data)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.workspace import OxaError
from tests.conftest import REAL_DATA, naive_problem_id, naive_sample_id, query, rejects, write_jsonl

R1 = "<think>\nadd them\n</think>\n\nThe answer is $\\boxed{2}$."
R2 = "<think>\n1+1 is 2\n</think>\n\nSo \\boxed{2}."


def ingest(ws, *sources, **options):
    return run_ingest(ws, IngestConfig([str(s) for s in sources], **options))


ACEREASON_ROWS = [
    {"category": "math", "source": "olympiads", "input": "What is $1+1$?", "output": R1},
    {"category": "code", "source": "codeforces", "input": "Write a sort.", "output": "def f(): pass"},
    {"category": "math", "source": "olympiads", "input": "What is $1+1$?", "output": R2},
    {"category": "math", "source": "aops", "input": "What  is $1+1$? ", "output": R1},  # same problem, same response
    {"category": "Math", "source": "aops", "input": "Find $x$ if $2x=6$.", "output": "\\boxed{3}"},
]


def test_acereason_jsonl(ws, tmp_path):
    src = write_jsonl(tmp_path / "ace.jsonl", ACEREASON_ROWS)
    stats = ingest(ws, src, preset="acereason")
    assert stats["funnel"] == {"read": 5, "accepted": 3, "duplicate": 1, "rejected": 0, "filtered": 1}
    assert stats["duplicates"] == {"in_pool": 0, "in_run": 1}
    assert stats["added"] == {"problems": 2, "samples": 3, "answers": 0, "scores": 0, "verdicts": 0}
    rows = query(
        ws,
        "SELECT sample_id, problem_id, source, generator, origin, source_row, n_chars FROM samples ORDER BY source_row",
    )
    p1, p2 = naive_problem_id("What is $1+1$?"), naive_problem_id("Find $x$ if $2x=6$.")
    assert rows == [
        (naive_sample_id("What is $1+1$?", R1), p1, "olympiads", "DeepSeek-R1", "teacher", 0, len(R1)),
        (naive_sample_id("What is $1+1$?", R2), p1, "olympiads", "DeepSeek-R1", "teacher", 2, len(R2)),
        (naive_sample_id("Find $x$ if $2x=6$.", "\\boxed{3}"), p2, "aops", "DeepSeek-R1", "teacher", 4, 9),
    ]
    assert query(ws, "SELECT problem_id, problem, category FROM problems ORDER BY source_row") == [
        (p1, "What is $1+1$?", "math"),
        (p2, "Find $x$ if $2x=6$.", "Math"),
    ]
    # --all-categories keeps the code row too; everything else is already there
    again = ingest(ws, src, preset="acereason", all_categories=True)
    assert again["funnel"] == {"read": 5, "accepted": 1, "duplicate": 4, "rejected": 0, "filtered": 0}


def test_acereason_parquet_and_hf_datasets_folders(ws, tmp_path):
    datasets = pytest.importorskip("datasets")
    table = pa.Table.from_pylist(ACEREASON_ROWS)
    pq.write_table(table, tmp_path / "ace.parquet")
    ds = datasets.Dataset.from_list(ACEREASON_ROWS)
    ds.save_to_disk(str(tmp_path / "hf_single"))
    datasets.DatasetDict({"train": ds, "test": ds.select([4])}).save_to_disk(str(tmp_path / "hf_dict"))

    stats = ingest(ws, tmp_path / "ace.parquet")  # layout detected: acereason
    assert [f["preset"] for f in stats["files"]] == ["acereason"]
    assert stats["funnel"]["accepted"] == 3
    for folder, files in (("hf_single", 1), ("hf_dict", 2)):
        stats = ingest(ws, tmp_path / folder)
        assert len(stats["files"]) == files and all(f["format"] == "arrow" for f in stats["files"])
        assert stats["funnel"]["accepted"] == 0 and stats["funnel"]["duplicate"] == 4 * files - (3 if files == 2 else 0)
    assert query(ws, "SELECT count(*) FROM samples") == [(3,)]


def test_oxa_lists_explodes_and_keeps_ppl_as_scores(ws, tmp_path):
    rows = [
        {"query": "What is $1+1$?", "responses": [R1, R2], "ppl": [1.5, 2.0], "length": [10, 12]},
        {"query": "Find $x$.", "responses": ["\\boxed{3}"], "ppl": [3.0], "length": [4, 5]},  # lists differ
        {"query": "Empty list.", "responses": []},
        {"query": "Null element.", "responses": ["\\boxed{1}", None], "ppl": None},
    ]
    src = write_jsonl(tmp_path / "lists.jsonl", rows)
    with pytest.raises(OxaError, match="--scores-tag"):
        ingest(ws, src, preset="oxa-lists")
    stats = ingest(ws, src, preset="oxa-lists", scores_tag="qwen-math-7b")
    assert stats["funnel"] == {"read": 6, "accepted": 3, "duplicate": 0, "rejected": 3, "filtered": 0}
    assert rejects(ws, stats) == [
        (1, None, "list_length_mismatch"),
        (2, None, "missing_field:responses"),
        (3, 1, "missing_field:response"),
    ]
    assert query(ws, "SELECT source_row, source_index FROM samples ORDER BY 1, 2") == [(0, 0), (0, 1), (3, 0)]
    scores = query(ws, "SELECT sample_id, n_tokens, ppl, round(nll_sum, 9) FROM scores_qwen_math_7b ORDER BY ppl")
    import math

    assert scores == [
        (naive_sample_id("What is $1+1$?", R1), 10, 1.5, round(10 * math.log(1.5), 9)),
        (naive_sample_id("What is $1+1$?", R2), 12, 2.0, round(12 * math.log(2.0), 9)),
    ]
    assert query(ws, 'SELECT count(*) FROM candidates WHERE "ppl_qwen-math-7b" IS NOT NULL') == [(2,)]
    manifest = json.loads((ws.root / "scores" / "qwen-math-7b" / "manifest.json").read_text())
    assert manifest["origin"] == "ingested"


def test_verl_real_file_matches_benchmark_problems(ws):
    stats = ingest(ws, REAL_DATA / "formats" / "aime24.verl.parquet")  # detected: verl
    assert stats["files"][0]["preset"] == "verl"
    assert stats["funnel"] == {"read": 30, "accepted": 30, "duplicate": 0, "rejected": 0, "filtered": 0}
    assert stats["instructions_stripped"] == 30
    bench = json.loads((REAL_DATA / "benchmarks" / "aime24.json").read_text())
    expected = sorted((naive_problem_id(b["problem"]), b["answer"]) for b in bench)
    assert query(ws, "SELECT problem_id, gold_answer FROM gold ORDER BY 1") == expected
    assert query(ws, "SELECT DISTINCT source, category, match_method FROM problems JOIN gold USING (problem_id)") == [
        ("aime24", "math", "given")
    ]
    meta, instruction = query(ws, "SELECT meta, instruction FROM problems ORDER BY source_row LIMIT 1")[0]
    assert json.loads(meta) == {"index": 0, "split": "test"}
    assert instruction.startswith("Let's reason step by step.")
    # the benchmark file gives the same problems and answers: nothing new
    again = ingest(ws, REAL_DATA / "benchmarks" / "aime24.json", preset="benchmark")
    assert again["funnel"]["duplicate"] == 30 and again["added"]["problems"] == 0


def test_benchmark_real_files(ws):
    stats = ingest(ws, REAL_DATA / "benchmarks", preset="benchmark")
    assert [(f["path"].rsplit("/", 1)[1], f["records"]) for f in stats["files"]] == [
        ("aime24.json", 30),
        ("aime25.json", 30),
        ("brumo25.json", 30),
        ("cmimc25.json", 40),
        ("hmmt25.json", 30),
        ("minerva.json", 272),
    ]
    assert stats["funnel"] == {"read": 432, "accepted": 432, "duplicate": 0, "rejected": 0, "filtered": 0}
    assert query(ws, "SELECT answer_source, count(*) FROM gold GROUP BY 1 ORDER BY 1") == [
        ("aime24", 30),
        ("aime25", 30),
        ("brumo25", 30),
        ("cmimc25", 40),
        ("hmmt25", 30),
        ("minerva", 272),
    ]
    minerva = json.loads((REAL_DATA / "benchmarks" / "minerva.json").read_text())
    first = minerva[0]
    assert query(
        ws,
        "SELECT gold_answer, gold_alternatives FROM answers WHERE problem_id = ?",
        [naive_problem_id(first["problem"])],
    ) == [(first["answer"][0].strip(), [])]
    assert query(
        ws, "SELECT len(gold_alternatives), count(*) FROM answers WHERE answer_source = 'minerva' GROUP BY 1 ORDER BY 1"
    ) == [(0, 197), (1, 71), (2, 4)]
    assert query(ws, "SELECT gold_answer FROM answers WHERE source_row = 3 AND answer_source = 'hmmt25'") == [("-984",)]
    meta = json.loads(query(ws, "SELECT meta FROM problems WHERE source = 'aime24' AND source_row = 0")[0][0])
    assert meta["aime_number"] == 1 and "answer" not in meta and "problem" not in meta


def test_generic_mapping_and_where(ws, tmp_path):
    rows = [
        {"question": "Q one?", "solution": "\\boxed{1}", "final": 1, "dataset": "mine", "model": "R1-distill"},
        {"question": "Q two?", "solution": "\\boxed{2}", "final": "2", "dataset": "mine", "model": "R1-distill"},
        {"question": "Q three?", "solution": "\\boxed{3}", "final": 3.0, "dataset": "other", "model": "R1-distill"},
    ]
    src = write_jsonl(tmp_path / "custom.jsonl", rows)
    with pytest.raises(OxaError, match="fits no preset; its columns are: question, solution, final, dataset, model"):
        ingest(ws, src)
    mapping = {
        "problem": "question",
        "response": "solution",
        "gold_answer": "final",
        "source": "dataset",
        "generator": "model",
    }
    stats = ingest(ws, src, mapping=mapping, where="source = 'mine'")
    assert stats["funnel"] == {"read": 3, "accepted": 2, "duplicate": 0, "rejected": 0, "filtered": 1}
    assert query(ws, "SELECT problem, generator, gold_answer, match_method FROM candidates ORDER BY source_row") == [
        ("Q one?", "R1-distill", "1", "given"),
        ("Q two?", "R1-distill", "2", "given"),
    ]
    with pytest.raises(OxaError, match="the filter .* failed"):
        ingest(ws, src, mapping=mapping, where="no_such_column = 1")
    with pytest.raises(OxaError, match="unknown field"):
        ingest(ws, src, mapping={"question": "problem"})


def test_verl_and_benchmark_inline_rows(ws, tmp_path):
    suffix = "\nPlease reason step by step, and put your final answer within \\boxed{}."
    verl = write_jsonl(
        tmp_path / "rl.jsonl",
        [
            {
                "data_source": "dapo",
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Compute $3^2$." + suffix},
                ],
                "reward_model": {"ground_truth": "9", "style": "rule"},
                "extra_info": {"index": 7},
            },
            {"data_source": "dapo", "prompt": "Compute $4^2$.", "reward_model": {"ground_truth": "16"}},
            {"data_source": "dapo", "prompt": [{"role": "user", "content": "Compute $5^2$."}], "reward_model": {}},
        ],
    )
    stats = ingest(ws, verl)  # detected: verl
    assert rejects(ws, stats) == [(1, None, "wrong_type:problem")]
    assert stats["instructions_stripped"] == 1
    assert query(ws, "SELECT problem, instruction, source, meta FROM problems ORDER BY source_row") == [
        ("Compute $3^2$.", suffix.strip(), "dapo", '{"index": 7}'),
        ("Compute $5^2$.", None, "dapo", None),
    ]
    assert query(ws, "SELECT problem_id, gold_answer FROM gold") == [(naive_problem_id("Compute $3^2$."), "9")]

    bench = tmp_path / "mini.json"
    bench.write_text(
        json.dumps(
            [
                {"problem": "Compute $3^2$.", "answer": 9, "id": 1},  # same problem: a second source's answer
                {"problem": "Find $k$.", "answer": ["0.5\n", "\\frac{1}{2}"], "id": 2},
                {"problem": "Find $m$.", "answer": {"value": 3}, "id": 3},
                {"problem": "Find $n$.", "answer": 2.50, "id": 4},
            ]
        )
    )
    stats = ingest(ws, bench)  # detected: benchmark
    assert stats["funnel"] == {"read": 4, "accepted": 3, "duplicate": 0, "rejected": 1, "filtered": 0}
    assert rejects(ws, stats) == [(2, None, "wrong_type:gold_answer")]
    assert query(
        ws,
        "SELECT a.answer_source, a.gold_answer, a.gold_alternatives, p.meta FROM answers AS a "
        "JOIN problems AS p USING (problem_id) WHERE a.answer_source = 'mini' ORDER BY a.source_row",
    ) == [
        ("mini", "9", [], '{"index": 7}'),  # a problem keeps the meta of its first sighting
        ("mini", "0.5", ["\\frac{1}{2}"], '{"id": 2}'),
        ("mini", "2.5", [], '{"id": 4}'),
    ]
    # two sources agreeing is no conflict; disagreeing is, on every row of the problem
    assert query(
        ws, "SELECT count(*), bool_or(conflict) FROM answers WHERE problem_id = ?", [naive_problem_id("Compute $3^2$.")]
    ) == [(2, False)]
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"problem": "Find $k$.", "answer": "0.25"}]))
    ingest(ws, other)
    assert query(
        ws,
        "SELECT answer_source, gold_answer, conflict FROM answers WHERE problem_id = ? ORDER BY 1",
        [naive_problem_id("Find $k$.")],
    ) == [("mini", "0.5", True), ("other", "0.25", True)]
    assert query(
        ws, "SELECT gold_answer, conflict FROM gold WHERE problem_id = ?", [naive_problem_id("Find $k$.")]
    ) == [("0.5", True)]


def test_one_response_per_row_takes_its_ppl_as_a_number(ws, tmp_path):
    """Issue 33: an AceReason-shaped file with a PPL column could not be ingested: a number
    was refused as not a list, and a one-element list crashed (ValueError in the scores
    check). A row holding one response takes its PPL and length as numbers."""
    rows = {"category": ["math"] * 3, "source": ["s"] * 3, "input": ["What is 1+1?", "What is 2+2?", "What is 3+3?"]}
    rows["output"] = ["<think>a</think> \\boxed{2}", "<think>b</think> \\boxed{4}", "<think>c</think> \\boxed{6}"]
    pq.write_table(pa.table({**rows, "ppl": [2.5, 0.5, 3.0], "n_tokens": [100, 7, 120]}), tmp_path / "flat.parquet")
    mapping = {"ppl": "ppl", "n_tokens": "n_tokens"}
    config = IngestConfig([str(tmp_path / "flat.parquet")], preset="acereason", mapping=mapping, scores_tag="base")
    stats = run_ingest(ws, config)
    ids = [naive_sample_id(p, r) for p, r in zip(rows["input"], rows["output"])]
    assert sorted(query(ws, "SELECT sample_id, ppl, n_tokens FROM scores_base")) == sorted(
        [(ids[0], 2.5, 100), (ids[2], 3.0, 120)]
    )
    assert stats["scores_dropped"] == {"invalid_ppl": 1} and stats["funnel"]["accepted"] == 3  # PPL 0.5 < 1
    records = [{"problem": "What is 5+5?", "response": "\\boxed{10}", "ppl": 1.5, "length": 9}]
    jsonl = write_jsonl(tmp_path / "flat.jsonl", records)
    mapping = {"problem": "problem", "response": "response", "ppl": "ppl", "n_tokens": "length"}
    run_ingest(ws, IngestConfig([str(jsonl)], mapping=mapping, scores_tag="base"))
    assert query(ws, "SELECT ppl, n_tokens FROM scores_base WHERE n_tokens = 9") == [(1.5, 9)]
    nested = pa.table({**rows, "ppl": [[2.5], [2.0], [3.0]], "n_tokens": [[100], [7], [120]]})
    pq.write_table(nested, tmp_path / "nested.parquet")
    listed = IngestConfig(
        [str(tmp_path / "nested.parquet")], preset="acereason", mapping={"ppl": "ppl"}, scores_tag="b"
    )
    with pytest.raises(OxaError, match=r"column 'ppl' has type list<element: double>, but ppl needs number \(double\)"):
        run_ingest(ws, listed)
