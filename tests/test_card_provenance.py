"""Cards say where their rows come from and what was selected (issue 32, item 4): the
license and source data sets an ingest records reach the card of the rows taken from its
files, without touching parts or versions; a description that --set outdated says so."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate.ingest import IngestConfig, run_ingest
from curate.select import SelectConfig, load_select_config, run_select
from curate.workspace import OxaError, Workspace
from tests.conftest import write_jsonl
from tests.pools import add_pool

MAPPING = {"problem": "q", "response": "a", "source": "src"}
SCORER = "qwen2.5-math-7b"  # the shipped presets' scoring model


def oxa(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def pool_file(tmp_path: Path, name: str, problems: range) -> Path:
    """One response per problem, its `source` the file's name."""
    rows = [{"q": f"Problem {i}: find x.", "a": f"x = {i}", "src": name} for i in problems]
    return write_jsonl(tmp_path / f"{name}.jsonl", rows).resolve()


def ingest(ws: Workspace, path: Path, **metadata) -> dict:
    return run_ingest(ws, IngestConfig([str(path)], mapping=MAPPING, **metadata))


def select(ws: Workspace, n: int, name: str = "all", where: str | None = None) -> tuple[dict, dict, str]:
    """card.json, the card.md YAML header and card.md of a random subset of n rows."""
    folder = Path(run_select(ws, SelectConfig(name=name, strategy="random", n=n, where=where))["path"])
    text = (folder / "card.md").read_text()
    return json.loads((folder / "card.json").read_text()), yaml.safe_load(text.split("---\n")[1]), text


def sources(card: dict) -> list[tuple]:
    return [
        (s["source_file"], s["license"], s["source_datasets"], s["rows"]) for s in card["provenance"]["row_sources"]
    ]


def test_license_is_recorded_per_file_and_changes_no_part_and_no_version(tmp_path):
    src = pool_file(tmp_path, "a", range(3))
    licensed, plain = Workspace.init(tmp_path / "licensed"), Workspace.init(tmp_path / "plain")
    stats = ingest(licensed, src, license="cc-by-4.0", source_datasets=["org/a"])
    assert [(f["license"], f["source_datasets"]) for f in stats["files"]] == [("cc-by-4.0", ["org/a"])]
    config = json.loads((licensed.run_dir("ingest", stats["run_id"]) / "config.json").read_text())["config"]
    assert (config["license"], config["source_datasets"]) == ("cc-by-4.0", ["org/a"])
    assert [(f["license"], f["source_datasets"]) for f in ingest(plain, src)["files"]] == [(None, [])]

    for table in ("problems", "samples"):  # metadata: the same parts, by name and bytes
        parts = [sorted((ws.root / "pool" / table).glob("*.parquet")) for ws in (licensed, plain)]
        assert [p.name for p in parts[0]] == [p.name for p in parts[1]]
        assert [p.read_bytes() for p in parts[0]] == [p.read_bytes() for p in parts[1]]
    with_license, header, _ = select(licensed, 3)
    without, _, _ = select(plain, 3)
    assert with_license["version"] == without["version"]  # cosmetic: the same version
    assert (with_license["license"], without["license"]) == ("cc-by-4.0", "unknown")
    assert header["license"] == "cc-by-4.0" and header["source_datasets"] == ["org/a"]


def test_cli_options_reach_card_json_and_the_hub_yaml(ws, tmp_path):
    src = pool_file(tmp_path, "a", range(3))
    maps = [arg for field, column in MAPPING.items() for arg in ("--map", f"{field}={column}")]
    result = oxa(
        "ingest",
        ws.root,
        src,
        *maps,
        "--license",
        "cc-by-4.0",
        "--source-dataset",
        "org/a",
        "--source-dataset",
        "org/b",
    )
    assert result.exit_code == 0, result.output
    card, header, text = select(ws, 3)
    assert (card["license"], card["license_note"], card["source_datasets"]) == ("cc-by-4.0", None, ["org/a", "org/b"])
    assert (header["license"], header["source_datasets"]) == ("cc-by-4.0", ["org/a", "org/b"])
    assert list(header)[:2] == ["pretty_name", "license"] and "license_details" not in header
    assert "| license | cc-by-4.0 |\n| source data sets | org/a, org/b |" in text
    assert sources(card) == [(str(src), "cc-by-4.0", ["org/a", "org/b"], 3)]


