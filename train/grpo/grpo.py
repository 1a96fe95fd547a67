"""`oxa train grpo`: RLVR with TRL's GRPOTrainer and the math-verify accuracy reward.

- `OxaGRPOConfig` is TRL's GRPOConfig plus validation sampling (`eval_temperature`,
  `eval_top_p`), the generation backend (`auto`: vLLM when installed and a GPU is there,
  else transformers), the instruction appended to each problem and the reward's settings.
- Presets live in configs/train/grpo/ (`paper`, `tiny`); like the SFT presets
  (train/sft/presets.py) they state the batch globally, here as `prompts_per_step`: the
  generation batch is prompts_per_step x num_generations completions, one optimizer step,
  and gradient accumulation = that / (per_device_train_batch_size x processes).
- Prompts: a verl parquet, a subset folder, or a benchmark-layout JSON/JSONL, read by
  train/eval/benchmarks.py (known instruction suffixes stripped there; the configured
  instruction is appended here, so every prompt carries exactly one). A row without a
  gold answer is an error naming the file and row.
- `OxaGRPOTrainer` changes one thing: evaluation generates at the validation sampling
  settings. The output folder gets `oxa_grpo.json` (preset, overrides, resolved config,
  prompt sources with checksums, reward verdict counts) beside TRL's trainer_state.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

from transformers import HfArgumentParser
from trl import GRPOConfig, GRPOTrainer

from curate.text.instructions import KNOWN_SUFFIXES
from curate.verify import VerifierSettings
from curate.workspace import MissingExtra, OxaError
from curate.workspace.configfile import apply_overrides
from train.eval.benchmarks import PromptSet, load_prompt_set
from train.grpo.curves import plot_training_curves, training_curves
from train.grpo.reward import MathVerifyReward
from train.sft.presets import as_args, load_preset, presets_dir, world_size

BACKENDS = ("auto", "vllm", "transformers")
RECORD = "oxa_grpo.json"


@dataclass
class OxaGRPOConfig(GRPOConfig):
    """GRPOConfig with validation sampling, the generation backend, the prompt instruction and the reward settings."""

    eval_temperature: float = field(
        default=0.6, metadata={"help": "Sampling temperature of validation generations (the paper's 0.6)."}
    )
    eval_top_p: float = field(default=0.95, metadata={"help": "Top-p of validation generations (the paper's 0.95)."})
    generation_backend: str = field(
        default="auto",
        metadata={
            "help": "'vllm' (colocated vLLM, needs the vllm extra), 'transformers' (model.generate), or 'auto': "
            "vllm when it is installed and a GPU is present. Sets use_vllm.",
            "choices": list(BACKENDS),
        },
    )
    instruction: str = field(
        default=KNOWN_SUFFIXES[0],
        metadata={"help": "Appended to each problem after a newline (the paper's, A.2); empty: the problem alone."},
    )
    reward_deadline_s: float = field(
        default=15.0, metadata={"help": "Wall-clock seconds to judge one completion; past it: reward 0 (timeout)."}
    )
    reward_workers: int = field(
        default=0,
        metadata={"help": "Processes judging completions, per training process; 0: its share of the CPUs, at most 8."},
    )
    require_think: bool = field(
        default=False, metadata={"help": "A completion without </think> gets reward 0 (no_answer), as oxa verify."}
    )

    def __post_init__(self):
        if self.generation_backend not in BACKENDS:
            raise OxaError(f"generation_backend must be one of {', '.join(BACKENDS)}, got {self.generation_backend!r}")
        vllm_installed = importlib.util.find_spec("vllm") is not None
        if self.generation_backend == "vllm" and not vllm_installed:
            raise MissingExtra("generation_backend 'vllm' needs vLLM: pip install 'oxa[vllm]' (on a GPU machine)")
        if self.generation_backend == "auto":
            import torch

            self.use_vllm = vllm_installed and torch.cuda.is_available() and not self.use_cpu
        else:
            self.use_vllm = self.generation_backend == "vllm"
        super().__post_init__()

    def verifier_settings(self) -> VerifierSettings:
        return VerifierSettings(deadline_s=self.reward_deadline_s, require_think=self.require_think)


class OxaGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose evaluation samples at eval_temperature / eval_top_p (TRL has one setting for both)."""

    def evaluate(self, *args, **kwargs):
        with self._validation_sampling():
            return super().evaluate(*args, **kwargs)

    @contextlib.contextmanager
    def _validation_sampling(self) -> Iterator[None]:
        # Only the sampler changes: log-probs (and the logged entropy) stay at the training temperature.
        wanted = {"temperature": self.args.eval_temperature, "top_p": self.args.eval_top_p}
        targets = [getattr(self, "vllm_generation", None), getattr(self, "generation_config", None)]
        targets = [t for t in targets if t is not None]
        kwargs = getattr(self, "generation_kwargs", None) if not self.use_vllm else None
        saved = [{k: getattr(t, k) for k in wanted} for t in targets]
        saved_kwargs = {k: kwargs[k] for k in wanted if k in kwargs} if kwargs is not None else {}
        for target in targets:
            for key, value in wanted.items():
                setattr(target, key, value)
        if kwargs is not None:
            kwargs.update(wanted)
        try:
            yield
        finally:
            for target, values in zip(targets, saved):
                for key, value in values.items():
                    setattr(target, key, value)
            if kwargs is not None:
                kwargs.update(saved_kwargs)


