"""`oxa score` and `oxa generate`. Model libraries are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.workspace.progress import stage_progress

console = Console()

WorkspaceArg = Annotated[Path, typer.Argument(help="Workspace folder (made by `oxa init`).")]
ModelOpt = Annotated[str, typer.Option(help="Hugging Face model folder (config.json, weights, tokenizer).")]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        help="i/n: this worker's share of the rows (stable hash of the id). "
        "Default: RANK/WORLD_SIZE, else SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, else 0/1."
    ),
]
BackendOpt = Annotated[str, typer.Option(help="hf (transformers, CPU or CUDA) or vllm (the GPU extra).")]
InstructionOpt = Annotated[
    str | None, typer.Option(help="Appended to the problem in the prompt. Default: the OXA paper's instruction.")
]


def _summary(title: str, rows: dict) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in rows.items():
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app."""

    @app.command()
    def score(
        workspace: WorkspaceArg,
        model: ModelOpt,
        tag: Annotated[str, typer.Option(help="Name of the scores: scores/<tag>/ and candidates.ppl_<tag>.")],
        context: Annotated[
            str,
            typer.Option(help="none: the response alone (the paper's code); prompt: after the chat-templated problem."),
        ] = "none",
        max_tokens: Annotated[
            int | None, typer.Option(help="Tokens fed to the model per sample. Default: its max_position_embeddings.")
        ] = None,
        drop_long: Annotated[
            bool,
            typer.Option("--drop-long", help="Reject longer responses instead of scoring their start (truncated)."),
        ] = False,
        backend: BackendOpt = "hf",
        shard: ShardOpt = None,
        where: Annotated[str | None, typer.Option(help="SQL predicate over the candidates view.")] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace the tag's scores if they were made under another config.")
        ] = False,
        batch_tokens: Annotated[
            int,
            typer.Option(
                help="Tokens per forward pass (halved on out-of-memory). On a CPU at most 1,024, which is faster there."
            ),
        ] = 16384,
        padded: Annotated[bool, typer.Option("--padded", help="hf: padded batches instead of packed rows.")] = False,
        dtype: Annotated[
            str, typer.Option(help="auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16.")
        ] = "auto",
        instruction: InstructionOpt = None,
    ) -> None:
        """Perplexity of every selected sample's response under a model, into scores/<tag>/.

        Resumable (a rerun scores only what the tag lacks under the same config) and
        sharded (--shard i/n: run one worker per GPU or machine).
        """
        from curate.score import ScoreConfig, run_score
        from curate.score.shards import parse_shard
        from curate.workspace import Workspace

        config = ScoreConfig(
            model=model,
            tag=tag,
            context=context,
            instruction=instruction,
            max_tokens=max_tokens,
            drop_long=drop_long,
            backend=backend,
            dtype=dtype,
            where=where,
            overwrite=overwrite,
            token_budget=batch_tokens,
            packed=not padded,
        )
        ws = Workspace.open(workspace)
        with stage_progress() as progress:
            stats = run_score(ws, config, parse_shard(shard), progress)
        funnel = stats["funnel"]
        _summary(
            f"score {stats['run_id']} (tag {tag}, shard {stats['shard']}, config {stats['fingerprint']})",
            {
                "selected": funnel["selected"],
                "already scored": funnel["already_scored"],
                "scored": funnel["scored"],
                "  truncated": stats["truncated"],
                "rejected": funnel["rejected"],
                **{f"  {reason}": n for reason, n in stats["rejects"].items()},
                "tokens scored": stats["tokens_scored"],
                "tokens/s": stats["tokens_per_second"] or "-",
            },
        )
        console.print(f"run folder: {ws.run_dir('score', stats['run_id'])}")

    @app.command()
    def generate(
        workspace: WorkspaceArg,
        model: ModelOpt,
        tag: Annotated[str, typer.Option(help="Generator name of the new samples (origin 'self').")],
        n: Annotated[int, typer.Option(help="Completions per problem.")] = 8,
        temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 0.85,
        top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 0.95,
        max_new_tokens: Annotated[int, typer.Option(help="Longest completion (then finish_reason 'length').")] = 4096,
        seed: Annotated[int, typer.Option(help="Base seed; each problem's is derived from it and its id.")] = 0,
        where: Annotated[str | None, typer.Option(help="SQL predicate over the problems view.")] = None,
        backend: BackendOpt = "hf",
        shard: ShardOpt = None,
        dtype: Annotated[
            str, typer.Option(help="auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16.")
        ] = "auto",
        instruction: InstructionOpt = None,
    ) -> None:
        """Sample the model's own answers to the pool's problems into pool/samples (origin 'self').

        Resumable and sharded like `oxa score`; then trace, verify and score see them as samples.
        """
        from curate.score import GenerateConfig, run_generate
        from curate.score.shards import parse_shard
        from curate.workspace import Workspace

        config = GenerateConfig(
            model=model,
            tag=tag,
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            instruction=instruction,
            where=where,
            backend=backend,
            dtype=dtype,
        )
        ws = Workspace.open(workspace)
        with stage_progress() as progress:
            stats = run_generate(ws, config, parse_shard(shard), progress)
        funnel, completions = stats["funnel"], stats["completions"]
        _summary(
            f"generate {stats['run_id']} (tag {tag}, shard {stats['shard']}, config {stats['fingerprint']})",
            {
                "problems": funnel["problems"],
                "already done": funnel["already_done"],
                "generated": funnel["generated"],
                "completions": completions["completions"],
                "  new samples": completions["written"],
                "  duplicates": completions["duplicates"],
                "  empty (rejected)": completions["empty"],
                **{f"finish {reason}": k for reason, k in stats["finish_reasons"].items()},
            },
        )
        console.print(f"run folder: {ws.run_dir('generate', stats['run_id'])}")
