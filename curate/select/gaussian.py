"""Gaussian-guided PPL sampling: Algorithm 1 of the OXA paper (§3.2.1, appendix A.3), with
the per-bin fill of either the printed algorithm or the authors' released script
(make_OXA_MLE_data.py).

1. Binning: M = int(round((p_max - p_min) / w)) bins, as the released script counts them
   (the printed algorithm says ceil; the two agree when w divides the range). Bin i
   covers [p_min + i*w, p_min + (i+1)*w); the last one runs from p_min + (M-1)*w to p_max,
   closed, so a width that does not divide the range widens the last bin (up to 1.5 w)
   or narrows it (down to w/2), and every bin centre lies inside the range. Rows whose
   PPL is outside [p_min, p_max] are discarded.
2. Target distribution: the Gaussian density d_i at each bin's centre
   x_i = p_min + (i + 1/2)*w; T_i = floor(N * d_i / sum_j d_j) ('floor', the paper's
   pseudocode), or those floors plus one for the N - sum(floors) bins with the largest
   remainders, ties to the lower bin ('largest_remainder', the paper's released code:
   the counts sum to exactly N).
3. Length-prioritized sampling, bins in order of PPL, each bin's rows longest first
   (seeded tie-break), d counted per problem across all bins filled so far:
   - fill 'longest_first' (Algorithm 1 as printed): walk the bin once, taking a row while
     the bin has fewer than T_i and its problem fewer than d rows;
   - fill 'round_robin' (the released script): passes k = 1, ..., d over the bin; pass k
     walks the bin from its longest row and takes a row not yet taken while the bin has
     fewer than T_i, its problem fewer than k rows in this bin and fewer than d in all.
     So a bin first gets one row from as many problems as it can, then second rows, ...
     The released script does not mark taken rows, so its passes k >= 2 append a
     problem's longest row of the bin again (a repeated row) instead of its next one;
     oxa takes each row at most once. The two agree whenever pass 1 fills the bin, and
     always at d = 1.

Floating point: (1.15 - 1.0) / 0.05 is 2.9999999999999982, so a plain floor puts PPL
1.15 in the bin below its edge. Here, as in the released script, a PPL within 1e-9 bin
widths below an edge counts as on it, and PPL exactly p_max falls in the last bin.

`redistribute` (off by default, not in the paper; longest_first only): after the pass,
each short bin's shortfall, in bin order, is taken from its nearest bins that still have
eligible rows (nearer first; at equal distance the one whose centre is closer to mu,
then the lower), each continuing down its own length order under the same cap.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from curate.select.sampling import IdsAt, ProblemCap, RowOrder
from curate.workspace.errors import OxaError

ROUNDINGS = ("floor", "largest_remainder")
FILLS = ("longest_first", "round_robin")
EDGE_TOLERANCE = 1e-9  # in bin widths


@dataclass(frozen=True)
class GaussianParams:
    mu: float
    sigma: float
    p_min: float
    p_max: float
    bin_width: float
    n: int
    rounding: str = "largest_remainder"
    redistribute: bool = False
    fill: str = "longest_first"

    @property
    def n_bins(self) -> int:
        return bin_count(self.p_min, self.p_max, self.bin_width)

    def centre(self, i: int) -> float:
        return self.p_min + (i + 0.5) * self.bin_width

    def bounds(self, i: int) -> tuple[float, float]:
        high = self.p_max if i == self.n_bins - 1 else self.p_min + (i + 1) * self.bin_width
        return self.p_min + i * self.bin_width, high


def bin_count(p_min: float, p_max: float, bin_width: float) -> int:
    """M, as the released script computes it (Python's round: halves to even)."""
    return int(round((p_max - p_min) / bin_width))


def bin_index(ppl: np.ndarray, params: GaussianParams, in_range: np.ndarray) -> np.ndarray:
    """Each PPL's bin; rows not `in_range` get bin n_bins, which no order reads. 16-bit
    where the bins allow: a stable argsort of 16-bit integers is a radix sort."""
    index = ppl - params.p_min  # in place from here: pool-sized arrays are costly to allocate
    index /= params.bin_width
    index += EDGE_TOLERANCE
    np.floor(index, out=index)
    np.clip(index, 0, params.n_bins - 1, out=index)
    index[~in_range] = params.n_bins
    return index.astype(np.int16 if params.n_bins < 2**15 - 1 else np.int64)


def densities(params: GaussianParams) -> list[float]:
    """The Gaussian density at each bin centre, in plain floats (the same arithmetic on
    every machine, so ties between targets break the same way)."""
    try:
        scale = 1 / (params.sigma * math.sqrt(2 * math.pi))
        dens = [
            scale * math.exp(-0.5 * ((params.centre(i) - params.mu) / params.sigma) ** 2) for i in range(params.n_bins)
        ]
    except (OverflowError, ZeroDivisionError):
        dens = [math.inf]
    if not math.isfinite(sum(dens)) or sum(dens) == 0:
        raise OxaError(
            f"gaussian: mu {params.mu} and sigma {params.sigma} give the PPL bins of [{params.p_min}, {params.p_max}] "
            "no usable density in floating point (every bin centre is too many sigmas from mu, or sigma is too "
            "small to compute with); put mu inside or near the PPL range, with a sigma such as the paper's 0.25"
        )
    return dens


def bin_targets(params: GaussianParams) -> list[int]:
    """T_i per bin: floor(N * d_i / sum d), plus the largest remainders if asked."""
    dens = densities(params)
    total = sum(dens)
    exact = [params.n * (d / total) for d in dens]
    targets = [math.floor(x) for x in exact]
    if params.rounding == "largest_remainder":
        left = params.n - sum(targets)
        by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - targets[i]), i))
        for i in by_remainder[:left]:
            targets[i] += 1
    return targets


