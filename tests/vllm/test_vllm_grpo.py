"""GRPO with vLLM generation (TRL's colocated vLLM), two steps on the CPU with the tiny
instruct model: the run's record says vLLM generated, and the reward, entropy and
length are logged as with transformers generation."""

import json

import pytest

pytest.importorskip("vllm")
pytest.importorskip("trl")

from typer.testing import CliRunner  # noqa: E402

from curate.cli import app  # noqa: E402


def test_two_grpo_steps_with_vllm_generation(tmp_path, tiny_models, synth_world):
    args = ["train", "grpo", "--model", tiny_models / "instruct", "--prompts", synth_world / "heldout.json",
            "--output", tmp_path / "out", "--preset", "tiny", "--generation", "vllm",
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
