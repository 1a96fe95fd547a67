"""Ingest with one samples writer and with two, side by side (issue 33).

On many cores the thread that compresses every response bounds ingest, so ingest spreads
the samples over two writers once a run has written 256 MiB of them
(curate/workspace/parts.py, SpreadPartWriter). This runs `oxa ingest` over one pool with
the samples in one lane (the threshold set past any pool) and as shipped, alternating,
each in its own process under bench/stage_usage.py, and prints per run its wall and CPU
seconds, its two busiest part writers (threads that more cores cannot shorten) and the samples it
wrote (count, parts, and a hash over their ids, which must agree):

    .venv/bin/python bench/ingest_writers.py --pool /tmp/oxa-bench-pipeline/rows-260000/pool
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from bench.pipeline import INGEST_OPTIONS  # noqa: E402

# `oxa ingest` with the samples' lanes given in argv[1] ("one": never spread; "shipped": as is)
DRIVER = """import functools, sys
import curate.ingest.ingest as ingest
from curate.workspace.parts import SpreadPartWriter
if sys.argv[1] == "one":
    ingest.SpreadPartWriter = functools.partial(SpreadPartWriter, spread_after=1 << 62)
from curate.cli import main
sys.argv = ["oxa", "ingest", *sys.argv[2:]]
main()"""
SAMPLES = """import duckdb, glob, json, sys
parts = sorted(glob.glob(sys.argv[1] + "/pool/samples/ingest-*.parquet"))
[(rows, digest)] = duckdb.sql("SELECT count(*), sum(hash(sample_id)) FROM read_parquet($p)", params={"p": parts}).fetchall()
print(json.dumps({"rows": rows, "parts": len(parts), "hash": str(digest)}))"""


def ingest(lanes: str, pool: Path, ws: Path, logs: Path) -> dict:
    """One ingest in a fresh workspace: its wall and CPU seconds, busiest writer, samples."""
    shutil.rmtree(ws, ignore_errors=True)
    oxa = [sys.executable, "-m", "curate.cli"]
    subprocess.run([*oxa, "init", str(ws)], check=True, capture_output=True, cwd=REPO)
    usage = logs / f"ingest-{lanes}.usage.json"
    command = [sys.executable, "-c", DRIVER, lanes, str(ws), str(pool), *INGEST_OPTIONS]
    started = time.perf_counter()
    with open(logs / f"ingest-{lanes}.log", "w") as log:
        rc = subprocess.call(
            [sys.executable, str(BENCH / "stage_usage.py"), str(usage), *command], stdout=log, stderr=log, cwd=REPO
        )
    wall = time.perf_counter() - started
    if rc != 0:
        raise SystemExit(f"ingest ({lanes}) failed with exit code {rc}: see {logs / f'ingest-{lanes}.log'}")
    used = json.loads(usage.read_text())
    # every table's writer is oxa:write-ingest-...; at any size worth measuring the samples' lead
    writers = [t["cpu_s"] for t in used["busiest_threads"] if t["name"].startswith("oxa:write-inges")]
    samples = json.loads(
        subprocess.run([sys.executable, "-c", SAMPLES, str(ws)], capture_output=True, text=True, check=True).stdout
    )
    return {
        "lanes": lanes,
        "wall_s": wall,
        "cpu_s": used["cpu_s"],
        "writers_cpu_s": sorted(writers, reverse=True)[:2],
        **samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, required=True, help="a pool folder (bench/pipeline.py makes them)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-ingest-writers"), help="scratch dir")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the two, alternating (default: %(default)s)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for _ in range(args.rounds):
        for lanes in ("one", "shipped"):
            run = ingest(lanes, args.pool.resolve(), args.workdir / "ws", args.workdir)
            runs.append(run)
            writers = " / ".join(f"{s:.1f}" for s in run["writers_cpu_s"])
            print(
                f"{lanes:8} wall {run['wall_s']:7.1f} s  cpu {run['cpu_s']:7.1f} s  busiest writers {writers} CPU-s"
                f"  {run['rows']:,} samples in {run['parts']} parts (hash {run['hash']})"
            )
    same = len({(r["rows"], r["hash"]) for r in runs}) == 1
    print("the same samples in every run" if same else "THE SAMPLES DIFFER")
    (args.workdir / "ingest_writers.json").write_text(json.dumps(runs, indent=1))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
