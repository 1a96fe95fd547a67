"""What recording each part's hash costs: `oxa ingest` and `oxa verify`, with and without it.

Every part oxa publishes gets `.<part>.sum` beside it, holding the part's sha256 taken
from the written file (docs/workspace.md, "Checking and repairing"). Target (issue 31):
under 3% of ingest's and verify's time.

Each contender runs in its own process, alternating, --repeat times:
  with     the stage as shipped
  without  the same stage with the hash replaced by a constant (curate.workspace.parts: file_sha256
           and _GrowingFileHash, which hashes a part as it is written, on the writer's thread)
and the process that hashes also reports the seconds spent inside the hash and the bytes
hashed, so the cost shows twice: as the wall-time difference (noisy on a shared machine)
and as hash seconds / stage wall seconds (what the hash took, wherever it ran: ingest
hashes on its writer threads, beside the reading and parsing).

Pools: bench/ingest.py's AceReason-shaped parquet shards (--rows) for ingest, and
bench/verify.py's pool with gold answers (--problems) for verify.

    .venv/bin/python bench/part_hashes.py --rows 1000000 --problems 3000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as pool_bench  # noqa: E402  (bench/ingest.py: the pool generator and run_measured)
import verify as verify_bench  # noqa: E402

# Runs a CLI command in this process with the hash timed (with) or replaced (without);
# writes {"hash_s", "hashed_bytes", "parts"} to argv[2].
CHILD = """import json, os, sys, time
import curate.workspace.parts as parts
mode, report = sys.argv[1], sys.argv[2]
totals = {"hash_s": 0.0, "hashed_bytes": 0, "parts": 0}
real_file, real_update, real_finish = parts.file_sha256, parts._GrowingFileHash.update, parts._GrowingFileHash.finish
def timed(call, counted):
    def wrapper(*args):
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            totals["hash_s"] += time.perf_counter() - start
            totals["parts"] += counted
    return wrapper
def finish(self):
    digest = real_finish(self)
    totals["hashed_bytes"] += os.path.getsize(self.path)
    return digest
if mode == "with":
    parts.file_sha256 = timed(real_file, 1)
    parts._GrowingFileHash.update = timed(real_update, 0)
    parts._GrowingFileHash.finish = timed(finish, 1)
else:
    parts.file_sha256 = lambda path: "0" * 64
    parts._GrowingFileHash.update = lambda self: None
    parts._GrowingFileHash.finish = lambda self: "0" * 64
sys.argv = ["oxa", *sys.argv[3:]]
from curate.cli import main
try:
    main()
finally:
    open(report, "w").write(json.dumps(totals))
"""


def measure(wd: Path, mode: str, args: list[str], log: str) -> dict:
    report = wd / f"{log}.json"
    wall, rss, rc = pool_bench.run_measured([sys.executable, "-c", CHILD, mode, str(report), *args], wd / f"{log}.log")
    if rc != 0:
        sys.exit(1)
    return {"wall": wall, "rss": rss, **json.loads(report.read_text())}


def fresh(wd: Path, name: str) -> Path:
    ws = wd / name
    shutil.rmtree(ws, ignore_errors=True)
    if pool_bench.run_measured([sys.executable, "-m", "curate.cli", "init", str(ws)], wd / f"{name}-init.log")[2]:
        sys.exit(1)
    return ws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the ingest pool (default: %(default)s)")
    ap.add_argument("--problems", type=int, default=3000, help="problems of the verify pool (default: %(default)s)")
    ap.add_argument("--per-problem", type=float, default=7.6, help="responses per problem in the verify pool")
    ap.add_argument("--modal-as-gold", type=float, default=0.8)
    ap.add_argument("--unique-golds", action="store_true")
    ap.add_argument("--bad-distinct", type=int, default=24)
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="verify's workers")
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender, alternating (default: %(default)s)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-hashes"))
    args = ap.parse_args()
    wd = args.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)

    pool = wd / "pool"
    pool_bench.generate(pool, args.rows, 1234, 100_000, force=False)
    verify_pool = wd / "verify-pool.jsonl"
    verify_rows = verify_bench.make_pool(verify_pool, args, args.problems, 1234, 0.0)
    verify_ws = verify_bench.workspace(wd, "verify-base", verify_pool)  # ingested once, verified by each run

    results: dict[str, dict[str, list[dict]]] = {
        "ingest": {"with": [], "without": []},
        "verify": {"with": [], "without": []},
    }
    for r in range(args.repeat):
        for mode in ("with", "without") if r % 2 == 0 else ("without", "with"):
            ws = fresh(wd, "ws")
            ingest = ["ingest", str(ws), str(pool), "--preset", "acereason"]
            results["ingest"][mode].append(measure(wd, mode, ingest, f"ingest-{mode}-{r}"))
            copy = wd / "verify-ws"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(verify_ws, copy, ignore=shutil.ignore_patterns(".locks"))
            verify = ["verify", str(copy), "--workers", str(args.workers)]
            results["verify"][mode].append(measure(wd, mode, verify, f"verify-{mode}-{r}"))
        print(f"run {r + 1}/{args.repeat} done", flush=True)

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"\nmachine: {os.cpu_count()} CPUs, {mem_gb:.1f} GB RAM, {platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"ingest pool: {args.rows:,} rows (AceReason-shaped shards); verify pool: {verify_rows:,} rows, {args.workers} workers"
    )
    print("stage    wall with  wall without  difference   hash s  hash/wall  parts  MB hashed")
    for stage, runs in results.items():
        with_s = statistics.median(m["wall"] for m in runs["with"])
        without_s = statistics.median(m["wall"] for m in runs["without"])
        hashed = runs["with"][0]
        hash_s = statistics.median(m["hash_s"] for m in runs["with"])
        print(
            f"{stage:7s} {with_s:9.2f}s {without_s:11.2f}s {100 * (with_s - without_s) / without_s:+10.1f}% "
            f"{hash_s:8.3f} {100 * hash_s / with_s:9.2f}% {hashed['parts']:6d} {hashed['hashed_bytes'] / 1e6:10.1f}"
        )
    print("(medians of --repeat runs; difference: wall with vs without; hash s: wall time inside the hash calls on")
    print(" the writer threads, waits for the GIL included)")
    # the hash alone, one pass over the last ingest's parts in this process: its CPU cost
    from curate.workspace.parts import PART_GLOB, file_sha256

    parts = [p for folder in ("pool/samples", "pool/problems", "answers") for p in (wd / "ws" / folder).glob(PART_GLOB)]
    start = time.perf_counter()
    for part in parts:
        file_sha256(part)
    alone = time.perf_counter() - start
    size = sum(p.stat().st_size for p in parts)
    ingest_s = statistics.median(m["wall"] for m in results["ingest"]["with"])
    print(
        f"sha256 alone over the ingest's {len(parts)} parts ({size / 1e6:.1f} MB): {alone:.3f} s, "
        f"{size / 1e6 / alone:,.0f} MB/s = {100 * alone / ingest_s:.2f}% of ingest's wall"
    )


if __name__ == "__main__":
    main()
