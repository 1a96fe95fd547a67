"""Training rows from a subset folder and from exports: the same rows as `oxa export
--format trl`, sequences over the cutoff dropped and counted exactly, bad input refused
(every TRL form, splits and subset names: tests/test_sft_inputs.py)."""

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.select import SelectConfig, Selection, run_select
from curate.subsets import ExportConfig, run_export
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError, Workspace, WorkspaceDamaged
from tests.pools import TAG, add_pool

pytest.importorskip("transformers")
pytest.importorskip("datasets")

from tests.tiny_random import save_tiny_random_model  # noqa: E402
from train.sft.data import load_sft_data  # noqa: E402

SUFFIX = "\n" + KNOWN_SUFFIXES[0]


def _pool() -> list[dict]:
    """6 correct teacher responses of growing length, 3 wrong self-generated ones."""
    rows = []
    for i in range(6):
        steps = " ".join(f"step {k}: add {k} to x." for k in range(4 * i + 1))
        rows.append(
            {"problem": f"Problem {i}: find x.", "response": f"<think>{steps}</think> \\boxed{{{i}}}", "gold": str(i)}
            | {"origin": "teacher", "verdict": "correct", "ppl": 2.0 + i / 10, "n_tokens": 100 + i}
        )
    for i in range(3):
        steps = " ".join(f"guess {k}." for k in range(6 * i + 1))
        rows.append(
            {
                "problem": f"Problem {i}: find x.",
                "response": f"<think>{steps}</think> \\boxed{{{i + 7}}}",
                "gold": str(i),
            }
            | {"origin": "self", "verdict": "incorrect", "ppl": 1.2 + i / 10, "n_tokens": 50 + i}
        )
    return rows


