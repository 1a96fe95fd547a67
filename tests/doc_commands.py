"""The `oxa` commands the documentation shows, read as the shell reads them.

tests/test_docs_commands.py parses each against the app, so that a renamed option fails CI
instead of a user; tests/test_docs_recipe.py runs the README's recipe. Extraction knows the
shell, not the app; `synopsis_variants` and `parse_problem` add what the pages' synopsis
notation means (`[--opt X]`, `A | B`, `a|b`, `SOURCE...`) and parse against a click tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

try:  # typer 0.29 vendors click, whose parser raises its own UsageError; older typers use click itself
    from typer._click.exceptions import UsageError
except ImportError:
    from click.exceptions import UsageError

ROOT = Path(__file__).resolve().parents[1]

# The pages whose commands are checked. data_cards/subset_card.md is a template, not a page.
DOC_FILES: list[Path] = [
    path
    for path in (
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("**/*.md")),
        ROOT / "configs" / "README.md",
        ROOT / "data_cards" / "README.md",
        ROOT / "BENCHMARKS.md",
    )
    if path.is_file()
]

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "zsh"})


@dataclass(frozen=True)
class Block:
    """A fenced code block: its text without the fences, `first_line` the file's line number
    (from 1) of that text's first line, `heading` the nearest Markdown heading above it."""

    path: Path
    language: str
    first_line: int
    text: str
    heading: str

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_LANGUAGES


