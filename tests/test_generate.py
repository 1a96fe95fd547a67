"""`oxa generate`: self-distillation samples with their sampling facts, deterministic,
duplicates counted, resumable, sharded, and verified like any other sample."""

import json
import shutil

import pytest

torch = pytest.importorskip("torch")

from curate.ingest import IngestConfig, run_ingest  # noqa: E402
from curate.score import ScoreConfig, run_score  # noqa: E402
from curate.score.generate import GenerateConfig, prompt_seed, run_generate  # noqa: E402
from curate.score.shards import Shard  # noqa: E402
from curate.verify import (  # noqa: E402
    VerifierSettings,  # noqa: E402
    VerifyConfig,
    run_verify,
)
from curate.workspace import OxaError, Workspace  # noqa: E402
from tests.conftest import naive_sample_id, query  # noqa: E402

WHERE = "source = 'aops_forum'"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pool_ws(synth_world, tmp_path_factory) -> Workspace:
    ws = Workspace.init(tmp_path_factory.mktemp("generate") / "ws")
    run_ingest(ws, IngestConfig([str(synth_world / "pool" / "teacher.jsonl")], preset="acereason"))
    return ws


@pytest.fixture
def copy_ws(pool_ws, tmp_path) -> Workspace:
    shutil.copytree(pool_ws.root, tmp_path / "ws", ignore=shutil.ignore_patterns(".locks"))
    return Workspace.open(tmp_path / "ws")


def config(tiny_models, **settings) -> GenerateConfig:
    defaults = {"n": 3, "max_new_tokens": 40, "where": WHERE, "batch_prompts": 2}
    return GenerateConfig(str(tiny_models / "instruct"), "tiny-self", **(defaults | settings))


def self_rows(ws) -> list[tuple]:
    return query(
        ws,
        "SELECT s.sample_id, s.problem_id, p.problem, s.response, s.origin, s.generator, s.finish_reason, s.seed, "
        "s.sampling, s.source_index FROM samples AS s JOIN problems AS p USING (problem_id) "
        "WHERE origin = 'self' ORDER BY sample_id",
    )


def test_generate_writes_self_samples(tiny_models, copy_ws):
    problems = query(copy_ws, f"SELECT problem_id FROM problems WHERE {WHERE} ORDER BY problem_id")
    stats = run_generate(copy_ws, config(tiny_models))
    rows = self_rows(copy_ws)
    c = stats["completions"]
    assert stats["funnel"] == {"problems": len(problems), "already_done": 0, "generated": len(problems)}
    assert c["completions"] == 3 * len(problems) == c["written"] + c["duplicates"] + c["empty"]
    assert len(rows) == c["written"] > 0
    assert sum(stats["finish_reasons"].values()) == c["completions"]
    for sample_id, problem_id, problem, response, origin, generator, finish, seed, sampling, index in rows:
        assert sample_id == naive_sample_id(problem, response)  # the same ids ingest gives
        assert (origin, generator) == ("self", "tiny-self") and finish in ("stop", "length")
        assert seed == prompt_seed(0, problem_id) and 0 <= index < 3
        assert json.loads(sampling) | {"instruction": None} == {
            "n": 3,
            "temperature": 0.85,
            "top_p": 0.95,
            "max_new_tokens": 40,
            "seed": 0,
            "instruction": None,
        }
    per_problem = query(copy_ws, "SELECT count(*) FROM samples WHERE origin = 'self' GROUP BY problem_id")
    assert all(1 <= n <= 3 for (n,) in per_problem)
    # ingested samples read the new columns as NULL
    assert query(copy_ws, "SELECT count(*) FROM samples WHERE origin <> 'self' AND finish_reason IS NOT NULL") == [(0,)]


def test_greedy_duplicates_are_counted_not_written(tiny_models, copy_ws):
    stats = run_generate(copy_ws, config(tiny_models, temperature=0.0))
    problems = stats["funnel"]["problems"]
    assert stats["completions"] == {
        "completions": 3 * problems,
        "written": problems,
        "duplicates": 2 * problems,
        "empty": 0,
    }


