"""Ingest benchmark: `oxa ingest --preset acereason` vs. a raw DuckDB parquet copy.

Generates (once, deterministically) a synthetic pool shaped like
nvidia/AceReason-1.1-SFT -- zstd parquet shards with string columns
`category`, `source`, `input`, `output`; ~95% math / ~5% code rows, about
rows/7.5 distinct problems, ~1 KB DeepSeek-R1-style responses
("<think>...</think>\n\n... \\boxed{N}"), every response a distinct string.
Rows are in random problem order (worst case for grouping by problem).

Then times, each in its own subprocess:
  ours  `python -m curate.cli ingest WS POOL --preset acereason`
        (after an untimed `python -m curate.cli init WS` on a fresh WS)
  raw   DuckDB `COPY (SELECT ... WHERE category = 'math') TO raw.parquet`
        -- the floor: just reading, filtering and rewriting the same bytes.

Targets: ours within 2x the wall time of raw, and peak RSS under 4 GB.
The sample count in WS/pool/samples must equal the pool's math-row count.

    .venv/bin/python bench/ingest.py --rows 2600000 --workdir /tmp/oxa-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

GEN_VERSION = 1  # bump when the generated text changes
REPO = Path(__file__).resolve().parent.parent
SOURCES = ["numina_math", "aops", "olympiads", "amc_aime", "math_competition"]
WHAT = [
    "the sum",
    "the product",
    "the remainder",
    "the area",
    "the number of ways",
    "the smallest integer",
    "the expected value",
    "the perimeter",
    "the common difference",
]
INTRO = [
    "",
    "",
    "The following appeared on a regional olympiad. ",
    "Consider the configuration below. ",
    "This is a warm-up problem from a number theory handout. ",
]
PROBLEMS = [
    "Let $n = {p}$ and suppose a sequence satisfies $a_1 = {a}$ and $a_{{k+1}} = a_k + {b}$ for all "
    "$k \\ge 1$. Find {w} of the first $n$ terms, reduced modulo ${c}$.",
    "A rectangle has side lengths ${a}$ and ${b}$. A point is chosen uniformly at random inside it, and "
    "lines are drawn to each of the {d} marked points on its boundary (label {p}). Determine {w} of the "
    "resulting regions, given that one of them has area ${c}$.",
    "How many ordered pairs of positive integers $(x, y)$ with $x, y \\le {p}$ satisfy "
    "$x^2 + {b}y \\equiv {c} \\pmod{{{d}}}$? Express {w} of all such $x$ as a single integer.",
    "In triangle $ABC$, $AB = {a}$, $BC = {b}$ and $CA = {c}$. Point $D$ lies on $BC$ with "
    "$BD:DC = {d}:{e}$. Compute {w} involving $AD^2$, rounded to the nearest integer (case {p}).",
]
OUTRO = ["", " Give your answer as an integer.", " Justify every step; a bare numerical answer gets no credit."]
OPEN = [
    "Hmm, wait",
    "Let me think again",
    "Alternatively",
    "So",
    "Now",
    "Okay",
    "Actually",
    "On the other hand",
    "Then",
    "Let me double-check",
    "Going back to the setup",
]
MIDDLE = [
    "if I substitute {a} for the variable",
    "the term {a}/{b} simplifies",
    "the bound {a} might not be tight",
    "factoring {a} gives a small prime",
    "I should check the case n = {a}",
    "the difference is {b} - {a}",
    "the pattern repeats every {c} steps",
    "squaring both sides introduces {a} as a root",
    "the generating function has a pole at {c}",
    "by symmetry only {c} cases remain",
]
CLOSE = [
    "which leaves",
    "and that matches the earlier estimate of",
    "so the congruence holds modulo",
    "but I still need to verify it for",
    "so the running total becomes",
    "giving",
    "hence the count is",
]


def _problem_table(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct problem statements (each embeds its own id), ~150-400 chars."""
    t, i, o, w = (rng.integers(0, len(x), n) for x in (PROBLEMS, INTRO, OUTRO, WHAT))
    a, b, c = rng.integers(2, 999, (3, n))
    d, e = rng.integers(2, 19, (2, n))
    return [
        INTRO[i[p]]
        + PROBLEMS[t[p]].format(p=p + 11, a=a[p], b=b[p], c=c[p], d=d[p], e=e[p], w=WHAT[w[p]])
        + OUTRO[o[p]]
        for p in range(n)
    ]