def test_two_sources_with_different_licenses(ws, tmp_path):
    a, b = pool_file(tmp_path, "a", range(2)), pool_file(tmp_path, "b", range(2, 5))
    ingest(ws, a, license="cc-by-4.0", source_datasets=["org/a"])
    ingest(ws, b, license="mit")
    card, header, _ = select(ws, 5)
    assert (card["license"], card["source_datasets"]) == (["cc-by-4.0", "mit"], ["org/a"])
    assert (header["license"], header["source_datasets"]) == (["cc-by-4.0", "mit"], ["org/a"])
    assert sources(card) == [(str(a), "cc-by-4.0", ["org/a"], 2), (str(b), "mit", [], 3)]
    # the card speaks of the rows it selected, not of the whole pool
    only_a, header, _ = select(ws, 2, name="only-a", where="source = 'a'")
    assert (only_a["license"], only_a["source_datasets"], header["license"]) == ("cc-by-4.0", ["org/a"], "cc-by-4.0")


def test_no_license_is_unknown_with_a_note_until_an_ingest_names_one(ws, tmp_path):
    src = pool_file(tmp_path, "a", range(2))
    first = ingest(ws, src)
    card, header, text = select(ws, 2)
    assert (card["license"], card["source_datasets"]) == ("unknown", [])
    assert (header["license"], header["source_datasets"]) == ("unknown", [])
    assert card["license_note"].startswith(
        f"no license was recorded for 1 of the 1 pool files these rows come from: {src}."
    )
    assert f"License unknown: {card['license_note']}." in text

    again = ingest(ws, src, license="mit")  # records the license, adds no rows
    assert again["added"]["samples"] == 0
    named, header, _ = select(ws, 2, name="named")
    assert named["version"] == card["version"]
    assert (named["license"], named["license_note"], header["license"]) == ("mit", None, "mit")
    assert named["provenance"]["row_sources"][0]["ingest_runs"] == [first["run_id"], again["run_id"]]


def test_a_license_named_in_words_is_the_hubs_other(ws, tmp_path):
    ingest(ws, pool_file(tmp_path, "a", range(2)), license="NVIDIA Open Data License")
    card, header, _ = select(ws, 2)
    assert card["license"] == "NVIDIA Open Data License"
    assert (header["license"], header["license_details"]) == ("other", "NVIDIA Open Data License")


def test_the_acereason_preset_names_its_data_set(ws, tmp_path):
    row = {"category": "math", "source": "olympiads", "input": "What is 1+1?", "output": "\\boxed{2}"}
    src = write_jsonl(tmp_path / "ace.jsonl", [row])
    stats = run_ingest(ws, IngestConfig([str(src)], preset="acereason"))
    assert [(f["license"], f["source_datasets"]) for f in stats["files"]] == [(None, ["nvidia/AceReason-1.1-SFT"])]
    stats = run_ingest(ws, IngestConfig([str(src)], preset="acereason", source_datasets=["me/ace-copy"]))
    assert stats["files"][0]["source_datasets"] == ["me/ace-copy"]


def test_empty_license_or_source_dataset_is_refused(ws, tmp_path):
    src = pool_file(tmp_path, "a", range(1))
    with pytest.raises(OxaError, match="--license is empty"):
        ingest(ws, src, license=" ")
    with pytest.raises(OxaError, match=r"--source-dataset takes a data set's name .*got \['org/a', ''\]"):
        ingest(ws, src, source_datasets=["org/a", ""])


