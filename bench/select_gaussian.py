"""Selection benchmark: `gaussian` (Algorithm 1 in curate/select/gaussian.py, as `oxa select`
runs it) against a plain pure-Python Algorithm 1, on the same candidates, in one run.

Candidates (metadata only, generated once, deterministically): 2.6M rows of sample_id
and problem_id (24-hex content ids, about 7.5 responses per problem), PPL (log-normal,
median 2.4, rounded to 3 decimals: many ties and values on bin edges, some outside
[1, 5]) and n_tokens (log-normal, median 6k, 200 to 32k). The paper's settings for the
7B model: mu 3.0, sigma 0.25, PPL in [1, 5], w 0.05, N 50,000, d 1, bin targets by
largest remainder.

Each side runs in its own process (peak RSS per process) and loads the candidates
before its clock starts:
  ours    select_candidates(Candidates(table), Selection(strategy="gaussian", ...)):
          from the Arrow table to the selected rows, validity checks and funnel included
  python  Algorithm 1 line by line over a list of tuples (built before the clock starts)
          with the same seeded tie-break; its selection must equal ours.

Targets: ours at least 20x faster than python, under 2 s, peak RSS under 2 GB.

    .venv/bin/python bench/select_gaussian.py --rows 2600000 --workdir /tmp/oxa-bench-select
"""

import sys
from pathlib import Path

# This file is named for its job and would shadow the standard library's `select`
# (which subprocess imports) while its folder is first on the path.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.ingest import run_measured  # noqa: E402

