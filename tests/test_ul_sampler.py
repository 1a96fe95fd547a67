import pytest

torch = pytest.importorskip("torch")

from accelerate.data_loader import BatchSamplerShard  # noqa: E402
from torch.utils.data import BatchSampler  # noqa: E402

from curate.workspace import OxaError  # noqa: E402
from train.sft.ul_sampler import KNegativesSampler  # noqa: E402

# 50 positives, 13 negatives, interleaved
LOSS_TYPES = [1 if i % 5 == 2 and i < 65 else 0 for i in range(63)]


def global_batches(sampler):
    order = list(sampler)
    return [order[i : i + sampler.global_batch] for i in range(0, len(order), sampler.global_batch)]


def test_every_global_batch_holds_exactly_k_negatives_and_leftovers_are_counted():
    assert LOSS_TYPES.count(1) == 13
    sampler = KNegativesSampler(LOSS_TYPES, global_batch=16, negatives_per_batch=4, seed=7)
    # positives allow 50 // 12 = 4 batches, negatives 13 // 4 = 3: negatives run out first
    assert sampler.num_batches == 3 and len(sampler) == 48
    assert (sampler.unused_positives, sampler.unused_negatives) == (50 - 36, 1)
    batches = global_batches(sampler)
    assert [sum(LOSS_TYPES[i] for i in batch) for batch in batches] == [4, 4, 4]
    assert len(set(sum(batches, []))) == 48  # no index twice within an epoch


def test_order_is_deterministic_per_seed_and_epoch_and_changes_across_epochs():
    def order(seed, epoch):
        sampler = KNegativesSampler(LOSS_TYPES, 16, 4, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 0) == order(0, 0)
    assert order(0, 1) == order(0, 1)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    for epoch in range(3):
        sampler = KNegativesSampler(LOSS_TYPES, 16, 4, seed=0)
        sampler.set_epoch(epoch)
        assert [sum(LOSS_TYPES[i] for i in b) for b in global_batches(sampler)] == [4, 4, 4]


@pytest.mark.parametrize(("per_device", "ranks", "accumulation"), [(2, 2, 4), (4, 2, 2), (1, 4, 4), (8, 2, 1)])
def test_each_optimizer_step_gets_one_global_batch_across_ranks_and_accumulation(per_device, ranks, accumulation):
    sampler = KNegativesSampler(LOSS_TYPES, per_device * ranks * accumulation, 4, seed=3)
    expected = global_batches(sampler)
    # What accelerate does on each rank: per-device batches dealt round-robin to the ranks.
    shards = [
        list(BatchSamplerShard(BatchSampler(sampler, per_device, False), ranks, rank, split_batches=False))
        for rank in range(ranks)
    ]
    for step, batch in enumerate(expected):
        taken = [
            index
            for rank in range(ranks)
            for micro in shards[rank][step * accumulation : (step + 1) * accumulation]
            for index in micro
        ]
        assert sorted(taken) == sorted(batch)
        assert sum(LOSS_TYPES[i] for i in taken) == 4
    assert all(len(shard) == sampler.num_batches * accumulation for shard in shards)


def test_bad_settings_give_clear_errors():
    with pytest.raises(OxaError, match=r"ul_global=16 must be between 1 and the global batch minus one \(7\)"):
        KNegativesSampler(LOSS_TYPES, 8, 16)
    with pytest.raises(OxaError, match=r"13 negatives \(needs >= 14\)"):
        KNegativesSampler(LOSS_TYPES, 20, 14)
    with pytest.raises(OxaError, match=r"50 positives \(needs >= 56\)"):
        KNegativesSampler(LOSS_TYPES, 60, 4)
    with pytest.raises(OxaError, match=r"found \[2\]"):
        KNegativesSampler([0, 1, 2], 2, 1)
