"""`oxa eval` warns when the subset a model was trained on was not checked against a set it
evaluates, or kept contaminated rows: the exact lines from handwritten records, the chain
from a checkpoint or a GRPO output to the SFT record, and one run from decontamination
through selection and `oxa train sft` to the lines on stderr, in table.md and config.json."""

import json
import shutil
from pathlib import Path

import pytest

from curate.benchmarks.sets import load_prompt_set, resolve_sets
from train.eval.contamination import (
    GRPO_RECORD,
    check_model,
    contamination_warnings,
    find_training,
    load_training_record,
)

RUN = "20260101T000000Z-0123abcd"
SUBSET = "training subset full/0123456789abcdef"


def _set(tmp_path: Path, name: str, problem: str):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps([{"problem": problem, "answer": "1"}]))
    return load_prompt_set(name, path)


def _facts(*checked, run_id=RUN, matched=None, unchecked=0, exclude=True) -> dict:
    """A card's "decontamination" object (curate/subsets/cards.py decontamination_facts)."""
    return {
        "run_id": run_id,
        "fingerprint": "0123456789abcdef" if run_id else None,
        "benchmarks": [
            {"name": s.name, "path": str(s.path), "sha256": s.digest, "problems": len(s.problems), "kind": s.kind}
            for s in checked
        ],
        "settings": {"ngram": 8, "min_coverage": 0.8, "responses": False} if run_id else None,
        "exclude_contaminated": exclude,
        "drop_templates": False,
        "dropped": {"positives": 0},
        "rows_matched": {"exact": 0, "contained": 0, "near": 0, "template": 0} | (matched or {}),
        "rows_unchecked": unchecked,
    }


def _record(facts=..., card_sha256="c" * 64) -> dict:
    """An oxa_train.json of a run on a subset; `facts` ... leaves the decontamination out (an older record)."""
    subset = {"name": "full", "version": "0123456789abcdef", "path": "/gone/ws/subsets/full/0123456789abcdef"}
    subset |= {"card_sha256": card_sha256, "data_sha256": "d" * 64}
    if facts is not ...:
        subset["decontamination"] = facts
    return {"status": "done", "data": {"source": subset["path"], "kind": "subset", "subset": subset}}


def _lines(record: dict, sets) -> list[str]:
    return [w["line"] for w in contamination_warnings(record, sets)]


def test_warning_lines(tmp_path):
    aime = load_prompt_set(*resolve_sets("aime24")[0])
    mine = _set(tmp_path, "mine", "What is 1 + 0?")
    sets = [aime, mine]
    mine_sha = mine.digest[:16]

    # checked against every set evaluated, nothing kept: no warning (template matches are no contamination)
    assert contamination_warnings(_record(_facts(aime, mine, matched={"template": 3})), sets) == []
    # checked against another set: the line names the set evaluated and what was checked
    assert contamination_warnings(_record(_facts(aime)), sets) == [
        {
            "benchmark": "mine",
            "line": f"{SUBSET} was not checked against mine (sha256 {mine_sha}): "
            f"decontamination run {RUN} checked aime24",
        }
    ]
    # a set of the same name whose file changed since is not checked: the digest decides, never the name
    (tmp_path / "old").mkdir()
    older = _set(tmp_path / "old", "mine", "What is 2 + 0?")
    assert _lines(_record(_facts(aime, older)), sets) == [
        f"{SUBSET} was not checked against mine (sha256 {mine_sha}): decontamination run {RUN} checked aime24, "
        f"mine; its mine was another file (sha256 {older.digest[:16]})"
    ]
    # no decontamination run in the workspace when the subset was selected
    assert _lines(_record(_facts(run_id=None)), sets) == [
        f"{SUBSET} was not checked against any benchmark (no `oxa decontaminate` run when it was selected): "
        "problems of aime24, mine may be among its rows"
    ]
    # a card from an older oxa (no "decontamination" key: None in the record), and a record that knows nothing
    assert _lines(_record(None), sets) == [
        f"{SUBSET} has a card from an oxa that recorded no decontamination: "
        "not known whether it was checked against aime24, mine"
    ]
    assert _lines(_record(), sets) == [
        f"{SUBSET}: neither its oxa_train.json nor a card with its checksum records its decontamination: "
        "not known whether it was checked against aime24, mine"
    ]
    # kept contaminated rows, and rows ingested after the run: lines about the whole subset
    kept = _facts(aime, mine, matched={"exact": 2, "near": 1, "template": 4}, unchecked=1234, exclude=False)
    assert contamination_warnings(_record(kept), sets) == [
        {
            "benchmark": None,
            "line": f"{SUBSET} keeps rows that decontamination run {RUN} matched to a benchmark problem "
            "(exact 2, near 1; exclude_contaminated = false)",
        },
        {
            "benchmark": None,
            "line": f"{SUBSET} holds 1,234 rows whose problem decontamination run {RUN} never checked "
            "(ingested after it)",
        },
    ]
    # trained on an export: no card to read
    export = {"data": {"source": "/data/train.parquet", "kind": "trl", "subset": None}}
    assert _lines(export, [mine]) == [
        "training data /data/train.parquet is not a subset folder (an export): "
        "not known whether it was checked against mine"
    ]


