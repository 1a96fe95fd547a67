"""Gaussian-guided PPL sampling against a naive reference written from the paper's
pseudocode (Algorithm 1, with the released script's bin count), on random pools with
ties, over- and under-filled bins, binding caps and PPL values on bin edges."""

import math
import random
from collections import defaultdict
from decimal import Decimal

import pytest

from curate.select import Selection, sampling
from curate.select.gaussian import GaussianParams, bin_targets
from curate.select.select import select_candidates
from curate.workspace import OxaError
from tests.pools import in_memory, random_pool, tiebreak


def reference_gaussian(rows, mu, sigma, n, d, p_min, p_max, w, rounding, seed):
    """Algorithm 1, line by line. rows: (sample_id, problem_id, ppl, length). Binning in
    exact decimal arithmetic on the values as written (1.15 is on the edge of [1.15, 1.2)),
    with M = round((p_max - p_min) / w) bins as the released script counts them (the
    printed ceil adds a bin when w does not divide the range); the last bin ends at p_max."""
    lo, hi, width = Decimal(repr(p_min)), Decimal(repr(p_max)), Decimal(repr(w))
    # Step 1: binning
    m = round((hi - lo) / width)
    bins = [[] for _ in range(m)]
    for row in rows:
        p = Decimal(repr(row[2]))
        if not lo <= p <= hi:
            continue  # discard samples outside [p_min, p_max]
        bins[min(int((p - lo) // width), m - 1)].append(row)
    # Step 2: target distribution
    dens = []
    for i in range(m):
        x = p_min + (i + 0.5) * w
        dens.append((1 / (sigma * math.sqrt(2 * math.pi))) * math.exp(-0.5 * ((x - mu) / sigma) ** 2))
    total = sum(dens)
    targets = [math.floor(n * (di / total)) for di in dens]
    if rounding == "largest_remainder":
        remainders = [(n * (di / total) - t, -i) for i, (di, t) in enumerate(zip(dens, targets))]
        for _, neg_i in sorted(remainders, reverse=True)[: n - sum(targets)]:
            targets[-neg_i] += 1
    # Step 3: length-prioritized sampling
    count = defaultdict(int)
    selected = []
    for i in range(m):
        bins[i].sort(key=lambda r: (-r[3], tiebreak(r[0], seed), r[0]))
        c = 0
        for sample_id, problem_id, _, _ in bins[i]:
            if c < targets[i] and (d is None or count[problem_id] < d):
                selected.append(sample_id)
                count[problem_id] += 1
                c += 1
    return selected, targets


def gaussian(**fields) -> Selection:
    return Selection(strategy="gaussian", scores_tag="t", allow_shortfall=True, **fields)


@pytest.mark.parametrize("case", range(40))
def test_gaussian_matches_the_papers_pseudocode(case, monkeypatch):
    if case % 2:  # walk in the smallest chunks: every prefix extension and partition path
        monkeypatch.setattr(sampling, "_MIN_PREFIX", 1)
    rng = random.Random(case)
    rows = random_pool(rng, size=rng.choice([50, 300, 1500]), problems=rng.choice([5, 40, 400]))
    params = {
        "mu": rng.choice([2.0, 2.5, 3.0, 3.37]),
        "sigma": rng.choice([0.1, 0.25, 0.5, 1.0]),
        "n": rng.choice([10, 100, 700, 2000]),
        "max_per_problem": rng.choice([1, 2, None]),
        "p_min": rng.choice([1.0, 1.5]),
        "p_max": rng.choice([5.0, 4.0]),
        # 0.3 and 0.7 widen the last bin, 0.45 narrows it
        "bin_width": rng.choice([0.05, 0.1, 0.25, 0.3, 0.45, 0.7]),
        "rounding": rng.choice(["floor", "largest_remainder"]),
        "seed": rng.randrange(2**32),
    }
    expected, targets = reference_gaussian(
        rows,
        params["mu"],
        params["sigma"],
        params["n"],
        params["max_per_problem"],
        params["p_min"],
        params["p_max"],
        params["bin_width"],
        params["rounding"],
        params["seed"],
    )
    if not expected:  # an empty subset is an error, never a silent result
        with pytest.raises(OxaError, match="selected 0 of the target"):
            select_candidates(in_memory(rows), gaussian(**params))
        return
    result = select_candidates(in_memory(rows), gaussian(**params))
    assert result.chosen["sample_id"].to_pylist() == expected
    assert [b["target"] for b in result.bins] == targets
    if params["rounding"] == "largest_remainder":
        assert sum(targets) == params["n"]
    funnel = result.funnel
    assert funnel["input"] == sum(funnel["dropped"].values()) + funnel["selected"] == len(rows)


def test_bins_edges_and_range():
    """PPL exactly p_max is in the last bin, 1.15 on the edge of [1.15, 1.2), values
    outside [p_min, p_max] are discarded; in a bin the longest comes first."""
    rows = [
        ("a" * 24, "1" * 24, 5.0, 10),  # p_max: last bin
        ("b" * 24, "2" * 24, 1.15, 10),  # bin 3 of [1, 1.05), [1.05, 1.1), ...
        ("c" * 24, "3" * 24, 1.0, 10),  # p_min: bin 0
        ("d" * 24, "4" * 24, 0.999, 10),  # below 1: no PPL at all (invalid_ppl)
        ("e" * 24, "5" * 24, 5.0001, 10),  # above: out of range
        ("f" * 24, "6" * 24, 1.1499999, 10),  # bin 2
        ("0" * 24, "7" * 24, 1.15, 20),  # bin 3, longer
    ]
    result = select_candidates(in_memory(rows), gaussian(n=1000, mu=3, sigma=10))
    bins = {sid: b for sid, b in zip(result.chosen["sample_id"].to_pylist(), result.chosen["ppl_bin"].to_pylist())}
    assert bins == {"c" * 24: 0, "f" * 24: 2, "0" * 24: 3, "b" * 24: 3, "a" * 24: 79}
    assert result.chosen["sample_id"].to_pylist()[2:4] == ["0" * 24, "b" * 24]  # longest first
    assert result.funnel["dropped"]["out_of_range"] == 1 and result.funnel["dropped"]["invalid_ppl"] == 1


@pytest.mark.parametrize(
    ("w", "bins", "last"),
    [(0.05, 80, (4.95, 5.0)), (0.3, 13, (4.6, 5.0)), (0.45, 9, (4.6, 5.0)), (0.7, 6, (4.5, 5.0)), (1.6, 2, (2.6, 5.0))],
)
def test_bin_count_as_the_released_script(w, bins, last):
    """M = int(round((p_max - p_min) / w)) over [1, 5] (Python's round: 2.5 -> 2), bins of
    width w from p_min, the last one ending at p_max: 13 bins at w = 0.3, not ceil's 14."""
    params = GaussianParams(3.0, 0.25, 1.0, 5.0, w, 100)
    assert params.n_bins == bins
    low, high = params.bounds(bins - 1)
    assert (round(low, 9), high) == last
    assert 1.0 < params.centre(bins - 1) < 5.0


def test_a_wide_last_bin_takes_the_rest_of_the_range():
    """At w = 0.3 PPL 4.95 is in the 13th bin [4.6, 5.0], which Algorithm 1's ceil would
    have split off as a 14th, [4.9, 5.0] with its centre 5.05 outside the range."""
    rows = [("a" * 24, "1" * 24, 4.95, 10), ("b" * 24, "2" * 24, 4.61, 20), ("c" * 24, "3" * 24, 4.59, 30)]
    result = select_candidates(in_memory(rows), gaussian(n=1000, mu=3, sigma=10, bin_width=0.3))
    assert len(result.bins) == 13
    assert dict(zip(result.chosen["sample_id"].to_pylist(), result.chosen["ppl_bin"].to_pylist())) == {
        "c" * 24: 11,
        "b" * 24: 12,
        "a" * 24: 12,
    }
    assert result.bins[12]["range"] == "[4.6, 5]"


def test_targets_floor_and_largest_remainder():
    floor = GaussianParams(2.5, 0.25, 1.0, 5.0, 0.05, 50_000, "floor")
    exact = GaussianParams(2.5, 0.25, 1.0, 5.0, 0.05, 50_000, "largest_remainder")
    assert floor.n_bins == 80
    assert sum(bin_targets(exact)) == 50_000
    assert sum(bin_targets(floor)) < 50_000
    assert all(0 <= e - f <= 1 for e, f in zip(bin_targets(exact), bin_targets(floor)))
    # the peak sits at the bins around mu = 2.5: [2.45, 2.5) and [2.5, 2.55)
    targets = bin_targets(exact)
    assert targets.index(max(targets)) in (29, 30)


def test_cap_counts_across_bins_in_bin_order():
    """A problem taken in a lower bin cannot take a longer response in a higher bin."""
    p = "9" * 24
    rows = [("a" * 24, p, 2.40, 100), ("b" * 24, p, 2.60, 900), ("c" * 24, "8" * 24, 2.60, 50)]
    result = select_candidates(in_memory(rows), gaussian(n=2, mu=2.5, sigma=0.1, bin_width=0.5))
    # bins [2.0, 2.5) and [2.5, 3.0) get one row each; 'b' is longer but its problem is full
    assert result.chosen["sample_id"].to_pylist() == ["a" * 24, "c" * 24]
    assert result.funnel["dropped"]["over_problem_cap"] == 1


def test_redistribute_fills_a_short_bin_from_its_neighbours():
    rows = [(f"{i:024x}", f"{i:024x}", 2.6, 100 + i) for i in range(6)]  # all in [2.5, 3.0)
    rows += [(f"{100 + i:024x}", f"{100 + i:024x}", 2.1, 10) for i in range(1)]  # [2.0, 2.5): one row
    plain = gaussian(n=6, mu=2.5, sigma=0.1, bin_width=0.5, p_min=2.0, p_max=3.0)
    result = select_candidates(in_memory(rows), plain)
    assert [b["target"] for b in result.bins] == [3, 3]
    assert [b["achieved"] for b in result.bins] == [1, 3]
    assert [b["shortfall"] for b in result.bins] == [2, 0]
    with pytest.raises(OxaError, match=r"selected 4 of the target 6.*set redistribute = true"):
        select_candidates(in_memory(rows), Selection(**{**plain.__dict__, "allow_shortfall": False}))
    moved = select_candidates(in_memory(rows), Selection(**{**plain.__dict__, "redistribute": True}))
    # the upper bin continues down its length order: rows 5, 4, 3 first, then 2 and 1
    assert moved.chosen["sample_id"].to_pylist() == [f"{100:024x}"] + [f"{i:024x}" for i in (5, 4, 3, 2, 1)]
    assert [(b["achieved"], b["redistributed_in"]) for b in moved.bins] == [(1, 0), (5, 2)]
