"""`oxa model prepare`: the paper's model changes before SFT (appendix A.3).

- RoPE: Qwen2.5-Math's rope theta 10,000 -> 1,000,000 and max position embeddings
  4,096 -> 40,000, edited in config.json (transformers 5's `rope_parameters.rope_theta`
  and the older top-level `rope_theta`, whichever the file has).
- The system prompt taken out of the chat template: Qwen2.5 templates write a default
  system turn ("You are a helpful assistant.", "Please reason step by step, ...") when
  the conversation has none. The default is found by rendering (a conversation with and
  without a system message), removed from the template's text, and the result is
  checked by rendering again: without a system message no system turn is written, and
  an explicit system message renders exactly as before.

Weights and every other file are copied byte for byte, never loaded. The new folder is
written beside DST and renamed into place; `oxa_prepare.json` records what changed.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from curate import __version__
from curate.workspace import OxaError
from curate.workspace.parts import atomic_target

RECORD = "oxa_prepare.json"
_SYSTEM_MARK, _USER_MARK = "\u27e6system-mark\u27e7", "\u27e6user-mark\u27e7"
# A template is text with {{ ... }} / {% ... %} tags; inside tags, quoted Jinja literals.
_TAG = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.S)
_LITERAL = re.compile(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)\"""", re.S)


@dataclass
class PrepareConfig:
    """What `oxa model prepare` changes. Every field is also a command-line option."""

    source: str  # a Hugging Face model folder
    output: str  # the new folder
    rope_theta: float | None = None  # RoPE base; the paper: 1e6 for Qwen2.5-Math
    max_position_embeddings: int | None = None  # the paper: 40000 for Qwen2.5-Math
    no_system_prompt: bool = False  # take the default system turn out of the chat template
    chat_template: str | None = None  # a file whose text replaces the chat template
    overwrite: bool = False  # replace an existing output folder