def _sentence_bank(rng: np.random.Generator, n: int) -> pa.Array:
    """n sentence heads like 'Actually, the term 12/7 simplifies, which leaves ' (a number follows)."""
    o, m, c = (rng.integers(0, len(x), n) for x in (OPEN, MIDDLE, CLOSE))
    a, b = rng.integers(2, 5000, (2, n))
    return pa.array(
        [f"{OPEN[o[k]]}, {MIDDLE[m[k]].format(a=a[k], b=b[k], c=a[k] % 97 + 2)}, {CLOSE[c[k]]} " for k in range(n)]
    )


def _s(x) -> pa.Array:
    return pc.cast(pa.array(x), pa.string())


def _shard(
    i: int, n: int, row0: int, seed: int, problems: pa.Array, answers: np.ndarray, psource: np.ndarray, bank: pa.Array
) -> pa.Table:
    """Build one shard with vectorized pyarrow string joins (no per-row Python)."""
    rng = np.random.default_rng([seed, i])
    is_code = rng.random(n) < 0.05
    pid = rng.integers(0, len(problems), n)
    a, b = rng.integers(10, 9999, n), np.arange(row0, row0 + n) + 1000  # b unique -> distinct
    k = rng.integers(7, 12, n)  # reasoning sentences per response
    ends = pa.array([". ", ". ", ".\n\n"])
    sentences = []  # bank head + per-row number + end; all null when j >= k (skipped in the join)
    for j in range(11):
        skip = k <= j
        sentences += [
            bank.take(pa.array(rng.integers(0, len(bank), n), mask=skip)),
            _s(pa.array(rng.integers(0, 100_000, n), mask=skip)),
            ends.take(pa.array(rng.integers(0, len(ends), n), mask=skip)),
        ]
    ans = np.where(rng.random(n) < 0.85, answers[pid], rng.integers(0, 1000, n))
    math_out = pc.binary_join_element_wise(
        "<think>\nOkay, let me restate the problem and set up the notation first. ",
        *sentences[:15],
        "Compute ",
        _s(a),
        " * ",
        _s(b),
        " = ",
        _s(a * b),
        ".\n\n",
        *sentences[15:],
        "\n</think>\n\nWe reduce the problem to a single congruence and evaluate it directly. "
        "Checking the boundary cases confirms the value, so the answer is $\\boxed{",
        _s(ans),
        "}$.",
        "",
        null_handling="skip",
    )
    code_in = pc.binary_join_element_wise(
        "Write a function `solve(xs)` that returns the maximum sum of a subarray of length ",
        _s(a % 50 + 1),
        " whose elements are all divisible by ",
        _s(b % 13 + 2),
        ".",
        "",
    )
    code_out = pc.binary_join_element_wise(
        "<think>\n",
        *sentences[:9],
        "\n</think>\n\n```python\ndef solve(xs):\n    k = ",
        _s(a % 50 + 1),
        "\n    d = ",
        _s(b),
        "\n    return max(sum(xs[i:i+k]) for i in range(len(xs) - k + 1))\n```",
        "",
        null_handling="skip",
    )
    mask = pa.array(is_code)
    return pa.table(
        {
            "category": pa.array(np.where(is_code, "code", "math")),
            "source": pa.array(np.where(is_code, "code_contests", psource[pid])),
            "input": pc.if_else(mask, code_in, problems.take(pa.array(pid))),
            "output": pc.if_else(mask, code_out, math_out),
        }
    )


