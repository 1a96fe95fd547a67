"""Every command README.md and docs/ show parses against the app, with the options it names:
a renamed option fails here instead of a user (`oxa select ws --config NAME` once said
"No such option: --config"). Commands are parsed, never run (tests/doc_commands.py)."""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path

import pytest
import typer

from curate.cli import app
from tests.doc_commands import (
    DOC_FILES,
    ROOT,
    Block,
    fenced_blocks,
    inline_commands,
    logical_lines,
    option_problems,
    oxa_invocations,
    parse_problem,
    synopsis_variants,
)

OXA = typer.main.get_command(app)


def _page(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def shown_commands(doc: Path) -> list[tuple[int, list[str], list[list[str]]]]:
    """(line, argv, the argument vectors its synopsis stands for) for each `oxa` command
    that the page's shell blocks run."""
    shown = []
    for block in fenced_blocks(doc):
        if block.is_shell:
            for number, line in logical_lines(block):
                shown += [(number, *pair) for pair in zip(oxa_invocations(line), synopsis_variants(line))]
    return shown


@pytest.mark.parametrize("doc", DOC_FILES, ids=_page)
def test_every_command_a_page_shows_parses(doc: Path):
    failures: dict[tuple[int, str], str] = {}
    for number, _, variants in shown_commands(doc):
        for variant in variants:
            problem = parse_problem(OXA, variant)
            if problem and (number, problem) not in failures:
                failures[number, problem] = f"{_page(doc)}:{number}: oxa {shlex.join(variant)}\n    {problem}"
    assert not failures, "commands the page shows that oxa rejects:\n" + "\n".join(failures.values())


@pytest.mark.parametrize("doc", DOC_FILES, ids=_page)
def test_every_command_the_prose_cites_exists_with_its_options(doc: Path):
    failures = []
    for number, code in inline_commands(doc):
        for variants in synopsis_variants(code):
            problems = dict.fromkeys(p for variant in variants for p in option_problems(OXA, variant))
            failures += [f"{_page(doc)}:{number}: `{code}`\n    {problem}" for problem in problems]
    assert not failures, "commands the prose cites that oxa lacks:\n" + "\n".join(failures)


def test_the_readme_recipe_is_found_whole():
    """The README's real run, launchers included (tests/test_docs_recipe.py runs it)."""
    heading = "From the demo to a real run"
    blocks = [b for b in fenced_blocks(ROOT / "README.md") if b.heading == heading and b.is_shell]
    assert len(blocks) == 1, f"README.md has one shell block under '{heading}'"
    block = blocks[0]
    found = [(line.split()[0], argv[:2]) for _, line in logical_lines(block) for argv in oxa_invocations(line)]
    assert len(found) >= 20
    assert ("accelerate", ["train", "sft"]) in found
    assert ("accelerate", ["train", "grpo"]) in found
    assert ("for", ["score", "ws"]) in found  # one `oxa score` per GPU, in a loop


def test_the_pages_show_many_commands():
    # 75 shell commands and 252 cited in prose when this was written: a drop means extraction broke
    assert sum(len(shown_commands(doc)) for doc in DOC_FILES) >= 60
    assert sum(len(inline_commands(doc)) for doc in DOC_FILES) >= 200


# -- the shell's reading --------------------------------------------------------------


@pytest.mark.parametrize(
    "line,expected",
    [
        (
            "for i in $(seq 0 7); do CUDA_VISIBLE_DEVICES=$i oxa score WS --model M/ --tag m --shard $i/8 & done; wait",
            [["score", "WS", "--model", "M/", "--tag", "m", "--shard", "$i/8"]],
        ),
        (
            'sbatch --array=0-31 --gpus=1 --wrap "oxa generate WS --model M/ --tag m-self --n 8"',
            [["generate", "WS", "--model", "M/", "--tag", "m-self", "--n", "8"]],
        ),
        ("sbatch --wrap='oxa verify ws && oxa select ws x'", [["verify", "ws"], ["select", "ws", "x"]]),
        (
            "DS_ACCELERATOR=cpu torchrun --nproc-per-node 2 $(which oxa) train sft --subset S --output o",
            [["train", "sft", "--subset", "S", "--output", "o"]],
        ),
        (
            "accelerate launch --config_file configs/accelerate/zero2.yaml -m curate.cli train sft --preset p",
            [["train", "sft", "--preset", "p"]],
        ),
        (
            "torchrun --standalone --nproc-per-node 8 -m curate.cli score ws --tag t",
            [["score", "ws", "--tag", "t"]],
        ),
        (".venv/bin/python -m curate.cli status ws 2>&1 | tee log", [["status", "ws"]]),
        # a pipe stands between spaces; a|b inside a word is a synopsis' list of alternatives
        ("oxa export ws s --format trl|alpaca | head -3", [["export", "ws", "s", "--format", "trl|alpaca"]]),
        (
            "oxa subsets list WS | oxa subsets show WS NAME",
            [["subsets", "list", "WS"], ["subsets", "show", "WS", "NAME"]],
        ),
        ("oxa sql ws \"SELECT '#' AS hash\"  # a comment", [["sql", "ws", "SELECT '#' AS hash"]]),
        ("VERSION=$(oxa subsets list ws --name x | tail -1)", [["subsets", "list", "ws", "--name", "x"]]),
        (
            'oxa ingest ws a.jsonl --where "x > 1" > out.txt 2>err.txt',
            [["ingest", "ws", "a.jsonl", "--where", "x > 1"]],
        ),
        ("oxa train sft --subset ws/subsets/x/<version>", [["train", "sft", "--subset", "ws/subsets/x/<version>"]]),
        (".venv/bin/pip install -e '.[train,dev]' && .venv/bin/oxa demo", [["demo"]]),
        ("POOL=x/ && duckdb -readonly ws/catalog.duckdb; huggingface-cli download d; trl sft; mv a b", []),
    ],
)
def test_oxa_invocations(line, expected):
    assert oxa_invocations(line) == expected


def test_synopsis_variants_give_every_alternative():
    line = "oxa ingest WS SOURCE... [--preset NAME | --map FIELD=COLUMN ...] [--where 'a | b'] --x a|b|c"
    assert synopsis_variants(line) == [
        [
            ["ingest", "WS", "SOURCE", "--preset", "NAME", "--where", "a | b", "--x", "a"],
            ["ingest", "WS", "SOURCE", "--map", "FIELD=COLUMN", "--where", "a | b", "--x", "b"],
            ["ingest", "WS", "SOURCE", "--preset", "NAME", "--where", "a | b", "--x", "c"],
        ]
    ]
    assert synopsis_variants("oxa subsets show WS NAME[/VERSION] [--json]") == [
        [["subsets", "show", "WS", "NAME/VERSION", "--json"]]
    ]


def test_logical_lines_join_continuations_and_drop_comments():
    text = '# set up\noxa ingest ws \\\n    src/ --where "a # b"   # keep a\n\noxa verify ws  \\\n  --workers 2'
    block = Block(Path("page.md"), "bash", 10, text, "")
    assert logical_lines(block) == [
        (11, 'oxa ingest ws     src/ --where "a # b"'),
        (14, "oxa verify ws    --workers 2"),
    ]


def test_fenced_blocks_and_the_prose_commands(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\nRun `oxa init\nWS` first.\n\n## Steps\n\n- a step:\n\n  ```bash\n  oxa init ws\n  ```\n\n"
        "| stage | command |\n|---|---|\n| train | `oxa train sft\\|grpo` |\n\n```console\n$ oxa status ws\noutput\n```\n"
    )
    blocks = fenced_blocks(page)
    assert [(b.language, b.first_line, b.text, b.heading) for b in blocks] == [
        ("bash", 11, "oxa init ws", "Steps"),
        ("console", 19, "$ oxa status ws\noutput", "Steps"),
    ]
    assert logical_lines(blocks[1]) == [(19, "oxa status ws")]
    assert inline_commands(page) == [(3, "oxa init WS"), (16, "oxa train sft|grpo")]


# -- parsing against the app ------------------------------------------------------------


def test_a_renamed_option_or_a_wrong_literal_fails():
    assert parse_problem(OXA, ["select", "ws", "--config", "oxa-mle-qwen2.5-1.5b"]) == "No such option: --config"
    assert "'--k'" in parse_problem(OXA, ["eval", "--model", "m", "--k", "many"])
    assert parse_problem(OXA, ["trian", "sft"]).startswith("No such command 'trian'")
    assert parse_problem(OXA, ["train", "sft", "--model", "m"]) == "Missing option '--preset'."
    assert parse_problem(OXA, ["eval", "report"]) == "Missing argument 'DIR'."
    assert parse_problem(OXA, ["select", "ws", "x", "--help", "--config"]) == "No such option: --config (of oxa select)"


def test_placeholders_are_filled_by_the_parameters_type():
    assert parse_problem(OXA, ["eval", "report", "DIR", "--k", "K", "--benchmarks", "NAMES"]) is None
    assert parse_problem(OXA, ["verify", "$WS", "--workers", "${N}", "--deadline=<seconds>"]) is None
    assert parse_problem(OXA, ["eval", "compare", "DIR", "--out", "OUT", "--k", "K"]) is None
    assert parse_problem(OXA, ["COMMAND", "--help"]) is None
    assert option_problems(OXA, ["train", "sft", "--set", "deepspeed=zero3", "--bogus"]) == [
        "No such option: --bogus (of oxa train sft)"
    ]


class _Format(StrEnum):
    trl = "trl"
    alpaca = "alpaca"


def test_each_alternative_must_be_a_choice():
    toy = typer.Typer()

    @toy.command()
    def export(fmt: _Format = typer.Option(..., "--format"), n: int = typer.Option(1, "--n", min=2)):
        """One command with a choice and a bounded int."""

    @toy.command()
    def status():
        """A second, so that the app is a group."""

    root = typer.main.get_command(toy)
    [variants] = synopsis_variants("oxa export --format trl|alpaca|verl --n N")
    assert [parse_problem(root, v) for v in variants][:2] == [None, None]
    assert "'verl'" in parse_problem(root, variants[2])
    assert parse_problem(root, ["export", "--format", "FORMAT", "--n", "N"]) is None
