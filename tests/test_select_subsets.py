"""Versioned, immutable subsets and their cards: same inputs, same version and bytes;
cosmetic fields keep the version; nothing is overwritten; the folder is a dataset repo."""

import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate.select import SelectConfig, run_select
from curate.subsets.subsets import check_checksums, diff_subsets, file_sha256, list_subsets, resolve_subset
from curate.workspace import OxaError, Workspace
from curate.workspace.schema import VERIFY
from tests.conftest import query
from tests.pools import STRATEGY_POOL, TAG, add_pool, write_verify

CORRECT = "verdict = 'correct'"


def gaussian_config(**fields) -> SelectConfig:
    base = dict(name="oxa-mle", strategy="gaussian", scores_tag=TAG, where=CORRECT, n=4, bin_width=0.5)
    return SelectConfig(**{**base, "redistribute": True, "description": "test subset", **fields})


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    add_pool(ws, tmp_path, STRATEGY_POOL)
    return ws


def test_same_inputs_same_version_and_bytes(ws, tmp_path):
    first = run_select(ws, gaussian_config())
    folder = ws.root / "subsets" / "oxa-mle" / first["version"]
    data = (folder / "data.parquet").read_bytes()
    card_mtime = (folder / "card.json").stat().st_mtime_ns

    again = run_select(ws, gaussian_config(description="a better description", owner="someone"))
    assert again["existing"] and again["version"] == first["version"]
    assert (folder / "card.json").stat().st_mtime_ns == card_mtime  # never rewritten
    assert json.loads((folder / "card.json").read_text())["description"] == "test subset"

    # the same workspace elsewhere (moved) gives the same version and the same bytes
    moved = Workspace(shutil.move(ws.root, tmp_path / "moved"))
    shutil.rmtree(moved.root / "subsets" / "oxa-mle")
    rerun = run_select(moved, gaussian_config())
    assert rerun["version"] == first["version"] and not rerun["existing"]
    assert (moved.root / "subsets" / "oxa-mle" / first["version"] / "data.parquet").read_bytes() == data


def test_changes_that_make_a_new_version(ws, tmp_path):
    first = run_select(ws, gaussian_config())["version"]
    wider = run_select(ws, gaussian_config(n=3))["version"]
    assert wider != first
    write_verify(ws, [])  # a new verify part and run that change no row: the same version
    same = run_select(ws, gaussian_config())
    assert same["existing"] and same["version"] == first
    add_pool(ws, tmp_path, [{"problem": "Problem 99: find x.", "response": "<think>new</think> \\boxed{1}"}])
    assert run_select(ws, gaussian_config())["version"] not in (first, wider)  # a new sample: the inputs changed
    versions = [s["version"] for s in list_subsets(ws, "oxa-mle")]
    assert len(versions) == 3 and versions[:2] == [first, wider]
    assert resolve_subset(ws, "oxa-mle").name == versions[-1]
    assert resolve_subset(ws, f"oxa-mle/{first[:6]}").name == first

    diff = diff_subsets(resolve_subset(ws, f"oxa-mle/{first}"), resolve_subset(ws, f"oxa-mle/{wider}"))
    assert diff["selection"] == {"n": [4, 3]}
    assert diff["inputs"] == {}
    assert diff["rows"] == [4, 3]
    assert diff["overlap"] == {"key": "sample_id", "common": 3, "only_first": 1, "only_second": 0}


