"""Unbiased Pass@k against brute-force enumeration of every k-subset of the samples."""

from fractions import Fraction
from itertools import combinations

import pytest

from curate.workspace import OxaError
from train.eval.passk import k_values, mean_pass_at_k, pass_at_k


def brute_force(n: int, c: int, k: int) -> Fraction:
    """The share of k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 10])
def test_pass_at_k_equals_enumeration(n):
    for c in range(n + 1):  # c = 0 and c = n included
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force(n, c, k)), abs=1e-12), (n, c, k)


def test_edge_values():
    assert pass_at_k(16, 0, 16) == 0.0
    assert pass_at_k(16, 16, 1) == 1.0
    assert pass_at_k(16, 1, 16) == 1.0  # n - c < k: every subset holds the correct one
    assert pass_at_k(128, 3, 1) == pytest.approx(3 / 128)
    # large n stays finite and in range where the binomial ratio would overflow
    assert 0.0 < pass_at_k(4096, 1, 64) < 1.0
    assert pass_at_k(4096, 1, 64) == pytest.approx(64 / 4096)


def test_mean_over_problems_and_k_values():
    assert mean_pass_at_k([4, 4], [0, 4], 2) == 0.5
    assert mean_pass_at_k([4, 4, 4], [1, 2, 0], 1) == pytest.approx((0.25 + 0.5 + 0) / 3)
    assert k_values(1) == [1]
    assert k_values(8) == [1, 2, 4, 8]
    assert k_values(12) == [1, 2, 4, 8, 12]
    assert k_values(128) == [1, 2, 4, 8, 16, 32, 64, 128]


def test_k_larger_than_samples_is_a_clear_error():
    with pytest.raises(OxaError, match=r"Pass@9 needs at least 9 samples per problem, but only 8 are stored"):
        pass_at_k(8, 2, 9)
