"""`oxa synth model`: the test bed's tiny models, added to curate's `synth` group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.workspace.options import (
    OldPositionalCommand,
    old_argument,
    output_option,
    overwrite_option,
    renamed,
    required_output,
)
from curate.workspace.parts import refuse_to_fill
from curate.workspace.progress import err_console
from train.tiny.config import TinyModelConfig

console = Console()
_TINY = TinyModelConfig(world="", out="")  # for the defaults of `oxa synth model`


def register(app: typer.Typer, train_app: typer.Typer, model_app: typer.Typer) -> None:
    """Add `model` to the `synth` group that curate's command line made."""
    synth = next((g.typer_instance for g in app.registered_groups if g.name == "synth"), None)
    if synth is None:
        raise RuntimeError("the oxa app has no `synth` group to add `synth model` to")
    synth.command("model", cls=OldPositionalCommand)(synth_model)


def synth_model(
    ctx: typer.Context,
    world: Annotated[Path, typer.Option(help="A folder made by `oxa synth world`.")],
    out: Annotated[Path | None, old_argument()] = None,
    output: Annotated[
        Path | None,
        output_option("Folder for base/, instruct/ and build.json (required; new or empty).", show_default=False),
    ] = None,
    overwrite: Annotated[bool, overwrite_option("Build into an --output that holds files (an earlier build).")] = False,
    styles: Annotated[
        str, typer.Option(help="Comma-separated styles the base model is pretrained on; the others stay rare.")
    ] = ",".join(_TINY.styles),
    other_share: Annotated[
        float, typer.Option(help="Share of pretraining documents in the other styles (0: never seen).")
    ] = _TINY.other_share,
    answer_only: Annotated[
        float,
        typer.Option(
            help="Share of pretraining documents that give the answer alone, with no worked reasoning "
            "(as web text often does; the teacher never does): what SFT on the teacher's responses teaches."
        ),
    ] = _TINY.answer_only,
    seed: Annotated[int, typer.Option(help="Seed for initialization and data order.")] = _TINY.seed,
    threads: Annotated[int, typer.Option(help="CPU threads; the same count gives the same weights.")] = _TINY.threads,
    pretrain_steps: Annotated[
        int, typer.Option(help=f"Pretraining steps ({_TINY.batch} sequences of {_TINY.block} tokens each).")
    ] = _TINY.pretrain_steps,
    instruct: Annotated[
        bool, typer.Option("--instruct/--no-instruct", help="Also build instruct/, the base model after a short SFT.")
    ] = _TINY.instruct,
    sft_steps: Annotated[int, typer.Option(help="SFT steps for instruct/.")] = _TINY.sft_steps,
    hidden_size: Annotated[int, typer.Option(help="Model width.")] = _TINY.hidden_size,
    heads: Annotated[int, typer.Option(help="Attention heads; hidden size / heads must be 32 or more.")] = _TINY.heads,
    kv_heads: Annotated[
        int, typer.Option(help="Key/value heads (grouped-query attention); a divisor of --heads.")
    ] = _TINY.kv_heads,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = _TINY.layers,
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary, special tokens included.")] = _TINY.vocab_size,
) -> None:
    """Build the world's tokenizer and tiny Qwen2 models, base/ and instruct/, on the CPU.

    base/ is pretrained mostly on the chosen styles, so the pool's perplexity under it
    spreads; instruct/ is base after a short SFT, the sampler for self-distillation. Both
    are plain Hugging Face folders (safetensors, tokenizer, chat template).
    """
    out = required_output(renamed(ctx, "output", output, "out", out))
    refuse_to_fill(out, overwrite)
    from train.tiny import build_tiny_models  # brings torch: only for this command

    config = TinyModelConfig(
        world=str(world),
        out=str(out),
        styles=[s.strip() for s in styles.split(",") if s.strip()],
        other_share=other_share,
        answer_only=answer_only,
        seed=seed,
        threads=threads,
        pretrain_steps=pretrain_steps,
        instruct=instruct,
        sft_steps=sft_steps,
        hidden_size=hidden_size,
        heads=heads,
        kv_heads=kv_heads,
        layers=layers,
        vocab_size=vocab_size,
    )
    info = build_tiny_models(config, progress=err_console.print)
    folders = ", ".join(str(out / name) for name in (["base", "instruct"] if instruct else ["base"]))
    console.print(f"models in {folders} ({info['seconds']:.0f} s); build record: {out / 'build.json'}")