def generate(pool: Path, rows: int, seed: int, shard_rows: int, force: bool) -> dict:
    manifest_path = pool.parent / "pool.manifest.json"  # outside pool/: ingest globs that dir
    want = {"rows": rows, "seed": seed, "shard_rows": shard_rows, "version": GEN_VERSION}
    if manifest_path.exists() and not force:
        m = json.loads(manifest_path.read_text())
        if {k: m.get(k) for k in want} == want and all((pool / f).exists() for f in m["files"]):
            print(f"pool: reusing {len(m['files'])} shards in {pool}")
            return m
    t0 = time.perf_counter()
    shutil.rmtree(pool, ignore_errors=True)
    pool.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    n_problems = max(1, int(rows / 7.5))
    problems = pa.array(_problem_table(rng, n_problems))
    answers = rng.integers(0, 1000, n_problems)
    psource = np.array(SOURCES)[rng.integers(0, len(SOURCES), n_problems)]
    bank = _sentence_bank(rng, 1 << 16)
    files, math_rows = [], 0
    for i, row0 in enumerate(range(0, rows, shard_rows)):
        t = _shard(i, min(shard_rows, rows - row0), row0, seed, problems, answers, psource, bank)
        math_rows += t.num_rows - pc.sum(pc.equal(t["category"], "code")).as_py()
        files.append(f"part-{i:05d}.parquet")
        pq.write_table(t, pool / files[-1], compression="zstd")
    m = {**want, "math_rows": math_rows, "problems": n_problems, "files": files}
    manifest_path.write_text(json.dumps(m, indent=1))
    print(f"pool: generated {rows:,} rows in {len(files)} shards in {time.perf_counter() - t0:.1f}s")
    return m


# Peak RSS: the command runs under a tiny Python wrapper that reads
# getrusage(RUSAGE_CHILDREN).ru_maxrss after its single child exits. Asking from
# here (wait4 / RUSAGE_CHILDREN) is wrong twice over: RUSAGE_CHILDREN is the max over
# *all* our children so far, and Linux seeds a forked+exec'd child's maxrss with the
# parent's high-water mark -- ours is large after generating the pool. The wrapper
# is ~10 MB, so that floor is negligible; unlike polling /proc/<pid>/status VmHWM it
# cannot miss a short spike, and unlike /usr/bin/time it needs nothing installed.
RSS_WRAPPER = """import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)"""