_FENCE = re.compile(r"^( *)(`{3,}|~{3,})\s*([^\s`]*)")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order; the language is the info string's
    first word, lower case ("" when untagged)."""
    blocks: list[Block] = []
    heading, fence, body = "", None, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None:
            opening = _FENCE.match(line)
            if opening:
                indent, marks, language = opening.groups()
                fence, first_line, body = (len(indent), marks, language.lower()), number + 1, []
            elif heading_match := _HEADING.match(line):
                heading = heading_match.group(1)
            continue
        indent, marks, language = fence
        if re.fullmatch(rf" *{re.escape(marks[0])}{{{len(marks)},}}\s*", line):
            blocks.append(Block(path, language, first_line, "\n".join(body), heading))
            fence = None
        else:  # a fence indented in a list item indents its lines as much
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
    if fence is not None:  # a fence left open runs to the end of the file
        blocks.append(Block(path, fence[2], first_line, "\n".join(body), heading))
    return blocks


# -- the shell's reading ---------------------------------------------------------------


def _skip(text: str, i: int) -> int:
    """The index just past the quoted string, `$(...)` or backquoted command starting at i
    (the end of the text when it is not closed)."""
    if text[i] == "'":
        end = text.find("'", i + 1)
        return len(text) if end < 0 else end + 1
    if text[i] == "`":
        j = i + 1
        while j < len(text) and text[j] != "`":
            j += 2 if text[j] == "\\" else 1
        return min(j + 1, len(text))
    if text[i] == '"':
        j = i + 1
        while j < len(text) and text[j] != '"':
            if text[j] == "\\":
                j += 2
            elif text.startswith("$(", j) or text[j] == "`":
                j = _skip(text, j)
            else:
                j += 1
        return min(j + 1, len(text))
    # $( ... ): parentheses nest, quotes and substitutions inside are skipped whole
    j, depth = i + 2, 0
    while j < len(text):
        if text[j] in "'\"`" or text.startswith("$(", j):
            j = _skip(text, j)
            continue
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            if depth == 0:
                return j + 1
            depth -= 1
        j += 1
    return len(text)


def _starts_quoted(text: str, i: int) -> bool:
    return text[i] in "'\"`" or text.startswith("$(", i)


def logical_lines(block: Block) -> list[tuple[int, str]]:
    """The block's commands as the shell reads them, each with the file line it starts on:
    backslash-continued lines joined, comments (a `#` starting a word outside quotes)
    removed, blank lines dropped. A `console` block keeps only its `$ ` prompted lines."""
    text = block.text
    if block.language == "console":
        text = "\n".join(_console_commands(text.split("\n")))
    lines: list[tuple[int, str]] = []
    current, start, number, i = "", None, block.first_line, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and text.startswith("\\\n", i):
            i, number = i + 2, number + 1
        elif char == "\\":
            start = number if start is None else start
            current, i = current + text[i : i + 2], i + 2
        elif _starts_quoted(text, i):
            end = _skip(text, i)
            start = number if start is None else start
            current, number, i = current + text[i:end], number + text.count("\n", i, end), end
        elif char == "#" and (not current or current[-1] in " \t;&|("):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif char == "\n":
            if current.strip():
                lines.append((start, current.strip()))
            current, start, number, i = "", None, number + 1, i + 1
        else:
            if start is None and not char.isspace():
                start = number
            current, i = current + char, i + 1
    if current.strip():
        lines.append((start, current.strip()))
    return lines


def _console_commands(lines: list[str]) -> list[str]:
    """A console session's lines with the prompts taken off and the output blanked (kept
    as empty lines, so that line numbers hold)."""
    kept, continued = [], False
    for line in lines:
        stripped = line.lstrip()
        if continued or stripped.startswith("$ "):
            kept.append(line if continued else stripped[2:])
            continued = line.rstrip().endswith("\\")
        else:
            kept.append("")
    return kept


@dataclass(frozen=True)
class _Word:
    text: str  # as the program receives it: quotes and escapes removed
    raw: str  # as written

    @property
    def plain(self) -> bool:
        """No quoting in it: only such words carry synopsis notation."""
        return not any(char in self.raw for char in "'\"\\")


_NAMED_PLACEHOLDER = re.compile(r"<[A-Za-z_][\w.-]*>")  # `<version>`, not a redirection
_REDIRECTION = re.compile(r"&>>?|>>|>&|<&|<<-?|<>|>\||[<>]")
_OPERATORS = ("&&", "||", ";", "&", "|", "(", ")")


def _lex(text: str) -> list[_Word | str]:
    """Words and operators (as str: one of _OPERATORS, or "<" / ">" for a redirection whose
    target is the next word). A `|` is a pipe only as a word of its own; inside a word it
    separates a synopsis' alternatives (`--format trl|alpaca`)."""
    tokens: list[_Word | str] = []
    text_, raw = "", ""

    def end_word() -> None:
        nonlocal text_, raw
        if raw:
            tokens.append(_Word(text_, raw))
        text_, raw = "", ""

    i = 0
    while i < len(text):
        char = text[i]
        if char in " \t":
            end_word()
            i += 1
        elif char == "\n":
            end_word()
            tokens.append(";")
            i += 1
        elif char == "#" and not raw:
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif char == "\\":
            if not text.startswith("\\\n", i):
                text_, raw = text_ + text[i + 1 : i + 2], raw + text[i : i + 2]
            i += 2
        elif _starts_quoted(text, i):
            end = _skip(text, i)
            quoted = text[i:end]
            if char == "'":
                text_ += quoted[1:-1]
            elif char == '"':
                text_ += re.sub(r'\\([$`"\\\n])', r"\1", quoted[1:-1])
            else:
                text_ += quoted
            raw, i = raw + quoted, end
        elif char == "<" and _NAMED_PLACEHOLDER.match(text, i):
            placeholder = _NAMED_PLACEHOLDER.match(text, i).group()
            text_, raw, i = text_ + placeholder, raw + placeholder, i + len(placeholder)
        elif char in "<>" or text.startswith("&>", i):
            if not raw.isdigit():  # `2>`: the digits name a file descriptor, not a word
                end_word()
            text_, raw = "", ""
            operator = _REDIRECTION.match(text, i).group()
            i += len(operator)
            target = re.match(r"[0-9]+-?|-", text[i:]) if operator.endswith("&") else None
            if target:  # `2>&1`: the target is a descriptor, written with the operator
                i += len(target.group())
            else:
                tokens.append(operator[0] if operator[0] in "<>" else ">")
        elif char == "|" and raw:
            text_, raw, i = text_ + char, raw + char, i + 1
        elif char in "&;|()":
            end_word()
            operator = next(op for op in _OPERATORS if text.startswith(op, i))
            tokens.append(operator)
            i += len(operator)
        else:
            text_, raw, i = text_ + char, raw + char, i + 1
    end_word()
    return tokens


def _bracket_depth_change(word: _Word) -> int:
    return len(word.raw) - len(word.raw.lstrip("[")) - _closing_brackets(word)


def _closing_brackets(word: _Word) -> int:
    """The `]`s ending a word that close a group it did not open inside (NAME[/VERSION]
    closes nothing)."""
    body = word.raw.lstrip("[")
    trailing = len(body) - len(body.rstrip("]"))
    inner = body.rstrip("]").count("[") if word.plain else 0
    return max(trailing - inner, 0)


