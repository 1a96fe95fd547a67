"""Selection benchmark: `gaussian` (curate/select/gaussian.py, as `oxa select` runs it)
against plain pure-Python loops, on the same candidates, in one run; and the whole
`oxa select` command against a re-creation of the authors' released make_OXA_MLE_data.py
run whole, on the same pool.

Candidates (metadata only, generated once, deterministically): 2.6M rows of sample_id
and problem_id (24-hex content ids, about 7.5 responses per problem), PPL (log-normal,
median 2.4, rounded to 3 decimals: many ties and values on bin edges, some outside
[1, 5]) and n_tokens (log-normal, median 6k, 200 to 32k). The paper's settings for the
7B model: mu 3.0, sigma 0.25, PPL in [1, 5], w 0.05, N 50,000, bin targets by largest
remainder; two fills:
  longest_first  Algorithm 1 as printed, d 1 (preset oxa-mle-qwen2.5-7b-alg1)
  round_robin    the released script's passes, d 10 (preset oxa-mle-qwen2.5-7b)

Selection alone (each side in its own process, peak RSS per process, the candidates
loaded before the clock starts):
  ours    select_candidates(Candidates(table), Selection(strategy="gaussian", ...)):
          from the Arrow table to the selected rows, validity checks and funnel included
  python  the same fill line by line over a list of tuples (built before the clock
          starts) with the same seeded tie-break; its selection must equal ours.
Targets: ours at least 20x faster than python, under 2 s, peak RSS under 2 GB.

The whole run (wall time and peak RSS of each process, interpreter start included), on
the same 2.6M responses with short texts (a workspace and a JSON Lines file written
before, untimed):
  oxa select  `python -m curate.cli select WS oxa-mle-qwen2.5-7b`: the candidates view
              (samples, problems, gold, verify, scores joined in DuckDB), the selection,
              data.parquet with the texts, card.json, card.md and the plots
  script      make_OXA_MLE_data.py as released, re-created step by step: json.loads per
              line (one query with its response, PPL and length lists), bins of dicts,
              sort by (length, random) per bin, the passes, a shuffle, JSON Lines out.
Target: oxa select faster end to end.

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
import shutil  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.ingest import run_measured  # noqa: E402

GEN_VERSION = 1  # bump when the generated candidates change
WS_VERSION = 2  # bump when the workspace or the script's input change
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
FILLS = {  # side suffix -> (fill, d)
    "": ("longest_first", 1),
    "-rr": ("round_robin", 10),
}
MASK = 2**64 - 1
BENCH_PART = "bench-0000000000000001.parquet"  # named as oxa names parts: the views read only those


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


def run_ours(table: pa.Table, fill: str, d: int) -> tuple[float, list[str]]:
    from curate.select import Selection
    from curate.select.select import Candidates, select_candidates

    settings = {**PAPER, "max_per_problem": d}
    selection = Selection(
        strategy="gaussian",
        scores_tag="bench",
        rounding="largest_remainder",
        fill=fill,
        allow_shortfall=True,
        **settings,
    )
    t0 = time.perf_counter()
    result = select_candidates(Candidates(table, table.num_rows), selection)
    seconds = time.perf_counter() - t0
    return seconds, result.chosen["sample_id"].to_pylist()


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def run_python(table: pa.Table, fill: str, d: int) -> tuple[float, list[str]]:
    """Algorithm 1 in plain Python, each bin filled as printed (one walk) or in the
    released script's passes (each row at most once)."""
    rows = list(zip(*(table[c].to_pylist() for c in ("sample_id", "problem_id", "ppl", "n_tokens"))))
    mu, sigma, n, seed = PAPER["mu"], PAPER["sigma"], PAPER["n"], PAPER["seed"]
    p_min, p_max, w = PAPER["p_min"], PAPER["p_max"], PAPER["bin_width"]
    t0 = time.perf_counter()
    # Step 1: binning as the released script (a PPL within 1e-9 bin widths below an edge is on it)
    m = int(round((p_max - p_min) / w))
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
        passes = range(1, d + 1) if fill == "round_robin" else [d]
        taken, local = set(), defaultdict(int)
        for k in passes:
            for sample_id, problem_id, _, _ in bins[i]:
                if len(taken) == targets[i]:
                    break
                if sample_id not in taken and count[problem_id] < d and local[problem_id] < k:
                    selected.append(sample_id)
                    taken.add(sample_id)
                    count[problem_id] += 1
                    local[problem_id] += 1
    return time.perf_counter() - t0, selected