def run_measured(cmd: list[str], log: Path) -> tuple[float, float, int]:
    """Run cmd in its own process; return (wall s, peak RSS MB, exit code)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    rss_file = log.with_suffix(".rss")
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        rc = subprocess.call(
            [sys.executable, "-c", RSS_WRAPPER, str(rss_file), *cmd], stdout=out, stderr=subprocess.STDOUT, env=env
        )
        wall = time.perf_counter() - t0
    if rc != 0:
        tail = log.read_text(errors="replace")[-2000:]
        print(f"  FAILED (rc={rc}): {' '.join(cmd)}\n{tail}", file=sys.stderr)
    return wall, int(rss_file.read_text()) / 1024, rc  # ru_maxrss is KiB on Linux


RAW_COPY = """import duckdb, sys
duckdb.sql(f\"\"\"COPY (SELECT input AS problem, output AS response, source, category
  FROM read_parquet('{sys.argv[1]}/*.parquet') WHERE category = 'math')
  TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)\"\"\")"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_600_000, help="rows in the synthetic pool (default: %(default)s)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench"), help="scratch dir for pool, ws, raw output")
    ap.add_argument("--seed", type=int, default=1234, help="generator seed (default: %(default)s)")
    ap.add_argument("--shard-rows", type=int, default=100_000, help="rows per pool shard (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; best wall time is reported")
    ap.add_argument("--regenerate", action="store_true", help="rebuild the pool even if the manifest matches")
    args = ap.parse_args()

    wd = args.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    pool, ws, raw_out = wd / "pool", wd / "ws", wd / "raw.parquet"
    m = generate(pool, args.rows, args.seed, args.shard_rows, args.regenerate)

    py, cli = sys.executable, [sys.executable, "-m", "curate.cli"]
    res = {"ours": [], "raw": []}
    ours_ok = raw_ok = True
    for r in range(args.repeat):
        if ours_ok:  # init is untimed; a fresh workspace every run
            shutil.rmtree(ws, ignore_errors=True)
            ours_ok = run_measured(cli + ["init", str(ws)], wd / "ours-init.log")[2] == 0
        if ours_ok:
            wall, rss, rc = run_measured(
                cli + ["ingest", str(ws), str(pool), "--preset", "acereason"], wd / "ours-ingest.log"
            )
            ours_ok = rc == 0
            res["ours"] += [(wall, rss)] if ours_ok else []
        raw_out.unlink(missing_ok=True)
        wall, rss, rc = run_measured([py, "-c", RAW_COPY, str(pool), str(raw_out)], wd / "raw.log")
        raw_ok = raw_ok and rc == 0
        res["raw"] += [(wall, rss)] if rc == 0 else []
        print(
            f"run {r + 1}/{args.repeat}: "
            + "  ".join(f"{k} {v[-1][0]:.1f}s {v[-1][1]:.0f}MB" for k, v in res.items() if v)
        )

    # best (min) wall time, worst (max) peak RSS over the repeats
    best = {k: (min(w for w, _ in v), max(s for _, s in v)) if v else (None, None) for k, v in res.items()}
    samples = check = None
    if ours_ok:
        samples = duckdb.sql(f"SELECT count(*) FROM read_parquet('{ws}/pool/samples/*.parquet')").fetchall()[0][0]
        check = "OK" if samples == m["math_rows"] else "MISMATCH"
    raw_rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{raw_out}')").fetchall()[0][0] if raw_ok else None
    ratio = best["ours"][0] / best["raw"][0] if ours_ok and raw_ok else None
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    machine = (
        f"{os.cpu_count()} CPUs, {mem_gb:.1f} GB RAM, {platform.machine()}, python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}"
    )

    fmt = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
    print(f"\npool rows {m['rows']:,}   math rows {m['math_rows']:,}   problems {m['problems']:,}")
    print(f"{'':6}{'wall s':>9}{'peak RSS MB':>13}   (best wall / max RSS of {args.repeat} run(s))")
    for k in ("ours", "raw"):
        print(f"{k:6}{fmt(best[k][0], '.2f'):>9}{fmt(best[k][1], '.0f'):>13}")
    print(f"ours/raw wall {fmt(ratio, '.2f')}x (target <= 2x); ours peak RSS target < 4096 MB")
    print(
        f"samples in ws {fmt(samples, ',')} vs math rows {m['math_rows']:,}: {check or 'n/a (ours failed)'}"
        f"   raw copy rows {fmt(raw_rows, ',')}"
    )
    print(f"machine: {machine}")
    r2 = lambda x: None if x is None else round(x, 2)  # noqa: E731
    print(
        json.dumps(
            {
                "bench": "ingest",
                "pool_rows": m["rows"],
                "math_rows": m["math_rows"],
                "ours_s": r2(best["ours"][0]),
                "ours_rss_mb": r2(best["ours"][1]),
                "raw_s": r2(best["raw"][0]),
                "raw_rss_mb": r2(best["raw"][1]),
                "ratio": r2(ratio),
                "samples": samples,
                "check": check,
                "repeat": args.repeat,
                "machine": machine,
            }
        )
    )
    sys.exit(0 if ours_ok and raw_ok and check == "OK" else 1)


if __name__ == "__main__":
    main()
