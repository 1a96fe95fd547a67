"""`oxa` commands: train grpo (GRPO). Model libraries are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.workspace import MissingExtra
from curate.workspace.options import old_option, output_option, overwrite_option, renamed

console = Console()

# What the summary shows of the last logged training step (TRL's metric names).
_SUMMARY_METRICS = (
    "reward",
    "entropy",
    "completions/mean_length",
    "kl",
    "verify/timeout",
    "cov/clipped_share",
    "cov/penalized_share",
)


def register(app: typer.Typer, train_app: typer.Typer, model_app: typer.Typer) -> None:
    """Add this module's commands to the top-level `oxa` app or its `train`/`model` groups."""

    @train_app.command("grpo")
    def grpo(
        ctx: typer.Context,
        model: Annotated[Path, typer.Option(help="Model folder to start from (the SFT model), with a chat template.")],
        prompts: Annotated[
            Path,
            typer.Option(
                help="RL prompts: a verl parquet (`oxa export --format verl`), a subset folder, or a JSON/JSONL "
                "benchmark-layout file; each row needs its gold answer."
            ),
        ],
        output: Annotated[Path, output_option("Output folder: checkpoints, trainer_state.json, oxa_grpo.json.")],
        preset: Annotated[
            str,
            typer.Option(
                help="A preset in configs/train/grpo/ (paper; paper-clipcov: paper with Clip-Cov, OXA_Full+CC; "
                "tiny) or a .toml/.yaml file."
            ),
        ] = "paper",
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help="KEY=VALUE override of a preset key: any OxaGRPOConfig field (TRL GRPOConfig, "
                "TrainingArguments, eval_temperature, eval_top_p, reward_deadline_s, cov_mode=clip_cov|kl_cov "
                "with clip_cov_ratio, clip_cov_lb, clip_cov_ub, kl_cov_ratio, kl_cov_coef, ...) or prompts_per_step.",
            ),
        ] = None,
        max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides the preset's).")] = None,
        eval_prompts: Annotated[
            Path | None,
            typer.Option(help="Validation prompts (same formats), evaluated every eval_steps at eval_temperature."),
        ] = None,
        backend: Annotated[
            str | None,
            typer.Option(
                help="Rollout backend: auto (vLLM when installed), vllm, or hf (transformers). Default: the preset's."
            ),
        ] = None,
        overwrite: Annotated[
            bool,
            overwrite_option("Train into an --output that holds files (another run's: GRPO does not resume)."),
        ] = False,
        generation: Annotated[str | None, old_option("--generation")] = None,
    ) -> None:
        """RLVR with GRPO (TRL) and the math-verify accuracy reward.

        Each completion's last \\boxed{} after </think> is judged against the gold answer
        exactly as `oxa verify` judges a sample, in worker processes with a wall-clock
        deadline (a timeout is reward 0); a completion that never closes </think> gets 0,
        as in `oxa verify` and the paper (--set require_think=false judges it whole).
        The paper preset: 64 prompts x 8 rollouts per step, temperature 0.85, lr 2e-6,
        KL 0.001, 16,384-token completions, validation at temperature 0.6 and top-p 0.95.
        Reward, verdict shares, entropy and completion lengths are logged to
        OUTPUT/trainer_state.json.

        Entropy control (Cui et al., 2025; as verl's clip_cov, kl_cov):
        --set cov_mode=clip_cov zeroes the policy loss of a random share
        of the tokens whose log-prob/advantage covariance is in (1, 5);
        cov_mode=kl_cov adds |log-ratio| to the top share by covariance.
        --preset paper-clipcov is paper with Clip-Cov (OXA_Full+CC).
        Logged: cov/clipped_share (or cov/penalized_share), cov/mean.
        """
        try:
            from train.grpo import GRPORun, run_grpo
        except ImportError as exc:
            raise MissingExtra(f"oxa train grpo needs the train extra ({exc.name}): pip install 'oxa[train]'") from None
        backend = renamed(ctx, "backend", backend, "generation", generation)
        run = GRPORun(
            model=str(model),
            prompts=str(prompts),
            output=str(output),
            preset=preset,
            overrides=tuple(set_ or ()),
            max_steps=max_steps,
            eval_prompts=str(eval_prompts) if eval_prompts else None,
            generation_backend="transformers" if backend == "hf" else backend,
            overwrite=overwrite,
        )
        record = run_grpo(run)
        _print_summary(record, output)


def _print_summary(record: dict, output: Path) -> None:
    import json

    state = json.loads((output / "trainer_state.json").read_text(encoding="utf-8"))
    steps = [entry for entry in state["log_history"] if "reward" in entry]
    table = Table(title=f"GRPO: {record['train']['global_step']} steps ({record['generation']} generation)")
    table.add_column("")
    table.add_column("first step", justify="right")
    table.add_column("last step", justify="right")
    for name in _SUMMARY_METRICS:
        if steps and name in steps[0]:
            table.add_row(name, f"{steps[0][name]:.4g}", f"{steps[-1][name]:.4g}")
    console.print(table)
    verdicts = ", ".join(f"{n:,} {v}" for v, n in record["reward"]["verdicts"].items() if n)
    source = record["prompts"]
    console.print(f"prompts: {source['prompts']:,} from {source['path']}; completions judged: {verdicts or 'none'}")
    console.print(f"model and logs: {output}; run record: {output / 'oxa_grpo.json'}")
