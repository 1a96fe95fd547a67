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
