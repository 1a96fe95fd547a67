"""Batch composition for OXA_Full: exactly k negatives in every global batch (the paper code's `ul_global`).

`KNegativesSampler` yields dataset indices in global batches of `global_batch` = per-device batch
x gradient accumulation x ranks. Each global batch holds `k` negatives (loss_type 1) and
`global_batch - k` positives (loss_type 0), shuffled together. Accelerate cuts the index stream
into per-device batches and deals them round-robin to the ranks, and every rank takes its
accumulation steps from consecutive batches of its own, so one optimizer step consumes exactly
one global batch: the composition holds per step whatever the split.

Policy: an epoch has min(positives // (global_batch - k), negatives // k) global batches; the
class that runs out first ends it. The rest (`unused_positives`, `unused_negatives`) is left out
of that epoch; the shuffle differs per epoch, so different rows are left out each time. Order is
a pure function of (seed, epoch): every rank computes the same stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from curate.workspace import OxaError


class KNegativesSampler(torch.utils.data.Sampler[int]):
    """Dataset indices whose every consecutive `global_batch` holds exactly `negatives_per_batch` negatives."""

    def __init__(self, loss_types: Sequence[int], global_batch: int, negatives_per_batch: int, seed: int = 0):
        k = negatives_per_batch
        if global_batch < 1:
            raise OxaError(f"global batch must be positive, got {global_batch}")
        if not 0 < k < global_batch:
            raise OxaError(
                f"ul_global={k} must be between 1 and the global batch minus one ({global_batch - 1}): the global "
                f"batch ({global_batch} = per-device batch x accumulation x ranks) needs room for positives; "
                "lower ul_global or raise the batch"
            )
        types = np.asarray(loss_types, dtype=np.int64)
        unknown = sorted(set(types.tolist()) - {0, 1})
        if unknown:
            raise OxaError(f"loss_type must be 0 (promote) or 1 (suppress), found {unknown}")
        self.positives = np.flatnonzero(types == 0)
        self.negatives = np.flatnonzero(types == 1)
        self.global_batch, self.k, self.seed, self.epoch = global_batch, k, seed, 0
        per_batch_positives = global_batch - k
        self.num_batches = min(len(self.positives) // per_batch_positives, len(self.negatives) // k)
        if self.num_batches == 0:
            raise OxaError(
                f"not one global batch of {global_batch} with {k} negatives fits the data: {len(self.positives)} "
                f"positives (needs >= {per_batch_positives}) and {len(self.negatives)} negatives (needs >= {k}); "
                "add rows, lower ul_global or lower the batch"
            )
        self.unused_positives = len(self.positives) - self.num_batches * per_batch_positives
        self.unused_negatives = len(self.negatives) - self.num_batches * k

    def set_epoch(self, epoch: int) -> None:
        """Called by accelerate/Trainer at each epoch start: the order depends on (seed, epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches * self.global_batch

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        n, k = self.num_batches, self.k
        positives = rng.permutation(self.positives)[: n * (self.global_batch - k)].reshape(n, -1)
        negatives = rng.permutation(self.negatives)[: n * k].reshape(n, k)
        batches = rng.permuted(np.concatenate([positives, negatives], axis=1), axis=1)
        return iter(batches.reshape(-1).tolist())
