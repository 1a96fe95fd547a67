"""Verify benchmark: `oxa verify` against a plain per-row math-verify loop, same cores.

The pool is synthetic and shaped like a distilled teacher pool: --problems problems
with gold answers of varied forms (60% integers; fractions, radicals, tuples, multiples
of pi, polynomials) over values drawn Zipf-like from 2-999 (small values are common, so
one gold recurs across problems; --unique-golds turns that off), about 7.6 R1-style
responses each (~2 KB), most sharing the modal
answer (70% of the responses; written as the gold in --modal-as-gold of the problems,
else as an equivalent form), 10% in other equivalent forms, 15% wrong, 5% without a
box; rows in random order.

Contenders, each in its own process, on the same --workers cores:
  ours   python -m curate.cli verify WS --workers N          (fresh workspace, cold cache)
  plain  multiprocessing.Pool(N) over the rows: per row, extract the last box, parse the
         gold, parse the answer, verify -- math-verify as most scripts call it
The verdicts of the two must be equal row for row.

With --bad-rows R: a second measurement for pathological answers. A pool of R rows is
verified as it is, then with 1% of its rows answering with power towers and huge
factorials (--bad-distinct distinct ones), under --deadline seconds per answer with
math-verify's own timeouts off (the outside deadline alone). Expected cost of the bad
rows: (distinct (gold, bad answer) pairs) x deadline / workers.

    .venv/bin/python bench/verify.py --problems 3000 --workers 2 --bad-rows 10000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
from pathlib import Path

import duckdb
import ingest as pool_bench  # bench/ingest.py (the peak-RSS wrapper); bench/ is on sys.path when run as a script
import numpy as np

FILLER = (
    "Let me set up the notation and check the small cases first. Wait, the second case needs care: "
    "the bound is not tight, so I will substitute and simplify again. "
)
# Gold answers by kind (integer, fraction, radical, tuple, multiple of pi, polynomial):
# mostly integers, as in competition-math reference sets.
KIND_SHARES = [0.60, 0.12, 0.08, 0.05, 0.05, 0.10]
# The value in a gold answer: small values are common (Zipf), so golds and (gold, answer)
# pairs recur across problems, as in real sets; --unique-golds gives every problem its own.
VALUES = range(2, 1000)
VALUE_WEIGHTS = [1 / v for v in VALUES]
BAD = ["9^{9^{9^{{n}}}}", "10^{10^{10}}!+{n}", "{n}^{{n}^{{n}^{{n}}}}", "({n}^{10^{10}})!"]

# The plain loop: what a script calling math-verify row by row does (curate.text.extract's
# last-box extraction and gold wrapping, so that the verdicts can be compared).
PLAIN = """
import sys
import pyarrow.parquet as pq
from multiprocessing import Pool
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from curate.text.extract import as_math_input, braces_balanced, extract_answer

CONFIG = [LatexExtractionConfig(), ExprExtractionConfig()]

def verdict(row):
    gold, response = row
    if gold is None or not gold.strip() or not braces_balanced(gold):
        return "bad_gold"
    parsed_gold = parse(as_math_input(gold), CONFIG)
    if not parsed_gold:
        return "bad_gold"
    answer, _ = extract_answer(response)
    if answer is None:
        return "no_answer"
    parsed = parse(as_math_input(answer), CONFIG)
    return "correct" if parsed and verify(parsed_gold, parsed) else "incorrect"

if __name__ == "__main__":
    rows = pq.read_table(sys.argv[1])
    pairs = list(zip(rows["gold"].to_pylist(), rows["response"].to_pylist()))
    with Pool(int(sys.argv[3])) as pool:
        verdicts = pool.map(verdict, pairs, chunksize=64)
    pq.write_table(rows.select(["sample_id"]).append_column("verdict", [verdicts]), sys.argv[2])