@pytest.fixture
def scored(ws, tmp_path) -> Workspace:
    """Four verified teacher responses and two incorrect ones, scored as the presets read."""
    rows = [
        {
            "problem": f"Problem {i}: find x.",
            "response": f"x = {i}",
            "verdict": "correct",
            "ppl": 1.5 + i,
            "n_tokens": 9,
        }
        for i in range(4)
    ]
    rows += [
        {"problem": f"Problem {i}: find x.", "response": "no idea", "verdict": "incorrect", "ppl": 2.0, "n_tokens": 9}
        for i in range(2)
    ]
    add_pool(ws, tmp_path, rows, tag=SCORER)
    return ws


def test_set_over_a_preset_says_what_was_selected(scored, tmp_path):
    preset = load_select_config("sft-lp-qwen2.5-7b").description
    assert oxa("select", scored.root, "sft-lp-qwen2.5-7b", "--set", "N=3").exit_code == 0
    folder = next((scored.root / "subsets" / "sft-lp-qwen2.5-7b").iterdir())
    card = json.loads((folder / "card.json").read_text())
    line = (
        "(The description above is the config's; --set changed n from 50000 to 3. Selected: 3 samples by "
        "lowest_ppl where verdict = 'correct' AND origin = 'teacher' (target 3).)"
    )
    assert card["description"] == f"{preset}\n\n{line}"
    assert card["description_overrides"] == {"n": [50000, 3]}
    assert f"# sft-lp-qwen2.5-7b\n\n{preset}\n\n{line}\n" in (folder / "card.md").read_text()

    # the same selection written in a file: its description is its own, as it is
    config = tmp_path / "lp3.toml"
    config.write_text(
        'name = "lp3"\ndescription = "three lowest-PPL correct teacher responses"\nstrategy = "lowest_ppl"\n'
        f"scores_tag = \"{SCORER}\"\nwhere = \"verdict = 'correct' AND origin = 'teacher'\"\nN = 3\n"
    )
    as_written = run_select(scored, load_select_config(config, ["name=lp3-again"]))
    card = json.loads((Path(as_written["path"]) / "card.json").read_text())
    assert (card["description"], card["description_overrides"]) == ("three lowest-PPL correct teacher responses", {})


def test_set_over_a_mix_names_each_part(scored, tmp_path):
    config = tmp_path / "mix.toml"
    config.write_text(
        'name = "mix"\ndescription = "two right, one wrong"\nstrategy = "mix"\n'
        '[positives]\nstrategy = "random"\nwhere = "verdict = \'correct\'"\nN = 2\n'
        '[negatives]\nstrategy = "random"\nwhere = "verdict = \'incorrect\'"\nN = 1\n'
    )
    stats = run_select(scored, load_select_config(config, ["positives.n=3"]))
    card = json.loads((Path(stats["path"]) / "card.json").read_text())
    assert card["description"] == (
        "two right, one wrong\n\n(The description above is the config's; --set changed positives.n from 2 to 3. "
        "Selected: 4 samples: positives 3 by random where verdict = 'correct' (target 3); "
        "negatives 1 by random where verdict = 'incorrect' (target 1).)"
    )


def test_what_counts_as_changing_the_described_selection(tmp_path):
    assert load_select_config("sft-lp-qwen2.5-7b").description_overrides() == {}
    # a cosmetic key, or the value the preset has already, changes nothing described
    assert load_select_config("sft-lp-qwen2.5-7b", ["name=mine", "N=50000"]).description_overrides() == {}
    # a description given with --set describes what --set selects
    assert load_select_config("sft-lp-qwen2.5-7b", ["N=3", "description=three rows"]).description_overrides() == {}
    overridden = load_select_config("oxa-full-qwen2.5-7b", ["positives.n=3", "negatives.N=2", "positives.w=0.1"])
    assert overridden.description_overrides() == {
        "negatives.n": [50000, 2],
        "positives.bin_width": [0.05, 0.1],
        "positives.n": [50000, 3],
    }
    # a file that is no whole config without its --set (no N) described no selection to compare with
    partial = tmp_path / "partial.toml"
    partial.write_text('name = "p"\ndescription = "some rows"\nstrategy = "random"\n')
    assert load_select_config(partial, ["N=3"]).description_overrides() == {}
    # a config built in Python has no file description to compare with
    assert SelectConfig(name="x", strategy="random", n=3, description="mine").description_overrides() == {}
