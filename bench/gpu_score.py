"""GPU scoring benchmark: the HF backend on a random-init model shaped like Qwen2.5-Math-1.5B.

No downloads: the config is written here (hidden 1536, 28 layers, 12 heads, 2 KV heads,
intermediate 8960, vocab 151936, tied embeddings), weights are random, bf16 on CUDA.
--rows sequences of mixed lengths (lognormal around --median, clipped to 64..--max-len)
are scored through curate.backends.hf.HFBackend (packed rows under --budget tokens);
printed: tokens/s and model-FLOPs utilization against --peak-flops (H100 SXM bf16 dense,
989 TFLOP/s). Forward-only FLOPs per scored batch: 2 x (non-embedding parameters +
lm-head) x tokens, plus causal attention 2 x 2 x layers x hidden x sum(len^2) / 2.
Needs only torch and transformers.

    python bench/gpu_score.py            # on a CUDA machine, well under 2 minutes
    python bench/gpu_score.py --quick    # a tiny config on the CPU, a smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from curate.backends.base import ScoreItem  # noqa: E402
from curate.backends.hf import HFBackend  # noqa: E402

QWEN25_MATH_15B = {
    "hidden_size": 1536,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "intermediate_size": 8960,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "rope_theta": 10000.0,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
}
QUICK = {**QWEN25_MATH_15B, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
         "num_key_value_heads": 1, "intermediate_size": 128, "vocab_size": 4096}  # fmt: skip


def forward_flops(config: Qwen2Config, lengths: list[int]) -> float:
    h, layers = config.hidden_size, config.num_hidden_layers
    kv = h // config.num_attention_heads * config.num_key_value_heads
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * config.intermediate_size  # q, o, k, v, MLP
    dense = 2 * (layers * per_layer + h * config.vocab_size) * sum(lengths)  # body + lm head
    attention = 2 * 2 * layers * h * sum(n * n for n in lengths) / 2  # QK^T and AV, causal half
    return dense + attention


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny config on the CPU (smoke run)")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--median", type=int, default=1500)
    ap.add_argument("--max-len", type=int, default=4096)
    ap.add_argument("--budget", type=int, default=32768, help="tokens per forward pass")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over the rows")
    ap.add_argument("--peak-flops", type=float, default=989e12)
    ap.add_argument("--naive", action="store_true", help="also time the naive one-sequence-at-a-time loop")
    ap.add_argument("--padded", action="store_true", help="padded rows (causal mask only) instead of packed rows")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.median, args.max_len, args.budget, args.repeats = 16, 200, 512, 2048, 1
    cuda = torch.cuda.is_available() and not args.quick
    torch.manual_seed(0)
    config = Qwen2Config(**(QUICK if args.quick else QWEN25_MATH_15B), attn_implementation="sdpa")
    model = Qwen2ForCausalLM(config)
    backend = HFBackend(model, device="cuda" if cuda else "cpu", token_budget=args.budget, packed=not args.padded)
    gen = torch.Generator().manual_seed(1)
    lengths = torch.exp(torch.randn(args.rows, generator=gen) * 0.7 + math.log(args.median))
    lengths = lengths.clamp(64, args.max_len).int().tolist()
    items = [
        ScoreItem(str(i), (), tuple(torch.randint(0, config.vocab_size, (n,), generator=gen).tolist()))
        for i, n in enumerate(lengths)
    ]
    backend.score(items)  # warm-up: one whole pass, so every batch shape has its kernels and memory
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.repeats):
        scores = backend.score(items)
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.repeats
    tokens = sum(lengths)
    flops = forward_flops(config, lengths)
    params = sum(p.numel() for p in model.parameters())
    device = torch.cuda.get_device_name() if cuda else "CPU"
    rows = "padded" if args.padded else "packed"
    print(
        f"device {device}; model {params / 1e9:.2f} B parameters, {backend.dtype}; budget {backend.token_budget}, {rows}"
    )
    print(f"rows {len(items)}, tokens {tokens:,} (median {sorted(lengths)[len(lengths) // 2]}, max {max(lengths)})")
    print(f"time per pass {seconds:.2f} s; {tokens / seconds:,.0f} tokens/s; {flops / seconds / 1e12:.1f} TFLOP/s")
    print(f"MFU {flops / seconds / args.peak_flops:.1%} of {args.peak_flops / 1e12:.0f} TFLOP/s peak")
    if cuda:
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    assert all(math.isfinite(s.nll_sum) and s.n_tokens == n - 1 for s, n in zip(scores, lengths))
    if args.naive:
        naive_seconds, worst = naive_loop(backend.model, items, scores, cuda)
        print(
            f"naive one-at-a-time loop (logits -> fp32 log_softmax -> gather): {tokens / naive_seconds:,.0f} tokens/s; "
            f"ours is {naive_seconds / seconds:.2f}x faster; largest relative NLL difference {worst:.1e} ({backend.dtype})"
        )


def naive_loop(model, items: list[ScoreItem], scores, cuda: bool) -> tuple[float, float]:
    """One pass of the naive loop over the same rows; (seconds, worst relative NLL difference)."""
    device = next(model.parameters()).device
    worst = 0.0
    with torch.no_grad():  # warm-up
        for item in items[:4]:
            model(input_ids=torch.tensor([item.target_ids], device=device))
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        for item, score in zip(items, scores):
            ids = torch.tensor([item.target_ids], device=device)
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            nll = -logp.gather(1, ids[0, 1:, None]).sum().item()
            worst = max(worst, abs(nll - score.nll_sum) / abs(nll))
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, worst


if __name__ == "__main__":
    main()
