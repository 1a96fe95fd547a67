"""`oxa score` and `oxa generate` end to end with --backend vllm, against --backend hf."""

import pytest

pytest.importorskip("vllm")

from typer.testing import CliRunner  # noqa: E402

from curate.cli import app  # noqa: E402
from curate.ingest import IngestConfig, run_ingest  # noqa: E402
from curate.synth.world import POOL_FILE  # noqa: E402
from curate.workspace import Workspace  # noqa: E402
from tests.conftest import query  # noqa: E402

WHERE = "source = 'aops_forum'"  # a few dozen of the synthetic pool's samples


@pytest.fixture(scope="module")
def pool_ws(synth_world, tmp_path_factory) -> Workspace:
    ws = Workspace.init(tmp_path_factory.mktemp("vllm-stages") / "ws")
    run_ingest(ws, IngestConfig([str(synth_world / POOL_FILE)], preset="acereason"))
    return ws


def oxa(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_oxa_score_vllm_equals_hf(tiny_models, pool_ws):
    for backend in ("hf", "vllm"):
        oxa("score", pool_ws.root, "--model", tiny_models / "base", "--tag", backend, "--backend", backend,
            "--where", WHERE)  # fmt: skip
        oxa("score", pool_ws.root, "--model", tiny_models / "base", "--tag", f"{backend}_prompt",
            "--backend", backend, "--context", "prompt", "--max-tokens", 200, "--where", WHERE)  # fmt: skip
    for tag in ("", "_prompt"):
        sql = f'SELECT sample_id, n_tokens, truncated, nll_sum, ppl FROM "scores_{{}}{tag}" ORDER BY sample_id'
        hf, vl = query(pool_ws, sql.format("hf")), query(pool_ws, sql.format("vllm"))
        assert [row[:3] for row in vl] == [row[:3] for row in hf] and len(hf) >= 20
        for got, want in zip(vl, hf):
            assert got[3:] == pytest.approx(want[3:], rel=1e-4)
    assert any(row[0] for row in query(pool_ws, 'SELECT truncated FROM "scores_vllm_prompt"'))


def test_oxa_generate_vllm_writes_self_samples(tiny_models, pool_ws):
    oxa("generate", pool_ws.root, "--model", tiny_models / "instruct", "--tag", "selfv", "--backend", "vllm",
        "--n", 3, "--max-new-tokens", 32, "--where", WHERE, "--seed", 5)  # fmt: skip
    problems = query(pool_ws, f"SELECT count(*) FROM problems WHERE {WHERE}")[0][0]
    rows = query(
        pool_ws,
        "SELECT problem_id, count(*), count(DISTINCT response), min(finish_reason), max(finish_reason) "
        "FROM samples WHERE origin = 'self' AND generator = 'selfv' GROUP BY problem_id",
    )
    assert len(rows) == problems > 0
    for _, n, distinct, low, high in rows:
        assert n == distinct == 3 and {low, high} <= {"stop", "length"}


def test_oxa_eval_vllm_generates_judges_and_reports(tiny_models, synth_world, tmp_path):
    """`oxa eval --backend vllm`: vLLM samples, the hf backend scores their entropy, then the report."""
    out = tmp_path / "eval"
    oxa("eval", "--model", tiny_models / "instruct", "--benchmarks", synth_world / "heldout.json", "--backend",
        "vllm", "--n", 4, "--max-new-tokens", 24, "--limit", 3, "-o", out)  # fmt: skip
    import polars as pl

    samples = pl.read_parquet(out / "samples" / "heldout.parquet")
    assert samples.height == 3 * 4 and samples["problem_id"].n_unique() == 3
    assert set(samples["finish_reason"]) <= {"stop", "length"} and samples["n_tokens"].max() <= 24
    assert samples["entropy_mean"].is_not_null().all() and (samples["entropy_mean"] > 0).all()
    assert set(samples["verdict"]) <= {"correct", "incorrect", "no_answer"}
    metrics = pl.read_parquet(out / "metrics.parquet").to_dicts()
    assert metrics[0]["k"] == 4 and 0 <= metrics[0]["pass_at_1"] <= metrics[0]["pass_at_k"] <= 1
    assert (out / "table.md").is_file() and (out / "pass_at_k.png").is_file()
