"""What a model backend does for oxa: score token sequences and sample completions.

Both backends (`hf`: transformers on CPU or CUDA; `vllm`: the GPU extra) work on token
ids that the caller has already built with the model's tokenizer, so the two see exactly
the same tokens and their outputs can be compared number for number.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ScoreItem:
    key: str  # the caller's id for the row (a sample_id)
    context_ids: tuple[int, ...]  # conditioned on, not scored (empty for --context none)
    target_ids: tuple[int, ...]  # scored: each target token's log p given everything before it


@dataclass(frozen=True)
class TokenScore:
    key: str
    n_tokens: int  # target tokens that were scored (the first target token has no prediction without context)
    nll_sum: float  # sum over those tokens of -log p(token | prefix)
    entropy_sum: float | None = None  # sum of full-distribution entropies at those positions, when asked for


@dataclass(frozen=True)
class SamplingSettings:
    n: int = 8
    temperature: float = 0.85
    top_p: float = 0.95
    max_new_tokens: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class GenerateItem:
    key: str  # the caller's id for the prompt (a problem_id)
    prompt_ids: tuple[int, ...]
    seed: int  # per-prompt seed, derived by the caller from (settings.seed, key) so shards and resumes agree


@dataclass(frozen=True)
class Completion:
    text: str  # decoded without special tokens
    token_ids: tuple[int, ...]  # the generated ids, the end-of-sequence token included when it stopped
    finish_reason: str  # 'stop' (end-of-sequence token) or 'length' (max_new_tokens reached)


class Backend(Protocol):
    name: str

    def score(self, items: Sequence[ScoreItem], with_entropy: bool = False) -> list[TokenScore]: ...

    def generate(self, items: Sequence[GenerateItem], settings: SamplingSettings) -> list[list[Completion]]: ...

    def close(self) -> None: ...


def sleep_while_waiting() -> None:
    """Have torch's OpenMP threads sleep, not spin, while they wait for each other, unless
    the user chose otherwise (OMP_WAIT_POLICY). Beside one busy process on 2 CPUs, a
    two-thread training step of a small model ran 3x slower spinning and 1.7x sleeping,
    while alone both ran alike (train/threads.py, BENCHMARKS.md "Demo"). OpenMP reads this
    once, as torch loads: `oxa` sets it before any command runs. It changes the time a busy
    neighbour costs, never a result."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
