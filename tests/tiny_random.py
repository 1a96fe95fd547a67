"""A random-weight tiny Qwen2 with a quickly trained tokenizer, for trainer and model tests
that need a model folder but not the test bed's pretrained ones (built in about a second)."""

from __future__ import annotations

from pathlib import Path


def save_tiny_random_model(folder: Path, texts: list[str], chat_template: str | None = None) -> Path:
    """A Qwen2ForCausalLM (hidden 32, 2 heads of 16, 1 layer) and a BPE tokenizer trained on `texts`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from train.tiny_models import train_tokenizer

    tokenizer = train_tokenizer(iter(texts * 4), vocab_size=400)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