# -- the whole run: oxa select against the released script ----------------------------------


def build_workspace(data: Path, wd: Path) -> tuple[Path, Path]:
    """A workspace holding the candidates as correct teacher responses scored under tag
    'bench', and the same pool as the released script reads it (one JSON line per query
    with its response, PPL and length lists); reused while the candidates are the same."""
    from curate.workspace import Workspace
    from curate.workspace.runs import StageRun
    from curate.workspace.schema import PROBLEMS, SAMPLES, SCORES, VERIFY

    root, jsonl = wd / "ws", wd / "released-input.jsonl"
    manifest = wd / "ws.json"
    want = {"candidates": json.loads(data.with_suffix(".json").read_text()), "version": WS_VERSION}
    if root.exists() and jsonl.exists() and manifest.exists() and json.loads(manifest.read_text()) == want:
        print(f"workspace: reusing {root}")
        return root, jsonl
    t0 = time.perf_counter()
    if root.exists():
        shutil.rmtree(root)
    ws = Workspace.init(root)
    table = pq.read_table(data)
    con = duckdb.connect()
    con.register("candidates", table)
    problems = con.sql(
        "SELECT problem_id, 'Problem ' || problem_id || ': find the value of x.' AS problem, 'bench' AS source, "
        "'math' AS category FROM candidates GROUP BY problem_id ORDER BY problem_id"
    ).to_arrow_table()
    samples = con.sql(
        "SELECT sample_id, problem_id, '<think>Step by step for ' || sample_id || '.</think> \\boxed{1}' AS response, "
        "'teacher' AS origin, 'bench' AS generator, 'bench' AS source FROM candidates"
    ).to_arrow_table()
    samples = samples.append_column("n_chars", pc.utf8_length(samples["response"]).cast(pa.int64()))
    pq.write_table(_conform(problems, PROBLEMS), ws.table_folder("problems") / BENCH_PART)
    pq.write_table(_conform(samples, SAMPLES), ws.table_folder("samples") / BENCH_PART)
    scores = con.sql("SELECT sample_id, n_tokens, ppl, false AS truncated FROM candidates").to_arrow_table()
    folder = ws.ensure_scores_folder("bench")
    pq.write_table(_conform(scores, SCORES), folder / BENCH_PART)
    (folder / "manifest.json").write_text(json.dumps({"tag": "bench", "model": "bench", "max_tokens": 32768}))
    catalog = ws.connect()
    verify = catalog.sql(
        "SELECT s.sample_id, s.problem_id, oxa_gold_key(g.gold_answer, g.gold_alternatives) AS gold_key, "
        "'1' AS pred_answer, 'correct' AS verdict, 'bench' AS verifier, 'bench' AS settings_hash "
        "FROM samples AS s LEFT JOIN gold AS g USING (problem_id)"
    ).to_arrow_table()
    catalog.close()
    pq.write_table(_conform(verify, VERIFY), ws.table_folder("verify") / BENCH_PART)
    StageRun(ws, "verify", {"bench": True}).finish({"settings_hash": "bench", "summary": "bench verdicts"})
    con.register("problems", problems)
    con.register("samples", samples)
    con.execute(
        f"""COPY (
            SELECT p.problem AS query, list(s.response ORDER BY s.sample_id) AS "DeepSeek-R1_Response_List",
                   list(c.ppl ORDER BY s.sample_id) AS "DeepSeek-R1_Response_Qwen2.5-Math-7B_ppl_list",
                   list(c.n_tokens ORDER BY s.sample_id) AS "DeepSeek-R1_Response_token_len_list"
            FROM samples AS s JOIN candidates AS c USING (sample_id) JOIN problems AS p ON p.problem_id = s.problem_id
            GROUP BY p.problem ORDER BY p.problem
        ) TO '{jsonl}' (FORMAT json)"""
    )
    con.close()
    manifest.write_text(json.dumps(want))
    print(f"workspace and script input: built in {time.perf_counter() - t0:.1f}s -> {root}, {jsonl}")
    return root, jsonl


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` in the canonical schema: its columns cast, the others NULL."""
    columns = [
        table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def released_script(source: Path, output: Path) -> None:
    """make_OXA_MLE_data.py as released (settings of the 7B run: mu 3.0, sigma 0.25,
    [1, 5], w 0.05, 50,000, 10 per query, seed 42, longest first), step by step."""
    import random

    min_ppl, max_ppl, bin_width = 1.0, 5.0, 0.05
    center, std, total_samples, max_per_query = 3.0, 0.25, 50_000, 10
    num_bins = int(round((max_ppl - min_ppl) / bin_width))
    pdf = [
        (1.0 / (std * math.sqrt(2 * math.pi)))
        * math.exp(-0.5 * ((min_ppl + (i + 0.5) * bin_width - center) / std) ** 2)
        for i in range(num_bins)
    ]
    desired = [p / sum(pdf) * total_samples for p in pdf]
    bin_counts = [int(math.floor(x)) for x in desired]
    fractions = sorted(((x - math.floor(x), i) for i, x in enumerate(desired)), key=lambda f: f[0], reverse=True)
    for k in range(total_samples - sum(bin_counts)):
        bin_counts[fractions[k][1]] += 1
    bin_to_items = defaultdict(list)
    with source.open("r", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            query = obj.get("query")
            responses = obj.get("DeepSeek-R1_Response_List")
            ppls = obj.get("DeepSeek-R1_Response_Qwen2.5-Math-7B_ppl_list")
            lengths = obj.get("DeepSeek-R1_Response_token_len_list")
            for i in range(min(len(responses), len(ppls), len(lengths))):
                ppl = float(ppls[i])
                if ppl < min_ppl or ppl > max_ppl:
                    continue
                idx = min(int((ppl - min_ppl) / bin_width + 1e-9), num_bins - 1)
                length = int(lengths[i]) if lengths[i] is not None else 0
                bin_to_items[idx].append({"query": query, "response": responses[i], "ppl": ppl, "len": length})
    rnd = random.Random(42)
    per_query = defaultdict(int)
    samples = []
    for bin_index in range(num_bins):
        target = bin_counts[bin_index]
        if target <= 0:
            continue
        items = sorted(bin_to_items.get(bin_index, []), key=lambda x: (x["len"], rnd.random()), reverse=True)
        taken, local = [], defaultdict(int)
        for local_cap in range(1, max_per_query + 1):
            if len(taken) >= target:
                break
            for it in items:  # as released: taken rows are not marked, a later pass appends them again
                if len(taken) >= target:
                    break
                q = it["query"]
                if per_query[q] >= max_per_query or local[q] >= local_cap:
                    continue
                per_query[q] += 1
                local[q] += 1
                taken.append(it)
        samples.extend(taken)
    rnd.shuffle(samples)
    with output.open("w", encoding="utf-8") as f:
        for item in samples:
            out = {"query": item["query"], "response": item["response"], "ppl": item["ppl"], "len": item["len"]}
            f.write(json.dumps(out, ensure_ascii=False) + "\n")
    distinct = len({(s["query"], s["response"]) for s in samples})
    print(json.dumps({"selected": len(samples), "distinct": distinct}))


def child(side: str, data: Path, out: Path) -> None:
    table = pq.read_table(data)
    name, _, suffix = side.partition("-")
    fill, d = FILLS["-" + suffix if suffix else ""]
    seconds, selected = (run_ours if name == "ours" else run_python)(table, fill, d)
    digest = hashlib.sha256("\n".join(selected).encode()).hexdigest()[:16]
    out.write_text(json.dumps({"seconds": seconds, "selected": len(selected), "digest": digest}))


# -- the parent --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_600_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-select"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per side (best time, max RSS)")
    parser.add_argument("--child", choices=["ours", "python", "ours-rr", "python-rr", "script"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "script":
        released_script(args.data, args.out)
        return
    if args.child:
        child(args.child, args.data, args.out)
        return
    data = args.workdir / "candidates.parquet"
    generate(data, args.rows, args.seed)
    results = {}
    for side in ("ours", "python", "ours-rr", "python-rr"):
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
    whole = run_whole(data, args.workdir, args.repeat)
    version_inputs = time_version_inputs(args.workdir, max(args.repeat, 3))
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, NumPy {np.__version__}, pyarrow {pa.__version__}"
    )
    print(f"{args.rows:,} candidates, N {PAPER['n']:,}, mu {PAPER['mu']}; selection alone")
    print(f"{'':18}{'seconds':>10}{'peak RSS MB':>14}{'selected':>10}")
    for side, r in results.items():
        fill, d = FILLS["-rr" if side.endswith("-rr") else ""]
        print(f"{side + ' (d ' + str(d) + ')':18}{r['seconds']:>10.3f}{r['rss']:>14.0f}{r['selected']:>10,}")
    failed = False
    for suffix, (fill, _) in FILLS.items():
        ours, python = results["ours" + suffix], results["python" + suffix]
        same = ours["digest"] == python["digest"] and ours["selected"] == python["selected"]
        failed |= not same
        print(
            f"{fill}: python/ours {python['seconds'] / ours['seconds']:.1f}x (target >= 20x); ours "
            f"{ours['seconds']:.2f} s (target < 2 s), peak RSS {ours['rss']:.0f} MB (target < 2048 MB); "
            f"same selection: {'OK' if same else 'DIFFERENT'}"
        )
    print("whole run (wall, interpreter start included)")
    print(f"{'':18}{'seconds':>10}{'peak RSS MB':>14}{'selected':>10}")
    for side, r in whole.items():
        print(f"{side:18}{r['seconds']:>10.2f}{r['rss']:>14.0f}{r['selected']:>10,}")
    script, oxa = whole["script"], whole["oxa select"]
    print(
        f"script/oxa select {script['seconds'] / oxa['seconds']:.2f}x (target > 1); the script's output holds "
        f"{script['selected'] - script['distinct']:,} repeated rows (its later passes append taken rows again)"
    )
    failed |= oxa["selected"] == 0  # the workspace's parts went unread
    print(
        f"subset version inputs: the rows of the views {version_inputs['rows of the views']:.2f} s "
        f"({version_inputs['rows of the views'] / oxa['seconds']:.0%} of the whole oxa select), files on disk "
        f"{version_inputs['files on disk'] * 1000:.1f} ms x 2; the part names (before) "
        f"{version_inputs['part names'] * 1000:.1f} ms x 2"
    )
    if failed:
        sys.exit(1)


def run_whole(data: Path, wd: Path, repeat: int) -> dict:
    """`oxa select` with the released script's preset, and the re-created script, each run
    whole `repeat` times (best wall time, max RSS)."""
    root, jsonl = build_workspace(data, wd)
    whole = {}
    for side in ("oxa select", "script"):
        runs = []
        for i in range(repeat):
            log = wd / f"whole-{side.replace(' ', '-')}-{i}.log"
            if side == "script":
                out = wd / "released-output.jsonl"
                cmd = [sys.executable, __file__, "--child", "script", "--data", str(jsonl), "--out", str(out)]
            else:
                name = f"bench-{i}"
                shutil.rmtree(root / "subsets" / name, ignore_errors=True)
                cmd = [sys.executable, "-m", "curate.cli", "select", str(root), "oxa-mle-qwen2.5-7b"]
                cmd += ["--set", "scores_tag=bench", "--set", f"name={name}", "--set", "allow_shortfall=true"]
            wall, rss, rc = run_measured(cmd, log)
            if rc != 0:
                sys.exit(rc)
            if side == "script":
                counts = json.loads(log.read_text().strip().splitlines()[-1])
            else:
                stats = max((root / "runs" / "select").glob("*/stats.json"), key=lambda p: p.stat().st_mtime_ns)
                rows = json.loads(stats.read_text())["rows"]
                counts = {"selected": rows, "distinct": rows}
            runs.append({"seconds": wall, "rss": rss, **counts})
        whole[side] = {**min(runs, key=lambda r: r["seconds"]), "rss": max(r["rss"] for r in runs)}
    return whole


def time_version_inputs(wd: Path, repeat: int) -> dict[str, float]:
    """Seconds (best of `repeat`) for what a subset version costs `oxa select`: the rows of
    each view it reads (input_fingerprints, once per select) and the files' stat listing
    compared before and after selecting (inputs_on_disk), against the names of the
    tables' parts, which is what versions hashed before."""
    from curate.subsets.subsets import input_fingerprints, inputs_on_disk
    from curate.workspace import Workspace
    from curate.workspace.parts import fingerprint, part_files

    ws = Workspace.open(wd / "ws")
    folders = [ws.table_folder(t) for t in ("problems", "samples", "answers", "verify")] + [ws.scores_folder("bench")]
    sides = {
        "rows of the views": lambda: input_fingerprints(ws, ["bench"]),
        "files on disk": lambda: inputs_on_disk(ws, ["bench"]),
        "part names": lambda: [fingerprint([p.name for p in part_files(folder)], 16) for folder in folders],
    }
    times = {side: [] for side in sides}
    for _ in range(repeat):
        for side, measure in sides.items():
            t0 = time.perf_counter()
            measure()
            times[side].append(time.perf_counter() - t0)
    return {side: min(seconds) for side, seconds in times.items()}


if __name__ == "__main__":
    main()
