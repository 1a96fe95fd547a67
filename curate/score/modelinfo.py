"""What identifies a model for scoring and generation, and the prompts built for it.

The fingerprint of a model folder hashes config.json and every weight file's bytes, so
the same weights under another path agree and retrained weights never do; the
tokenizer's hashes its files. Both go into the config fingerprint of score and generate
runs, which names their parts and decides what a rerun may reuse.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from curate.workspace import OxaError

_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
)


def _hash_files(folder: Path, names: list[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\n".encode())
        with open(folder / name, "rb") as handle:
            while block := handle.read(1 << 23):
                digest.update(block)
    return digest.hexdigest()[:16]


def model_folder(path: str) -> Path:
    folder = Path(path).expanduser().resolve()
    if not (folder / "config.json").is_file():
        raise OxaError(f"cannot load the model {path}: no config.json in {folder}; give a Hugging Face model folder")
    return folder


def model_fingerprint(folder: Path) -> str:
    """Hash of config.json and the weight files' bytes."""
    weights = sorted({p.name for pattern in _WEIGHTS for p in folder.glob(pattern)})
    if not weights:
        raise OxaError(f"cannot load the model {folder}: no weight files (*.safetensors, *.bin) in it")
    return _hash_files(folder, ["config.json", *weights])


def tokenizer_fingerprint(folder: Path) -> str:
    return _hash_files(folder, [name for name in _TOKENIZER_FILES if (folder / name).is_file()])


def load_tokenizer(folder: Path):
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        from curate.workspace import MissingExtra

        raise MissingExtra(f"scoring and generation need the train extra ({exc}): pip install 'oxa[train]'") from exc
    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise OxaError(f"cannot load the tokenizer of {folder}: {exc}") from exc


def user_message(problem: str, instruction: str) -> str:
    """The user turn: the problem, then the instruction on its own line (none if empty)."""
    return f"{problem}\n{instruction}" if instruction else problem


def chat_template(tokenizer, folder: Path, purpose: str) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise OxaError(
            f"the tokenizer of {folder} has no chat template, which {purpose} needs; use a chat model's tokenizer"
        )
    return template if isinstance(template, str) else str(template)


def prompt_ids(tokenizer, problem: str, instruction: str) -> list[int]:
    """Token ids of the chat-templated user turn with the generation prompt appended."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_message(problem, instruction)}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def resolve_dtype(dtype: str) -> str:
    """'auto' as the HF backend resolves it: bfloat16 on CUDA, float32 on the CPU."""
    if dtype != "auto":
        return dtype
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"
