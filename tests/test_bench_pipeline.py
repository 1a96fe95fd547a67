"""bench/pipeline.py (issue 33): its pool has the documented lengths and shapes, and its
chain runs end to end at a tiny size, with the funnel adding up and every row's verdict
the one its generation implies, so that the benchmark cannot rot between real runs."""

import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench import pipeline
from curate.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    "init",
    "ingest",
    "trace",
    "verify",
    pipeline.VERIFY_CACHED,
    "decontaminate",
    *(f"select {p}" for p in pipeline.PRESETS),
    "export",
]


def test_token_lengths_follow_the_documented_log_normal():
    tokens = pipeline.token_lengths(np.random.default_rng(0), 400_000)
    beyond = 1 - 0.5 * (
        1 + math.erf(math.log(pipeline.CUTOFF / pipeline.TOKENS_MEDIAN) / pipeline.TOKENS_SIGMA / 2**0.5)
    )
    assert abs(np.median(tokens) / pipeline.TOKENS_MEDIAN - 1) < 0.01
    assert abs((tokens > pipeline.CUTOFF).mean() - beyond) < 0.001  # 1.35%: "a few beyond the cutoff"
    assert 0.01 < beyond < 0.02
    assert tokens.min() == pipeline.MIN_TOKENS and tokens.max() == pipeline.TOKENS_MAX
    assert 6_500 < tokens.mean() < 8_000  # median several thousand, a long tail


def test_the_pool_has_r1_lengths_and_shapes(tmp_path):
    m = pipeline.generate(tmp_path, 3_000, 7, 1_000)
    pool = pq.read_table(tmp_path / "pool")
    truth = pq.read_table(tmp_path / "truth.parquet").to_pydict()
    assert m["files"] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert pool.column_names == ["category", "source", "input", "output", "ppl", "n_tokens"]  # AceReason's, PPL's
    assert pool.schema.field("ppl").type == pa.float64() and pool.schema.field("n_tokens").type == pa.int64()
    chars = pc.utf8_length(pool["output"]).to_numpy()
    assert pool["n_tokens"].to_pylist() == [round(c / pipeline.CHARS_PER_TOKEN) for c in chars]
    assert min(pool["ppl"].to_pylist()) > 1
    math_rows = pool.filter(pc.equal(pool["category"], "math"))
    assert math_rows["ppl"].to_pylist() == truth["ppl"] and math_rows["n_tokens"].to_pylist() == truth["n_tokens"]
    assert pool.num_rows == 3_000 and len(set(pool["output"].to_pylist())) == 3_000  # every response distinct
    categories = Counter(pool["category"].to_pylist())
    assert categories["math"] == m["math_rows"] == len(truth["row"]) and 0.93 < categories["math"] / 3_000 < 0.97
    assert 6.5 < m["math_rows"] / m["problems"] < 8.5  # ~7.6 responses per problem

    tokens = np.array(truth["n_chars"]) / pipeline.CHARS_PER_TOKEN
    assert abs(np.median(tokens) / pipeline.TOKENS_MEDIAN - 1) < 0.06
    assert 0.005 < (tokens > pipeline.CUTOFF).mean() < 0.025
    long_rows = np.array(truth["target_tokens"]) > 2_000
    ratio = tokens[long_rows] / np.array(truth["target_tokens"])[long_rows]
    assert 0.85 < np.percentile(ratio, 1) and np.percentile(ratio, 99) < 1.15  # each response near its drawn length
    assert 0.7 < ratio.min() and ratio.max() < 1.3

    outputs = pool.filter(pool["category"].to_numpy(zero_copy_only=False) == "math")["output"].to_pylist()
    kinds = Counter(truth["kind"])
    assert sum(o.count("</think>") == 1 for o in outputs) == len(outputs) - kinds["truncated"]
    assert sum("\\boxed{" in o.split("</think>")[0] for o in outputs) > 0.9 * len(outputs)  # boxes in the thinking
    assert 0.005 < sum(bool(re.search(r"\d{1000}", o.split("</think>")[0])) for o in outputs) / len(outputs) < 0.02
    assert sum("$" in o and "\\frac{" in o and "\\sqrt{" in o for o in outputs) > 0.95 * len(outputs)
    assert 0.55 < kinds["gold"] / len(outputs) < 0.72 and kinds["wrong"] > kinds["no_box"] > 0
    expected = Counter(truth["expected"])
    assert expected == Counter(m["expected_verdicts"])
    for kind, verdict, case in zip(truth["kind"], truth["expected"], truth["reference"]):
        assert verdict == ("bad_gold" if case == "missing" else pipeline.EXPECTED[kind])
    assert set(truth["reference"]) == {"exact", "normalized", "missing"}

    references = pq.read_table(tmp_path / "references.parquet")
    assert references.column_names == ["problem", "solution", "answer", "question_type", "source"]  # NuminaMath-1.5
    assert references.num_rows >= m["reference_cases"]["exact"] + m["reference_cases"]["normalized"]
    pool_problems = set(pool["input"].to_pylist())
    assert not pool_problems & set(references["problem"].to_pylist())  # whitespace at least: trace has work


