"""The OXA data as released: list columns named after the generator and the scorer, read
without --map; PPL values that cannot be PPLs; verdicts the source vouches for; and the
whole path from such a file to a subset with a shipped preset."""

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.select import load_select_config, run_select
from curate.verify import VerifyConfig, run_verify
from curate.workspace import OxaError
from curate.workspace.schema import valid_ppl
from tests.conftest import naive_sample_id, query, write_jsonl

RESPONSES = "DeepSeek-R1_Response_List"
PPL = "DeepSeek-R1_Response_Qwen2.5-Math-7B_ppl_list"
LENGTHS = "DeepSeek-R1_Response_token_len_list"


def think(answer: str, words: int = 3) -> str:
    return "<think>" + " step" * words + f"</think> so \\boxed{{{answer}}}"


def official_rows(problems: int = 3) -> list[dict]:
    return [
        {
            "query": f"What is {i} plus {i}?",
            RESPONSES: [think(str(2 * i)), think(str(2 * i), 9)],
            PPL: [1.5 + i / 10, 2.5 + i / 10],
            LENGTHS: [100 + i, 200 + i],
        }
        for i in range(problems)
    ]


def ingest(ws, *sources, **options):
    return run_ingest(ws, IngestConfig([str(s) for s in sources], **options))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize("preset", [None, "oxa-lists"])
def test_official_columns_are_read_as_published(ws, tmp_path, fmt, preset):
    rows = official_rows()
    src = tmp_path / f"oxa.{fmt}"
    write_jsonl(src, rows) if fmt == "jsonl" else pq.write_table(pa.Table.from_pylist(rows), src)
    stats = ingest(ws, src, preset=preset)
    assert stats["funnel"] == {"read": 6, "accepted": 6, "duplicate": 0, "rejected": 0, "filtered": 0}
    assert stats["scores_tag"] == "qwen2.5-math-7b"  # from the PPL column's name
    got = query(ws, "SELECT sample_id, n_tokens, ppl, round(nll_sum, 9) FROM scores_qwen2_5_math_7b ORDER BY ppl")
    expected = sorted(
        (naive_sample_id(r["query"], resp), n, p, round(n * math.log(p), 9))
        for r in rows
        for resp, p, n in zip(r[RESPONSES], r[PPL], r[LENGTHS])
    )
    assert got == sorted(expected, key=lambda e: e[2])


@pytest.mark.parametrize(
    ("responses", "ppl", "tag"),
    [
        ("r1_response_list", "r1_response_qwen3_1.7b_ppl_list", "qwen3-1.7b"),
        ("dps_7b_sample_list", "dps_7b_sample_Qwen2.5-Math-7B_ppl_list", "qwen2.5-math-7b"),
        ("responses", "ppl", None),  # the plain names need --scores-tag
    ],
)
def test_every_released_naming_without_map(ws, tmp_path, responses, ppl, tag):
    src = write_jsonl(tmp_path / "lists.jsonl", [{"query": "What is 2+2?", responses: [think("4")], ppl: [1.25]}])
    if tag is None:
        with pytest.raises(OxaError, match="--scores-tag"):
            ingest(ws, src)
        tag = "given-tag"
        ingest(ws, src, scores_tag=tag)
    else:
        assert ingest(ws, src)["scores_tag"] == tag
    assert query(ws, f'SELECT "ppl_{tag}" FROM candidates') == [(1.25,)]


def test_map_takes_dotted_column_names_and_refuses_missing_columns(ws, tmp_path):
    rows = [{"q": "What is 2+2?", "a.b": "\\boxed{4}", "nested": {"r": "\\boxed{5}"}}]
    src = write_jsonl(tmp_path / "custom.jsonl", rows)
    stats = ingest(ws, src, mapping={"problem": "q", "response": "a.b"})  # the column named a.b
    assert stats["funnel"]["accepted"] == 1
    assert query(ws, "SELECT response FROM samples") == [("\\boxed{4}",)]
    ingest(ws, src, mapping={"problem": "q", "response": "nested.r"})  # a path into an object
    assert sorted(query(ws, "SELECT response FROM samples")) == [("\\boxed{4}",), ("\\boxed{5}",)]
    with pytest.raises(OxaError, match=r"--map ppl=DeepSeek-R1_Response_Qwen2\.5-Math-7B_ppl_list: .* has no column"):
        ingest(ws, src, mapping={"problem": "q", "response": "a.b", "ppl": PPL}, scores_tag="t")


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_an_invalid_ppl_drops_the_score_not_the_sample(ws, tmp_path, layout):
    rows = [  # Python's json and pandas write NaN and Infinity as bare tokens, in lines and in arrays
        {
            "query": "Q one?",
            RESPONSES: ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"],
            PPL: [math.nan, 1.5, math.inf],
            LENGTHS: [10, 20, 30],
        },
        {"query": "Q two?", RESPONSES: ["\\boxed{1}", "\\boxed{2}"], PPL: [0.5, 1.2], LENGTHS: [10, 2.5]},
    ]
    src = tmp_path / f"bad.{layout}"
    text = "\n".join(json.dumps(r) for r in rows) if layout == "jsonl" else json.dumps(rows)
    assert "NaN" in text and "Infinity" in text
    src.write_text(text)
    stats = ingest(ws, src)
    assert stats["funnel"] == {"read": 5, "accepted": 5, "duplicate": 0, "rejected": 0, "filtered": 0}
    assert stats["scores_dropped"] == {"invalid_n_tokens": 1, "invalid_ppl": 3}
    assert stats["added"]["scores"] == 1
    assert query(ws, "SELECT ppl, n_tokens FROM scores_qwen2_5_math_7b") == [(1.5, 20)]
    # select applies the same rule to a PPL in the catalog
    assert valid_ppl(pa.array([1.0, 1 - 1e-7, 0.5, 0.0, float("nan"), float("inf"), 3.0]).to_numpy()).tolist() == [
        True,
        True,
        False,
        False,
        False,
        False,
        True,
    ]


def test_given_verdicts_take_the_official_data_to_a_subset(ws, tmp_path):
    src = write_jsonl(tmp_path / "oxa.jsonl", official_rows(40))
    stats = ingest(ws, src, verdict="correct")
    assert stats["added"]["verdicts"] == 80
    rows = query(ws, "SELECT DISTINCT verdict, verifier, settings_hash FROM verify")
    assert rows == [("correct", "given", "given")]
    assert query(ws, "SELECT reason FROM verify LIMIT 1")[0][0].startswith("given by oxa at ingest (oxa.jsonl, run ")
    # no gold anywhere: oxa verify leaves the given verdicts alone
    verified = run_verify(ws, VerifyConfig())
    assert verified["funnel"] == {"samples": 80, "already_verified": 80, "verified": 0}
    assert query(ws, "SELECT count(*) FROM candidates WHERE verdict = 'correct'") == [(80,)]
    # a shipped preset runs as it is (N cut down to fit the file)
    config = load_select_config("sft-lp-qwen2.5-7b", overrides=["N=10"])
    subset = run_select(ws, config)
    assert subset["rows"] == 10 and subset["status"] == "done"
    with pytest.raises(OxaError, match="--verdict takes correct or incorrect"):
        ingest(ws, src, verdict="maybe")