def test_deterministic_resumable_and_sharded(tiny_models, copy_ws, pool_ws, tmp_path):
    run_generate(copy_ws, config(tiny_models))
    whole = self_rows(copy_ws)

    killed = Workspace.open(shutil.copytree(pool_ws.root, tmp_path / "killed", ignore=shutil.ignore_patterns(".locks")))

    def kill(what, done, total):
        if what == "generating" and done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_generate(killed, config(tiny_models), progress=kill)
    assert 0 < len(self_rows(killed)) < len(whole)
    stats = run_generate(killed, config(tiny_models))
    assert stats["funnel"]["already_done"] == 2
    assert self_rows(killed) == whole  # no duplicate, no gap, the same draws
    assert run_generate(killed, config(tiny_models))["funnel"]["generated"] == 0

    sharded = Workspace.open(
        shutil.copytree(pool_ws.root, tmp_path / "sharded", ignore=shutil.ignore_patterns(".locks"))
    )
    for i in range(2):
        run_generate(sharded, config(tiny_models), shard=Shard(i, 2))
    assert self_rows(sharded) == whole


def test_changed_config_needs_a_new_tag(tiny_models, copy_ws):
    run_generate(copy_ws, config(tiny_models, where=f"{WHERE} AND problem_id < '4'"))
    with pytest.raises(OxaError, match="use a new --tag"):
        run_generate(copy_ws, config(tiny_models, temperature=0.5))


def test_bad_input(tiny_models, copy_ws, tmp_path):
    with pytest.raises(OxaError, match="no config.json"):
        run_generate(copy_ws, GenerateConfig(str(tmp_path), "x"))
    with pytest.raises(OxaError, match="invalid score tag"):
        run_generate(copy_ws, GenerateConfig(str(tiny_models / "instruct"), "../x"))
    with pytest.raises(OxaError, match="0 < --top-p <= 1"):
        run_generate(copy_ws, config(tiny_models, top_p=0))
    with pytest.raises(OxaError, match="check --where"):
        run_generate(copy_ws, config(tiny_models, where="nope = 1"))
    with pytest.raises(OxaError, match=r"plus --max-new-tokens 1,020 exceeds the model's 1,024 positions"):
        run_generate(copy_ws, GenerateConfig(str(tiny_models / "instruct"), "long", max_new_tokens=1020, where=WHERE))


def test_verify_and_score_treat_self_samples_like_any_other(tiny_models, copy_ws):
    run_generate(copy_ws, config(tiny_models))
    n_self = len(self_rows(copy_ws))
    run_verify(copy_ws, VerifyConfig(VerifierSettings(deadline_s=5.0), workers=1))
    verdicts = query(copy_ws, "SELECT count(verdict) FROM candidates WHERE origin = 'self'")[0][0]
    assert verdicts == n_self
    stats = run_score(copy_ws, ScoreConfig(str(tiny_models / "base"), "base", where="origin = 'self'"))
    assert stats["funnel"]["scored"] == n_self
    assert query(copy_ws, "SELECT count(ppl_base) FROM candidates WHERE origin = 'self'")[0][0] == n_self


def test_a_lost_generated_part_is_found_and_made_again(tiny_models, copy_ws):
    """Issue 31: a samples part deleted by hand left its problems marked done, so a rerun
    skipped them and nothing said so. `oxa check` names the part and the lost problems;
    `--repair` forgets them as done; the rerun makes the same samples again."""
    from curate.check import repair_workspace, run_check

    run_generate(copy_ws, config(tiny_models, batch_prompts=8))
    whole = self_rows(copy_ws)
    lost = sorted((copy_ws.root / "pool" / "samples").glob("generate-*.parquet"))[0]
    lost_problems = {row[0] for row in query(copy_ws, f"SELECT DISTINCT problem_id FROM '{lost}'")}
    lost.unlink()
    report = run_check(copy_ws)
    relative = lost.relative_to(copy_ws.root).as_posix()
    assert [(f.kind, f.path) for f in report.findings] == [("missing-part", relative)]
    repair_workspace(copy_ws, report)
    report = run_check(copy_ws)
    assert [(f.kind, f.path) for f in report.findings] == [("generation-lost", "pool/self/tiny-self")]
    assert report.findings[0].problem.startswith(f"{len(lost_problems)} problems are marked generated")
    repair_workspace(copy_ws, report)
    assert run_check(copy_ws).findings == []
    stats = run_generate(copy_ws, config(tiny_models, batch_prompts=8))
    assert stats["funnel"]["generated"] == len(lost_problems)
    assert self_rows(copy_ws) == whole  # the same draws: seeds come from (seed, problem_id)
