"""Exports read back: TRL prompt/completion, LLaMA-Factory alpaca JSON, verl parquet
(the schema of verl's own file, and a round trip through `oxa ingest --preset verl`), and
a Hugging Face datasets folder. The negatives choices, the trl folder, dataset_info.json
and verl's reward: tests/test_export_borders.py."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.select import SelectConfig, run_select
from curate.subsets import ExportConfig, run_export
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError, Workspace
from tests.conftest import REAL_DATA, query
from tests.pools import STRATEGY_POOL, TAG, add_pool, mix_subset

SUFFIX = "\n" + KNOWN_SUFFIXES[0]


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """A workspace with a mix subset (4 positives, 2 negatives); its data rows."""
    root = tmp_path_factory.mktemp("export")
    ws = Workspace.init(root / "ws")
    stats = mix_subset(ws, root)
    return ws, pq.read_table(f"{stats['path']}/data.parquet").to_pylist()


def export(ws, fmt, output, **options):
    if fmt in ("trl", "alpaca"):  # the subset holds negatives: these tests keep them
        options.setdefault("negatives", "keep")
    return run_export(ws, ExportConfig(subset="full", format=fmt, output=str(output), **options))


def test_trl_parquet_and_jsonl(subset, tmp_path):
    ws, rows = subset
    expected = [
        {
            "prompt": [{"role": "user", "content": r["problem"] + SUFFIX}],
            "completion": [{"role": "assistant", "content": r["response"]}],
            "loss_type": r["loss_type"],
        }
        for r in rows
    ]
    assert [r["loss_type"] for r in rows] == [0, 0, 0, 0, 1, 1]
    stats = export(ws, "trl", tmp_path / "trl.parquet")
    assert stats["rows"] == 6
    assert pq.read_table(tmp_path / "trl.parquet").to_pylist() == expected
    export(ws, "trl", tmp_path / "trl.jsonl")
    assert [json.loads(line) for line in (tmp_path / "trl.jsonl").read_text().splitlines()] == expected
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "trl.parquet"), split="train")
    assert loaded.column_names == ["prompt", "completion", "loss_type"]


def test_alpaca(subset, tmp_path):
    ws, rows = subset
    export(ws, "alpaca", tmp_path / "alpaca.json")
    records = json.loads((tmp_path / "alpaca.json").read_text())
    assert records == [
        {
            "instruction": r["problem"] + SUFFIX,
            "input": "",
            "output": r["response"],
            "history": [],
            "loss_type": r["loss_type"],
        }
        for r in rows
    ]
    export(ws, "alpaca", tmp_path / "plain" / "plain.json", instruction="")
    assert json.loads((tmp_path / "plain" / "plain.json").read_text())[0]["instruction"] == rows[0]["problem"]


def test_verl_schema_and_round_trip(subset, tmp_path):
    ws, rows = subset
    stats = export(ws, "verl", tmp_path / "rl.parquet")
    table = pq.read_table(tmp_path / "rl.parquet")
    verl = pq.read_schema(REAL_DATA / "formats" / "aime24.verl.parquet")
    assert table.schema.names == verl.names
    assert all(table.schema.field(name).equals(verl.field(name)) for name in verl.names if name != "extra_info")
    assert table.schema.field("extra_info").type.names == ["index", "split", "source", "problem_id"]
    problems = list(dict.fromkeys(r["problem_id"] for r in rows))  # one prompt per problem
    assert stats["rows"] == table.num_rows == len(problems)
    first = table.to_pylist()[0]
    assert first["prompt"] == [{"content": rows[0]["problem"] + SUFFIX, "role": "user"}]
    assert first["reward_model"] == {"ground_truth": "1", "style": "rule"}
    assert first["data_source"] == "DigitalLearningGmbH/MATH-lighteval"
    assert first["extra_info"] == {
        "index": 0,
        "split": "train",
        "source": rows[0]["source"],
        "problem_id": problems[0],
    }

    back = Workspace.init(tmp_path / "back")
    run_ingest(back, IngestConfig([str(tmp_path / "rl.parquet")], preset="verl"))
    sources = {r["problem_id"]: r["source"] for r in rows}
    assert query(back, "SELECT problem_id, source FROM problems ORDER BY source_row") == [
        (problem, sources[problem]) for problem in problems
    ]


def test_hf_folder(subset, tmp_path, monkeypatch):
    """The rows as they are; datasets' Arrow cache (as large as the text) is made beside
    the output, not in the system's temporary folder, and removed."""
    import tempfile

    datasets = pytest.importorskip("datasets")
    ws, rows = subset
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    (tmp_path / "out").mkdir()
    export(ws, "hf", tmp_path / "out" / "hf")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hf"] and not any(system_tmp.iterdir())
    loaded = datasets.load_from_disk(str(tmp_path / "out" / "hf"))
    assert loaded.to_list() == rows


