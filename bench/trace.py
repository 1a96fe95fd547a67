"""Trace benchmark: `oxa trace` over an AceReason-sized pool against ~1M reference rows.

The pool is bench/ingest.py's synthetic AceReason-shaped pool (2.6M rows, 346,666
problems), ingested once into a workspace (untimed). The reference sources are
generated from the same problem table, in two layouts, like NuminaMath:

  numina15.parquet    problem, solution, answer, question_type, source
  numina_cot.parquet  source, problem, solution (answer = its last \\boxed), messages

Each pool problem gets one case: exact (the same text, whitespace drift), normalized
(LaTeX/unicode drift or an instruction suffix), fuzzy (a typo, a dropped word, a
numbered prefix), conflict (both files, different answers), placeholder ('proof',
'notfound', '' or a solution without a box), or missing. Half the missing problems get
a templated near-duplicate in the references instead: the same text with one content
word substituted, and another answer (a wrong gold if taken). Unrelated problems from
the same templates fill the sources up to --references rows: near-duplicates that
differ in their numbers, which the fuzzy stage must not take either.

Then times, in its own process (peak RSS of that process):
  oxa trace WS --answers numina15.parquet --answers numina_cot.parquet

and prints what tracing recovered per case against what was generated, and the false
golds: traced problems whose gold is not the answer generated for them (must be 0).

    .venv/bin/python bench/trace.py --rows 2600000 --references 1000000 --workdir /tmp/oxa-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
from collections import Counter
from pathlib import Path

import duckdb
import ingest as pool_bench  # bench/ingest.py (the pool generator and the peak-RSS wrapper); bench/ is on sys.path when run as a script
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = pool_bench.REPO

GEN_VERSION = 2
CASES = {"exact": 0.55, "normalized": 0.20, "fuzzy": 0.10, "conflict": 0.03, "placeholder": 0.02, "missing": 0.10}
SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."


def normalized_drift(text: str, rng: random.Random) -> str:
    """A copy that only the stronger normalization matches."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"{text}\n{SUFFIX}"
    if kind == 1 and "\\ge" in text:
        return text.replace("\\ge", "\\geq")
    if kind == 2 and "x^2" in text:
        return text.replace("x^2", "x^{2}")
    if kind == 3:
        return text.replace("$", " $ ").replace("  ", " ")
    return text.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})  # full-width digits