def select_gaussian_bins(
    in_range: np.ndarray,
    ppl: np.ndarray,
    length: np.ndarray,
    ids_at: IdsAt,
    cap: ProblemCap,
    params: GaussianParams,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Algorithm 1 (with `params.fill`) over the candidates (all arrays are per candidate) that are usable
    and have a PPL in [p_min, p_max] (`in_range`); `ids_at` gives their sample ids.
    Returns (chosen candidate indices in selection order, the bin of each, per-bin report).
    """
    bins = bin_index(ppl, params, in_range)
    # the rows of each bin (each bin's RowOrder then sorts only what it walks)
    by_bin = np.argsort(bins, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(bins, minlength=params.n_bins + 1))])
    orders = []
    for i in range(params.n_bins):
        members = by_bin[starts[i] : starts[i + 1]]
        orders.append(RowOrder(members, ids_at, seed, primary=-length[members]))
    targets = bin_targets(params)
    fill = cap.take_in_passes if params.fill == "round_robin" else cap.take
    chosen: list[list[np.ndarray]] = [[] for _ in orders]
    for i, order in enumerate(orders):
        chosen[i].append(fill(order, targets[i]))
    own = [len(c[0]) for c in chosen]
    extra = [0] * params.n_bins
    if params.redistribute:
        for short in range(params.n_bins):
            missing = targets[short] - own[short]
            for j in _neighbours(short, params):
                if missing == 0:
                    break
                if orders[j].exhausted:
                    continue
                more = cap.take(orders[j], missing)
                chosen[j].append(more)
                extra[j] += len(more)
                missing -= len(more)
    report = []
    for i in range(params.n_bins):
        low, high = params.bounds(i)
        report.append(
            {
                "bin": i,
                "range": f"[{low:.4g}, {high:.4g}{']' if i == params.n_bins - 1 else ')'}",
                "low": low,
                "high": high,
                "centre": params.centre(i),
                "available": len(orders[i]),
                "target": targets[i],
                "achieved": own[i] + extra[i],
                "shortfall": targets[i] - own[i],
                "redistributed_in": extra[i],
            }
        )
    picked = [np.concatenate(c) for c in chosen]
    indices = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
    bin_of = np.repeat(np.arange(params.n_bins), [len(p) for p in picked])
    return indices, bin_of, report


def _neighbours(i: int, params: GaussianParams) -> Iterator[int]:
    """The other bins, nearest first; at equal distance the centre closer to mu, then the lower."""
    for distance in range(1, params.n_bins):
        pair = [j for j in (i - distance, i + distance) if 0 <= j < params.n_bins]
        yield from sorted(pair, key=lambda j: (abs(params.centre(j) - params.mu), j))
