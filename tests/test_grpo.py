"""`oxa train grpo`: presets resolved into TRL's GRPOConfig, prompts from verl parquet,
subset folders and exports, bad input, validation sampling, and two real GRPO steps with
the tiny instruct model that log the reward."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

pytest.importorskip("trl")

from curate.benchmarks.sets import load_prompt_set  # noqa: E402
from curate.cli import app  # noqa: E402
from curate.select import (
    SelectConfig,  # noqa: E402
    run_select,  # noqa: E402
)
from curate.subsets import ExportConfig, run_export  # noqa: E402
from curate.subsets.subsets import file_sha256  # noqa: E402
from curate.text.instructions import KNOWN_SUFFIXES  # noqa: E402
from curate.workspace import (
    OxaError,  # noqa: E402
    Workspace,  # noqa: E402
)
from curate.workspace.resources import resource_dir  # noqa: E402
from tests.pools import TAG, add_pool  # noqa: E402
from train.grpo.grpo import (  # noqa: E402
    RECORD,
    GRPORun,
    OxaGRPOTrainer,
    _checked_tokenizer,
    grpo_config,
    prompt_dataset,
    resolve_grpo_settings,
)

SUFFIX = "\n" + KNOWN_SUFFIXES[0]
AIME24_VERL = resource_dir("sql").parent / "curate" / "data" / "formats" / "aime24.verl.parquet"


def run_config(tmp_path, preset="tiny", *overrides, **fields):
    return GRPORun(model="unused", prompts="unused", output=str(tmp_path / "out"), preset=preset,
                   overrides=overrides, **fields)  # fmt: skip


def resolve_grpo_config(run, ranks=1):
    settings, preset = resolve_grpo_settings(run, ranks)
    return grpo_config(settings, preset["name"]), preset


def prompts_of(path):
    dataset = prompt_dataset(load_prompt_set("prompts", path), KNOWN_SUFFIXES[0])
    return [(row["prompt"][0]["content"], row["gold_answer"], row["gold_alternatives"]) for row in dataset]


# -- presets ------------------------------------------------------------------------------


def test_paper_preset_has_the_papers_settings(tmp_path):
    settings, preset = resolve_grpo_settings(run_config(tmp_path, "paper"), ranks=1)
    assert preset == {"name": "paper", "prompts_per_step": 64, "overrides": []}
    paper = {"num_generations": 8, "temperature": 0.85, "learning_rate": 2e-6, "beta": 0.001, "max_steps": 1600,
             "max_completion_length": 16384, "eval_temperature": 0.6, "eval_top_p": 0.95, "bf16": True,
             "activation_checkpointing": True, "generation_backend": "auto"}  # fmt: skip
    assert {key: settings[key] for key in paper} == paper
    # 64 prompts x 8 rollouts = 512 completions per optimizer step, in micro-batches of 4 per GPU
    assert (settings["per_device_train_batch_size"], settings["gradient_accumulation_steps"]) == (4, 128)
    eight_gpus, _ = resolve_grpo_settings(run_config(tmp_path, "paper"), ranks=8)
    assert eight_gpus["gradient_accumulation_steps"] == 16
    # the config itself (bf16 needs a GPU: built here on the CPU)
    config, _ = resolve_grpo_config(run_config(tmp_path, "paper", "bf16=false", "use_cpu=true"))
    assert (config.temperature, config.beta, config.eval_temperature, config.eval_top_p) == (0.85, 0.001, 0.6, 0.95)
    assert config.generation_batch_size == 512 and config.steps_per_generation == 128
    assert config.gradient_checkpointing and config.use_vllm is False  # no vLLM here: transformers generation


def test_overrides_and_cli_fields(tmp_path):
    run = run_config(tmp_path, "tiny", "num_generations=8", "learning_rate=3e-5", max_steps=5)
    config, preset = resolve_grpo_config(run, ranks=1)
    assert (config.num_generations, config.learning_rate, config.max_steps) == (8, 3e-5, 5)
    assert config.gradient_accumulation_steps == 4 and config.generation_batch_size == 16  # 2 prompts x 8
    assert preset["overrides"] == ["num_generations=8", "learning_rate=3e-5"]
    assert config.output_dir == str(tmp_path / "out") and config.use_cpu and not config.use_vllm


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("num_generations=3",), "6 completions is not a multiple of per_device_train_batch_size x processes = 4"),
        (("no_such_key=1",), "unknown setting(s) --no_such_key 1"),
        (("gradient_accumulation_steps=2",), "prompts_per_step, which derives gradient_accumulation_steps"),
        (("generation_backend=tpu",), "argument --generation_backend/--generation-backend: invalid choice: 'tpu'"),
        (("generation_backend=vllm",), "needs vLLM and TRL in one environment: pip install 'oxa[vllm]'"),
        (("learning_rate=fast",), "argument --learning_rate/--learning-rate: invalid float value: 'fast'"),
        (("prompts_per_step=many",), "prompts_per_step must be a whole number, got 'many'"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path, overrides, message):
    with pytest.raises(OxaError) as error:
        resolve_grpo_config(run_config(tmp_path, "tiny", *overrides))
    assert message in str(error.value)


def test_unknown_preset_from_the_command_line(tmp_path):
    args = ["train", "grpo", "--model", tmp_path, "--prompts", AIME24_VERL, "--output", tmp_path / "out"]
    with pytest.raises(
        OxaError,
        match="no GRPO preset or file 'nope'; give a .toml or .yaml file or one of: paper, paper-clipcov, tiny",
    ):
        CliRunner().invoke(app, [*map(str, args), "--preset", "nope"], catch_exceptions=False)


# -- prompts ------------------------------------------------------------------------------


def test_verl_prompts_keep_their_instruction_once():
    table = pq.read_table(AIME24_VERL).to_pylist()
    assert prompts_of(AIME24_VERL) == [
        (row["prompt"][-1]["content"], row["reward_model"]["ground_truth"], []) for row in table
    ]
    assert all(
        content.endswith(SUFFIX) and content.count(KNOWN_SUFFIXES[0]) == 1 for content, _, _ in prompts_of(AIME24_VERL)
    )


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """A published subset with two responses for one of its three problems, and its verl export."""
    root = tmp_path_factory.mktemp("grpo-subset")
    ws = Workspace.init(root / "ws")
    rows = [
        {"problem": "What is 1+1?", "response": "<think>a</think> \\boxed{2}", "gold": "2", "ppl": 1.5},
        {"problem": "What is 1+1?", "response": "<think>b</think> \\boxed{2}", "gold": "2", "ppl": 1.6},
        {"problem": "Half of 1?", "response": "<think>c</think> \\boxed{0.5}", "gold": "\\frac{1}{2}", "ppl": 1.7},
        {"problem": "Three squared?", "response": "<think>d</think> \\boxed{9}", "gold": "9", "ppl": 1.8},
    ]
    add_pool(ws, root, [r | {"verdict": "correct", "n_tokens": 10} for r in rows])
    stats = run_select(ws, SelectConfig(name="rl", strategy="lowest_ppl", scores_tag=TAG, n=4, max_per_problem=2))
    verl = root / "rl.verl.parquet"
    run_export(ws, ExportConfig(subset="rl", format="verl", output=str(verl)))
    trl = root / "rl.trl.parquet"
    run_export(ws, ExportConfig(subset="rl", format="trl", output=str(trl)))
    return Path(stats["path"]), verl, trl


def test_subset_folder_and_its_verl_export_give_the_same_prompts(subset):
    folder, verl, _ = subset
    expected = [
        ("What is 1+1?" + SUFFIX, "2", []),
        ("Half of 1?" + SUFFIX, "\\frac{1}{2}", []),
        ("Three squared?" + SUFFIX, "9", []),
    ]
    assert prompts_of(folder) == expected  # one prompt per problem, in selection order
    assert prompts_of(verl) == expected
    assert load_prompt_set("prompts", folder).repeated == 1


def test_benchmark_json_with_answer_lists(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(
        json.dumps([{"problem": "p1", "answer": ["1.5", "\\frac{3}{2}"]}, {"problem": "p2", "answer": "7"}])
    )
    assert prompts_of(path) == [("p1" + SUFFIX, "1.5", ["\\frac{3}{2}"]), ("p2" + SUFFIX, "7", [])]
    assert prompt_dataset(load_prompt_set("p", path), "")[0]["prompt"] == [{"role": "user", "content": "p1"}]


def test_prompts_without_gold_or_in_a_trl_export_fail_clearly(tmp_path, subset):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "p1", "answer": "1"}\n{"problem": "p2", "answer": ""}\n')
    with pytest.raises(OxaError, match=f"{path} row 1: the answer is missing or empty"):
        load_prompt_set("prompts", path)
    trl = subset[2]
    with pytest.raises(OxaError, match="prompt, completion, loss_type"):
        load_prompt_set("prompts", trl)


def test_model_folders_without_a_chat_template_fail_clearly(tmp_path, tiny_models):
    with pytest.raises(OxaError, match="is not a model folder"):
        _checked_tokenizer(str(tmp_path))
    bare = tmp_path / "bare"
    shutil.copytree(tiny_models / "instruct", bare)
    (bare / "chat_template.jinja").unlink()
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(OxaError, match="has no chat template"):
        _checked_tokenizer(str(bare))


# -- training -----------------------------------------------------------------------------


def test_validation_generates_at_its_own_temperature(tmp_path, tiny_models, synth_world):
    config, _ = resolve_grpo_config(run_config(tmp_path, "tiny"), ranks=1)
    dataset = prompt_dataset(load_prompt_set("p", synth_world / "heldout.json"), config.instruction)
    trainer = OxaGRPOTrainer(
        model=str(tiny_models / "instruct"), reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
        args=config, train_dataset=dataset, processing_class=_checked_tokenizer(str(tiny_models / "instruct")),
    )  # fmt: skip
    sampling = lambda: (trainer.generation_config.temperature, trainer.generation_config.top_p)  # noqa: E731
    assert sampling() == (0.85, 1.0)
    with trainer._validation_sampling():
        assert sampling() == (0.6, 0.95)
        assert (trainer.generation_kwargs["temperature"], trainer.generation_kwargs["top_p"]) == (0.6, 0.95)
    assert sampling() == (0.85, 1.0) and trainer.generation_kwargs["temperature"] == 0.85


def test_two_grpo_steps_log_reward_entropy_and_length(tmp_path, tiny_models, synth_world, recwarn):
    prompts = synth_world / "heldout.json"
    args = ["train", "grpo", "--model", tiny_models / "instruct", "--prompts", prompts, "--output", tmp_path / "out",
            "--preset", "tiny", "--set", "reward_workers=1"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "GRPO: 2 steps (transformers generation)" in result.output
    record = json.loads((tmp_path / "out" / RECORD).read_text())
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    steps = [entry for entry in state["log_history"] if "reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2] and state["global_step"] == 2
    for entry in steps:
        assert {"rewards/accuracy/mean", "entropy", "completions/mean_length", "kl", "verify/timeout"} <= set(entry)
        shares = sum(entry[f"verify/{v}"] for v in ("correct", "incorrect", "no_answer", "timeout", "error"))
        assert shares == pytest.approx(1.0)
        assert 0 < entry["completions/mean_length"] <= 32
    # 2 steps x 2 prompts x 4 rollouts, every completion judged once
    assert sum(record["reward"]["verdicts"].values()) == 16
    saved = record
    assert saved["prompts"] == {
        "path": str(prompts.resolve()),
        "rows": 8,
        "prompts": 8,
        "repeated": 0,
        "sha256": file_sha256(prompts),
    }
    assert saved["preset"] == {"name": "tiny", "prompts_per_step": 2, "overrides": ["reward_workers=1"]}
    assert saved["config"]["num_generations"] == 4 and saved["config"]["gradient_accumulation_steps"] == 2
    assert saved["generation"] == "transformers" and saved["train"]["global_step"] == 2
    assert (tmp_path / "out" / "model.safetensors").is_file()
    # TRL's read of the deprecated is_gradient_checkpointing, silenced where the trainer is built
    assert not [w for w in recwarn if "is_gradient_checkpointing" in str(w.message)]
    # the curves: the logged reward, entropy and length per step, and their plot
    assert saved["curves"]["reward"] == [[e["step"], e["reward"]] for e in steps]
    assert saved["curves"]["entropy"] == [[e["step"], e["entropy"]] for e in steps]
    assert (tmp_path / "out" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
