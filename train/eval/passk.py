"""Unbiased Pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With n samples of a problem of which c are correct, the chance that k samples drawn
without replacement hold at least one correct one is 1 - C(n-c, k) / C(n, k). The ratio
of binomials overflows floats long before n = 128 samples of realistic problems, so it
is computed as the product prod_{i=n-c+1}^{n} (1 - k/i), which is the same number.
Pass@1 reduces to c / n: the mean verdict over the samples.
"""

from __future__ import annotations

import numpy as np

from curate.workspace import OxaError


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k) for one problem with `c` correct of `n` samples."""
    if not 0 <= c <= n:
        raise ValueError(f"correct samples must be within 0..{n}, got {c}")
    if not 1 <= k <= n:
        raise OxaError(f"Pass@{k} needs at least {k} samples per problem, but only {n} are stored; lower k")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def mean_pass_at_k(samples: list[int], correct: list[int], k: int) -> float:
    """Pass@k averaged over problems (samples[i] and correct[i] of problem i)."""
    if not samples:
        raise OxaError("no problems to compute Pass@k over")
    return float(np.mean([pass_at_k(n, c, k) for n, c in zip(samples, correct)]))


def k_values(n: int) -> list[int]:
    """The k of a Pass@k curve: 1, 2, 4, ... up to n, and n itself."""
    ks = [2**i for i in range(n.bit_length()) if 2**i <= n]
    return ks if ks[-1] == n else [*ks, n]
