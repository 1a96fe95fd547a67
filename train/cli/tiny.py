"""`oxa synth model`: the test bed's tiny models, added to curate's `synth` group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.workspace.progress import err_console
from train.tiny.config import TinyModelConfig

console = Console()
_TINY = TinyModelConfig(world="", out="")  # for the defaults of `oxa synth model`


def register(app: typer.Typer, train_app: typer.Typer, model_app: typer.Typer) -> None:
    """Add `model` to the `synth` group that curate's command line made."""
    synth = next((g.typer_instance for g in app.registered_groups if g.name == "synth"), None)
    if synth is None:
        raise RuntimeError("the oxa app has no `synth` group to add `synth model` to")
    synth.command("model")(synth_model)


def synth_model(
    out: Annotated[Path, typer.Argument(help="Folder for base/, instruct/ and build.json.")],
    world: Annotated[Path, typer.Option(help="A folder made by `oxa synth world`.")],
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
