"""Confidence intervals for Pass@k: the percentile bootstrap over problems.

A benchmark's Pass@k is the mean over its problems of each problem's unbiased Pass@k
(passk.py). Its uncertainty comes from which problems the set happens to hold, so the
interval resamples problems with replacement (B times, from a fixed seed: the same
samples give the same interval) and takes the 2.5th and 97.5th percentiles of the
resampled means. Two models evaluated on the same problems are compared by the paired
bootstrap: one resample of problems serves both, and the interval is that of the
difference of their means, so the problems' shared difficulty cancels.
"""

from __future__ import annotations

import numpy as np

from train.eval.passk import pass_at_k

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0


def per_problem_pass_at_k(n: list[int], c: list[int], ks: list[int]) -> np.ndarray:
    """[problems, len(ks)]: each problem's unbiased Pass@k for every k."""
    return np.array([[pass_at_k(ni, ci, k) for k in ks] for ni, ci in zip(n, c)], dtype=np.float64).reshape(-1, len(ks))


def resample_index(problems: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """[resamples, problems] indices drawn with replacement from a seeded generator."""
    return np.random.default_rng(seed).integers(0, problems, size=(resamples, problems))


def interval(resampled_means: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of resampled means ([resamples, ...] -> two arrays [...])."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(resampled_means, [tail, 100 - tail], axis=0)
    return low, high


def bootstrap_means(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """[resamples, columns]: the mean over each resample of problems of `values` [problems, columns]."""
    return values[index].mean(axis=1)
