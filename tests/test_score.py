"""`oxa score` and the HF backend: PPL equal to a naive fp64 reference in both context
modes, packed and padded, any batch size; resume after a kill, shards, config changes,
bad input."""

import json
import math
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from curate.backends import load_backend  # noqa: E402
from curate.backends.base import ScoreItem  # noqa: E402
from curate.ingest import IngestConfig, run_ingest  # noqa: E402
from curate.score import ScoreConfig, run_score  # noqa: E402
from curate.score.shards import Shard, parse_shard  # noqa: E402
from curate.text.instructions import KNOWN_SUFFIXES  # noqa: E402
from curate.workspace import OxaError, Workspace  # noqa: E402
from curate.workspace.schema import SAMPLES  # noqa: E402
from tests.conftest import query  # noqa: E402

WHERE = "source = 'aops_forum'"  # a few dozen of the synthetic pool's samples


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pool_ws(synth_world, tmp_path_factory) -> Workspace:
    """The synthetic teacher pool, plus one sample whose response is empty (written as a
    part directly: ingest itself refuses empty responses)."""
    ws = Workspace.init(tmp_path_factory.mktemp("score") / "ws")
    run_ingest(ws, IngestConfig([str(synth_world / "pool" / "teacher.jsonl")], preset="acereason"))
    problem_id = query(ws, "SELECT min(problem_id) FROM problems WHERE source = 'aops_forum'")[0][0]
    empty = {
        "sample_id": "e" * 24,
        "problem_id": problem_id,
        "response": "",
        "origin": "teacher",
        "source": "aops_forum",
    }
    pq.write_table(pa.Table.from_pylist([empty], SAMPLES), ws.table_folder("samples") / "odd-000000000000000e.parquet")
    return ws


@pytest.fixture
def copy_ws(pool_ws, tmp_path) -> Workspace:
    shutil.copytree(pool_ws.root, tmp_path / "ws", ignore=shutil.ignore_patterns(".locks"))
    return Workspace.open(tmp_path / "ws")


def naive_nll(model, context: list[int], target: list[int]) -> tuple[int, float]:
    """One sequence, full fp64 log-softmax over model(...).logits."""
    ids = torch.tensor([context + target])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    first = max(len(context), 1)
    picked = [logp[p - 1, ids[0, p]].item() for p in range(first, ids.shape[1])]
    return len(picked), -sum(picked)


