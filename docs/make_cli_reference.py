"""Write docs/cli.md, the reference of every `oxa` command, from the typer app itself.

    .venv/bin/python docs/make_cli_reference.py          # rewrite docs/cli.md
    .venv/bin/python docs/make_cli_reference.py --check  # exit 1 when docs/cli.md is stale

tests/test_docs_cli.py compares render() with the checked-in page. The page is built from the
command objects (with the help unwrapped as `oxa` unwraps it), never through a terminal
formatter, so it is the same at any terminal width, locale or machine. typer's own
`typer ... utils docs` is not used: it nests heading levels, writes help as raw text and lists
options as bullets, where this page wants one `## oxa ...` heading per command and tables.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from importlib.metadata import entry_points
from pathlib import Path, PurePath

import typer

from curate.cli import PLUGIN_GROUP, app, unwrap_help

OUTPUT = Path(__file__).resolve().parent / "cli.md"
REGENERATE = ".venv/bin/python docs/make_cli_reference.py"

INTRO = f"""# Command line reference

Every `oxa` command and group with its usage, help, arguments and options, as
`oxa COMMAND --help` shows them (each also takes `--help`). This page is generated from the
app by `docs/make_cli_reference.py`: do not edit it by hand; change the help in the code and
run `{REGENERATE}` (tests/test_docs_cli.py fails while the page is stale).

**Conventions**, the same for every command (tests/test_cli_grammar.py keeps them). Every
command takes `-h` as well as `--help`, and `oxa --version` prints the version. A path a
command writes is `-o/--output`. An output that exists and holds something is refused in
one line unless `--overwrite`, a plain flag with one meaning everywhere: replace it (a
folder: write into it). Outputs that resume say so: `oxa eval` reuses what its folder holds
under the same settings, `oxa train sft --resume` continues its checkpoints, `oxa score`
and `oxa generate` resume their tag, and the folder of `oxa demo` is always resumed (it has
no `--overwrite`). A subset is `WS NAME[/VERSION]`. Presets and config files are TOML or
YAML, by name or path, with `--set KEY=VALUE` over them. A knob has one name wherever it
appears: `--batch-tokens` (tokens per batch of the hf backend), `--n` (samples per problem;
`--k` is the k of a Pass@k, at most n), `--seed`, `--instruction`, `--backend`, `--dtype`,
`--shard`, `--tag`, `--model`, `--where`, `--preset`, `--set`. The spellings renamed in this
release still work for one release, hidden, with a note on stderr: `--out`, `--workdir`,
`--token-budget`, the `--k` and `--k-for` of eval (now `--n`, `--n-for`), the `--generation`
of train grpo (now `--backend`), `--no-overwrite`, and the positional outputs of synth
world, synth model and model prepare.
"""


def render() -> str:
    """The whole page: the intro, an index linking every command, then a section per command."""
    if not entry_points(group=PLUGIN_GROUP):
        raise RuntimeError(f"the trainer's commands are missing (no {PLUGIN_GROUP} entry points): pip install -e .")
    command = typer.main.get_command(app)
    unwrap_help(command)
    contexts = list(walk(typer.Context(command, info_name="oxa")))
    index = [f"{'  ' * max(ctx.command_path.count(' ') - 1, 0)}- {_link(ctx)}" for ctx in contexts]
    sections = ["\n".join(_section(ctx)) for ctx in contexts]
    return "\n\n".join([INTRO.rstrip(), "\n".join(index), *sections]) + "\n"


def walk(ctx: typer.Context):
    """The context of every visible command and group, depth first, in the order `--help` lists them."""
    yield ctx
    group = ctx.command
    if not hasattr(group, "commands"):
        return
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if not sub.hidden:
            yield from walk(typer.Context(sub, info_name=name, parent=ctx))


def _section(ctx: typer.Context) -> list[str]:
    command = ctx.command
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines = [f"## {ctx.command_path}", "", "```", usage, "```"]
    if command.help:
        lines += ["", _prose(command.help)]
    subs = [c for c in walk(ctx) if c.parent is ctx]
    if subs:
        lines += ["", "Commands: " + ", ".join(_link(sub) for sub in subs) + "."]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    for kind, title in (("argument", "Argument"), ("option", "Option")):
        rows = [_row(p, ctx) for p in params if p.param_type_name == kind]
        if rows:
            lines += ["", f"| {title} | Type | Default | Required | Description |", "|---|---|---|---|---|", *rows]
    if command.epilog:
        lines += ["", _prose(command.epilog)]
    return lines


def _row(param, ctx: typer.Context) -> str:
    if param.param_type_name == "argument":
        name = _code(param.display_name_raw + ("..." if param.nargs != 1 else ""))
    else:
        name = ", ".join(map(_code, param.opts))
        if param.secondary_opts:
            name += " / " + ", ".join(map(_code, param.secondary_opts))
    flag = getattr(param, "is_flag", False)
    kind = "" if flag else _code(param.metavar or param.display_type(ctx))
    cells = [name, kind, _default(param), "yes" if param.required else "", _cell(param.help or "")]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _default(param) -> str:
    """The default as `--help` would show it; paths in POSIX form, whatever the machine."""
    if isinstance(param.show_default, str):
        return _cell(param.show_default)
    value = param.default
    if not param.show_default or value is None or value == () or value == []:
        return ""
    if callable(value):
        return "(dynamic)"
    if getattr(param, "is_bool_flag", False):
        if param.secondary_opts:
            return _code((param.opts if value else param.secondary_opts)[0])
        return _code(param.opts[0]) if value else ""
    values = value if isinstance(value, (list, tuple)) else [value]
    return ", ".join(_code(_plain(v)) for v in values)


def _plain(value) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, PurePath):
        return value.as_posix()
    return "''" if value == "" else str(value)


def _prose(text: str) -> str:
    """Help text as Markdown paragraphs whose lines keep their breaks (lists the help writes one
    per line); a line opening a list item needs no break before it."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines = [_escape(line) for line in paragraph.split("\n")]
        paragraphs.append(lines[0] + "".join(("\n" if line.startswith("- ") else "\\\n") + line for line in lines[1:]))
    return "\n\n".join(paragraphs)


def _cell(text: str) -> str:
    """Help text in a table cell, which a newline would end: line breaks become <br>."""
    return "<br>".join(_escape(line) for line in text.strip().split("\n"))


def _escape(line: str) -> str:
    """Escape what Markdown would take as markup or HTML (backslashes, <tag>, *), outside `code spans`."""
    parts = re.split(r"(`[^`]+`)", line)  # odd parts are code spans, which Markdown shows verbatim
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([\\<*])", r"\\\1", parts[i])
    return re.sub(r"^(\s*)([#>+])", r"\1\\\2", "".join(parts))


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _link(ctx: typer.Context) -> str:
    return f"[`{ctx.command_path}`](#{ctx.command_path.replace(' ', '-')})"


def main() -> None:
    text = render()
    if sys.argv[1:] == ["--check"]:
        if not OUTPUT.exists() or OUTPUT.read_bytes() != text.encode("utf-8"):
            sys.exit(f"docs/cli.md is stale: run {REGENERATE}")
        return
    OUTPUT.write_text(text, encoding="utf-8", newline="\n")
    print("wrote docs/cli.md")


if __name__ == "__main__":
    main()