GEN_VERSION = 1  # bump when the generated candidates change
PAPER = {
    "mu": 3.0,
    "sigma": 0.25,
    "p_min": 1.0,
    "p_max": 5.0,
    "bin_width": 0.05,
    "n": 50_000,
    "max_per_problem": 1,
    "seed": 0,
}
MASK = 2**64 - 1


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    data = rng.bytes(12 * n).hex().encode()
    offsets = np.arange(n + 1, dtype=np.int32) * 24
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def generate(path: Path, rows: int, seed: int) -> None:
    manifest = path.with_suffix(".json")
    want = {"rows": rows, "seed": seed, "version": GEN_VERSION}
    if path.exists() and manifest.exists() and json.loads(manifest.read_text()) == want:
        print(f"candidates: reusing {path}")
        return
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    problems = _hex_ids(rng, max(1, int(rows / 7.5)))
    table = pa.table(
        {
            "sample_id": _hex_ids(rng, rows),
            "problem_id": problems.take(pa.array(rng.integers(0, len(problems), rows))),
            "verdict": pa.array(["correct"] * rows),
            "ppl": np.round(rng.lognormal(math.log(2.4), 0.3, rows), 3),
            "n_tokens": np.clip(rng.lognormal(math.log(6000), 0.8, rows), 200, 32_768).astype(np.int64),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    manifest.write_text(json.dumps(want))
    print(f"candidates: generated {rows:,} rows in {time.perf_counter() - t0:.1f}s -> {path}")


# -- the two sides, each run in a child process ----------------------------------------------


def run_ours(table: pa.Table) -> tuple[float, list[str]]:
    from curate.select import Selection
    from curate.select.select import Candidates, select_candidates

    selection = Selection(strategy="gaussian", scores_tag="bench", rounding="largest_remainder", **PAPER)
    t0 = time.perf_counter()
    result = select_candidates(Candidates(table, table.num_rows), selection)
    seconds = time.perf_counter() - t0
    return seconds, result.chosen["sample_id"].to_pylist()


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def run_python(table: pa.Table) -> tuple[float, list[str]]:
    """Algorithm 1 as the paper writes it, in plain Python."""
    rows = list(zip(*(table[c].to_pylist() for c in ("sample_id", "problem_id", "ppl", "n_tokens"))))
    mu, sigma, n, d, seed = PAPER["mu"], PAPER["sigma"], PAPER["n"], PAPER["max_per_problem"], PAPER["seed"]
    p_min, p_max, w = PAPER["p_min"], PAPER["p_max"], PAPER["bin_width"]
    t0 = time.perf_counter()
    # Step 1: binning (a PPL within 1e-9 bin widths below an edge is on it, as in oxa)
    m = math.ceil((p_max - p_min) / w - 1e-9)
    bins = [[] for _ in range(m)]
    for row in rows:
        p = row[2]
        if p_min <= p <= p_max:
            bins[min(math.floor((p - p_min) / w + 1e-9), m - 1)].append(row)
    # Step 2: target distribution, largest remainders to sum to N
    dens = [
        (1 / (sigma * math.sqrt(2 * math.pi))) * math.exp(-0.5 * ((p_min + (i + 0.5) * w - mu) / sigma) ** 2)
        for i in range(m)
    ]
    total = sum(dens)
    exact = [n * (di / total) for di in dens]
    targets = [math.floor(x) for x in exact]
    for i in sorted(range(m), key=lambda i: (-(exact[i] - targets[i]), i))[: n - sum(targets)]:
        targets[i] += 1
    # Step 3: length-prioritized sampling with the seeded tie-break
    seed_mix = _splitmix64(seed)
    count = defaultdict(int)
    selected = []
    for i in range(m):
        bins[i].sort(key=lambda r: (-r[3], _splitmix64(int(r[0][:16], 16) ^ seed_mix), r[0]))
        c = 0
        for sample_id, problem_id, _, _ in bins[i]:
            if c < targets[i] and count[problem_id] < d:
                selected.append(sample_id)
                count[problem_id] += 1
                c += 1
    return time.perf_counter() - t0, selected


def child(side: str, data: Path, out: Path) -> None:
    table = pq.read_table(data)
    seconds, selected = (run_ours if side == "ours" else run_python)(table)
    digest = hashlib.sha256("\n".join(selected).encode()).hexdigest()[:16]
    out.write_text(json.dumps({"seconds": seconds, "selected": len(selected), "digest": digest}))


# -- the parent --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_600_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-select"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per side (best time, max RSS)")
    parser.add_argument("--child", choices=["ours", "python"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out)
        return
    data = args.workdir / "candidates.parquet"
    generate(data, args.rows, args.seed)
    results = {}
    for side in ("ours", "python"):
        runs = []
        for i in range(args.repeat):
            out = args.workdir / f"{side}-{i}.json"
            cmd = [sys.executable, __file__, "--child", side, "--data", str(data), "--out", str(out)]
            _, rss, rc = run_measured(cmd, args.workdir / f"{side}-{i}.log")
            if rc != 0:
                sys.exit(rc)
            runs.append({**json.loads(out.read_text()), "rss": rss})
        results[side] = {
            "seconds": min(r["seconds"] for r in runs),
            "rss": max(r["rss"] for r in runs),
            "selected": runs[0]["selected"],
            "digest": runs[0]["digest"],
        }
    ours, python = results["ours"], results["python"]
    same = ours["digest"] == python["digest"] and ours["selected"] == python["selected"]
    ratio = python["seconds"] / ours["seconds"]
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, NumPy {np.__version__}, pyarrow {pa.__version__}"
    )
    print(f"{args.rows:,} candidates, N {PAPER['n']:,}, d {PAPER['max_per_problem']}, mu {PAPER['mu']}")
    print(f"{'':8}{'seconds':>10}{'peak RSS MB':>14}{'selected':>10}")
    for side, r in results.items():
        print(f"{side:8}{r['seconds']:>10.3f}{r['rss']:>14.0f}{r['selected']:>10,}")
    print(
        f"python/ours {ratio:.1f}x (target >= 20x); ours {ours['seconds']:.2f} s (target < 2 s), "
        f"peak RSS {ours['rss']:.0f} MB (target < 2048 MB); same selection: {'OK' if same else 'DIFFERENT'}"
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
