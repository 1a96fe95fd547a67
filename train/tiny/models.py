"""`oxa synth model`: tiny reference models for the synthetic world, built on the CPU.

From a world folder (`oxa synth world`) this makes:

- a byte-level BPE tokenizer trained on the world's text: Qwen2's split regex and
  ByteLevel, so `AutoTokenizer` reloads it with the same ids; `<think>` and `</think>`
  as added tokens that are not special (decoding with skip_special_tokens keeps them);
  `<|im_start|>`/`<|im_end|>` chat turns in a template with `{% generation %}` markers,
  so TRL's assistant-only loss works;
- `base/`: a Qwen2ForCausalLM pretrained on the corpus in the chosen styles only (and a
  small share of the others), so the teacher pool's perplexity under it is low for those
  styles and higher for the rest. Each document is a chat turn (the problem as the user's,
  the solution as the assistant's), so the base model answers a chat prompt, as base
  models trained on today's web text do;
- `instruct/`: the base model after a short SFT on chat examples in the same styles, half
  of them with an instruction appended: a stronger sampler for self-distillation, whose
  wrong answers are written the way the base model expects (high-confidence errors).

Both are ordinary Hugging Face folders (config, safetensors weights, tokenizer, chat
template). The attention head size is at least 32, which vLLM's CPU attention needs.
The same config on the same machine gives the same weights (a fixed number of threads).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq

from curate.synth.world import CORPUS_FILE, HELDOUT_FILE, POOL_FILE, load_manifest
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import MissingExtra, OxaError
from curate.workspace.parts import atomic_write_json
from train.tiny.config import TinyModelConfig

try:
    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer
except ImportError as exc:
    raise MissingExtra(
        f"building the tiny models needs torch and transformers ({exc.name} is missing): pip install 'oxa[train]'"
    ) from exc

# Qwen2's pre-tokenizer split; digits are single tokens, as in Qwen2.5.
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
END_OF_TEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
THINK_TOKENS = ("<think>", "</think>")
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Half of the SFT prompts carry this instruction, so the instruct model answers prompts
# with and without one (the paper appends an instruction; many pools do not).
SFT_INSTRUCTION = KNOWN_SUFFIXES[1]


Progress = Callable[[str], None]


def build_tiny_models(config: TinyModelConfig, progress: Progress = print) -> dict:
    """Build the tokenizer and models into `config.out`; return what build.json records."""
    world, out = Path(config.world), Path(config.out)
    manifest = load_manifest(world)
    config.check(manifest["styles"])
    if not config.instruct and (out / "build.json").is_file() and (out / "instruct").is_dir():
        shutil.rmtree(out / "instruct")  # an earlier build's, which would not match the new base/
    started = time.perf_counter()
    corpus = [json.loads(line) for line in (world / CORPUS_FILE).read_text(encoding="utf-8").splitlines()]
    with _deterministic(config.seed, config.threads):
        tokenizer = train_tokenizer(_world_texts(world, corpus), config.vocab_size)
        progress(f"tokenizer: {len(tokenizer)} tokens")
        documents = _pretraining_documents(corpus, config)
        blocks = _packed_blocks(tokenizer, documents, config.block)
        model = Qwen2ForCausalLM(_model_config(config, tokenizer))
        progress(f"pretraining on {len(documents)} documents ({blocks.numel():,} tokens), mostly in {config.styles}")
        batches = _block_batches(blocks, config)
        losses = {"pretrain": _train(model, batches, config.pretrain_steps, config.learning_rate, progress)}
        _save(model, tokenizer, out / "base", eos=[IM_END, END_OF_TEXT])
        base_seconds = round(time.perf_counter() - started, 1)
        if config.instruct:
            chosen = [d for d in corpus if d["style"] in config.styles][: config.sft_examples]
            examples = [_sft_example(tokenizer, d, i) for i, d in enumerate(chosen)]
            progress(f"SFT on {len(examples)} chat examples")
            batches = _sft_batches(examples, config, tokenizer.pad_token_id)
            losses["sft"] = _train(model, batches, config.sft_steps, config.sft_learning_rate, progress)
            _save(model, tokenizer, out / "instruct", eos=[IM_END, END_OF_TEXT])
    info = {
        "config": asdict(config),
        "world_seed": manifest["seed"],
        "world_files": manifest["files"],
        "seen_styles": config.styles,
        "unseen_styles": [s for s in manifest["styles"] if s not in config.styles],
        "sft_instruction": SFT_INSTRUCTION,
        "final_loss": {stage: values[-1] for stage, values in losses.items()},
        "base_seconds": base_seconds,
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_json(out / "build.json", info)
    return info


def train_tokenizer(texts: Iterator[str], vocab_size: int) -> Qwen2Tokenizer:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(THINK_TOKENS),
        special_tokens=[END_OF_TEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    bpe.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    tokenizer = Qwen2Tokenizer(
        tokenizer_object=bpe,
        eos_token=IM_END,  # chat models: a turn's end is the end of what they write (as Qwen2.5's instruct tokenizer)
        pad_token=END_OF_TEXT,
        unk_token=None,
        extra_special_tokens=[IM_START, IM_END],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _world_texts(world: Path, corpus: list[dict]) -> Iterator[str]:
    """Every text of the world, in file order: what the tokenizer learns its merges from."""
    for doc in corpus:
        yield doc["problem"]
        yield doc["response"]
    for line in (world / POOL_FILE).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        yield row["input"]
        yield row["output"]
    for path in sorted((world / "references").glob("*.parquet")):
        for row in pq.read_table(path, columns=["problem", "solution"]).to_pylist():
            yield row["problem"]
            yield row["solution"]
    for item in json.loads((world / HELDOUT_FILE).read_text(encoding="utf-8")):
        yield item["problem"]


def _pretraining_documents(corpus: list[dict], config: TinyModelConfig) -> list[str]:
    """The corpus in the chosen styles, with `other_share` of the documents from the other
    styles (seeded choice), in corpus order, each as a chat turn (half of the prompts with
    an instruction): a base model that has seen a little of everything finds the other
    styles less likely, not impossible. A seeded `answer_only` share of the documents
    keeps only the summary after </think>: the answer with no worked reasoning, as much of
    the web's text gives it. The base model then reasons first on some samples and
    answers at once on others; the teacher always reasons, and that is what SFT on its
    responses teaches."""
    chosen = [d for d in corpus if d["style"] in config.styles]
    others = [i for i, d in enumerate(corpus) if d["style"] not in config.styles]
    wanted = min(len(others), round(len(chosen) * config.other_share / (1 - config.other_share)))
    picked = set(random.Random(config.seed).sample(others, wanted))
    chosen = [d for i, d in enumerate(corpus) if d["style"] in config.styles or i in picked]
    rng = random.Random(f"{config.seed}-answer-only")
    brief = set(rng.sample(range(len(chosen)), round(len(chosen) * config.answer_only)))
    return [
        f"{IM_START}user\n{_prompt(d['problem'], i)}{IM_END}\n"
        f"{IM_START}assistant\n{_answer_only(d['response']) if i in brief else d['response']}{IM_END}\n"
        for i, d in enumerate(chosen)
    ]


def _answer_only(response: str) -> str:
    """The summary after </think> (a corpus response always has one)."""
    return response.split(f"{THINK_TOKENS[1]}\n\n", 1)[1]


def _prompt(problem: str, index: int) -> str:
    """Every other pretraining prompt carries one of the usual instructions, in turn."""
    return problem if index % 2 == 0 else f"{problem}\n{KNOWN_SUFFIXES[index // 2 % len(KNOWN_SUFFIXES)]}"


def _model_config(config: TinyModelConfig, tokenizer: Qwen2Tokenizer) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


def _packed_blocks(tokenizer: Qwen2Tokenizer, documents: list[str], block: int) -> torch.Tensor:
    """The documents, each ended by <|endoftext|>, concatenated and cut into blocks."""
    ids: list[int] = []
    for doc in documents:
        ids.extend(tokenizer(doc)["input_ids"])
        ids.append(tokenizer.convert_tokens_to_ids(END_OF_TEXT))  # between documents
    usable = len(ids) // block * block
    if usable == 0:
        raise OxaError(f"the corpus holds {len(ids)} tokens, fewer than one block of {block}; build a larger world")
    return torch.tensor(ids[:usable]).view(-1, block)


def _block_batches(blocks: torch.Tensor, config: TinyModelConfig) -> Iterator[dict]:
    generator = torch.Generator().manual_seed(config.seed)
    while True:  # epochs, each in a fresh seeded order
        order = torch.randperm(len(blocks), generator=generator)
        for start in range(0, len(order) - config.batch + 1, config.batch):
            batch = blocks[order[start : start + config.batch]]
            yield {"input_ids": batch, "labels": batch}


def _sft_example(tokenizer: Qwen2Tokenizer, doc: dict, index: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one chat example; only the assistant turn is learned."""
    prompt = doc["problem"] if index % 2 else f"{doc['problem']}\n{SFT_INSTRUCTION}"
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": doc["response"]}]
    encoded = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    ids = list(encoded["input_ids"])
    return ids, [t if m else -100 for t, m in zip(ids, encoded["assistant_masks"])]


