"""Training presets (the paper's A.3 settings, overrides, gradient accumulation derived from
the global batch) and `oxa train sft` end to end on a tiny model: the output folder's
record, the saved model, and bad input refused before a model is loaded."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.subsets.subsets import file_sha256
from curate.workspace import OxaError
from train.sft.presets import resolve_preset, training_preset_names

pytest.importorskip("trl")

from tests.test_sft_data import SUFFIX, _pool, expected_rows, make_subset  # noqa: E402
from tests.test_sft_inputs import exported  # noqa: E402
from tests.tiny_random import save_tiny_random_model  # noqa: E402

runner = CliRunner()
PAPER = {"qwen2.5-math-1.5b": 2.5e-4, "qwen2.5-math-7b": 5e-5, "llama3.2-3b": 2e-4, "qwen3-1.7b": 2e-4}


def test_paper_presets():
    assert set(PAPER) | {"tiny"} == set(training_preset_names())
    for name, lr in PAPER.items():
        resolved = resolve_preset(name, ranks=1)
        assert resolved.global_batch_size == 128
        assert resolved.settings == {
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 128,
            "learning_rate": lr,
            "num_train_epochs": 6,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.03,
            "weight_decay": 0.1,
            "adam_beta1": 0.9,
            "adam_beta2": 0.95,
            "max_length": 32768,
            "ul_alpha": 1e-4,
            "ul_global": 16,
            "ul_normalization": "sequence",
            "bf16": True,
            "activation_checkpointing": True,
            "logging_steps": 10,
            "save_strategy": "epoch",
            "save_only_model": True,
            "report_to": "none",
            "seed": 42,
        }


def test_overrides_and_derived_accumulation():
    from train.sft.presets import training_config

    resolved = resolve_preset("qwen2.5-math-7b", ["per_device_train_batch_size=4", "learning_rate=1e-5"], ranks=8)
    assert resolved.settings["gradient_accumulation_steps"] == 4  # 128 / (4 x 8)
    assert (
        resolve_preset("qwen2.5-math-7b", ["global_batch_size=384"], ranks=8).settings["gradient_accumulation_steps"]
        == 48
    )
    config = training_config(resolved, "/tmp/unused", max_steps=3, use_cpu=True)  # bf16 needs a GPU or use_cpu
    assert (config.learning_rate, config.gradient_accumulation_steps, config.per_device_train_batch_size) == (
        1e-5,
        4,
        4,
    )
    assert (config.max_steps, config.max_length, config.ul_global, config.ul_alpha) == (3, 32768, 16, 1e-4)
    assert (config.adam_beta1, config.adam_beta2, config.weight_decay, config.warmup_steps) == (0.9, 0.95, 0.1, 0.03)
    assert config.lr_scheduler_type == "cosine" and config.bf16 and config.activation_checkpointing

    with pytest.raises(OxaError, match=r"global_batch_size 128 is not a multiple of per_device_train_batch_size 3 x 8"):
        resolve_preset("qwen3-1.7b", ["per_device_train_batch_size=3"], ranks=8)
    with pytest.raises(OxaError, match="gradient_accumulation_steps is derived from global_batch_size"):
        resolve_preset("qwen3-1.7b", ["gradient_accumulation_steps=4"])
    with pytest.raises(OxaError, match="global_batch_size must be a positive whole number, got '0'"):
        resolve_preset("qwen3-1.7b", ["global_batch_size=0"])
    with pytest.raises(OxaError, match="no training preset or file 'qwen9'; .* one of: llama3.2-3b, qwen2.5-math-1.5b"):
        resolve_preset("qwen9")
    with pytest.raises(OxaError, match="unknown setting\\(s\\) learning_rat;"):
        training_config(resolve_preset("tiny", ["learning_rat=1"]), "/tmp/unused")
    with pytest.raises(OxaError, match="invalid float value: 'fast'"):
        training_config(resolve_preset("tiny", ["learning_rate=fast"]), "/tmp/unused")
    with pytest.raises(
        OxaError, match=r"--ul_normalization.*invalid choice: 'batch' \(choose from 'sequence', 'token'\)"
    ):
        training_config(resolve_preset("tiny", ["ul_normalization=batch"]), "/tmp/unused")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-cli")
    ws, folder, rows = make_subset(root)
    from train.sft import PrepareConfig, prepare_model

    source = save_tiny_random_model(root / "source", [r["problem"] + SUFFIX + r["response"] for r in _pool()])
    prepare_model(PrepareConfig(str(source), str(root / "model"), rope_theta=1e6))
    return root, folder, rows, root / "model"


def sft(*args):
    return runner.invoke(app, ["train", "sft", *map(str, args)])


def test_train_sft_run_records_subset_and_saves_model(setup):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, folder, rows, model = setup
    tokenizer = AutoTokenizer.from_pretrained(model)
    lengths = [
        len(tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=True)["input_ids"])
        for r in expected_rows(rows)
    ]
    cutoff = sorted(lengths)[-3]  # the two longest rows go
    over = [i for i, n in enumerate(lengths) if n > cutoff]
    out = root / "out"
    result = sft(
        "--subset",
        folder,
        "--model",
        model,
        "--preset",
        "tiny",
        "--output",
        out,
        "--max-steps",
        2,
        "--set",
        f"max_length={cutoff}",
    )
    assert result.exit_code == 0, result.output + repr(result.exception)

    record = json.loads((out / "oxa_train.json").read_text())
    card = json.loads((folder / "card.json").read_text())
    assert record["status"] == "done" and record["global_step"] == 2
    assert record["data"]["subset"]["name"] == "full" and record["data"]["subset"]["version"] == card["version"]
    assert (out / "subset" / "card.json").read_bytes() == (folder / "card.json").read_bytes()
    assert (out / "subset" / "card.md").is_file()
    data = record["data"]
    assert (data["rows_read"], data["rows_kept"], data["dropped_over_cutoff"], data["cutoff"]) == (9, 7, 2, cutoff)
    assert data["dropped_rows"] == over
    assert data["positives"] + data["negatives"] == 7
    assert record["preset"]["name"] == "tiny" and record["preset"]["overrides"] == [f"max_length={cutoff}"]
    assert record["preset"]["settings"]["gradient_accumulation_steps"] == 2  # 4 / (2 x 1 process)
    assert record["training_config"]["max_length"] == cutoff and record["training_config"]["max_steps"] == 2
    assert record["versions"]["trl"] and record["versions"]["oxa"]
    assert record["model"]["prepared"]["changes"]["config.json"] == {"rope_parameters.rope_theta": [10000.0, 1e6]}

    trained = AutoModelForCausalLM.from_pretrained(out)
    initial = AutoModelForCausalLM.from_pretrained(model)
    changed = [k for k, v in trained.state_dict().items() if not torch.equal(v, initial.state_dict()[k])]
    assert changed  # two optimizer steps moved the weights
    assert AutoTokenizer.from_pretrained(out).chat_template == tokenizer.chat_template

    again = sft("--subset", folder, "--model", model, "--preset", "tiny", "--output", out, "--max-steps", 1)
    assert isinstance(again.exception, OxaError) and "already holds a training run" in str(again.exception)


def test_train_sft_bad_input(setup, tmp_path):
    root, _, rows, model = setup

    def error(source, *more):
        result = sft("--subset", source, "--model", model, "--preset", "tiny", "--output", tmp_path / "o", *more)
        assert isinstance(result.exception, OxaError), result.output + repr(result.exception)
        assert not (tmp_path / "o" / "oxa_train.json").exists()  # refused before training
        return str(result.exception)

    _, positives_only, _ = make_subset(tmp_path / "plain", name="plain", negatives=0)
    assert "ul_alpha=0.0001 but the train dataset has no negatives (loss_type 1)" in error(positives_only)
    assert "set ul_alpha=0" in error(positives_only)
    good = expected_rows(rows)
    negatives = tmp_path / "negatives.parquet"
    pq.write_table(pa.Table.from_pylist([r for r in good if r["loss_type"] == 1]), negatives)
    assert "has no positives (loss_type 0, 3 negatives)" in error(negatives)
    folder = next((root / "ws" / "subsets" / "full").iterdir())
    assert "every positive (loss_type 0) row is longer than the cutoff of 5 tokens (6 dropped)" in error(
        folder, "--set", "max_length=5"
    )
    no_type = error(_without_loss_type(tmp_path, good))  # read: every row a positive (issue 32)
    assert "ul_alpha=0.0001 but the train dataset has no negatives" in no_type
    assert "ul_global=4 does not fit in the global batch of 4" in error(folder, "--set", "ul_global=4")


def test_train_sft_takes_ws_name_or_an_export_and_records_the_subset(setup, tmp_path):
    root, folder, _, model = setup
    card = json.loads((folder / "card.json").read_text())
    train = ("--model", model, "--preset", "tiny", "--max-steps", 1, "--output")

    by_name = sft(root / "ws", f"full/{card['version'][:8]}", *train, tmp_path / "by-name")  # as `oxa export WS NAME`
    assert by_name.exit_code == 0, by_name.output + repr(by_name.exception)
    data = json.loads((tmp_path / "by-name" / "oxa_train.json").read_text())["data"]
    assert (data["kind"], data["source"], data["subset"]["name"], data["subset"]["version"]) == (
        "subset",
        str(folder),
        "full",
        card["version"],
    )
    assert (tmp_path / "by-name" / "subset" / "card.json").read_bytes() == (folder / "card.json").read_bytes()

    marker = exported(root / "ws", tmp_path / "hf", format="hf")
    from_export = sft("--subset", tmp_path / "hf", *train, tmp_path / "from-export")  # an `oxa export --format hf`
    assert from_export.exit_code == 0, from_export.output + repr(from_export.exception)
    data = json.loads((tmp_path / "from-export" / "oxa_train.json").read_text())["data"]
    assert data["subset"] == {
        "name": "full",
        "version": card["version"],
        "export": {"path": str(tmp_path / "hf"), **marker},
        "card_sha256": file_sha256(folder / "card.json"),
        "decontamination": card.get("decontamination"),
    }
    assert (data["kind"], data["form"], data["rows_read"]) == ("hf", "problem/response", 9)
    assert not (tmp_path / "from-export" / "subset").exists()  # the card is the export's, recorded by its sha256

    def error(*data):
        result = sft(*data, *train, tmp_path / "refused")
        assert isinstance(result.exception, OxaError), result.output + repr(result.exception)
        return str(result.exception)

    assert error().startswith("give the data to train on: WS NAME (a subset of a workspace, NAME or NAME/VERSION)")
    assert error(root / "ws").endswith(f"; {root / 'ws'} came without NAME")
    assert "not both" in error(root / "ws", "full", "--subset", folder)
    assert error(root / "ws", "full", "--split", "test") == (
        f"{folder} holds one set of rows, without splits; leave out --split test"
    )


def _without_loss_type(tmp_path, good):
    path = tmp_path / "no_type.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "loss_type"}) + "\n" for r in good))
    return path


def test_the_shipped_accelerate_configs_load_as_accelerate_reads_them():
    """`accelerate launch --config_file configs/accelerate/NAME.yaml` reads each one as meant."""
    from accelerate.commands.config.config_args import load_config_from_file

    from curate.workspace.resources import resource_dir

    folder = resource_dir("configs") / "accelerate"
    loaded = {path.stem: load_config_from_file(str(path)) for path in sorted(folder.glob("*.yaml"))}
    kinds = {name: config.distributed_type.value for name, config in loaded.items()}
    assert kinds == {
        "fsdp2": "FSDP",
        "multi_gpu": "MULTI_GPU",
        "single_gpu": "NO",
        "zero2": "DEEPSPEED",
        "zero3": "DEEPSPEED",
    }
    fsdp = loaded["fsdp2"].fsdp_config
    assert (fsdp["fsdp_version"], fsdp["fsdp_state_dict_type"]) == (2, "FULL_STATE_DICT")
    for name in ("zero2", "zero3"):  # named relative to the repository root, where docs/train.md launches them
        assert (folder.parents[1] / loaded[name].deepspeed_config["deepspeed_config_file"]).is_file()