@dataclass(frozen=True)
class GRPORun:
    """What `oxa train grpo` runs: the model, the prompt sources, the preset and its overrides."""

    model: str
    prompts: str
    output: str
    preset: str = "paper"  # a name in configs/train/grpo/ or a .toml file
    overrides: tuple[str, ...] = ()  # KEY=VALUE, OxaGRPOConfig fields or prompts_per_step
    max_steps: int | None = None
    eval_prompts: str | None = None  # validation set (e.g. the shipped aime24); evaluated every eval_steps
    generation_backend: str | None = None  # overrides the preset's


def grpo_preset_names() -> list[str]:
    return sorted(p.stem for p in (presets_dir() / "grpo").glob("*.toml"))


def resolve_grpo_settings(run: GRPORun, ranks: int | None = None) -> tuple[dict, dict]:
    """The OxaGRPOConfig fields of a run (preset, overrides, derived gradient accumulation, the
    command's own fields), and the preset facts to record."""
    shipped = presets_dir() / "grpo" / f"{run.preset}.toml"
    if not shipped.is_file() and not Path(run.preset).is_file():
        names = ", ".join(grpo_preset_names())
        raise OxaError(f"no GRPO preset or file {run.preset!r}; give a .toml file or one of: {names}")
    name, table = load_preset(str(shipped) if shipped.is_file() else run.preset)
    settings = apply_overrides(table, list(run.overrides))
    settings.pop("description", None)
    prompts_per_step = _whole(settings.pop("prompts_per_step", 0), "prompts_per_step")
    if prompts_per_step:  # the generation batch: prompts x rollouts completions, one optimizer step
        if "gradient_accumulation_steps" in settings:
            raise OxaError(
                "the preset sets prompts_per_step, which derives gradient_accumulation_steps; set one of them"
            )
        completions = prompts_per_step * _whole(settings.get("num_generations", 8), "num_generations")
        per_device = _whole(settings.get("per_device_train_batch_size", 8), "per_device_train_batch_size")
        per_step = per_device * (ranks or world_size())
        if completions % per_step:
            raise OxaError(
                f"prompts_per_step x num_generations = {completions} completions is not a multiple of "
                f"per_device_train_batch_size x processes = {per_step}; change one of them with --set"
            )
        settings["gradient_accumulation_steps"] = completions // per_step
    if run.eval_prompts:
        settings.setdefault("eval_strategy", "steps")
    settings["output_dir"] = run.output
    settings |= {k: v for k, v in (("max_steps", run.max_steps), ("generation_backend", run.generation_backend)) if v}
    return settings, {"name": name, "prompts_per_step": prompts_per_step or None, "overrides": list(run.overrides)}


def _whole(value: object, key: str) -> int:
    try:
        return int(str(value).replace("_", ""))
    except ValueError:
        raise OxaError(f"{key} must be a whole number, got {value!r}") from None