def make_subset(root, name="full", negatives=3):
    """A workspace with a mix subset (6 positives, `negatives` negatives); (ws, folder, data rows)."""
    ws = Workspace.init(root / "ws")
    add_pool(ws, root, _pool())
    parts = {"positives": Selection(strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'correct'", n=6)}
    if negatives:
        parts["negatives"] = Selection(
            strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'incorrect'", n=negatives
        )
        stats = run_select(ws, SelectConfig(name=name, strategy="mix", **parts))
    else:
        stats = run_select(ws, SelectConfig(name=name, **vars(parts["positives"])))
    folder = Path(stats["path"])
    return ws, folder, pq.read_table(folder / "data.parquet").to_pylist()


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    return make_subset(tmp_path_factory.mktemp("sft-data"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    texts = [r["problem"] + SUFFIX + r["response"] for r in _pool()]
    folder = save_tiny_random_model(tmp_path_factory.mktemp("tiny-random") / "model", texts)
    return AutoTokenizer.from_pretrained(folder)


def expected_rows(rows, suffix=SUFFIX):
    return [
        {
            "prompt": [{"role": "user", "content": r["problem"] + suffix}],
            "completion": [{"role": "assistant", "content": r["response"]}],
            "loss_type": r["loss_type"],
        }
        for r in rows
    ]


def test_subset_folder_and_exports_give_the_same_rows(subset, tokenizer, tmp_path):
    ws, folder, rows = subset
    assert [r["loss_type"] for r in rows] == [0] * 6 + [1] * 3
    dataset, stats = load_sft_data(folder, tokenizer, cutoff=None)
    assert dataset.to_list() == expected_rows(rows)
    card = json.loads((folder / "card.json").read_text())
    assert stats.kind == "subset" and stats.instruction == KNOWN_SUFFIXES[0]
    assert stats.subset["name"] == "full" and stats.subset["version"] == card["version"]
    assert (stats.rows_read, stats.rows_kept, stats.positives, stats.negatives) == (9, 9, 6, 3)
    assert stats.dropped_over_cutoff == 0 and stats.dropped_rows == []

    plain, _ = load_sft_data(folder, tokenizer, cutoff=None, instruction="")
    assert plain.to_list() == expected_rows(rows, suffix="")

    for name in ("trl.parquet", "trl.jsonl"):
        run_export(ws, ExportConfig(subset="full", format="trl", output=str(tmp_path / name), negatives="keep"))
        exported, stats = load_sft_data(tmp_path / name, tokenizer, cutoff=None)
        assert exported.to_list() == expected_rows(rows)
        assert (stats.kind, stats.instruction, stats.subset, stats.positives, stats.negatives) == (
            "trl",
            KNOWN_SUFFIXES[0],
            None,
            6,
            3,
        )
    (tmp_path / "folder").mkdir()
    shutil.copy(tmp_path / "trl.parquet", tmp_path / "folder" / "part-0.parquet")
    assert load_sft_data(tmp_path / "folder", tokenizer, cutoff=None)[0].to_list() == expected_rows(rows)
    import datasets

    datasets.Dataset.from_list(expected_rows(rows)).save_to_disk(str(tmp_path / "hf"))
    loaded, stats = load_sft_data(tmp_path / "hf", tokenizer, cutoff=None)
    assert loaded.to_list() == expected_rows(rows) and stats.kind == "hf"


def test_cutoff_drops_and_counts_exactly(subset, tokenizer):
    _, folder, rows = subset
    conversations = [r["prompt"] + r["completion"] for r in expected_rows(rows)]
    # the naive reference: each row tokenized alone, as TRL's SFTTrainer does
    lengths = [
        len(tokenizer.apply_chat_template(c, tokenize=True, return_dict=True)["input_ids"]) for c in conversations
    ]
    assert len(set(lengths)) > 5
    cutoff = sorted(lengths)[4]
    over = [i for i, n in enumerate(lengths) if n > cutoff]
    dataset, stats = load_sft_data(folder, tokenizer, cutoff=cutoff)
    assert stats.dropped_rows == over and stats.dropped_over_cutoff == len(over) == 4
    by_type = {}
    for i in over:
        by_type[str(rows[i]["loss_type"])] = by_type.get(str(rows[i]["loss_type"]), 0) + 1
    assert stats.dropped_by_loss_type == by_type
    assert stats.rows_read == 9 and stats.rows_kept == 5 == stats.positives + stats.negatives
    assert stats.max_tokens_kept == cutoff
    assert dataset.to_list() == [r for i, r in enumerate(expected_rows(rows)) if i not in over]


def _write(path, rows, schema=None):
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_bad_input(subset, tokenizer, tmp_path):
    _, folder, rows = subset
    good = expected_rows(rows)
    odd = _write(tmp_path / "odd.parquet", [r | {"loss_type": 2} for r in good[:2]] + good[2:])
    with pytest.raises(OxaError, match=r"2 rows have a loss_type other than 0 or 1 \(2\)"):
        load_sft_data(odd, tokenizer, cutoff=None)
    nulls = _write(tmp_path / "nulls.parquet", [r | {"loss_type": None} for r in good[:1]] + good[1:])
    with pytest.raises(OxaError, match=r"1 rows have a loss_type other than 0 or 1 \(None\)"):
        load_sft_data(nulls, tokenizer, cutoff=None)
    alpaca = _write(tmp_path / "alpaca.parquet", [{"instruction": "q", "output": "a", "loss_type": 0}])
    with pytest.raises(OxaError, match=r"has columns instruction, output, loss_type; oxa train sft reads rows of"):
        load_sft_data(alpaca, tokenizer, cutoff=None)
    with pytest.raises(OxaError, match="does not exist"):
        load_sft_data(tmp_path / "nowhere", tokenizer, cutoff=None)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OxaError, match=r"notes.txt is not a file of training rows \(.parquet, .jsonl or .json\)"):
        load_sft_data(tmp_path / "notes.txt", tokenizer, cutoff=None)

    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    table = pq.read_table(tampered / "data.parquet")
    pq.write_table(table.slice(0, 3), tampered / "data.parquet")
    with pytest.raises(WorkspaceDamaged, match=r"no longer matches its card \(data.parquet differ from the sha256"):
        load_sft_data(tampered, tokenizer, cutoff=None)
