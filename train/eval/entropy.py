"""`oxa eval entropy`: a model's initial policy entropy on a prompt set (the paper's
eq. 1, and Fig. 2c at step 0 of RL).

For each prompt, n completions are sampled (by default as GRPO's rollouts are: the
paper's temperature 0.85, top-p 1); at every generated token the entropy
H = -sum_v p(v) log p(v) of the model's own next-token distribution (temperature 1,
the full vocabulary, given the prompt and the completion so far) is computed, and the
result is the mean over all generated tokens of all completions (token-weighted, in
nats). verl logs the same quantity with the logits divided by the rollout temperature;
this reports the policy itself.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.benchmarks.sets import load_prompt_set, resolve_sets
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError
from curate.workspace.parts import atomic_target, atomic_write_json
from train.eval.sampling import ProgressFn, entropy_means, generate_set, load_chat_tokenizer


@dataclass
class EntropyConfig:
    """An entropy measurement. Every field is also an `oxa eval entropy` option."""

    model: str = field(metadata={"help": "model folder (Hugging Face layout, with a chat template)"})
    prompts: str = field(
        metadata={"help": "comma-separated verl parquet files, benchmark names or files, or subset folders"}
    )
    n: int = field(default=4, metadata={"help": "completions sampled per prompt"})
    temperature: float = field(default=0.85, metadata={"help": "sampling temperature (the paper's RL rollouts: 0.85)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling (1: none, as RL rollouts)"})
    max_new_tokens: int = field(
        default=16384, metadata={"help": "tokens per completion at most (the paper's RL: 16384)"}
    )
    backend: str = field(
        default="auto",
        metadata={"help": "generation: vllm (GPU extra), hf, or auto (vllm when installed); scoring: hf"},
    )
    seed: int = field(default=0, metadata={"help": "each prompt samples from a seed derived from this and its id"})
    instruction: str = field(default=KNOWN_SUFFIXES[0], metadata={"help": "appended to each problem; '' for none"})
    limit: int | None = field(default=None, metadata={"help": "the first N prompts of each set"})
    dtype: str = field(default="auto", metadata={"help": "model weights: auto, bfloat16, float16, float32"})
    device: str = field(default="auto", metadata={"help": "hf backend device: auto, cpu, cuda, cuda:N"})
    token_budget: int = field(default=16384, metadata={"help": "tokens per scoring batch of the hf backend"})
    out: str | None = field(
        default=None, metadata={"help": "folder for entropy.json and per-completion entropy.parquet"}
    )


def run_entropy(config: EntropyConfig, progress: ProgressFn | None = None) -> dict:
    from curate.backends import load_backend
    from curate.backends.base import SamplingSettings

    progress = progress or (lambda what, done, total: None)
    if config.n < 1 or config.max_new_tokens < 1:
        raise OxaError(f"--n and --max-new-tokens must be >= 1, got {config.n} and {config.max_new_tokens}")
    if config.backend == "auto":
        config.backend = "vllm" if importlib.util.find_spec("vllm") else "hf"
    model = Path(config.model).expanduser().resolve()
    if not model.is_dir():
        raise OxaError(f"model folder {config.model} does not exist")
    sets = [load_prompt_set(n, p, require_answers=False, limit=config.limit) for n, p in resolve_sets(config.prompts)]
    tokenizer = load_chat_tokenizer(model)
    settings = SamplingSettings(config.n, config.temperature, config.top_p, config.max_new_tokens, config.seed)
    options = {"dtype": config.dtype, "device": config.device, "token_budget": config.token_budget}
    backend = load_backend(config.backend, str(model), **options)
    try:
        generated = [generate_set(backend, tokenizer, s, settings, config.instruction, progress) for s in sets]
        if config.backend != "hf":
            backend.close()
            backend = load_backend("hf", str(model), **options)
        progress("scoring the policy entropy", 0, 0)
        means = [entropy_means(backend, tokenizer, s, g, config.instruction) for s, g in zip(sets, generated)]
    finally:
        backend.close()
    rows = {"set": [], "problem_id": [], "sample_index": [], "n_tokens": [], "finish_reason": [], "entropy_mean": []}
    for s, g, m in zip(sets, generated, means):
        rows["set"] += [s.name] * g.num_rows
        rows["problem_id"] += g["problem_id"].to_pylist()
        rows["sample_index"] += g["sample_index"].to_pylist()
        rows["n_tokens"] += [len(ids) for ids in g["token_ids"].to_pylist()]
        rows["finish_reason"] += g["finish_reason"].to_pylist()
        rows["entropy_mean"] += m
    table = pa.table(rows)
    summary = {
        "model": str(model),
        "settings": {k: v for k, v in vars(config).items() if k not in ("model", "prompts", "out")},
        "sets": [_summary(s.name, table.filter(pc.equal(table["set"], s.name))) for s in sets],
        "overall": _summary("overall", table),
    }
    if config.out:
        out = Path(config.out).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        with atomic_target(out / "entropy.parquet") as tmp:
            pq.write_table(table, tmp)
        atomic_write_json(out / "entropy.json", summary)
    return summary


def _summary(name: str, table: pa.Table) -> dict:
    """Token-weighted mean entropy: sum over completions of mean x tokens, over all tokens."""
    tokens = table["n_tokens"].to_pylist()
    means = table["entropy_mean"].to_pylist()
    scored = sum(t for t, m in zip(tokens, means) if m is not None)
    return {
        "set": name,
        "prompts": len(set(table["problem_id"].to_pylist())),
        "completions": table.num_rows,
        "tokens": sum(tokens),
        "mean_length": sum(tokens) / table.num_rows if table.num_rows else None,
        "mean_entropy": sum(t * m for t, m in zip(tokens, means) if m is not None) / scored if scored else None,
    }