def grpo_config(settings: dict, preset: str) -> OxaGRPOConfig:
    """The OxaGRPOConfig of resolved settings, parsed as transformers parses command-line flags."""
    argv = [token for key, value in settings.items() for token in (f"--{key}", *as_args(value))]
    try:
        config, unknown = HfArgumentParser(OxaGRPOConfig, exit_on_error=False).parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True, look_for_args_file=False
        )
    except argparse.ArgumentError as exc:  # a value of the wrong type or not among a field's choices
        raise OxaError(f"GRPO preset {preset!r}: {exc}; fix the preset or its --set") from None
    except ValueError as exc:  # GRPOConfig's and TrainingArguments' own checks
        raise OxaError(f"GRPO preset {preset!r}: {exc}") from exc
    if unknown:
        raise OxaError(
            f"GRPO preset {preset!r}: unknown setting(s) {' '.join(unknown)}; keys are OxaGRPOConfig fields "
            "(TRL GRPOConfig, transformers TrainingArguments, eval_temperature, reward_*, ...) or prompts_per_step"
        )
    return config


def prompt_dataset(prompts: PromptSet, instruction: str):
    """A TRL conversational prompt dataset with the reward's gold columns."""
    from datasets import Dataset

    suffix = f"\n{instruction}" if instruction else ""
    return Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": p.problem + suffix}] for p in prompts.problems],
            "gold_answer": [p.gold[0] for p in prompts.problems],
            "gold_alternatives": [list(p.gold[1:]) for p in prompts.problems],
            "problem_id": [p.problem_id for p in prompts.problems],
        }
    )


def _source_record(prompts: PromptSet) -> dict:
    return {
        "path": str(prompts.path),
        "rows": len(prompts.problems) + prompts.repeated,
        "prompts": len(prompts.problems),
        "repeated": prompts.repeated,
        "sha256": prompts.digest,
    }


def _checked_tokenizer(model: str):
    from transformers import AutoTokenizer

    if not (Path(model) / "config.json").is_file():
        raise OxaError(f"--model {model} is not a model folder (no config.json); give a Hugging Face model folder")
    tokenizer = AutoTokenizer.from_pretrained(model)
    if not tokenizer.chat_template:
        raise OxaError(
            f"the tokenizer of {model} has no chat template, which GRPO's conversational prompts need; "
            "add one (e.g. with `oxa model prepare`) or use an instruct model"
        )
    return tokenizer


def run_grpo(run: GRPORun) -> dict:
    """Train; returns the record written to OUTPUT/oxa_grpo.json."""
    settings, preset = resolve_grpo_settings(run)
    config = grpo_config(settings, preset["name"])
    tokenizer = _checked_tokenizer(run.model)
    train_set = load_prompt_set("prompts", Path(run.prompts).expanduser().resolve())
    eval_set = load_prompt_set("eval", Path(run.eval_prompts).expanduser().resolve()) if run.eval_prompts else None
    verifier = config.verifier_settings()
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    record = {
        "model": str(Path(run.model).resolve()),
        "preset": preset,
        "prompts": _source_record(train_set),
        "eval_prompts": _source_record(eval_set) if eval_set else None,
        "generation": "vllm" if config.use_vllm else "transformers",
        "versions": {lib: version(lib) for lib in ("trl", "transformers", "torch", "accelerate", "datasets")},
        "reward": {"settings": asdict(verifier), "versions": verifier.versions()},
        "config": config.to_dict(),
    }
    main_process = config.process_index == 0
    if main_process:
        _write_record(output, record)
    # every process judges its own completions: the CPUs are shared among the processes
    workers = config.reward_workers or max(1, min(8, (os.cpu_count() or 1) // world_size()))
    with MathVerifyReward(verifier, workers) as reward:
        trainer = OxaGRPOTrainer(
            model=run.model,
            reward_funcs=[reward],
            args=config,
            train_dataset=prompt_dataset(train_set, config.instruction),
            eval_dataset=prompt_dataset(eval_set, config.instruction) if eval_set else None,
            processing_class=tokenizer,
        )
        result = trainer.train()
        trainer.save_model()
        trainer.save_state()
        record["reward"]["verdicts"] = dict(reward.counts)
    record["train"] = {"global_step": trainer.state.global_step, **result.metrics}
    record["curves"] = training_curves(trainer.state.log_history)
    if main_process:  # verdict counts of this process's completions; the logged verify/* shares cover all
        _write_record(output, record)
        plot_training_curves(trainer.state.log_history, output / "curves.png", Path(run.model).name)
    return record


def _write_record(output: Path, record: dict) -> None:
    tmp = output / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(output / RECORD)