def prompt_of(tokenizer, problem: str) -> list[int]:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": f"{problem}\n{KNOWN_SUFFIXES[0]}"}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def reference(pool_ws, model_dir, context: str, max_tokens: int | None = None) -> dict[str, tuple]:
    """sample_id -> (n_tokens, ppl, truncated) by the naive loop."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = query(
        pool_ws,
        f"SELECT sample_id, problem, response FROM candidates WHERE {WHERE} AND response <> '' ORDER BY sample_id",
    )
    out = {}
    for sample_id, problem, response in rows:
        ctx = prompt_of(tokenizer, problem) if context == "prompt" else []
        target = tokenizer(response, add_special_tokens=False)["input_ids"]
        room = (max_tokens or 10**9) - len(ctx)
        n, nll = naive_nll(model, ctx, target[:room])
        out[sample_id] = (n, math.exp(nll / n), len(target) > room)
    return out


def scores(ws, tag: str) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in query(ws, f'SELECT sample_id, n_tokens, ppl, truncated FROM "scores_{tag}"')}


def close(a: float, b: float, rel: float = 1e-4) -> bool:
    return abs(a - b) <= rel * abs(b)


@pytest.mark.parametrize("context", ["none", "prompt"])
def test_backend_equals_naive_reference_packed_padded_any_batch(tiny_models, pool_ws, context):
    model_dir = tiny_models / "instruct"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = query(pool_ws, f"SELECT sample_id, problem, response FROM candidates WHERE {WHERE} ORDER BY sample_id")
    items = [
        ScoreItem(
            sid,
            tuple(prompt_of(tokenizer, problem) if context == "prompt" else []),
            tuple(tokenizer(response, add_special_tokens=False)["input_ids"][:150]),
        )
        for sid, problem, response in rows[:10]
        if response
    ]
    expected = [naive_nll(model, list(i.context_ids), list(i.target_ids)) for i in items]
    for packed, budget in ((True, 1), (True, 100_000), (True, 700), (False, 1), (False, 100_000)):
        backend = load_backend("hf", str(model_dir), token_budget=budget, packed=packed)
        got = backend.score(items)
        assert [s.key for s in got] == [i.key for i in items]
        for score, (n, nll) in zip(got, expected):
            assert score.n_tokens == n
            assert close(math.exp(score.nll_sum / n), math.exp(nll / n)), (packed, budget, score, nll)


def test_packed_rows_hold_several_sequences(tiny_models):
    """The case the packing relies on: transformers isolates sequences by position ids."""
    backend = load_backend("hf", str(tiny_models / "base"), token_budget=200)
    items = [ScoreItem(str(k), (), tuple(range(7, 7 + n))) for k, n in enumerate([40, 10, 12, 15, 8, 20])]
    rows = backend._next_batch(items, sorted(range(6), key=lambda i: -len(items[i].target_ids)), 0)
    assert rows == [[0], [5, 3], [2, 1, 4]]
    model = AutoModelForCausalLM.from_pretrained(tiny_models / "base").eval()
    for score, item in zip(backend.score(items), items):
        n, nll = naive_nll(model, [], list(item.target_ids))
        assert score.n_tokens == n and close(score.nll_sum, nll, 1e-5)


@pytest.mark.parametrize("context", ["none", "prompt"])
def test_score_stage_equals_reference(tiny_models, copy_ws, pool_ws, context):
    model_dir = tiny_models / "instruct"
    stats = run_score(copy_ws, ScoreConfig(str(model_dir), "tiny", context=context, where=WHERE, batch_rows=8))
    expected = reference(pool_ws, model_dir, context)
    got = scores(copy_ws, "tiny")
    assert got.keys() == expected.keys()
    for sid, (n, ppl, truncated) in got.items():
        assert n == expected[sid][0] and truncated is False and close(ppl, expected[sid][1])
    assert stats["funnel"] == {
        "selected": len(expected) + 1,
        "already_scored": 0,
        "scored": len(expected),
        "rejected": 1,
    }
    assert stats["rejects"] == {"empty_response": 1}
    manifest = json.loads((copy_ws.scores_folder("tiny") / "manifest.json").read_text())
    assert manifest["context"] == context and manifest["dtype"] == "float32" and manifest["max_tokens"] == 1024
    assert (manifest["instruction"] == KNOWN_SUFFIXES[0]) == (context == "prompt")
    assert (manifest["chat_template"] is not None) == (context == "prompt")
    # the catalog sees the new tag at once
    in_view = query(copy_ws, f"SELECT count(ppl_tiny) FROM candidates WHERE {WHERE}")[0][0]
    assert in_view == len(expected)


def test_truncation_flagged_or_dropped(tiny_models, copy_ws, pool_ws):
    model_dir = tiny_models / "base"
    run_score(copy_ws, ScoreConfig(str(model_dir), "cut", max_tokens=120, where=WHERE))
    expected = reference(pool_ws, model_dir, "none", max_tokens=120)
    got = scores(copy_ws, "cut")
    assert any(t for _, _, t in expected.values()) and not all(t for _, _, t in expected.values())
    for sid, (n, ppl, truncated) in got.items():
        assert (n, truncated) == (expected[sid][0], expected[sid][2]) and close(ppl, expected[sid][1])
    stats = run_score(copy_ws, ScoreConfig(str(model_dir), "drop", max_tokens=120, drop_long=True, where=WHERE))
    long = sum(t for _, _, t in expected.values())
    assert stats["rejects"] == {"too_long": long, "empty_response": 1}
    assert set(scores(copy_ws, "drop")) == {sid for sid, v in expected.items() if not v[2]}
    rejects = pq.read_table(copy_ws.run_dir("score", stats["run_id"]) / "rejects").to_pylist()
    assert sorted(r["reason"] for r in rejects) == sorted(["too_long"] * long + ["empty_response"])


def rows_of(ws, tag) -> list[tuple]:
    return sorted(query(ws, f'SELECT * FROM "scores_{tag}"'))


def test_resume_after_kill_writes_what_an_uninterrupted_run_writes(tiny_models, copy_ws):
    model = str(tiny_models / "base")
    run_score(copy_ws, ScoreConfig(model, "whole", where=WHERE, batch_rows=4, rows_per_part=8))
    calls = []

    def kill(what, done, total):
        calls.append(done)
        if what == "scoring" and done >= 12:
            raise KeyboardInterrupt

    config = ScoreConfig(model, "killed", where=WHERE, batch_rows=4, rows_per_part=8)
    with pytest.raises(KeyboardInterrupt):
        run_score(copy_ws, config, progress=kill)
    partial = rows_of(copy_ws, "killed")
    assert 0 < len(partial) < len(rows_of(copy_ws, "whole"))
    assert not list(copy_ws.scores_folder("killed").glob(".*.partial"))  # no half-written part left
    stats = run_score(copy_ws, config)
    assert stats["funnel"]["already_scored"] == len(partial)
    assert rows_of(copy_ws, "killed") == rows_of(copy_ws, "whole")  # no duplicate, no gap, same numbers
    again = run_score(copy_ws, config)
    assert again["funnel"]["scored"] == 0 and rows_of(copy_ws, "killed") == rows_of(copy_ws, "whole")


def test_shards_together_equal_one_run(tiny_models, copy_ws):
    model = str(tiny_models / "base")
    run_score(copy_ws, ScoreConfig(model, "one", where=WHERE))
    for i in range(2):
        run_score(copy_ws, ScoreConfig(model, "two", where=WHERE), shard=Shard(i, 2))
    names = sorted(p.name.split("-")[2] for p in copy_ws.scores_folder("two").glob("score-*.parquet"))
    assert names == ["shard0of2", "shard1of2"]
    one, two = rows_of(copy_ws, "one"), rows_of(copy_ws, "two")
    assert [r[:2] + r[4:] for r in one] == [r[:2] + r[4:] for r in two]
    # other batches, so float32 sums in another order: equal to float precision
    assert all(close(a[2], b[2], 1e-5) and close(a[3], b[3], 1e-5) for a, b in zip(one, two))


def test_changed_config_needs_a_new_tag_or_overwrite(tiny_models, copy_ws):
    model = str(tiny_models / "base")
    run_score(copy_ws, ScoreConfig(model, "t", where=WHERE, max_tokens=200))
    with pytest.raises(OxaError, match="use a new --tag, or --overwrite"):
        run_score(copy_ws, ScoreConfig(model, "t", where=WHERE, max_tokens=100))
    with pytest.raises(OxaError, match="use a new --tag, or --overwrite"):
        run_score(copy_ws, ScoreConfig(str(tiny_models / "instruct"), "t", where=WHERE, max_tokens=200))
    run_score(copy_ws, ScoreConfig(model, "t", where=WHERE, max_tokens=100, overwrite=True))
    assert max(r[1] for r in rows_of(copy_ws, "t")) <= 99  # only the new config's scores remain


def test_bad_input(tiny_models, copy_ws, tmp_path):
    model = str(tiny_models / "base")
    with pytest.raises(OxaError, match="no config.json"):
        run_score(copy_ws, ScoreConfig(str(tmp_path / "nowhere"), "x"))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models / "base", broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(OxaError, match=f"cannot load a causal LM from {broken}"):
        run_score(copy_ws, ScoreConfig(str(broken), "x", where=WHERE))
    plain = tmp_path / "plain"
    shutil.copytree(tiny_models / "base", plain)
    (plain / "chat_template.jinja").unlink()
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(OxaError, match="has no chat template, which --context prompt needs"):
        run_score(copy_ws, ScoreConfig(str(plain), "x", context="prompt"))
    for tag in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(OxaError, match="invalid score tag"):
            run_score(copy_ws, ScoreConfig(model, tag))
    with pytest.raises(OxaError, match="--context must be one of"):
        run_score(copy_ws, ScoreConfig(model, "x", context="both"))
    with pytest.raises(OxaError, match="check --where"):
        run_score(copy_ws, ScoreConfig(model, "x", where="no_such_column = 1"))
    assert not (copy_ws.root / "escape").exists()


def test_ingested_scores_are_not_mixed_with_computed_ones(tiny_models, copy_ws):
    folder = copy_ws.ensure_scores_folder("given")
    pq.write_table(pa.table({"sample_id": ["x"], "ppl": [2.0]}), folder / "ingest-abc-0123456789abcdef.parquet")
    with pytest.raises(OxaError, match="another source"):
        run_score(copy_ws, ScoreConfig(str(tiny_models / "base"), "given", where=WHERE))


def test_shard_from_the_launcher_environment():
    assert parse_shard(None, {}) == Shard(0, 1)
    assert parse_shard(None, {"RANK": "3", "WORLD_SIZE": "8"}) == Shard(3, 8)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"}) == Shard(1, 4)
    assert parse_shard("2/5", {"RANK": "3", "WORLD_SIZE": "8"}) == Shard(2, 5)
    for bad in ("5/5", "1", "a/b", "-1/2"):
        with pytest.raises(OxaError, match="i/n with 0 <= i < n"):
            parse_shard(bad, {})


def test_shard_membership_is_the_same_in_sql_and_python(pool_ws):
    ids = [r[0] for r in query(pool_ws, "SELECT sample_id FROM samples")]
    for shard in (Shard(0, 3), Shard(1, 3), Shard(2, 3)):
        in_sql = {r[0] for r in query(pool_ws, f"SELECT sample_id FROM samples AS s WHERE {shard.sql('s.sample_id')}")}
        assert in_sql == {i for i in ids if shard.holds(i)}
    assert sum(Shard(i, 3).holds(x) for x in ids for i in range(3)) == len(ids)


def test_cli_score_and_resume(tiny_models, copy_ws, monkeypatch):
    from typer.testing import CliRunner

    from curate.cli import app

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["score", str(copy_ws.root), "--model", str(tiny_models / "base"), "--tag", "cli", "--where", WHERE]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "shard 1/2" in result.output and "scored" in result.output
    ids = {r[0] for r in query(copy_ws, "SELECT sample_id FROM scores_cli")}
    assert ids and all(Shard(1, 2).holds(i) for i in ids)
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert "already scored" in again.output and len(ids) == query(copy_ws, "SELECT count(*) FROM scores_cli")[0][0]