def test_card_and_folder(ws):
    stats = run_select(ws, gaussian_config())
    folder = ws.root / "subsets" / "oxa-mle" / stats["version"]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "card.json",
        "card.md",
        "checksums.sha256",
        "data.parquet",
        "plots/length.png",
        "plots/ppl.png",
    ]
    card = json.loads((folder / "card.json").read_text())
    assert card["rows"] == 4 and card["unit"] == "samples"
    assert card["selection"]["mu"] == 2.5 and "description" not in card["selection"]
    part = card["parts"][0]
    assert part["funnel"]["dropped"]["invalid_ppl"] == 2 and part["funnel"]["selected"] == 4
    assert [(b["range"], b["target"], b["achieved"]) for b in part["bins"] if b["target"] or b["achieved"]] == [
        ("[1, 1.5)", 0, 1),
        ("[2, 2.5)", 2, 1),
        ("[2.5, 3)", 2, 2),
    ]
    assert card["verification"]["verdicts"][0]["verifier"] == "math-verify"
    assert card["scorers"][TAG]["model"] == "tiny-test-model"
    assert card["distributions"]["responses_per_problem"] == {"1": 4}
    assert card["distributions"]["n_tokens"]["loss_type_0"]["max"] == 700
    assert set(card["provenance"]["inputs"]) == {
        "problems",
        "samples",
        "answers",
        "verify",
        "contamination",
        "contamination_checked",
        f"scores/{TAG}",
    }
    assert card["files"]["data.parquet"]["sha256"] == file_sha256(folder / "data.parquet")
    assert check_checksums(folder) == []
    assert query(ws, "SELECT name, version, strategy, n_rows FROM subsets") == [
        ("oxa-mle", stats["version"], "gaussian", 4)
    ]

    text = (folder / "card.md").read_text()
    assert text == (folder / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data.parquet"}]}]
    assert "| [2, 2.5) | 1 | 2 | 1 | 1 | 0 |" in text
    assert (folder / "plots" / "ppl.png").read_bytes().startswith(b"\x89PNG")

    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(folder), split="train")
    assert loaded.num_rows == 4 and loaded[0]["loss_type"] == 0
    assert loaded["sample_id"] == pq.read_table(folder / "data.parquet")["sample_id"].to_pylist()

    with open(folder / "data.parquet", "ab") as handle:
        handle.write(b"tampered")
    assert check_checksums(folder) == ["data.parquet"]


def oxa(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_select_subsets_export(ws, tmp_path):
    config = tmp_path / "sel.yaml"
    config.write_text(f'name: lp\nstrategy: lowest_ppl\nscores_tag: {TAG}\nwhere: "{CORRECT}"\nN: 50\n')
    result = oxa("select", ws.root, config, "--set", "N=3")
    assert result.exit_code == 0, result.output
    assert "dropped: invalid_ppl" in result.output and "subset lp/" in result.output
    assert "exists already" in oxa("select", ws.root, config, "--set", "N=3").output
    assert oxa("select", ws.root, config, "--set", "N=2").exit_code == 0
    listed = oxa("subsets", "list", ws.root).output
    assert listed.count("lowest_ppl") == 2
    shown = oxa("subsets", "show", ws.root, "lp").output
    assert "checksums" in shown and "OK" in shown and "2 samples" in shown
    card = json.loads(oxa("subsets", "show", ws.root, "lp", "--json").output)
    assert card["selection"]["n"] == 2
    diff = oxa("subsets", "diff", ws.root, f"lp/{list_subsets(ws)[0]['version']}", "lp").output
    assert "selection: n" in diff
    bad = subprocess.run(
        [sys.executable, "-m", "curate.cli", "select", ws.root, config, "--set", "sigma=0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "error: config: 'sigma' does not apply to strategy 'lowest_ppl'" in bad.stderr
    out = tmp_path / "lp.jsonl"
    assert oxa("export", ws.root, "lp", "--format", "trl", "-o", out).exit_code == 0
    assert len(out.read_text().splitlines()) == 2


def test_a_part_written_while_selecting_fails_the_run(ws):
    """Another process writing an input part mid-selection: the version computed at the
    start may no longer match the rows selected, so nothing is published."""

    def write_a_part(message: str) -> None:
        if message.startswith("selecting"):
            empty = pa.Table.from_pylist([], schema=VERIFY)
            pq.write_table(empty, ws.table_folder("verify") / "verify-other-00000000000000aa.parquet")

    with pytest.raises(OxaError, match="changed while selecting"):
        run_select(ws, gaussian_config(), progress=write_a_part)
    assert not (ws.root / "subsets" / "oxa-mle").exists() or not list((ws.root / "subsets" / "oxa-mle").iterdir())
    assert not run_select(ws, gaussian_config())["existing"]  # the next run selects over the new rows
