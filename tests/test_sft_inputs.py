"""What `oxa train sft` reads (issue 32): every TRL dataset form with and without loss_type, as
exact rows; lengths as TRL tokenizes each form; splits never guessed; a subset named as WS
NAME[/VERSION]; the subset an export folder was written from, recorded."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.subsets import ExportConfig, run_export
from curate.subsets.export import EXPORT_MARKER
from curate.subsets.subsets import file_sha256
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError, Workspace

pytest.importorskip("transformers")
pytest.importorskip("trl")

from tests.test_sft_data import expected_rows, make_subset  # noqa: E402
from tests.tiny_random import save_tiny_random_model  # noqa: E402
from train.sft.data import load_sft_data, sequence_lengths  # noqa: E402

ROWS = [  # problem, answer, loss_type
    ("What is 1 + 1?", "<think>1 + 1 = 2</think> \\boxed{2}", 0),
    ("What is 2 + 3?", "<think>2 + 3 = 5, so the sum is 5</think> \\boxed{5}", 0),
    ("What is 4 - 1?", "<think>4 - 1 = 2</think> \\boxed{2}", 1),
]
SYSTEM = {"role": "system", "content": "You solve math problems."}
FORMS = {  # TRL's forms, each as the user holds it and as `oxa train sft` trains it
    "conversational": ("prompt/completion (conversational)", ["prompt", "completion"]),
    "plain": ("prompt/completion", ["prompt", "completion"]),
    "messages": ("messages", ["prompt", "completion"]),
    "text": ("text", ["text"]),
}


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def held(form: str, loss_type: bool = True) -> list[dict]:
    """The rows in `form`, as a user holds them (the first messages row opens with a system turn)."""
    rows = []
    for i, (problem, answer, kind) in enumerate(ROWS):
        row = {
            "conversational": {"prompt": [user(problem)], "completion": [assistant(answer)]},
            "plain": {"prompt": problem + "\n", "completion": answer},
            "messages": {"messages": [SYSTEM] * (i == 0) + [user(problem), assistant(answer)]},
            "text": {"text": f"{problem}\n{answer}"},
        }[form]
        rows.append(row | ({"loss_type": kind} if loss_type else {}))
    return rows


def trained(form: str, loss_types: list[int]) -> list[dict]:
    """The rows `oxa train sft` trains for `held(form)`."""
    rows = []
    for i, ((problem, answer, _), kind) in enumerate(zip(ROWS, loss_types)):
        row = {
            "conversational": {"prompt": [user(problem)], "completion": [assistant(answer)]},
            "plain": {"prompt": problem + "\n", "completion": answer},
            "messages": {"prompt": [SYSTEM] * (i == 0) + [user(problem)], "completion": [assistant(answer)]},
            "text": {"text": f"{problem}\n{answer}"},
        }[form]
        rows.append(row | {"loss_type": kind})
    return rows


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    texts = [f"{SYSTEM['content']} {p}\n{a}" for p, a, _ in ROWS]
    return save_tiny_random_model(tmp_path_factory.mktemp("sft-inputs") / "model", texts)


@pytest.fixture(scope="module")
def tokenizer(model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("with_loss_type", [True, False], ids=["loss_type", "no-loss_type"])
@pytest.mark.parametrize("form", list(FORMS))
def test_every_trl_form_with_or_without_loss_type(form, with_loss_type, suffix, tokenizer, tmp_path):
    source = write(tmp_path / f"rows{suffix}", held(form, with_loss_type))
    dataset, stats = load_sft_data(source, tokenizer, cutoff=None)
    loss_types = [kind for _, _, kind in ROWS] if with_loss_type else [0, 0, 0]  # none: every row a positive
    assert dataset.to_list() == trained(form, loss_types)
    assert dataset.column_names == [*FORMS[form][1], "loss_type"]
    assert (stats.form, stats.loss_type_column, stats.kind, stats.split, stats.subset) == (
        FORMS[form][0],
        with_loss_type,
        "trl",
        None,
        None,
    )
    assert (stats.rows_read, stats.positives, stats.negatives) == (3, 3 - sum(loss_types), sum(loss_types))


def test_lengths_are_those_trl_tokenizes_for_every_form(model, tokenizer, tmp_path):
    """The cutoff counts each row's tokens as TRL's SFTTrainer makes them (the reference: the
    input_ids of the dataset OXATrainer prepares): the chat template for conversations, a plain
    row as one string with an EOS added."""
    from train.sft.config import OXAConfig
    from train.sft.trainer import OXATrainer

    args = OXAConfig(str(tmp_path / "out"), use_cpu=True, report_to="none", max_length=None, ul_global=0)
    for form in FORMS:
        dataset, _ = load_sft_data(write(tmp_path / f"{form}.parquet", held(form)), tokenizer, cutoff=None)
        trainer = OXATrainer(model=str(model), args=args, train_dataset=dataset, processing_class=tokenizer)
        trl = [len(ids) for ids in trainer.train_dataset["input_ids"]]
        assert sequence_lengths(dataset.data.table, tokenizer) == trl, form
        assert len(set(trl)) > 1, form

        cutoff = sorted(trl)[1]
        over = [i for i, n in enumerate(trl) if n > cutoff]
        kept, stats = load_sft_data(tmp_path / f"{form}.parquet", tokenizer, cutoff=cutoff)
        assert stats.dropped_rows == over and stats.max_tokens_kept == cutoff, form
        assert kept.to_list() == [r for i, r in enumerate(trained(form, [0, 0, 1])) if i not in over], form


def test_rows_that_are_no_trl_form_are_refused(tokenizer, tmp_path):
    def error(rows, name="rows.jsonl"):
        with pytest.raises(OxaError) as caught:
            load_sft_data(write(tmp_path / name, rows), tokenizer, cutoff=None)
        return str(caught.value)

    path = tmp_path / "rows.jsonl"
    assert error([{"instruction": "q", "output": "a", "loss_type": 0}]) == (
        f"{path} has columns instruction, output, loss_type; oxa train sft reads rows of prompt + completion, "
        "messages or text (TRL's forms), or problem + response (a subset's rows), with a loss_type or not"
    )
    assert error([{"prompt": [user("q")], "completion": "a"}]) == (
        f"{path}: prompt holds conversations (lists of role/content turns) and completion holds strings; "
        "prompt and completion must hold conversations (lists of role/content turns) or strings, both alike"
    )
    assert error([{"text": 3}]) == f"{path}: text holds int64; text must hold strings"
    ends_with_user = [{"messages": [user("q"), assistant("a")]}, {"messages": [user("q"), assistant("a"), user("b")]}]
    assert error(ends_with_user) == (
        f"{path}: 1 messages rows (the first: row 1) do not end with an assistant turn after at least one other "
        "turn; the last assistant turn is what a row trains"
    )
    assert error([{"messages": [assistant("a")]}]).startswith(f"{path}: 1 messages rows (the first: row 0)")
    assert error([{"text": "a", "loss_type": 0}, {"text": None, "loss_type": 1}]) == (
        f"{path}: 1 rows have no text; give every row one"
    )
    assert "rows have a loss_type other than 0 or 1 (2)" in error([{"text": "a", "loss_type": 2}])


def test_splits_are_never_guessed(tokenizer, tmp_path):
    def read(source, split=None):
        dataset, stats = load_sft_data(source, tokenizer, cutoff=None, split=split)
        return [row["text"] for row in dataset.to_list()], stats.split

    train, test = [{"text": "train row"}], [{"text": "test row 1"}, {"text": "test row 2"}]
    both = tmp_path / "both"
    write(both / "train.parquet", train)
    write(both / "test.parquet", test)
    with pytest.raises(OxaError) as caught:
        read(both)
    assert str(caught.value) == (
        f"{both} holds the splits train, test; name the one to train on with --split (e.g. --split train), "
        "or several joined by + (--split train+test)"
    )
    assert read(both, "test") == (["test row 1", "test row 2"], "test")
    assert read(both, "train+test") == (["train row", "test row 1", "test row 2"], "train+test")
    with pytest.raises(OxaError, match=r"has no split 'dev'; its splits: train, test$"):
        read(both, "dev")

    hub = tmp_path / "hub"  # the Hub's layout, as `datasets` names its splits
    write(hub / "data" / "train-00000-of-00002.parquet", train)
    write(hub / "data" / "train-00001-of-00002.parquet", train)
    write(hub / "data" / "validation-00000-of-00001.parquet", test)
    with pytest.raises(OxaError, match=r"holds the splits train, validation; name the one"):
        read(hub)
    assert read(hub, "train") == (["train row", "train row"], "train")
    (hub / "data" / "validation-00000-of-00001.parquet").unlink()
    assert read(hub) == (["train row", "train row"], "train")  # one split: taken

    folders = tmp_path / "folders"
    write(folders / "train" / "rows.jsonl", train)
    write(folders / "test" / "rows.jsonl", test)
    with pytest.raises(OxaError, match=r"holds the splits train, test"):
        read(folders)
    only_test = tmp_path / "only-test"
    write(only_test / "test.jsonl", test)
    assert read(only_test) == (["test row 1", "test row 2"], "test")

    import datasets

    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test)}
    ).save_to_disk(str(saved))
    with pytest.raises(OxaError, match=r"saved holds the splits train, test; name the one"):
        read(saved)
    assert read(saved, "test") == (["test row 1", "test row 2"], "test")

    one = write(tmp_path / "one.parquet", train)  # no splits: read whole, `datasets` calls it train
    assert read(one) == read(one, "train") == (["train row"], None)
    with pytest.raises(OxaError) as caught:
        read(one, "test")
    assert str(caught.value) == f"{one} holds one set of rows, without splits; leave out --split test"


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    return make_subset(tmp_path_factory.mktemp("sft-inputs-ws"))


def test_a_subset_named_in_its_workspace(subset, tokenizer):
    ws, folder, rows = subset
    version = json.loads((folder / "card.json").read_text())["version"]
    for name in ("full", f"full/{version}", f"full/{version[:6]}"):
        dataset, stats = load_sft_data(name, tokenizer, cutoff=None, workspace=ws.root)
        assert dataset.to_list() == expected_rows(rows)
        assert (stats.kind, stats.source, stats.subset["name"], stats.subset["version"]) == (
            "subset",
            str(folder),
            "full",
            version,
        )
    with pytest.raises(OxaError, match=r"no subset named 'nope' in .*; subsets: full"):
        load_sft_data("nope", tokenizer, cutoff=None, workspace=ws.root)
    with pytest.raises(OxaError, match=r"no version of 'full' starts with 'zzz'"):
        load_sft_data("full/zzz", tokenizer, cutoff=None, workspace=ws.root)


def exported(ws_root, output, **config) -> dict:
    """An `oxa export` folder of subset full; its oxa_export.json."""
    run_export(Workspace.open(ws_root), ExportConfig(subset="full", output=str(output), **config))
    return json.loads((output / EXPORT_MARKER).read_text())


def test_an_export_folder_records_its_subset(subset, tokenizer, tmp_path):
    ws, folder, rows = subset
    card = json.loads((folder / "card.json").read_text())
    marker = exported(ws.root, tmp_path / "hf", format="hf")  # the subset's rows as they are, and its card
    dataset, stats = load_sft_data(tmp_path / "hf", tokenizer, cutoff=None)
    assert dataset.to_list() == expected_rows(rows)  # the instruction appended, as to the subset folder's rows
    assert (stats.kind, stats.form, stats.instruction) == ("hf", "problem/response", KNOWN_SUFFIXES[0])
    assert stats.subset == {
        "name": "full",
        "version": card["version"],
        "export": {"path": str(tmp_path / "hf"), **marker},
        "card_sha256": file_sha256(folder / "card.json"),
        "decontamination": card.get("decontamination"),
    }

    marker = exported(ws.root, tmp_path / "trl", format="trl", negatives="separate")  # negatives: a split of their own
    with pytest.raises(OxaError, match=r"holds the splits train, negatives; .* \(--split train\+negatives\)$"):
        load_sft_data(tmp_path / "trl", tokenizer, cutoff=None)
    dataset, stats = load_sft_data(tmp_path / "trl", tokenizer, cutoff=None, split="train+negatives")
    good = expected_rows(rows)
    assert dataset.to_list() == [r for r in good if r["loss_type"] == 0] + [r for r in good if r["loss_type"] == 1]
    assert (stats.split, stats.form, stats.instruction) == (
        "train+negatives",
        "prompt/completion (conversational)",
        KNOWN_SUFFIXES[0],
    )
    assert stats.subset == {
        "name": "full",
        "version": card["version"],
        "export": {"path": str(tmp_path / "trl"), **marker},
    }

    (tmp_path / "trl" / EXPORT_MARKER).write_text(json.dumps({"format": "trl"}))
    with pytest.raises(OxaError, match=r"oxa_export.json does not name the subset it was exported from \(NAME/VERSION"):
        load_sft_data(tmp_path / "trl", tokenizer, cutoff=None, split="train")
