"""OXA_Full vs plain SFT on the CPU: step time and peak memory, and the UL loss's own memory.

1. Training step (forward + backward) of a small random-init Qwen2 on the same batch: plain
   SFT = transformers' loss from full logits; OXA_Full = chunked lm-head log-probs
   (curate.backends.token_logprobs) + L_CE + alpha * L_UL (train.sft.loss), half the sequences suppressed.
   Step time: fastest of interleaved runs in this process, on one thread (the 2-CPU machine is
   shared: the fastest run is the least disturbed one, and two threads oversubscribe it). Peak memory: each variant in a fresh
   process, peak RSS minus the RSS after setup.
2. The UL loss alone at long length x Qwen2.5's 151936-token vocabulary with a small hidden size:
   chunked (ours: log(1 - p) and the entropy, as OXATrainer asks) vs a full-logits
   implementation (log_softmax over hidden @ W.T, then log(1 - p)), forward + backward, each
   in a fresh process.

    .venv/bin/python bench/train_step.py            # ~1-2 minutes on 2 CPUs
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import torch
from gpu_train_step import batch, oxa_step, plain_step
from transformers import Qwen2Config, Qwen2ForCausalLM

from curate.backends.token_logprobs import target_logprobs

SMALL = dict(
    hidden_size=256,
    intermediate_size=1024,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=16384,
    tie_word_embeddings=True,
)


def rss_gib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**30


def reset_peak() -> float:
    """Reset the peak RSS (Linux clear_refs 5) and return the current RSS in GiB."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return rss_gib()


def peak_gib() -> float:
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20  # kB


def small_setup(sequences: int, length: int):
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**SMALL, attn_implementation="sdpa")).train()
    return model, batch(SMALL["vocab_size"], sequences, length, torch.device("cpu"))


def step_memory(variant: str, sequences: int, length: int, chunk: int) -> float:
    torch.set_num_threads(1)
    model, data = small_setup(sequences, length)
    base = reset_peak()
    (plain_step(model, data) if variant == "plain" else oxa_step(model, data, chunk)).item()
    return peak_gib() - base


def ul_memory(variant: str, length: int, hidden_size: int, vocab: int, chunk: int) -> float:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(length, hidden_size, generator=gen, requires_grad=True)
    weight = (torch.randn(vocab, hidden_size, generator=gen) * 0.05).requires_grad_()
    targets = torch.randint(0, vocab, (length,), generator=gen)
    base = reset_peak()
    if variant == "full":
        logp = torch.log_softmax(hidden @ weight.T, dim=-1).gather(1, targets[:, None]).squeeze(1)
        log_complement = torch.log(-torch.expm1(logp))
    else:
        # what OXATrainer asks for: log(1 - p) and the entropy metric
        log_complement = target_logprobs(
            hidden, weight, targets, chunk_size=chunk, with_entropy=True, with_complement=True
        ).log_complement
    (-log_complement.mean()).backward()
    return peak_gib() - base


def in_fresh_process(fn, *args) -> float:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=2, help="sequences per training step")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sequence in the step benchmark")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--chunk-size", type=int, default=1024, help="lm-head rows per chunk (OXAConfig default)")
    parser.add_argument("--ul-length", type=int, default=4096, help="tokens in the UL-loss memory benchmark")
    parser.add_argument("--ul-hidden", type=int, default=64, help="hidden size in the UL-loss memory benchmark")
    parser.add_argument("--vocab", type=int, default=151936, help="vocabulary in the UL-loss memory benchmark")
    args = parser.parse_args()
    torch.set_num_threads(1)

    model, data = small_setup(args.sequences, args.seq_len)
    steps = {"plain": lambda: plain_step(model, data), "oxa": lambda: oxa_step(model, data, args.chunk_size)}
    times = {name: [] for name in steps}
    for fn in steps.values():  # warm-up
        fn()
        model.zero_grad(set_to_none=True)
    for _ in range(args.repeats):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
    plain_s, oxa_s = (min(times[name]) for name in steps)
    shape = (args.sequences, args.seq_len, args.chunk_size)
    plain_mem, oxa_mem = (in_fresh_process(step_memory, name, *shape) for name in steps)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"1. training step, {params:.1f}M-param Qwen2, {args.sequences} x {args.seq_len} tokens, fp32, CPU")
    print(f"   {'':22} {'step s':>8} {'peak GiB':>9}")
    print(f"   {'plain SFT (HF loss)':22} {plain_s:8.3f} {plain_mem:9.3f}")
    print(f"   {'OXA_Full (chunked)':22} {oxa_s:8.3f} {oxa_mem:9.3f}")
    print(f"   OXA / plain: step time x{oxa_s / plain_s:.3f} (target <= 1.10), memory x{oxa_mem / plain_mem:.3f}")

    ul_shape = (args.ul_length, args.ul_hidden, args.vocab)
    full = in_fresh_process(ul_memory, "full", *ul_shape, args.chunk_size)
    print(f"2. UL loss forward + backward, {args.ul_length} tokens x {args.vocab} vocabulary, hidden {args.ul_hidden}")
    print(f"   {'full logits':22} {full:9.3f} GiB")
    for chunk in sorted({args.chunk_size, 256}):
        chunked = in_fresh_process(ul_memory, "chunked", *ul_shape, chunk)
        print(
            f"   {f'chunked ({chunk} rows)':22} {chunked:9.3f} GiB   full / chunked x{full / chunked:.1f} (target >= 4)"
        )


if __name__ == "__main__":
    main()