def test_the_chain_runs_end_to_end_at_a_tiny_size(tmp_path):
    """~20 s: the chain's every stage, each in its own process, on 200 rows."""
    command = [sys.executable, "bench/pipeline.py", "--rows", "200", "--shard-rows", "100", "--workdir", str(tmp_path)]
    result = subprocess.run([*command, "--no-slowest-rows", "--workers", "2"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "pipeline.json").read_text())
    [size] = report["sizes"]
    assert size["failed"] is None
    assert [s["stage"] for s in size["stages"]] == STAGES
    scale = 1e6 / size["math_rows"]
    assert list(size["per_million"]) == STAGES
    for stage in size["stages"]:
        assert stage["rc"] == 0, stage
        assert stage["wall_s"] > 0 and stage["cpu_s"] > 0 and stage["peak_rss_mb"] > 0, stage
        assert stage["ws_peak_bytes"] > 0, stage
        if stage["stage"] == "init":  # reads nothing
            assert [stage[k] for k in pipeline.READ_FIGURES] == [None] * 4
        else:
            assert stage["rows"] > 0 and stage["rows_per_s"] > 0, stage
            assert stage["read_s"] > 0 and stage["read_peak_rss_mb"] > 0, stage
            assert stage["x_read"] == round(stage["wall_s"] / stage["read_s"], 2), stage
        million = size["per_million"][stage["stage"]]
        assert million["wall_s"] == round(stage["wall_s"] * scale, 2)
        assert million["cpu_s"] == round(stage["cpu_s"] * scale, 2)
        assert million["peak_rss_mb"] == stage["peak_rss_mb"]
        assert 0 < stage["busiest_threads"][0]["cpu_s"] <= stage["cpu_s"], stage  # bench/stage_usage.py
        assert million["lone_thread_s"] == round(pipeline.lone_thread_s(stage) * scale, 2)
        assert 0 < million["main_thread_s"] == round(pipeline.main_thread_s(stage) * scale, 2)
        assert million["on_64_cores_s"] == [round(seconds * scale, 2) for seconds in pipeline.on_cores(stage)]
        written = size["export"]["bytes"] if stage["stage"] == "export" else stage["ws_growth_bytes"]
        assert million["disk_mb"] == round(written * scale / 1e6, 1)
    # one read for the three selections: they read the same input
    assert len({s["read_s"] for s in size["stages"] if s["stage"].startswith("select ")}) == 1
    assert size["reads_failed"] == [] and size["reads_s"] > 0
    assert "x read" in result.stdout and "per million math rows" in result.stdout
    assert "2,600,000 rows on 64 cores, estimated" in result.stdout
    assert {s["stage"]: s["mb_per_s"] > 0 for s in size["stages"] if s["mb_per_s"] is not None} == {
        "ingest": True,
        "trace": True,
        "verify": True,
        pipeline.VERIFY_CACHED: True,
        "decontaminate": True,
        "export": True,
    }
    # verify again over the same samples with every pair in the cache: nothing judged
    runs = [json.loads(r.read_text()) for r in (tmp_path / "rows-200" / "ws" / "runs" / "verify").glob("*/stats.json")]
    first, again = sorted(runs, key=lambda stats: stats["finished_ns"])
    assert first["judged"]["pairs"] > 0 and again["judged"] == {"golds": 0, "pairs": 0}
    assert again["funnel"]["verified"] == first["funnel"]["verified"] == size["math_rows"]
    assert again["verdicts"] == first["verdicts"]
    # bench/ingest_floor.py over the same pool, beside the ingest it ran
    floor = subprocess.run(
        [sys.executable, "bench/ingest_floor.py", "--pool", str(tmp_path / "rows-200" / "pool")]
        + ["--results", str(tmp_path / "pipeline.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert floor.returncode == 0, floor.stdout + floor.stderr
    lines = floor.stdout.splitlines()
    assert lines[0].startswith("200 rows in 2 shards of ")
    assert lines[1].startswith("floor, CPU s: decode ") and "; total " in lines[1]
    assert lines[2].startswith("DuckDB read: ") and lines[3].startswith("oxa ingest: ")
    # bench/ingest_writers.py over the same pool: one samples writer against the shipped ones
    writers = subprocess.run(
        [sys.executable, "bench/ingest_writers.py", "--pool", str(tmp_path / "rows-200" / "pool")]
        + ["--rounds", "1", "--workdir", str(tmp_path / "writers")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert writers.returncode == 0, writers.stdout + writers.stderr
    one, shipped, verdict = writers.stdout.splitlines()
    assert one.startswith("one ") and shipped.startswith("shipped ") and verdict == "the same samples in every run"
    assert f"{size['math_rows']:,} samples in 1 parts" in shipped  # a small pool stays in one lane
    checks = size["checks"]
    truth = pq.read_table(tmp_path / "rows-200" / "truth.parquet")
    assert checks["samples"] == checks["math_rows"] == truth.num_rows == size["math_rows"]  # the funnel adds up
    assert checks["verdict_mismatches"] == [] and checks["verdicts_as_expected"] == truth.num_rows
    assert checks["verdicts"] == checks["expected_verdicts"]
    assert set(checks["verdicts"]) == {"correct", "incorrect", "no_answer", "bad_gold"}
    n = pipeline.select_n(size["math_rows"])
    assert checks["subset_rows"] == {preset: n for preset in pipeline.PRESETS}
    # ingest took the pool's PPL columns as scores/<tag>/: the truth's, row for row
    con = Workspace.open(tmp_path / "rows-200" / "ws").connect()
    con.execute(
        "CREATE TEMP TABLE truth AS SELECT * FROM read_parquet(?)", [str(tmp_path / "rows-200" / "truth.parquet")]
    )
    scores = con.sql(
        """SELECT count(*), count(*) FILTER (c.ppl = t.ppl AND c.n_tokens = t.n_tokens)
           FROM scores_qwen2_5_math_1_5b AS c JOIN samples AS s USING (sample_id)
           JOIN truth AS t ON t.file = parse_filename(s.source_file) AND t.row = s.source_row"""
    ).fetchall()
    con.close()
    assert scores == [(truth.num_rows, truth.num_rows)]
    assert size["export"]["format"] == "trl" and size["export"]["bytes"] > 0


@pytest.mark.slow
def test_the_smoke_step_runs_the_shipped_data(tmp_path):
    command = [sys.executable, "bench/pipeline.py", "--smoke", "--no-slowest-rows", "--workdir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    smoke = json.loads((tmp_path / "pipeline.json").read_text())["smoke"]
    assert smoke["problems"] == 462  # the six benchmark sets (432) and the 30 verl prompts
    assert smoke["checks"]["funnel_ok"] and all(s["rc"] == 0 for s in smoke["stages"])
    # real golds: a loaded machine may time math-verify out on a few, nothing else may differ
    mismatches = smoke["checks"]["verdict_mismatches"]
    assert all(m["verdict"] == "timeout" for m in mismatches), mismatches
    assert smoke["checks"]["verdicts_as_expected"] > 0.99 * smoke["math_rows"]


def test_the_slowest_rows_measure_every_function_on_every_shape():
    result = pipeline.slowest_rows(0, sizes=(1_000, 2_000))
    pairs = {(r["function"], r["shape"]) for r in result["shapes"]}
    assert len(pairs) == len(result["shapes"]) == 8 * 6
    assert all(set(r["seconds"]) <= {"1000", "2000"} and min(r["seconds"].values()) > 0 for r in result["shapes"])