def _simple_commands(tokens: list[_Word | str]) -> list[list[_Word]]:
    """The simple commands of a list of tokens, redirections dropped. A `|` inside a
    synopsis' brackets separates alternatives and stays, as the word "|"."""
    commands: list[list[_Word]] = [[]]
    depth, redirected = 0, False
    for token in tokens:
        if isinstance(token, _Word):
            if redirected:
                redirected = False
                continue
            commands[-1].append(token)
            depth = max(depth + _bracket_depth_change(token), 0)
        elif token in ("<", ">"):
            redirected = True
        elif token == "|" and depth > 0:
            commands[-1].append(_Word("|", "|"))
        else:
            commands.append([])
            depth = 0
    return [command for command in commands if command]


_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")
# words after which the next word is a command: `do oxa ...`, `if oxa ...; then`, `env A=1 oxa`
_PREFIXES = frozenset({"do", "then", "else", "elif", "if", "while", "until", "!", "{", "time", "nohup", "exec", "env"})
_OXA = frozenset({"oxa", "$(which oxa)", "`which oxa`", "$(command -v oxa)"})
_LAUNCHERS = frozenset({"torchrun", "accelerate", "deepspeed", "srun", "mpirun"})
_PYTHON = re.compile(r"(?:.*/)?python(?:3(?:\.\d+)?)?")


def _is_oxa(word: _Word) -> bool:
    return word.text in _OXA or word.text.endswith("/oxa")


def _substitutions(raw: str) -> list[str]:
    """The commands of the `$(...)` and backquoted substitutions in a word, outside single
    quotes."""
    found, i = [], 0
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
        elif raw[i] == "'":
            i = _skip(raw, i)
        elif raw[i] == "`" or raw.startswith("$(", i):
            end = _skip(raw, i)
            found.append(raw[i + 1 : end - 1] if raw[i] == "`" else raw[i + 2 : end - 1])
            i = end
        else:
            i += 1  # a double quote: its substitutions are found as the scan goes on
    return found


def _invocation_words(text: str) -> list[list[_Word]]:
    invocations: list[list[_Word]] = []
    for words in _simple_commands(_lex(text)):
        for word in words:
            for command in _substitutions(word.raw):
                invocations += _invocation_words(command)
        while words and (_ASSIGNMENT.match(words[0].raw) or words[0].raw in _PREFIXES):
            words = words[1:]
        if not words:
            continue
        program = words[0]
        if _is_oxa(program):
            invocations.append(words[1:])
        elif program.text == "sbatch":
            for i, word in enumerate(words):
                if word.text.startswith("--wrap="):
                    invocations += _invocation_words(word.text.removeprefix("--wrap="))
                elif word.text == "--wrap" and i + 1 < len(words):
                    invocations += _invocation_words(words[i + 1].text)
        elif program.text in _LAUNCHERS or _PYTHON.fullmatch(program.text):
            for i, word in enumerate(words[1:], 1):
                if _is_oxa(word):
                    invocations.append(words[i + 1 :])
                    break
                if word.text in ("-m", "--module") and i + 1 < len(words) and words[i + 1].text == "curate.cli":
                    invocations.append(words[i + 2 :])
                    break
    return invocations


def oxa_invocations(line: str) -> list[list[str]]:
    """The `oxa` argument vectors (without the program) that a logical line runs, in order:
    `oxa`, `.venv/bin/oxa`, `$(which oxa)`, `python -m curate.cli`, and those under
    `torchrun` / `accelerate launch` (`-m curate.cli` or the script), after variable
    assignments, in `for ...; do ... & done`, in `sbatch --wrap "..."` and in `$(...)`.
    The line is split at `&&`, `||`, `;`, `&` and at a `|` standing alone (not inside a
    synopsis' brackets); `a|b` inside a word stays a word."""
    return [[word.text for word in words] for words in _invocation_words(line)]


# -- synopsis notation ----------------------------------------------------------------


def synopsis_variants(line: str) -> list[list[list[str]]]:
    """For each invocation of `oxa_invocations(line)`, the argument vectors its synopsis
    notation stands for: `[` and `]` dropped (an optional group given), a trailing `...`
    and a lone `...` dropped, and each `A | B` in brackets or `a|b|c` in a word expanded,
    so that every alternative is in at least one vector (the first in the first). Quoted
    words are left as they are."""
    return [_expand(_group_tree(words)) for words in _invocation_words(line)]