def prepare_model(config: PrepareConfig) -> dict:
    """Write the prepared model folder; returns the record (also DST/oxa_prepare.json)."""
    src, dst = Path(config.source).expanduser().resolve(), Path(config.output).expanduser().resolve()
    if not (src / "config.json").is_file():
        raise OxaError(f"{src} is not a model folder (no config.json); give a local Hugging Face model folder")
    if dst == src or src.is_relative_to(dst):
        raise OxaError(f"the output {dst} would replace the source model {src}; choose a new folder")
    if dst.exists() and not config.overwrite:
        raise OxaError(f"{dst} exists; choose another output folder or pass --overwrite")
    changes: dict = {}
    model_config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    changes["config.json"] = _edit_config(model_config, config)
    template_file, template = _read_template(src)
    new_template = template
    if config.chat_template:
        new_template = Path(config.chat_template).read_text(encoding="utf-8")
        changes["chat_template"] = {"file": template_file, "replaced_by": str(Path(config.chat_template).resolve())}
    elif config.no_system_prompt:
        if template is None:
            raise OxaError(f"{src} has no chat template to take the system prompt out of")
        new_template, removed = remove_default_system_prompt(template, src)
        changes["chat_template"] = {"file": template_file, "removed_default_system_prompt": removed}
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(dst) as tmp:
        shutil.copytree(src, tmp, copy_function=shutil.copy2, ignore=shutil.ignore_patterns(RECORD))
        if changes["config.json"]:
            (tmp / "config.json").write_text(json.dumps(model_config, indent=2) + "\n", encoding="utf-8")
        if new_template != template:
            _write_template(tmp, template_file, new_template)
        copied = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        record = {
            "source": str(src),
            "settings": asdict(config),
            "changes": changes,
            "files": copied,
            "oxa_version": __version__,
        }
        (tmp / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def _edit_config(model_config: dict, config: PrepareConfig) -> dict:
    """Set rope theta and max positions in the config dict; returns {key: [old, new]}."""
    changed = {}
    if config.rope_theta is not None:
        rope = model_config.get("rope_parameters")
        if isinstance(rope, dict):
            changed["rope_parameters.rope_theta"] = [rope.get("rope_theta"), config.rope_theta]
            rope["rope_theta"] = config.rope_theta
        if "rope_theta" in model_config or not isinstance(rope, dict):
            changed["rope_theta"] = [model_config.get("rope_theta"), config.rope_theta]
            model_config["rope_theta"] = config.rope_theta
    if config.max_position_embeddings is not None:
        old = model_config.get("max_position_embeddings")
        changed["max_position_embeddings"] = [old, config.max_position_embeddings]
        model_config["max_position_embeddings"] = config.max_position_embeddings
    return changed


def _read_template(folder: Path) -> tuple[str | None, str | None]:
    """(file holding it, the default chat template): chat_template.jinja (transformers 5)
    or tokenizer_config.json's chat_template."""
    if (folder / "chat_template.jinja").is_file():
        return "chat_template.jinja", (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if (folder / "tokenizer_config.json").is_file():
        template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            template = next((t["template"] for t in template if t.get("name") == "default"), None)
        return "tokenizer_config.json", template
    return None, None


def _write_template(folder: Path, file: str | None, template: str) -> None:
    if file != "tokenizer_config.json":
        (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
        return
    path = folder / file
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data.get("chat_template"), list):
        data["chat_template"] = [
            t | {"template": template} if t.get("name") == "default" else t for t in data["chat_template"]
        ]
    else:
        data["chat_template"] = template
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def remove_default_system_prompt(template: str, tokenizer_folder: Path) -> tuple[str, str | None]:
    """(template without its default system turn, the default system text or None when it had none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder))

    def render(tmpl: str, messages: list[dict]) -> str:
        return tokenizer.apply_chat_template(messages, chat_template=tmpl, tokenize=False)

    user = [{"role": "user", "content": _USER_MARK}]
    with_system = [{"role": "system", "content": _SYSTEM_MARK}, *user]
    bare, explicit = render(template, user), render(template, with_system)
    common = 0
    while common < min(len(bare), len(explicit)) and bare[-1 - common] == explicit[-1 - common]:
        common += 1
    prefix_bare, prefix_explicit = bare[: len(bare) - common], explicit[: len(explicit) - common]
    if _SYSTEM_MARK not in prefix_explicit:
        return template, None  # the template writes no system turn at all
    head, tail = prefix_explicit.split(_SYSTEM_MARK, 1)
    if not (prefix_bare.startswith(head) and prefix_bare.endswith(tail) and len(prefix_bare) >= len(head + tail)):
        return template, None  # no system turn without a system message
    default = prefix_bare[len(head) : len(prefix_bare) - len(tail)]
    after = explicit[explicit.index(_SYSTEM_MARK) + len(_SYSTEM_MARK) :]
    new = _cut_literals(template, default, head, after) if default else template
    new_bare = render(new, user)
    keep = _common_prefix(explicit, new_bare)
    removed_turn = explicit[keep : len(explicit) - (len(new_bare) - keep)]
    if (
        not default
        or render(new, with_system) != explicit
        or not explicit.endswith(new_bare[keep:])
        or _SYSTEM_MARK not in removed_turn
        or default in new_bare
    ):
        raise OxaError(
            f"the chat template of {tokenizer_folder} writes a system turn without a system message "
            f"({prefix_bare!r}) that oxa cannot take out automatically; write a template without it and pass "
            "--chat-template FILE"
        )
    return new, default


def _cut_literals(template: str, default: str, head: str, after: str) -> str:
    """The template with `default` (and the turn markup around it) removed from every text
    and string literal that holds it."""

    def cut(value: str) -> str:
        while default in value:
            start = value.index(default)
            before, rest = value[:start], value[start + len(default) :]
            lead = max((n for n in range(len(before) + 1) if head.endswith(before[len(before) - n :])), default=0)
            trail = _common_prefix(rest, after)
            value = before[: len(before) - lead] + rest[trail:]
        return value

    def cut_literal(match: re.Match) -> str:
        quote = "'" if match.group(1) is not None else '"'
        raw = match.group(1) if match.group(1) is not None else match.group(2)
        value = raw.encode("ascii", "backslashreplace").decode("unicode-escape")
        if default not in value:
            return match.group(0)
        return quote + _escape(cut(value), quote) + quote

    parts = _TAG.split(template)
    for i, part in enumerate(parts):
        parts[i] = _LITERAL.sub(cut_literal, part) if i % 2 else cut(part)
    return "".join(parts)


def _escape(value: str, quote: str) -> str:
    return value.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