def fuzzy_drift(text: str, rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0 and " the " in text:
        at = text.index(" the ")
        return text[:at] + text[at + 4 :]
    if kind == 1:
        return f"Problem {rng.randint(1, 40)}. {text}"
    words = [w for w in text.split(" ") if len(w) >= 6 and w.isalpha() and w[1] != w[2]]
    word = rng.choice(words)
    return text.replace(word, word[0] + word[2] + word[1] + word[3:], 1)


SUBSTITUTES = ("perimeter", "diameter", "remainder", "minimum", "quotient")


def near_duplicate(text: str, rng: random.Random) -> str | None:
    """The text with one word of 6+ letters replaced by another word: another question."""
    words = [w for w in text.split(" ") if len(w) >= 6 and w.isalpha()]
    if not words:
        return None
    word = rng.choice(words)
    return text.replace(word, rng.choice([s for s in SUBSTITUTES if s != word]), 1)


def generate_references(out: Path, pool_manifest: dict, references: int, seed: int) -> dict:
    manifest_path = out / "references.manifest.json"
    want = {"pool_problems": pool_manifest["problems"], "references": references, "seed": seed, "version": GEN_VERSION}
    if manifest_path.exists() and {k: json.loads(manifest_path.read_text()).get(k) for k in want} == want:
        print(f"references: reusing {out}")
        return json.loads(manifest_path.read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rng = np.random.default_rng(pool_manifest["seed"])  # the pool's own draws, in its order
    problems = pool_bench._problem_table(rng, pool_manifest["problems"])
    answers = rng.integers(0, 1000, pool_manifest["problems"])
    draw = random.Random(seed)
    files: dict[str, list[tuple[str, str, str]]] = {"numina15": [], "numina_cot": []}  # (problem, answer, kind)
    cases: list[str] = []
    for text, answer in zip(problems, answers.tolist()):
        case = draw.choices(list(CASES), weights=list(CASES.values()))[0]
        cases.append(case)
        file = draw.choice(list(files))
        if case == "exact":
            files[file].append((text.replace(" ", "  ", 1), str(answer), "ok"))
        elif case == "normalized":
            files[file].append((normalized_drift(text, draw), str(answer), "ok"))
        elif case == "fuzzy":
            files[file].append((fuzzy_drift(text, draw), str(answer), "ok"))
        elif case == "conflict":
            files["numina15"].append((text, str(answer), "ok"))
            files["numina_cot"].append((text, str(answer + 1), "ok"))
        elif case == "placeholder":
            files[file].append((text, draw.choice(["proof", "notfound", ""]), "placeholder"))
        elif case == "missing" and draw.random() < 0.5 and (neighbour := near_duplicate(text, draw)) is not None:
            cases[-1] = "near_duplicate"
            files[file].append((neighbour, str(answer + 7), "ok"))
    others = references - sum(len(rows) for rows in files.values())
    other_rng = np.random.default_rng(seed + 1)
    for text, answer in zip(pool_bench._problem_table(other_rng, others), other_rng.integers(0, 1000, others).tolist()):
        files[draw.choice(list(files))].append((text, str(answer), "ok"))
    for rows in files.values():
        draw.shuffle(rows)
    n15 = files["numina15"]
    pq.write_table(
        pa.table(
            {
                "problem": [p for p, _, _ in n15],
                "solution": [f"We compute it step by step, so the answer is ${a}$." for _, a, _ in n15],
                "answer": [a for _, a, _ in n15],
                "question_type": ["math-word-problem"] * len(n15),
                "source": ["olympiads"] * len(n15),
            }
        ),
        out / "numina15.parquet",
        compression="zstd",
    )
    cot = files["numina_cot"]
    solutions = [
        "We compute it step by step." if kind == "placeholder" else f"We compute it step by step: $\\boxed{{{a}}}$."
        for _, a, kind in cot
    ]
    pq.write_table(
        pa.table(
            {
                "source": ["cn_k12"] * len(cot),
                "problem": [p for p, _, _ in cot],
                "solution": solutions,
                "messages": [[{"role": "user", "content": p}] for p, _, _ in cot],
            }
        ),
        out / "numina_cot.parquet",
        compression="zstd",
    )
    pq.write_table(
        pa.table({"problem": problems, "case": cases, "answer": [str(a) for a in answers.tolist()]}),
        out / "cases.parquet",
        compression="zstd",
    )
    manifest = {**want, "cases": dict(Counter(cases)), "rows": {name: len(rows) for name, rows in files.items()}}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    print(f"references: generated {sum(manifest['rows'].values()):,} rows in {out}")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_600_000, help="pool rows (default: %(default)s)")
    ap.add_argument("--references", type=int, default=1_000_000, help="reference rows (default: %(default)s)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench"), help="scratch dir")
    ap.add_argument("--seed", type=int, default=1234, help="generator seed (default: %(default)s)")
    args = ap.parse_args()

    wd = args.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    pool_manifest = pool_bench.generate(wd / "pool", args.rows, args.seed, 100_000, False)
    generate_references(wd / "references", pool_manifest, args.references, args.seed)
    ws = wd / "ws-trace"
    cli = [sys.executable, "-m", "curate.cli"]
    ready = ws / "ingested.json"
    if not ready.exists() or json.loads(ready.read_text()) != pool_manifest:
        shutil.rmtree(ws, ignore_errors=True)
        for step in (["init", str(ws)], ["ingest", str(ws), str(wd / "pool"), "--preset", "acereason"]):
            wall, _, rc = pool_bench.run_measured(cli + step, wd / "trace-setup.log")
            if rc != 0:
                sys.exit(1)
            print(f"setup: {step[0]} {wall:.1f}s")
        ready.write_text(json.dumps(pool_manifest))

    command = ["trace", str(ws)]
    for name in ("numina15", "numina_cot"):
        command += ["--answers", str(wd / "references" / f"{name}.parquet")]
    wall, rss, rc = pool_bench.run_measured(cli + command, wd / "trace.log")
    if rc != 0:
        sys.exit(1)
    run = sorted((ws / "runs" / "trace").glob("*/stats.json"), key=lambda p: p.stat().st_mtime)[-1].parent
    stats = json.loads((run / "stats.json").read_text())
    con = duckdb.connect()
    con.execute((REPO / "sql" / "macros.sql").read_text())
    confusion = con.sql(
        f"""SELECT c.case, o.outcome, count(*) AS n
            FROM read_parquet('{wd}/references/cases.parquet') AS c
            JOIN read_parquet('{run}/outcomes.parquet') AS o ON o.problem_id = oxa_problem_id(c.problem)
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    false_golds = con.sql(
        f"""SELECT c.case, count(*) AS n
            FROM read_parquet('{wd}/references/cases.parquet') AS c
            JOIN read_parquet('{run}/outcomes.parquet') AS o ON o.problem_id = oxa_problem_id(c.problem)
            WHERE o.outcome IN ('exact', 'normalized', 'fuzzy') AND o.gold_answer <> c.answer
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    machine = (
        f"{os.cpu_count()} CPUs, {mem_gb:.1f} GB RAM, {platform.machine()}, python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}"
    )
    print(f"\npool problems {stats['problems']['pool']:,}; reference rows {stats['references']['read']:,}")
    print(f"trace: {wall:.1f} s, peak RSS {rss:,.0f} MB")
    print("generated case -> traced outcome: problems")
    for case, outcome, n in confusion:
        print(f"  {case:12} -> {outcome:17} {n:>9,}")
    print(f"false golds (traced, but not the generated answer): {sum(n for _, n in false_golds)} {false_golds}")
    print(f"summary: {stats['summary']}")
    print(f"phases (s): {stats['phase_seconds']}")
    print(f"machine: {machine}")
    result = {"bench": "trace", "wall_s": round(wall, 1), "peak_rss_mb": round(rss), "phases": stats["phase_seconds"]}
    print(json.dumps({**result, "confusion": confusion, "false_golds": false_golds, "machine": machine}))


if __name__ == "__main__":
    main()
