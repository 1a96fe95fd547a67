"""Seeded randomness and exact mixtures, shared by every part of the world.

Each part draws from its own named stream (`stream(seed, "pool", 3)`), so changing one
knob (say, the flaw shares) does not reshuffle the problems. `random.Random` seeded
with a string hashes it with SHA-512, so streams are the same on every machine and
under every PYTHONHASHSEED.
"""

from __future__ import annotations

import random

from curate.workspace import OxaError


def stream(seed: int, *keys: object) -> random.Random:
    return random.Random("/".join(map(str, (seed, *keys))))


def exact_counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Split `total` by `shares` into integers that add up to `total` (largest remainder;
    ties go to the label listed first). A share of 0 gets 0."""
    if any(s < 0 for s in shares.values()) or sum(shares.values()) <= 0:
        raise OxaError(f"shares must be non-negative with a positive sum; got {shares}")
    scale = total / sum(shares.values())
    counts = {label: int(share * scale) for label, share in shares.items()}
    by_remainder = sorted(shares, key=lambda label: -(shares[label] * scale - counts[label]))
    for label in by_remainder[: total - sum(counts.values())]:
        counts[label] += 1
    return counts


def exact_mix(rng: random.Random, total: int, shares: dict[str, float]) -> list[str]:
    """`total` labels in a seeded random order, with exactly `exact_counts` of each."""
    labels = [label for label, n in exact_counts(total, shares).items() for _ in range(n)]
    rng.shuffle(labels)
    return labels