def test_older_record_reads_the_copied_card(tmp_path):
    """A record written before oxa_train.json held the facts: the card copied into
    OUTPUT/subset/ answers, if its checksum is the one recorded."""
    mine = _set(tmp_path, "mine", "What is 1 + 0?")
    out = tmp_path / "sft"
    (out / "subset").mkdir(parents=True)
    (out / "subset" / "card.json").write_text(json.dumps({"name": "full", "decontamination": _facts()}))
    from curate.subsets.subsets import file_sha256

    (out / "oxa_train.json").write_text(json.dumps(_record(card_sha256=file_sha256(out / "subset" / "card.json"))))
    assert load_training_record(out)["data"]["subset"]["decontamination"] == _facts()
    assert _lines(load_training_record(out), [mine])[0].startswith(f"{SUBSET} was not checked against mine")
    (out / "oxa_train.json").write_text(json.dumps(_record()))  # another card: its facts are not this subset's
    assert "decontamination" not in load_training_record(out)["data"]["subset"]


def test_the_chain_to_the_sft_record(tmp_path):
    """A base model has no record (no warning); a checkpoint reads its run's record; a GRPO
    output reads the record of the model it started from; a start that is gone is said."""
    mine = _set(tmp_path, "mine", "What is 1 + 0?")
    base = tmp_path / "base"
    base.mkdir()
    assert check_model(base, [mine]) is None and find_training(base).sft is None

    sft = tmp_path / "sft"
    (sft / "checkpoint-2").mkdir(parents=True)
    (sft / "oxa_train.json").write_text(json.dumps(_record(_facts(mine))))
    for model in (sft, sft / "checkpoint-2"):
        assert check_model(model, [mine]) == {
            "trained_on": [
                f"`oxa train sft` trained the model on subset full/0123456789abcdef (record: {sft}/oxa_train.json)",
                f"decontamination run {RUN} checked that subset against mine (sha256 {mine.digest[:16]})",
                "rows of the subset it matched: exact 0, contained 0, near 0, template 0; rows unchecked: 0",
            ],
            "warnings": [],
        }

    grpo = tmp_path / "grpo"
    (grpo / "checkpoint-5").mkdir(parents=True)
    (grpo / GRPO_RECORD).write_text(json.dumps({"model": str(sft / "checkpoint-2")}))
    found = check_model(grpo / "checkpoint-5", [mine])
    assert found["trained_on"][:2] == [
        f"`oxa train grpo` trained the model from {sft}/checkpoint-2",
        f"`oxa train sft` trained {sft}/checkpoint-2 on subset full/0123456789abcdef (record: {sft}/oxa_train.json)",
    ]
    assert found["warnings"] == []

    (grpo / GRPO_RECORD).write_text(json.dumps({"model": str(tmp_path / "gone")}))
    assert check_model(grpo, [mine]) == {
        "trained_on": [f"`oxa train grpo` trained the model from {tmp_path}/gone"],
        "warnings": [
            {
                "benchmark": None,
                "line": f"the model was trained by `oxa train grpo` from {tmp_path}/gone, which no longer exists: "
                "not known what that model was trained on",
            }
        ],
    }

    # a damaged record is said, and the evaluation goes on
    (grpo / GRPO_RECORD).write_text(json.dumps({"preset": "tiny"}))
    assert check_model(grpo, [mine])["warnings"] == [
        {
            "benchmark": None,
            "line": "a training record of the model cannot be read (KeyError: 'model'): "
            "not known what it was trained on",
        }
    ]
    (sft / "oxa_train.json").write_text("{")
    assert check_model(sft, [mine])["warnings"][0]["line"].startswith(
        "a training record of the model cannot be read (JSONDecodeError: "
    )