# A tree of a synopsis: a sequence is a list of items; an item is a tuple of a word's
# alternatives, or a bracket group: a list of sequences, its ` | ` alternatives.
def _group_tree(words: list[_Word]) -> list:
    root: list = []
    groups: list[list[list]] = [[root]]
    for word in words:
        if word.raw == "|" and len(groups) > 1:
            groups[-1].append([])
            continue
        for _ in range(len(word.raw) - len(word.raw.lstrip("["))):
            group: list[list] = [[]]
            groups[-1][-1].append(group)
            groups.append(group)
        alternatives = _word_alternatives(word)
        if alternatives:
            groups[-1][-1].append(alternatives)
        for _ in range(_closing_brackets(word)):
            if len(groups) > 1:
                groups.pop()
    return root


def _word_alternatives(word: _Word) -> tuple[str, ...]:
    text = word.text.lstrip("[")
    text = text[: len(text) - _closing_brackets(word)]
    if not word.plain:
        return (text,)
    text = text.replace("[", "").replace("]", "").removesuffix("...")
    if not text:
        return ()
    first, *others = text.split("|")
    if first.startswith("-") and "=" in first:  # --format=trl|alpaca
        others = [f"{first.partition('=')[0]}={other}" for other in others]
    return (first, *others)


def _width(sequence: list) -> int:
    widths = [1]
    for item in sequence:
        if isinstance(item, tuple):
            widths.append(len(item))
        else:
            widths += [len(item), *(_width(alternative) for alternative in item)]
    return max(widths)


def _pick(sequence: list, k: int) -> list[str]:
    picked: list[str] = []
    for item in sequence:
        if isinstance(item, tuple):
            picked.append(item[k % len(item)])
        else:
            picked += _pick(item[k % len(item)], k)
    return picked


def _expand(tree: list) -> list[list[str]]:
    return [_pick(tree, k) for k in range(_width(tree))]


# -- parsing against the app ------------------------------------------------------------

# A placeholder: an upper-case word (WS, N, FIELD=COLUMN), $VAR, ${VAR}, <name>, or a
# whole `$(...)` standing for its output.
_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(?:=[A-Z][A-Z0-9_]*)?|\$\w+|\$\{\w+\}|<[^<>\s]+>|\$\(.*\)", re.S)


def is_placeholder(word: str) -> bool:
    return bool(_PLACEHOLDER.fullmatch(word))


def _choices(param) -> list[str] | None:
    choices = param.type_descriptor.choices
    if choices is None:
        return None
    return [str(choice.value) if isinstance(choice, Enum) else str(choice) for choice in choices]


def _filled(param, word: str) -> str:
    """A placeholder replaced by a value of the parameter's type; any other word kept, so
    that a wrong literal fails as it would for a user."""
    choices = _choices(param)
    if not is_placeholder(word) or (choices and word in choices):
        return word
    if choices:
        return choices[0]
    annotation = param.type_descriptor.annotation
    annotation = getattr(annotation, "__args__", (annotation,))[0]  # list[int] -> int
    info = param.type_descriptor.parameter_info
    lowest = info.min if info.min is not None else 1
    if annotation is int:
        return str(int(lowest))
    if annotation is float:
        return str(float(lowest))
    if annotation is bool:
        return "true"
    return word


def _is_option(word: str) -> bool:
    return word.startswith("-") and word != "-" and not re.fullmatch(r"-[\d.]+", word)


def _fill_level(command, args: list[str], leaf: bool) -> list[str]:
    """The arguments of one command, placeholders filled by the type of the parameter each
    stands for; a group's end where its subcommand starts."""
    options = {name: p for p in command.params if p.param_type_name == "option" for name in p.opts}
    out, positional, i = [], [], 0
    while i < len(args):
        word = args[i]
        if word == "--":
            positional += range(len(out) + 1, len(out) + len(args) - i)
            out += args[i:]
            break
        if _is_option(word):
            name, equals, value = word.partition("=")
            param = options.get(name)
            if param is None or param.is_flag:
                out.append(word)
            elif equals:
                out.append(f"{name}={_filled(param, value)}")
            else:
                values = args[i + 1 : i + 1 + param.nargs]
                out += [word, *(_filled(param, value) for value in values)]
                i += len(values)
            i += 1
        elif not leaf:
            return out + args[i:]
        else:
            positional.append(len(out))
            out.append(word)
            i += 1
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    left = len(positional)
    for k, param in enumerate(arguments):
        later = sum(max(p.nargs, 0) for p in arguments[k + 1 :])
        take = min(param.nargs if param.nargs >= 0 else max(left - later, 0), left)
        for index in positional[len(positional) - left :][:take]:
            out[index] = _filled(param, out[index])
        left -= take
    return out


