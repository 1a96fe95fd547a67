"""The hf backend's sampling against transformers' own, side by side on the same prompts.

    .venv/bin/python bench/generate.py [--model DIR] [--prompts heldout.json] [--problems 200] [--n 16]

Defaults: the full demo's SFT model and held-out problems (run bench/demo.py first).
Both sample n completions of up to --max-new-tokens per problem at temperature 0.6 and
top-p 0.95 with the same prompts and the same rows per batch (--batch-tokens, as the
demo's evaluation):

- transformers: `model.generate(do_sample=True)` with its temperature and top-p warpers
  and a static cache, each prompt repeated n times in the batch;
- oxa: `HFBackend.generate` (one prefill per prompt, stopped rows leave the batch, the
  nucleus among the top 64 tokens, one seeded stream per completion).

Prints seconds, completions per second, mean length and the ratio. The two draw
different random numbers, so their completions differ; the mean lengths agree only in
distribution.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from curate.backends.base import GenerateItem, SamplingSettings  # noqa: E402
from curate.backends.hf import HFBackend  # noqa: E402
from curate.score.modelinfo import prompt_ids  # noqa: E402
from train.demo import EVAL_TOKEN_BUDGET, INSTRUCTION  # noqa: E402

DEMO = Path("/tmp/oxa-bench-demo/full")


def transformers_generate(model, tokenizer, prompts: list[list[int]], settings: SamplingSettings, budget: int):
    """Completions' lengths from transformers' sampling, batched as the hf backend batches."""
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    config = GenerationConfig(
        do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0,
        max_new_tokens=settings.max_new_tokens, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
        cache_implementation="static",
    )  # fmt: skip
    rows = sorted((p for p in prompts for _ in range(settings.n)), key=len, reverse=True)
    lengths, start = [], 0
    torch.manual_seed(settings.seed)
    while start < len(rows):
        longest = len(rows[start])
        batch = rows[start : start + max(1, budget // (longest + settings.max_new_tokens))]
        start += len(batch)
        ids = torch.full((len(batch), longest), tokenizer.pad_token_id)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for r, prompt in enumerate(batch):
            ids[r, longest - len(prompt) :], mask[r, longest - len(prompt) :] = torch.tensor(prompt), 1
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, generation_config=config)[:, longest:]
        for row in out.tolist():
            stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
            lengths.append(len(row) if stop is None else stop + 1)
    return lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEMO / "train" / "sft"))
    parser.add_argument("--prompts", default=str(DEMO / "world" / "heldout.json"))
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=112)
    parser.add_argument("--batch-tokens", type=int, default=EVAL_TOKEN_BUDGET)
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        sys.exit(f"no model at {args.model}: run bench/demo.py first, or pass --model and --prompts")

    backend = HFBackend(args.model, dtype="float32", device="cpu", token_budget=args.batch_tokens)
    tokenizer = backend.tokenizer
    problems = json.loads(Path(args.prompts).read_text())[: args.problems]
    prompts = [list(prompt_ids(tokenizer, p["problem"], INSTRUCTION)) for p in problems]  # as oxa eval
    settings = SamplingSettings(n=args.n, temperature=0.6, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=0)
    items = [GenerateItem(str(i), tuple(p), seed=i) for i, p in enumerate(prompts)]

    start = time.perf_counter()
    theirs = transformers_generate(backend.model, tokenizer, prompts, settings, args.batch_tokens)
    theirs_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = [len(c.token_ids) for row in backend.generate(items, settings) for c in row]
    ours_s = time.perf_counter() - start

    rows = len(prompts) * args.n
    print(f"sampling {len(prompts)} prompts x {args.n} completions of up to {args.max_new_tokens} tokens, CPU")
    print(f"{'':14} {'seconds':>8} {'per s':>7} {'mean length':>12}")
    for name, seconds, lengths in (("transformers", theirs_s, theirs), ("oxa hf", ours_s, ours)):
        print(f"{name:14} {seconds:8.1f} {rows / seconds:7.1f} {sum(lengths) / len(lengths):12.1f}")
    print(f"transformers / oxa: x{theirs_s / ours_s:.2f}")


if __name__ == "__main__":
    main()
