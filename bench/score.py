"""Scoring benchmark: oxa's HF backend against the naive loop, on the same model and rows.

Throughput (one process, same threads, same random-init Qwen2 and the same rows):
  ours   curate.backends.hf.HFBackend.score: length-sorted batches under a token budget,
         packed rows (and padded rows), target log-probs from the final hidden states in chunks
  naive  one sequence at a time: model(input_ids).logits -> log_softmax -> gather
Both give the same NLL sums (checked, relative 1e-4).

It also prints the ceiling: the matrix-product FLOPs any exact fp32 scorer of these rows
must do (every token through the layers, the lm head at every scored position, causal
attention), divided by this machine's best fp32 matrix-product rate (a large square
torch.mm, best of 3): no implementation can beat the naive loop by more than that ratio.

Peak memory of one long sequence (--long tokens, --vocab entries, hidden 64), each
contender in a child process of its own; reported is the child's peak RSS above its
RSS after building the model:
  ours   HFBackend.score on the sequence
  naive  model(input_ids).logits.float().log_softmax(-1).gather(...)

    .venv/bin/python bench/score.py
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from curate.backends.base import ScoreItem  # noqa: E402
from curate.backends.hf import HFBackend  # noqa: E402


def build_model(hidden: int, layers: int, heads: int, vocab: int, max_len: int) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        intermediate_size=hidden * 3,
        vocab_size=vocab,
        max_position_embeddings=max_len,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    return Qwen2ForCausalLM(config).eval()


def naive_nll(model, ids: list[int]) -> float:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        return -logp.gather(1, torch.tensor(ids[1:])[:, None]).sum().item()


def matmul_rate(size: int = 2048) -> float:
    """This machine's best fp32 GFLOP/s on a large square torch.mm (best of 3)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def required_gflop(model, lengths: list[int]) -> float:
    """Matrix-product GFLOP an exact scorer must do: layers on every token, the head on every
    scored one (all but the first), causal attention (QK^T and PV over the lower triangle)."""
    config = model.config
    head = model.get_output_embeddings().weight.numel()
    layers = sum(m.weight.numel() for m in model.model.layers.modules() if isinstance(m, torch.nn.Linear))
    flops = sum(2 * layers * n + 2 * head * (n - 1) for n in lengths)
    flops += sum(2 * 2 * config.num_hidden_layers * config.hidden_size * n * (n + 1) / 2 for n in lengths)
    return flops / 1e9


def throughput(args) -> None:
    model = build_model(args.hidden, args.layers, args.heads, args.vocab, 4096)
    gen = torch.Generator().manual_seed(1)
    # long-tailed lengths, like chain-of-thought responses: lognormal, clipped
    lengths = torch.exp(torch.randn(args.rows, generator=gen) * 0.8 + math.log(args.median)).clamp(16, args.max_len)
    items = [
        ScoreItem(str(i), (), tuple(torch.randint(0, args.vocab, (int(n),), generator=gen).tolist()))
        for i, n in enumerate(lengths)
    ]
    tokens = sum(len(i.target_ids) - 1 for i in items)
    # The machine may be shared: the contenders take turns, all rows each, for --rounds rounds,
    # and each keeps its best round, so a change of load falls on all alike. All rows at once, as
    # `oxa score` hands the backend a batch of rows (batch_rows) to sort by length.
    backends = {"ours packed": HFBackend(model, token_budget=args.budget, packed=True)}
    backends["ours padded"] = HFBackend(model, token_budget=args.budget, packed=False)
    for backend in backends.values():
        backend.score(items[:2])  # warm-up
    timings = dict.fromkeys([*backends, "naive"], math.inf)
    ours, naive = {}, {}
    for _ in range(args.rounds):
        for name, backend in backends.items():
            start = time.perf_counter()
            ours[name] = {s.key: s.nll_sum for s in backend.score(items)}
            timings[name] = min(timings[name], time.perf_counter() - start)
        start = time.perf_counter()
        naive = {item.key: naive_nll(model, list(item.target_ids)) for item in items}
        timings["naive"] = min(timings["naive"], time.perf_counter() - start)
    worst = max(abs(got[key] - nll) / nll for got in ours.values() for key, nll in naive.items())
    print(
        f"throughput: {len(items)} rows, {tokens:,} scored tokens (median length {int(lengths.median())}, "
        f"max {int(lengths.max())}); model hidden {args.hidden}, {args.layers} layers, vocab {args.vocab:,}; "
        f"{torch.get_num_threads()} threads; ours: token budget {args.budget:,}, on a CPU at most "
        f"{HFBackend.CPU_SCORE_BUDGET:,} tokens per scoring batch"
    )
    for name, seconds in timings.items():
        print(
            f"  {name:12s} {tokens / seconds:8,.0f} tokens/s  ({seconds:.2f} s, best round)  speed-up {timings['naive'] / seconds:.2f}x"
        )
    print(f"  largest relative NLL difference (ours vs naive) {worst:.1e}")
    gflop, rate = required_gflop(model, [len(i.target_ids) for i in items]), matmul_rate()
    floor = gflop / rate
    print(
        f"  ceiling: {gflop:,.0f} GFLOP of matrix products at this machine's best {rate:,.0f} GFLOP/s = {floor:.1f} s "
        f"at the least, so no exact fp32 scorer beats the naive loop by more than {timings['naive'] / floor:.2f}x here"
    )


def _peak_child(which: str, length: int, vocab: int, queue) -> None:
    model = build_model(64, 2, 2, vocab, length)
    ids = torch.randint(0, vocab, (length,), generator=torch.Generator().manual_seed(2)).tolist()
    backend = HFBackend(model, token_budget=length) if which == "ours" else None
    before = _rss_mb()
    base_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if which == "ours":
        nll = backend.score([ScoreItem("x", (), tuple(ids))])[0].nll_sum
    else:
        nll = naive_nll(model, ids)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((max(peak, base_peak) - before, nll))


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_memory(args) -> None:
    context = multiprocessing.get_context("spawn")
    result = {}
    for which in ("ours", "naive"):
        queue = context.Queue()
        child = context.Process(target=_peak_child, args=(which, args.long, args.vocab_long, queue))
        child.start()
        result[which] = queue.get()
        child.join()
    (ours, nll_ours), (naive, nll_naive) = result["ours"], result["naive"]
    full = args.long * args.vocab_long * 4 / 2**20
    print(
        f"peak memory: one {args.long:,}-token sequence, vocab {args.vocab_long:,}, hidden 64 (fp32 logits {full:,.0f} MB)"
    )
    print(f"  ours  {ours:8,.0f} MB above the loaded model")
    print(f"  naive {naive:8,.0f} MB above the loaded model")
    print(f"  ratio {ours / naive:.3f} (target <= 0.125); NLL agree to {abs(nll_ours - nll_naive) / nll_naive:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--median", type=int, default=200, help="median length in tokens")
    ap.add_argument("--max-len", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--rounds", type=int, default=3, help="turns the contenders take (each keeps its best)")
    ap.add_argument("--budget", type=int, default=8192, help="tokens per forward pass (ours)")
    ap.add_argument("--long", type=int, default=8192, help="length of the peak-memory sequence")
    ap.add_argument("--vocab-long", type=int, default=151936)
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    throughput(args)
    if not args.skip_memory:
        peak_memory(args)


if __name__ == "__main__":
    main()
