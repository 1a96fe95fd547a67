"""JSON-array reading: oxa's streaming reader vs json.load of the whole file.

Writes (once) a JSON array of AceReason-shaped records (a problem, a list of ~1-16 KB
responses, a PPL list holding NaN and Infinity as pandas writes them) and reads it,
each reader in its own process (peak RSS of that process):

  stream  curate.ingest.json_array.iter_json_array: one item at a time
  naive   json.load: the whole file's text and objects in memory

Both must yield the same items (a digest of each item's JSON compared). Targets: the
streaming reader's peak RSS flat in the file size, its time within 2x of json.load.

    .venv/bin/python bench/json_array.py --records 60000 --workdir /tmp/oxa-bench-json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

READER = r"""
import hashlib, json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from curate.ingest.json_array import iter_json_array
def read(handle):
    return iter_json_array(handle) if sys.argv[1] == "stream" else json.load(handle)
start = time.perf_counter()
with open(sys.argv[2], "rb") as handle:
    n = sum(1 for _ in read(handle))
wall = time.perf_counter() - start
digest = hashlib.sha256()  # untimed: what was read, to compare the readers
with open(sys.argv[2], "rb") as handle:
    for item in read(handle):
        digest.update(json.dumps(item, sort_keys=True).encode())
print(json.dumps({"items": n, "digest": digest.hexdigest(), "wall_s": wall,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, records: int, seed: int) -> None:
    if path.exists() and path.with_suffix(".done").read_text() == f"{records} {seed}":
        return
    rng = random.Random(seed)
    words = ["step", "so", "thus", "the", "answer", "is", "\\frac{1}{2}", "x^2", "é", '"quoted"', "\\\\"]
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n")
        for i in range(records):
            responses = [
                "<think>" + " ".join(rng.choices(words, k=rng.randrange(200, 3000))) + f"</think> \\boxed{{{i}}}"
                for _ in range(rng.randrange(1, 5))
            ]
            ppl = [rng.choice([math.nan, math.inf]) if rng.random() < 0.01 else 1 + rng.random() for _ in responses]
            record = {
                "query": f"Problem {i}: " + " ".join(rng.choices(words, k=40)),
                "responses": responses,
                "ppl": ppl,
            }
            out.write(("," if i else "") + json.dumps(record, ensure_ascii=False) + "\n")
        out.write("]\n")
    path.with_suffix(".done").write_text(f"{records} {seed}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=60_000, help="array items (default: %(default)s)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-json"), help="scratch dir")
    ap.add_argument("--seed", type=int, default=1234, help="generator seed (default: %(default)s)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"pool-{args.records}.json"
    generate(path, args.records, args.seed)
    print(f"file: {path} ({path.stat().st_size / 2**20:,.0f} MiB, {args.records:,} records)")
    results = {}
    for reader in ("stream", "naive"):
        out = subprocess.run(
            [sys.executable, "-c", READER, reader, str(path), str(REPO)], capture_output=True, text=True
        )
        if out.returncode != 0:
            sys.exit(f"{reader} failed:\n{out.stderr[-2000:]}")
        results[reader] = json.loads(out.stdout)
        r = results[reader]
        print(f"{reader:7} {r['wall_s']:6.2f} s  peak RSS {r['peak_rss_mb']:7,.0f} MB  items {r['items']:,}")
    stream, naive = results["stream"], results["naive"]
    assert stream["digest"] == naive["digest"], "the two readers disagree"
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"same items: yes; time stream/naive {stream['wall_s'] / naive['wall_s']:.2f}x, "
        f"peak RSS stream/naive {stream['peak_rss_mb'] / naive['peak_rss_mb']:.2f}x"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {mem_gb:.1f} GB RAM, {platform.machine()}, python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
