"""Steps side by side (train.threads.SideBySide): the same results in worker processes as
in this process, one after another, each on one torch thread."""

import os
from functools import partial

import pytest

from train.threads import SIDE_BY_SIDE_THREADS, SideBySide, usable_cpus

torch = pytest.importorskip("torch")


def product_sum(seed: int) -> tuple[int, float]:
    """A float sum whose order follows the thread count: torch's threads in the step."""
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(64, 300, generator=generator), torch.randn(300, 64, generator=generator)
    return torch.get_num_threads(), (a @ b).sum().item()


def test_workers_give_what_one_process_gives():
    works = [partial(product_sum, seed) for seed in range(3)]
    with SideBySide(1) as alone:
        here = {index: result for index, result, _ in alone.run(works)}
    with SideBySide(2) as side_by_side:
        there = {index: result for index, result, _ in side_by_side.run(works)}
    assert here == there and set(here) == {0, 1, 2}
    assert {threads for threads, _ in here.values()} == {SIDE_BY_SIDE_THREADS}


def test_usable_cpus_is_the_affinity_mask():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cpus() == expected


def test_a_worker_count_below_one_is_refused():
    with pytest.raises(ValueError, match="workers must be 1 or more; got 0"):
        SideBySide(0)