def test_a_grpo_output_moved_or_copied_with_its_start_model_finds_it_there(tmp_path):
    """A GRPO record keeps its start model's path from the output and the digest of that
    model's record: a folder moved or copied whole (the demo's) follows the model beside
    it, a start model retrained since is said, and so is one that is gone."""
    from train.eval.contamination import start_model_record

    mine = _set(tmp_path, "mine", "What is 1 + 0?")
    first = tmp_path / "first"
    sft, grpo = first / "train" / "sft", first / "grpo" / "sft"
    sft.mkdir(parents=True)
    grpo.mkdir(parents=True)
    (sft / "oxa_train.json").write_text(json.dumps(_record(_facts(mine))))
    record = {"model": str(sft.resolve()), **start_model_record(sft.resolve(), grpo.resolve())}
    assert record["model_from_output"] == "../../train/sft"
    (grpo / GRPO_RECORD).write_text(json.dumps(record))

    copied = tmp_path / "copied"
    shutil.copytree(first, copied)
    assert find_training(copied / "grpo" / "sft").sft == (copied / "train" / "sft").resolve()
    moved = tmp_path / "moved"
    first.rename(moved)
    found = find_training(moved / "grpo" / "sft")
    assert (found.sft, found.broken) == ((moved / "train" / "sft").resolve(), None)

    (moved / "train" / "sft" / "oxa_train.json").write_text(json.dumps(_record()))  # trained again since
    found = find_training(moved / "grpo" / "sft")
    assert found.sft is None
    assert found.broken == (
        f"the model was trained by `oxa train grpo` from {(moved / 'train' / 'sft').resolve()}, which holds another "
        "oxa_train.json than the one that run started from: not known what that model was trained on"
    )
    shutil.rmtree(moved / "train")
    assert find_training(moved / "grpo" / "sft").broken.endswith(
        f"from {sft.resolve()}, which no longer exists: not known what that model was trained on"
    )


def test_grpo_record_name():
    pytest.importorskip("trl")
    from train.grpo.grpo import RECORD

    assert GRPO_RECORD == RECORD