"""


def answer_forms(k: int, kind: int) -> tuple[str, list[str], list[str]]:
    """A gold answer, equivalent forms and wrong answers (distinct per problem)."""
    return [
        (str(k), [f"{k}.0", f"\\frac{{{2 * k}}}{{2}}"], [str(k + 1), str(k - 1), str(2 * k)]),
        (f"\\frac{{{k}}}{{{k + 1}}}", [f"\\dfrac{{{k}}}{{{k + 1}}}", f"{k}/{k + 1}"], [f"\\frac{{{k + 1}}}{{{k}}}"]),
        (
            f"{k}\\sqrt{{2}}",
            [f"\\sqrt{{{2 * k * k}}}", f"\\sqrt{{2}} \\cdot {k}"],
            [f"\\sqrt{{{k}}}", f"{k}\\sqrt{{3}}"],
        ),
        (f"({k}, {k + 1})", [f"({k},{k + 1})", f"\\left({k}, {k + 1}\\right)"], [f"({k + 1}, {k})"]),
        (f"{k}\\pi", [f"\\pi {k}", f"{k} \\pi"], [f"{k + 1}\\pi", f"{3.14 * k:.2f}"]),
        (f"x^2+{k}", [f"{k}+x^2", f"x^{{2}} + {k}"], [f"x^2-{k}"]),
    ][kind]


def make_pool(path: Path, args: argparse.Namespace, problems: int, seed: int, bad_share: float) -> int:
    rng = random.Random(seed)
    counts = np.random.default_rng(seed).poisson(args.per_problem - 1, problems) + 1
    modal_as_gold = args.modal_as_gold
    rows = []
    for p, count in enumerate(counts.tolist()):
        value = p + 2 if args.unique_golds else rng.choices(VALUES, VALUE_WEIGHTS)[0]
        gold, equivalent, wrong = answer_forms(value, rng.choices(range(len(KIND_SHARES)), KIND_SHARES)[0])
        modal = gold if rng.random() < modal_as_gold else rng.choice(equivalent)
        for k in range(count):
            roll = rng.random()
            answer = modal if roll < 0.7 else rng.choice(equivalent) if roll < 0.8 else rng.choice(wrong)
            text = f"<think>\n{FILLER * 14}step {k}.\n</think>\n\nSo the answer is $\\boxed{{{answer}}}$."
            if roll > 0.95:
                text = f"<think>\n{FILLER * 14}step {k}.\n</think>\n\nI could not finish."
            rows.append(
                {"problem": f"Problem {p}: compute the value described in case {p}.", "response": text, "gold": gold}
            )
    bad = rng.sample(range(len(rows)), int(len(rows) * bad_share))
    for i, row in enumerate(bad):
        tower = BAD[i % len(BAD)].replace("{n}", str(2 + (i % args.bad_distinct) // len(BAD)))
        rows[row] = {**rows[row], "response": f"<think>\nhuge\n</think>\n\n$\\boxed{{{tower}}}$"}
    rng.shuffle(rows)
    with open(path, "w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    return len(rows)


def workspace(wd: Path, name: str, pool: Path) -> Path:
    ws = wd / name
    shutil.rmtree(ws, ignore_errors=True)
    cli = [sys.executable, "-m", "curate.cli"]
    mapping = ["--map", "problem=problem", "--map", "response=response", "--map", "gold_answer=gold"]
    for step in (["init", str(ws)], ["ingest", str(ws), str(pool), *mapping]):
        if pool_bench.run_measured(cli + step, wd / f"{name}-setup.log")[2] != 0:
            sys.exit(1)
    return ws


def run_ours(wd: Path, ws: Path, workers: int, extra: list[str], log: str) -> tuple[float, dict]:
    cli = [sys.executable, "-m", "curate.cli", "verify", str(ws), "--workers", str(workers), *extra]
    wall, _, rc = pool_bench.run_measured(cli, wd / log)
    if rc != 0:
        sys.exit(1)
    stats = sorted((ws / "runs" / "verify").glob("*/stats.json"), key=lambda p: p.stat().st_mtime)[-1]
    return wall, json.loads(stats.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=3000, help="problems in the pool (default: %(default)s)")
    ap.add_argument("--per-problem", type=float, default=7.6, help="mean responses per problem")
    ap.add_argument(
        "--modal-as-gold", type=float, default=0.8, help="share of problems whose modal answer is written as the gold"
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="cores for both contenders")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-verify"), help="scratch dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--unique-golds", action="store_true", help="every problem its own gold value (no reuse)")
    ap.add_argument("--bad-rows", type=int, default=0, help="also measure a pool of this many rows with 1%% bad")
    ap.add_argument("--bad-distinct", type=int, default=24, help="distinct pathological answers")
    ap.add_argument("--deadline", type=float, default=3.0, help="seconds per answer in the bad-rows run")
    args = ap.parse_args()

    wd = args.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    rows = make_pool(wd / "pool.jsonl", args, args.problems, args.seed, 0.0)
    ws = workspace(wd, "ws", wd / "pool.jsonl")
    ours_s, stats = run_ours(wd, ws, args.workers, [], "ours.log")

    table = wd / "rows.parquet"
    duckdb.sql(
        f"""COPY (SELECT s.sample_id, a.gold_answer AS gold, s.response
                  FROM read_parquet('{ws}/pool/samples/*.parquet') AS s
                  LEFT JOIN read_parquet('{ws}/answers/*.parquet') AS a USING (problem_id))
            TO '{table}' (FORMAT parquet)"""
    )
    env_cmd = [sys.executable, "-c", PLAIN, str(table), str(wd / "plain.parquet"), str(args.workers)]
    plain_s, _, rc = pool_bench.run_measured(env_cmd, wd / "plain.log")
    if rc != 0:
        sys.exit(1)
    same, total = duckdb.sql(
        f"""SELECT count(*) FILTER (WHERE o.verdict = p.verdict), count(*)
            FROM read_parquet('{ws}/verify/verify-*.parquet') AS o
            JOIN read_parquet('{wd}/plain.parquet') AS p USING (sample_id)"""
    ).fetchall()[0]

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    machine = (
        f"{os.cpu_count()} CPUs, {mem_gb:.1f} GB RAM, {platform.machine()}, python {platform.python_version()}, "
        f"math-verify {stats['versions']['math-verify']}, sympy {stats['versions']['sympy']}"
    )
    print(f"\npool: {rows:,} rows over {args.problems:,} problems; {args.workers} workers each")
    print(
        f"ours   {ours_s:8.1f} s   (distinct pairs judged {stats['judged']['pairs']:,}, golds {stats['judged']['golds']:,}, "
        f"decided without math-verify {stats['decided_directly']})"
    )
    print(f"plain  {plain_s:8.1f} s")
    print(
        f"plain/ours {plain_s / ours_s:.2f}x (target >= 5x); verdicts equal: {same:,} of {total:,}"
        f" {'OK' if same == total == rows else 'MISMATCH'}"
    )
    print(f"verdicts: {stats['verdicts']}; agreement with the simple verdict: {stats['agreement']['rate']}")
    result = {
        "bench": "verify",
        "rows": rows,
        "ours_s": round(ours_s, 1),
        "plain_s": round(plain_s, 1),
        "ratio": round(plain_s / ours_s, 2),
        "equal": same == total == rows,
    }

    if args.bad_rows:
        problems = round(args.bad_rows / args.per_problem)
        timing = {}
        for name, share in (("clean", 0.0), ("bad", 0.01)):
            n = make_pool(wd / f"{name}.jsonl", args, problems, args.seed + 1, share)
            bad_ws = workspace(wd, f"ws-{name}", wd / f"{name}.jsonl")
            extra = ["--deadline", str(args.deadline), "--parse-timeout", "0", "--verify-timeout", "0"]
            timing[name] = (n, *run_ours(wd, bad_ws, args.workers, extra, f"ours-{name}.log"))
        (n, clean_s, _), (_, bad_s, bad_stats) = timing["clean"], timing["bad"]
        killed = bad_stats["workers"]["killed_at_deadline"]  # distinct (gold, bad answer) pairs
        expected = killed * args.deadline / args.workers
        print(f"\nbad rows: {n:,} rows; 1% ({n // 100}) answer with {args.bad_distinct} distinct towers/factorials")
        print(
            f"clean {clean_s:.1f} s; with bad rows {bad_s:.1f} s: +{bad_s - clean_s:.1f} s "
            f"(expected ~ {killed} distinct bad pairs x {args.deadline:g} s / {args.workers} workers = {expected:.1f} s)"
        )
        print(f"verdicts: {bad_stats['verdicts']}; workers: {bad_stats['workers']}")
        result.update(bad_rows=n, clean_s=round(clean_s, 1), bad_s=round(bad_s, 1), expected_extra_s=expected)
    print(f"machine: {machine}")
    print(json.dumps({**result, "machine": machine}))


if __name__ == "__main__":
    main()
