"""docs/cli.md, the command line reference that docs/make_cli_reference.py generates from the
app: current, with a heading and an index link for every command."""

import importlib.util
import re
from pathlib import Path

import typer

from curate.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"
REGENERATE = ".venv/bin/python docs/make_cli_reference.py"

_spec = importlib.util.spec_from_file_location("make_cli_reference", ROOT / "docs" / "make_cli_reference.py")
make_cli_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_cli_reference)


def command_paths(command, path: str = "oxa"):
    """Every visible command and group of the click tree, walked here rather than by the script."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            yield from command_paths(sub, f"{path} {name}")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def first_difference(actual: str, expected: str) -> str | None:
    """Where the checked-in page first departs from the generated one (line endings included)."""
    have, want = actual.split("\n"), expected.split("\n")
    for number, (line, wanted) in enumerate(zip(have, want), 1):
        if line != wanted:
            return f"line {number} is {line!r}, the app gives {wanted!r}"
    if len(have) != len(want):
        return f"it has {len(have)} lines, the app gives {len(want)}"
    return None


def test_page_is_current():
    difference = first_difference(PAGE.read_bytes().decode("utf-8"), make_cli_reference.render())
    assert difference is None, f"docs/cli.md is stale: {difference}; run {REGENERATE}"


def test_every_command_has_a_heading_and_an_index_link():
    paths = list(command_paths(typer.main.get_command(app)))
    assert {"oxa ingest", "oxa subsets show", "oxa train sft", "oxa eval compare"} <= set(paths)
    text = PAGE.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == paths, f"headings and commands differ; run {REGENERATE}"
    index = text.split("\n## ", 1)[0]
    links = re.findall(r"^ *- \[`(.+?)`\]\(#(.+?)\)$", index, re.M)
    assert links == [(path, github_anchor(path)) for path in paths]
    assert github_anchor("oxa train sft") == "oxa-train-sft"


def test_page_does_not_depend_on_the_terminal_or_the_machine(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    narrow = make_cli_reference.render()
    monkeypatch.setenv("COLUMNS", "200")
    assert make_cli_reference.render() == narrow
    for local in {str(ROOT), str(Path.home()), str(Path.cwd())}:
        assert local not in narrow, f"docs/cli.md names {local!r}, a path of this machine"