def test_eval_warns_for_a_subset_trained_on(tmp_path, capsys):
    """decontaminate against one set -> select keeping the contaminated rows -> `oxa train
    sft` (the record holds the card's facts) -> `oxa eval` on that set and another one."""
    pytest.importorskip("trl")
    from curate.decontaminate import DecontaminateConfig, run_decontaminate
    from curate.select import SelectConfig, Selection, run_select
    from curate.workspace import Workspace
    from tests.pools import TAG, add_pool
    from tests.test_sft_data import SUFFIX, _pool
    from tests.tiny_random import save_tiny_random_model
    from train.eval import EvalConfig, run_eval
    from train.eval.report import write_report
    from train.sft import SftRunConfig, run_sft

    ws = Workspace.init(tmp_path / "ws")
    add_pool(ws, tmp_path, _pool())
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps([{"problem": "Problem 1: find x.", "answer": "1"}]))  # a pool problem
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"problem": "Problem 9: find y.", "answer": "9"}]))
    run_id = run_decontaminate(ws, DecontaminateConfig(against=[str(bench)]))["run_id"]
    parts = {
        "positives": Selection(strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'correct'", n=6),
        "negatives": Selection(strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'incorrect'", n=3),
    }
    folder = Path(
        run_select(ws, SelectConfig(name="full", strategy="mix", exclude_contaminated=False, **parts))["path"]
    )
    card = json.loads((folder / "card.json").read_text())
    assert card["decontamination"]["rows_matched"]["exact"] == 2  # Problem 1's positive and negative

    model = save_tiny_random_model(tmp_path / "base", [r["problem"] + SUFFIX + r["response"] for r in _pool()])
    out = tmp_path / "sft"
    run_sft(SftRunConfig(subset=str(folder), model=str(model), preset="tiny", output=str(out), max_steps=1))
    record = json.loads((out / "oxa_train.json").read_text())
    assert record["data"]["subset"]["decontamination"] == card["decontamination"]
    shutil.rmtree(out / "subset")  # the record alone is enough: no card, no workspace
    shutil.rmtree(tmp_path / "ws")

    def evaluate(model: Path, where: Path) -> dict:
        config = EvalConfig(model=str(model), out=str(where), benchmarks=f"{bench},{other}", k=1)
        config.max_new_tokens, config.backend, config.device, config.workers, config.entropy = 4, "hf", "cpu", 1, False
        capsys.readouterr()
        return run_eval(config)

    result = evaluate(out, tmp_path / "eval")
    subset = f"training subset full/{card['version']}"
    lines = [
        f"{subset} was not checked against other (sha256 {load_prompt_set('other', other).digest[:16]}): "
        f"decontamination run {run_id} checked bench",
        f"{subset} keeps rows that decontamination run {run_id} matched to a benchmark problem "
        "(exact 2; exclude_contaminated = false)",
    ]
    stderr = capsys.readouterr().err
    assert [line for line in stderr.splitlines() if line.startswith("warning: ")] == [f"warning: {x}" for x in lines]
    assert [w["line"] for w in result["contamination"]["warnings"]] == lines
    saved = json.loads((tmp_path / "eval" / "config.json").read_text())["contamination"]
    assert saved == result["contamination"]
    table = (tmp_path / "eval" / "table.md").read_text()
    assert "**Contamination: 2 warnings** (see below)." in table
    section = table.split("## Contamination\n\n")[1].split("\n\n## ")[0]
    assert section.splitlines() == [
        f"- `oxa train sft` trained the model on subset full/{card['version']} (record: {out}/oxa_train.json)",
        f"- decontamination run {run_id} checked that subset against bench "
        f"(sha256 {card['decontamination']['benchmarks'][0]['sha256'][:16]})",
        "- rows of the subset it matched: exact 2, contained 0, near 0, template 7; rows unchecked: 0",
        "",
        "Warnings:",
        "",
        *(f"- {x}" for x in lines),
    ]
    # `oxa eval report` of one set keeps the lines about it and about the whole subset
    write_report(tmp_path / "eval", ["bench"])
    table = (tmp_path / "eval" / "table.md").read_text()
    assert f"- {lines[1]}" in table and lines[0] not in table and "**Contamination: 1 warning** (see below)." in table

    # the base model has no record: no warning, no section
    result = evaluate(model, tmp_path / "eval-base")
    assert result["contamination"] is None and "warning: " not in capsys.readouterr().err
    assert "Contamination" not in (tmp_path / "eval-base" / "table.md").read_text()