def parse_problem(root, args: list[str], program: str = "oxa") -> str | None:
    """What click says when `program args` is parsed against the command tree `root` (None
    when it parses): the command path resolved through the groups, then each command's
    `make_context`, which checks option names, arity, flags, required parameters and
    types, and runs nothing. Placeholders are filled first. With `--help` (which click
    answers before it checks the rest) only the command path and the option names count;
    a placeholder in a command's place ends the check."""
    if "--help" in (args[: args.index("--")] if "--" in args else args):
        return next(iter(option_problems(root, args, program)), None)
    contexts = []
    command, name, parent = root, program, None
    try:
        while True:
            if not args and command.no_args_is_help:
                return None  # it shows the help (not made here: typer's rich help prints itself)
            leaf = not hasattr(command, "commands")
            ctx = command.make_context(name, _fill_level(command, args, leaf), parent=parent)
            contexts.append(ctx)
            if leaf:
                return None
            rest = [*ctx._protected_args, *ctx.args]
            if not rest and command.invoke_without_command:
                return None
            if not rest:
                ctx.fail("Missing command.")
            if is_placeholder(rest[0]):
                return None
            name, command, args = command.resolve_command(ctx, rest)
            parent = ctx
    except UsageError as error:
        return error.format_message()
    finally:
        for ctx in reversed(contexts):
            ctx.close()


def option_problems(root, args: list[str], program: str = "oxa") -> list[str]:
    """For a command cited in prose (a fragment, `oxa train sft --set deepspeed=zero3`):
    the command path resolves, and every option it names belongs to the command it
    follows. Arguments are not checked."""
    problems, command, path, i = [], root, program, 0
    while i < len(args):
        word = args[i]
        if _is_option(word):
            name = word.partition("=")[0]
            params = {n: p for p in command.params if p.param_type_name == "option" for n in p.opts + p.secondary_opts}
            if name == "--help":
                pass
            elif name not in params:
                problems.append(f"No such option: {name} (of {path})")
            elif not params[name].is_flag and "=" not in word:
                i += params[name].nargs
        elif hasattr(command, "commands"):
            if is_placeholder(word):
                break
            if word not in command.commands:
                problems.append(f"No such command {word!r} (in {path})")
                break
            command, path = command.commands[word], f"{path} {word}"
        i += 1
    return problems


# -- prose ------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a page outside its fenced blocks (the fences too), numbered from 1."""
    in_fence = {n for block in fenced_blocks(path) for n in range(block.first_line - 1, _block_end(block) + 1)}
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(number, line) for number, line in enumerate(lines, 1) if number not in in_fence]


def headings(path: Path) -> list[str]:
    """The text of a page's Markdown headings, in order."""
    return [match.group(1) for _, line in prose_lines(path) if (match := _HEADING.match(line))]


def inline_commands(path: Path) -> list[tuple[int, str]]:
    """The code spans of a page's prose (outside fences) that are an `oxa` command with at
    least one word after `oxa`, each with its line; a span may wrap across lines, and a
    table's `\\|` is a `|`."""
    found: list[tuple[int, str]] = []
    paragraph: list[tuple[int, str]] = []
    for number, line in [*prose_lines(path), (-1, "")]:
        if not line.strip() or (paragraph and number != paragraph[-1][0] + 1):  # a blank line or a fence between
            found += _spans(paragraph)
            paragraph = []
        if line.strip():
            paragraph.append((number, line))
    return found


def _block_end(block: Block) -> int:
    """The line number of the block's closing fence."""
    return block.first_line + block.text.count("\n") + (1 if block.text else 0)


def _spans(paragraph: list[tuple[int, str]]) -> list[tuple[int, str]]:
    if not paragraph:
        return []
    text = "\n".join(line for _, line in paragraph)
    spans = []
    for match in _CODE_SPAN.finditer(text):
        code = " ".join(match.group(2).replace("\\|", "|").split())
        if re.match(r"oxa \S", code):
            spans.append((paragraph[0][0] + text.count("\n", 0, match.start()), code))
    return spans