def _sft_batches(examples: list[tuple[list[int], list[int]]], config: TinyModelConfig, pad_id: int) -> Iterator[dict]:
    generator = torch.Generator().manual_seed(config.seed + 1)
    while True:
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order) - config.batch + 1, config.batch):
            chosen = [examples[i] for i in order[start : start + config.batch]]
            width = min(max(len(ids) for ids, _ in chosen), config.max_positions)
            ids = torch.full((len(chosen), width), pad_id)
            labels = torch.full((len(chosen), width), -100)
            mask = torch.zeros((len(chosen), width), dtype=torch.long)
            for row, (example_ids, example_labels) in enumerate(chosen):
                n = min(len(example_ids), width)
                ids[row, :n] = torch.tensor(example_ids[:n])
                labels[row, :n] = torch.tensor(example_labels[:n])
                mask[row, :n] = 1
            yield {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _train(
    model: Qwen2ForCausalLM, batches: Iterator[dict], steps: int, learning_rate: float, progress: Progress
) -> list[float]:
    """AdamW with a short warm-up and cosine decay; returns the loss of every step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    losses = []
    for step, batch in zip(range(1, steps + 1), batches):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 4))
        if step % 50 == 0 or step == steps:
            progress(f"  step {step}/{steps}: loss {losses[-1]:.3f}")
    model.eval()
    return losses


def _save(model: Qwen2ForCausalLM, tokenizer: Qwen2Tokenizer, folder: Path, eos: list[str]) -> None:
    eos_ids = tokenizer.convert_tokens_to_ids(eos)
    model.config.eos_token_id = eos_ids[0]
    model.generation_config.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@contextmanager
def _deterministic(seed: int, threads: int):
    """Seeded, deterministic kernels on a fixed number of threads for the build; the
    caller's settings come back after. A fixed thread count keeps the sums in one order,
    so the same settings give the same weights on a machine."""
    was_deterministic, was_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(was_threads)
        torch.use_deterministic_algorithms(was_deterministic)
        torch.random.set_rng_state(rng_state)
