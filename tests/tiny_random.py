"""A random-weight tiny Qwen2 with a quickly trained tokenizer, for trainer and model tests
that need a model folder but not the test bed's pretrained ones (built in about a second)."""

from __future__ import annotations

from pathlib import Path


def tiny_qwen2(
    tokenizer,
    hidden: int = 32,
    layers: int = 1,
    heads: int = 2,
    max_positions: int = 512,
    seed: int = 0,
    tied: bool = True,
):
    """A random-weight Qwen2ForCausalLM in fp32 sized for `tokenizer` (tied embeddings unless `tied=False`; no head bias)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tied,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    return Qwen2ForCausalLM(config).float()


def save_tiny_random_model(folder: Path, texts: list[str], chat_template: str | None = None) -> Path:
    """A Qwen2ForCausalLM (hidden 32, 2 heads of 16, 1 layer) and a BPE tokenizer trained on `texts`."""
    from train.tiny.models import train_tokenizer

    tokenizer = train_tokenizer(iter(texts * 4), vocab_size=400)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tiny_qwen2(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
