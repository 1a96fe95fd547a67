"""OXA loss training step vs plain CE on a random-init model with Qwen2.5-Math-1.5B's shape (GPU).

Runs with torch + transformers only (no TRL): the OXA side is curate.backends.token_logprobs (chunked
lm-head log-probs) + train.sft.loss; the plain side is transformers' own loss from full logits.
Each step is forward + backward with gradient checkpointing, bf16, on the same batch (half
the sequences promoted, half suppressed). MFU = 6 * params * tokens / step time / 989 TFLOP/s
(H100 dense bf16), the usual convention (checkpointing's recompute is not counted).

    python bench/gpu_train_step.py            # H100: seq 8192 x 2 sequences
    python bench/gpu_train_step.py --quick    # CPU smoke run on a tiny config
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from curate.backends.token_logprobs import DEFAULT_CHUNK_SIZE, final_hidden_states, lm_head_weight, target_logprobs
from train.sft.loss import TermCounts, count_terms, loss_targets, oxa_loss

QWEN25_MATH_15B = dict(
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    vocab_size=151936,
    max_position_embeddings=40000,
    rope_theta=1e6,
    tie_word_embeddings=True,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    vocab_size=1024,
    tie_word_embeddings=True,
)
PEAK_FLOPS = 989e12


def batch(vocab: int, sequences: int, length: int, device) -> dict:
    gen = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (sequences, length), generator=gen)
    labels = input_ids.clone()
    labels[:, : length // 8] = -100  # a prompt
    return {
        "input_ids": input_ids.to(device),
        "labels": labels.to(device),
        "sequence_index": torch.arange(sequences)[:, None].expand(-1, length).contiguous().to(device),
        "loss_type": (torch.arange(sequences) % 2).to(device),
    }


def plain_step(model, data) -> torch.Tensor:
    loss = model(input_ids=data["input_ids"], labels=data["labels"], use_cache=False).loss
    loss.backward()
    return loss


def oxa_step(model, data, chunk_size: int) -> torch.Tensor:
    labels, index, loss_type = data["labels"], data["sequence_index"], data["loss_type"]
    hidden = final_hidden_states(model, input_ids=data["input_ids"])[:, :-1]
    mask, token_sequence = loss_targets(labels, index)
    logprobs = target_logprobs(  # what OXATrainer asks for
        hidden[mask], lm_head_weight(model), labels[:, 1:][mask], chunk_size, with_entropy=True, with_complement=True
    )
    counts = TermCounts(count_terms(labels, index, loss_type))
    loss = oxa_loss(
        logprobs.logp, logprobs.log_complement, token_sequence, loss_type, counts, 1e-4, entropy=logprobs.entropy
    ).loss
    loss.backward()
    return loss


def measure(step, model, data, device, warmup: int, steps: int) -> tuple[float, float]:
    """Median step seconds and peak memory (GiB; CUDA only, else nan)."""
    for _ in range(warmup):
        step(model, data)
        model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(model, data)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return statistics.median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny config on the CPU (smoke run)")
    parser.add_argument("--seq-len", type=int, default=8192, help="tokens per sequence")
    parser.add_argument("--sequences", type=int, default=2, help="sequences per step (half suppressed)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="lm-head rows per chunk")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant")
    args = parser.parse_args()

    device = torch.device("cpu" if args.quick or not torch.cuda.is_available() else "cuda")
    shape, dtype = (TINY, torch.float32) if args.quick else (QWEN25_MATH_15B, torch.bfloat16)
    seq_len = 256 if args.quick else args.seq_len
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(Qwen2Config(**shape, attn_implementation="sdpa")).to(dtype)
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.20 renamed it, and its keyword
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = sum(p.numel() for p in model.parameters())
    data = batch(shape["vocab_size"], args.sequences, seq_len, device)
    tokens = args.sequences * seq_len
    print(f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, {params / 1e9:.3f}B params")
    print(f"{args.sequences} x {seq_len} tokens per step, {dtype}, gradient checkpointing, chunk {args.chunk_size}")

    rows = {}
    for name, step in (("plain CE (HF, full logits)", plain_step), ("OXA CE+UL (chunked)", None)):
        fn = step or (lambda m, d: oxa_step(m, d, args.chunk_size))
        rows[name] = measure(fn, model, data, device, warmup=1, steps=2 if args.quick else args.steps)
    print(f"{'variant':30} {'step s':>8} {'tokens/s':>10} {'MFU':>7} {'peak GiB':>9}")
    for name, (seconds, peak) in rows.items():
        mfu = 6 * params * tokens / seconds / PEAK_FLOPS
        print(f"{name:30} {seconds:8.3f} {tokens / seconds:10.0f} {mfu:7.1%} {peak:9.2f}")
    (plain_s, plain_peak), (oxa_s, oxa_peak) = rows.values()
    print(f"OXA / plain: step time x{oxa_s / plain_s:.3f}, peak memory x{oxa_peak / plain_peak:.3f}")


if __name__ == "__main__":
    main()