def test_export_errors(subset, tmp_path):
    ws, _ = subset
    export(ws, "trl", tmp_path / "once.parquet")
    with pytest.raises(OxaError, match="exists; choose another path or pass --overwrite"):
        export(ws, "trl", tmp_path / "once.parquet")
    export(ws, "trl", tmp_path / "once.parquet", overwrite=True)
    with pytest.raises(OxaError, match=r"--format alpaca writes \.json; got 'x.parquet'"):
        export(ws, "alpaca", tmp_path / "x.parquet")
    with pytest.raises(OxaError, match="unknown export format 'csv'"):
        export(ws, "csv", tmp_path / "x.csv")
    with pytest.raises(OxaError, match="no subset named 'nope'"):
        run_export(ws, ExportConfig(subset="nope", format="trl", output=str(tmp_path / "y.parquet")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["once.parquet"]  # no temporary files left


def test_prompt_sets_and_missing_gold(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    rows = [
        {"problem": f"{q}: solve.", "response": f"r{i}", "gold": gold, "origin": "self", "verdict": v}
        for q, gold in (("Q1", "1"), ("Q2", None))
        for i, v in enumerate(["correct", "incorrect"] * 4)
    ]
    add_pool(ws, tmp_path, rows)
    run_select(ws, SelectConfig(name="rl", strategy="pass_rate", n=2))
    with pytest.raises(OxaError, match="holds problems without responses"):
        run_export(ws, ExportConfig(subset="rl", format="trl", output=str(tmp_path / "x.parquet")))
    with pytest.raises(OxaError, match="1 problems of this subset have no gold answer"):
        run_export(ws, ExportConfig(subset="rl", format="verl", output=str(tmp_path / "x.parquet")))
    assert not (tmp_path / "x.parquet").exists()


def test_overwrite_replaces_only_an_export_never_a_workspace_or_the_working_directory(subset, tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    ws, rows = subset
    export(ws, "hf", tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "oxa_export.json").read_text())["subset"].startswith("full/")
    export(ws, "hf", tmp_path / "hf", overwrite=True)  # an oxa export folder: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # the old one gone, nothing aside

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(OxaError, match="replaces only a folder that `oxa export` wrote"):
        export(ws, "hf", mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"
    (tmp_path / "d.parquet").mkdir()
    with pytest.raises(OxaError, match="is not a regular file"):
        export(ws, "trl", tmp_path / "d.parquet", overwrite=True)
    for target in (ws.root, ws.root.parent):
        with pytest.raises(OxaError, match="is the workspace or a folder holding it"):
            export(ws, "hf", target, overwrite=True)
    assert (ws.root / "catalog.duckdb").is_file()
    monkeypatch.chdir(mine)
    with pytest.raises(OxaError, match="is the working directory"):
        export(ws, "hf", Path("."), overwrite=True)
    with pytest.raises(OxaError, match="inside the workspace's pool/ folder"):
        export(ws, "trl", ws.root / "pool" / "samples" / "stray.parquet")
    assert not (ws.root / "pool" / "samples" / "stray.parquet").exists()
    export(ws, "trl", ws.root / "exports" / "ok.parquet")  # elsewhere in the workspace: fine


def test_a_workspace_whose_path_holds_glob_characters(tmp_path):
    """DuckDB reads every path as a glob: `run[1]` would match `run1`, not itself."""
    with pytest.raises(OxaError, match=r"DuckDB cannot open a database whose path holds '\?'"):
        Workspace.init(tmp_path / "what?" / "ws")
    root = tmp_path / "run[1]*"
    root.mkdir()
    ws = Workspace.init(root / "ws")
    add_pool(ws, root, STRATEGY_POOL)
    correct = sum(r.get("verdict") == "correct" and "ppl" in r for r in STRATEGY_POOL)
    assert query(ws, f"SELECT count(*) FROM candidates WHERE verdict = 'correct' AND \"ppl_{TAG}\" IS NOT NULL") == [
        (correct,)
    ]
    run_select(ws, SelectConfig(name="g", strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'correct'", n=3))
    stats = run_export(ws, ExportConfig(subset="g", format="trl", output=str(root / "g.parquet")))
    assert stats["rows"] == 3 and pq.read_table(root / "g.parquet").num_rows == 3
    # datasets reads its input path as a glob pattern too
    hf = run_export(ws, ExportConfig(subset="g", format="hf", output=str(root / "g-hf")))
    assert hf["rows"] == 3 and (root / "g-hf" / "oxa_export.json").is_file()
