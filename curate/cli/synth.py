"""`oxa synth world`: the test bed's seeded synthetic math world. The `synth` group also
holds `oxa synth model` (the tiny models), which the trainer adds (train/cli/tiny.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.cli.common import console
from curate.synth.drills import DRILLS
from curate.synth.families import RICH
from curate.synth.styles import STRATEGIES, VOICES
from curate.synth.world import WorldConfig, build_world
from curate.workspace import OxaError
from curate.workspace.options import (
    OldPositionalCommand,
    old_argument,
    output_option,
    overwrite_option,
    renamed,
    required_output,
)
from curate.workspace.parts import refuse_to_fill

_WORLD = WorldConfig()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `oxa` app: the `synth` group and its `world`."""
    synth_app = typer.Typer(
        help="The test bed: a seeded synthetic math world and tiny reference models, made locally with no network.",
        no_args_is_help=True,
    )
    app.add_typer(synth_app, name="synth")
    synth_app.command("world", cls=OldPositionalCommand)(synth_world)


def _parse_shares(pairs: list[str], option: str) -> dict[str, float]:
    shares = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise OxaError(f"{option} takes KIND=SHARE, e.g. {option} wrong_answer=0.2; got {pair!r}")
    return shares


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def synth_world(
    ctx: typer.Context,
    out: Annotated[Path | None, old_argument()] = None,
    output: Annotated[
        Path | None, output_option("Folder for the world (required; new or empty).", show_default=False)
    ] = None,
    overwrite: Annotated[bool, overwrite_option("Replace the earlier world that --output holds.")] = False,
    seed: Annotated[int, typer.Option(help="The only source of randomness: same seed, same bytes.")] = _WORLD.seed,
    problems: Annotated[int, typer.Option(help="Pool problems, dealt to the families in turn.")] = _WORLD.problems,
    min_responses: Annotated[int, typer.Option(help="Fewest teacher responses per problem.")] = _WORLD.min_responses,
    max_responses: Annotated[int, typer.Option(help="Most teacher responses per problem.")] = _WORLD.max_responses,
    heldout: Annotated[int, typer.Option(help="Evaluation problems, in no pool or reference.")] = _WORLD.heldout,
    reference_only: Annotated[
        int, typer.Option(help="Reference rows for problems outside the pool.")
    ] = _WORLD.reference_only,
    corpus_problems: Annotated[
        int, typer.Option(help="Pretraining problems for the tiny models, each written in every style.")
    ] = _WORLD.corpus_problems,
    families: Annotated[
        str,
        typer.Option(
            help="Comma-separated problem families: the drills "
            + ", ".join(DRILLS)
            + " (short, learnable), or the wordy "
            + ", ".join(RICH)
            + " (every answer form)."
        ),
    ] = ",".join(_WORLD.families),
    styles: Annotated[
        str,
        typer.Option(
            help="Comma-separated teacher styles: the strategies "
            + ", ".join(STRATEGIES)
            + " (drills only), or the voices "
            + ", ".join(VOICES)
            + "."
        ),
    ] = ",".join(_WORLD.styles),
    non_math_rows: Annotated[
        int, typer.Option(help="'code' rows in the pool, which the acereason preset filters out.")
    ] = _WORLD.non_math_rows,
    flaw: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND=SHARE for a kind of flawed response (weights, normalized to sum 1); kinds: "
            + ", ".join(f"{k} (default {v})" for k, v in _WORLD.flaw_shares.items())
        ),
    ] = None,
    trace: Annotated[
        list[str] | None,
        typer.Option(
            help="CASE=SHARE for a tracing case of the pool's problems (weights); cases: "
            + ", ".join(f"{k} (default {v})" for k, v in _WORLD.trace_shares.items())
        ),
    ] = None,
    leaked: Annotated[
        int,
        typer.Option(
            help="Held-out problems copied into the pool (verbatim, with formatting drift, after an instruction, "
            "in turn), with flawless responses and a reference answer: what `oxa decontaminate` should find."
        ),
    ] = _WORLD.leaked,
    leaked_variants: Annotated[
        int,
        typer.Option(
            help="Other held-out problems planted with the same words and other numbers (and their own answer): "
            "template matches, which decontamination reports and selection keeps."
        ),
    ] = _WORLD.leaked_variants,
) -> None:
    """Write a synthetic world: teacher pool, reference sources, held-out problems, corpus, manifest.

    The pool has the acereason layout, the references the NuminaMath-1.5 (answer column)
    and NuminaMath-CoT (last \\boxed of a solution) layouts; manifest.json records what
    is true of every problem and response. The same seed gives byte-identical files.
    """
    out = required_output(renamed(ctx, "output", output, "out", out))
    refuse_to_fill(out, overwrite)
    config = WorldConfig(
        seed=seed,
        problems=problems,
        min_responses=min_responses,
        max_responses=max_responses,
        heldout=heldout,
        reference_only=reference_only,
        corpus_problems=corpus_problems,
        non_math_rows=non_math_rows,
        families=_names(families),
        styles=_names(styles),
        flaw_shares={**_WORLD.flaw_shares, **_parse_shares(flaw or [], "--flaw")},
        trace_shares={**_WORLD.trace_shares, **_parse_shares(trace or [], "--trace")},
        leaked=leaked,
        leaked_variants=leaked_variants,
    )
    counts = build_world(out, config)["counts"]
    table = Table(title=f"synthetic world {out} (seed {seed})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("pool rows (pool/teacher.jsonl)", f"{counts['pool_rows']:,}")
    for kind, n in counts["samples"]["by_flaw"].items():
        table.add_row(f"  responses: {kind}", f"{n:,}")
    table.add_row("pool problems", f"{counts['problems']['pool']:,}")
    for case, n in counts["traces"]["by_case"].items():
        table.add_row(f"  tracing case: {case}", f"{n:,}")
    for name, n in counts["reference_rows"].items():
        table.add_row(f"reference rows (references/{name}.parquet)", f"{n:,}")
    table.add_row("held-out problems (heldout.json)", f"{counts['problems']['heldout']:,}")
    for kind, n in counts["leaks"]["by_kind"].items():
        table.add_row(f"  planted in the pool: {kind}", f"{n:,}")
    table.add_row("corpus documents (corpus.jsonl)", f"{counts['corpus_documents']:,}")
    console.print(table)
    console.print(f"ingest the pool: oxa ingest WS {out / 'pool' / 'teacher.jsonl'} --preset acereason")
