"""Decontamination benchmark: `oxa decontaminate` against open-r1's 8-gram check.

Issue: a pool of 2.6M rows / 350k distinct problems is checked against the six built-in
benchmarks (432 problems) in well under a minute on a 2-core machine, memory bounded.
This script measures that, side by side with a plain Python re-implementation of
open-r1's scripts/decontaminate.py on the same problems, and shows what each flags.

The pool (generated once per --scale/--seed, deterministically, and cached under
--workdir): 350k distinct problems and 2.6M samples (~7.4 responses per problem, every
problem at least one), written as zstd parquet in AceReason's layout and ingested with
`oxa ingest --preset acereason` (untimed setup). Background problems come from 16
templates (algebra, geometry, number theory, counting, probability, physics) with random
names, objects, numbers and inline LaTeX, an optional lead-in and 0-7 filler sentences
(30 to ~130 words); 3% of them end with boilerplate the benchmarks also use: "... where
$m$ and $n$ are relatively prime positive integers. Find $m+n$." (2%, AIME's) and
"Please format your answer as $n \\times 10^x$ ..." (1%, Minerva's). Responses are short
(~120 bytes, each a distinct string): the stage reads problems, not responses. Planted
among them, for each of the 432 benchmark problems (a seeded sample of at least 20 of
them below --scale 1), one problem of each kind:

  exact     the benchmark problem verbatim
  drift     `$..$` as `\\(..\\)`, `$$..$$` as `\\[..\\]`, `\\frac` as `\\dfrac`, line breaks
            added (ingest turns whitespace runs into one space; skipped when nothing
            changes)
  contained the problem after an instruction prefix ("Solve the following ...")
  one-word  one word outside the math and LaTeX commands changed ("Find" -> "Determine",
            else "given", "certain", ...)
  numbers   every number changed (the template with other numbers; skipped when the
            problem has none): oxa's 'template' method, which it does not call
            contaminated

Timed, each in its own process (wall and CPU time of the call, benchmarks read and
problems read included; peak RSS of the process):
  oxa     run_decontaminate(ws, DecontaminateConfig()) (default settings: 8 tokens,
          coverage 0.8, problems only), on a workspace whose earlier decontamination
          parts were removed, so every problem is checked again
  open-r1 open-r1's check re-implemented in plain Python: lower-case, whitespace runs
          collapsed, split on whitespace, a dict of the benchmark problems' word 8-grams,
          a problem flagged when any of its 8-grams is in the dict; the problems read
          from the workspace with DuckDB in 50k batches; one process, one thread. One
          dict for all six sets (open-r1 loops over its sets, one pass each, with
          `datasets.map(num_proc=8)`)

Then prints the ratio, the peak memory, and two tables per planted kind (and the
unplanted rest): how many problems each method flags against any benchmark problem
(oxa's template-only matches apart), and oxa's method against the benchmark problem each
one was made from (open-r1: whether one of that problem's 8-grams was hit).

    .venv/bin/python bench/decontaminate.py --workdir /tmp/oxa-bench-decontam
    .venv/bin/python bench/decontaminate.py --scale 0.01 --workdir /tmp/oxa-bench-decontam-small
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import re
import shutil
import sys
import time
from pathlib import Path

GEN_VERSION = 2  # bump when the generated pool changes
FULL_PROBLEMS = 350_000
FULL_ROWS = 2_600_000
SHARD_ROWS = 200_000
BATCH_ROWS = 50_000  # open-r1 side: problems read per DuckDB batch
NGRAM = 8  # open-r1's default --ngram_size
KINDS = ("exact", "drift", "contained", "one-word", "numbers")
CONTAMINATED = ("exact", "contained", "near")  # oxa's methods that mean contaminated
METHOD_RANK = {"exact": 0, "contained": 1, "near": 2, "template": 3}

# -- background problems --------------------------------------------------------------

NAMES = ["Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kofi", "Lena"]
OBJECTS = ["marbles", "coins", "tickets", "books", "stamps", "cards", "pencils", "apples", "tokens", "shells"]
LETTERS = ["x", "y", "t", "k", "a", "b", "z", "u"]
WHAT = ["the sum", "the product", "the largest value", "the smallest value", "the number", "the average"]
TEMPLATES = [
    "Let ${v}$ be a real number such that ${a}{v}^2 - {b}{v} + {c} = 0$. Compute {what} of all possible values of "
    "$\\frac{{{v}^2 + {d}}}{{{v}}}$.",
    "{name} has {a} {obj} and gives away $\\frac{{1}}{{{d}}}$ of them each day, rounding down. After how many days "
    "does {name} have fewer than {c} {obj} left?",
    "In triangle $ABC$, $AB = {a}$, $BC = {b}$ and $CA = {c}$. The angle bisector from $A$ meets $BC$ at $D$. "
    "Find $BD^2$ expressed as a fraction in lowest terms.",
    "How many positive integers $n \\le {big}$ satisfy $n^2 \\equiv {d} \\pmod{{{p}}}$?",
    "A sequence satisfies $a_1 = {a}$, $a_2 = {b}$ and $a_{{n+2}} = a_{{n+1}} + {d}a_n$ for $n \\ge 1$. "
    "Find the remainder when $a_{{{c}}}$ is divided by ${p}$.",
    "A bag contains {a} red and {b} blue {obj}. {name} draws {d} of them at random without replacement. "
    "What is the probability that exactly two are red?",
    "The function $f$ satisfies $f({v}) + {d}f({e} - {v}) = {a}{v} + {b}$ for all real ${v}$. Find $f({c})$.",
    "A circle of radius ${d}$ is inscribed in a right triangle whose hypotenuse has length ${a}$. "
    "Compute the area of the triangle.",
    "Find {what} of the digits of the smallest positive integer divisible by both ${a}$ and ${b}$ "
    "whose last digit is ${e}$.",
    "{name} walks ${a}$ meters north, then ${b}$ meters east, then ${c}$ meters south. How far, in meters, is "
    "{name} from the starting point? Give the answer in the form $p\\sqrt{{q}}$.",
    "Let $P({v}) = {v}^3 - {a}{v}^2 + {b}{v} - {c}$ have roots $r$, $s$, $t$. Compute $r^2 + s^2 + t^2$ and "
    "$\\frac{{1}}{{r}} + \\frac{{1}}{{s}} + \\frac{{1}}{{t}}$, and report their sum.",
    "In how many ways can {d} distinct {obj} be placed into {e} identical boxes so that no box holds more than "
    "{f} of them?",
    "A block of mass ${d}\\,\\mathrm{{kg}}$ slides down a frictionless incline of height ${a}\\,\\mathrm{{cm}}$. "
    "Using $g = 9.8\\,\\mathrm{{m/s^2}}$, find its speed at the bottom in meters per second.",
    "Two trains leave stations ${big}$ kilometers apart at the same time, heading toward each other at ${a}$ and "
    "${b}$ kilometers per hour. After how many minutes do they meet?",
    "Evaluate $\\sum_{{k=1}}^{{{c}}} \\frac{{{d}}}{{k(k+{e})}}$ and write the result as a fraction.",
    "A regular polygon has {c} sides, each of length ${d}$. Find the square of the radius of its circumscribed "
    "circle, to the nearest hundredth, if one interior angle measures ${a}^\\circ$ in a related figure.",
]
LEAD_INS = [
    "",
    "",
    "",
    "This problem appeared on a regional olympiad. ",
    "Consider the following situation. ",
    "Warm-up: ",
    "A student is preparing for a contest and meets this question. ",
]
FILLERS = [
    "Assume all quantities are measured in the same units.",
    "Note that ${v}$ need not be an integer.",
    "Each of the {d} outcomes is equally likely.",
    "You may use the fact that ${a}$ is not a perfect square.",
    "Explain why your answer is the only one possible.",
    "The answer does not depend on the order in which {name} counts the {obj}.",
    "Ignore air resistance and any rounding in intermediate steps.",
    "A calculator is not needed, but a careful diagram helps.",
    "Treat two arrangements as the same if one is a rotation of the other.",
    "Here ${v} \\ge {e}$ throughout.",
    "The figure is not drawn to scale.",
    "Give an exact answer in simplest radical form.",
]
BOILERPLATE_SHARE = (0.02, 0.01)  # of background problems ending with each boilerplate below
BOILERPLATE = [
    " The answer can be written as $\\frac{{m}}{{n}}$, where $m$ and $n$ are relatively prime positive integers. "
    "Find $m+n$.",
    " Please format your answer as $n \\times 10^x$ where $n$ is to 2 decimal places.",
]

# -- planted contamination ------------------------------------------------------------

PREFIXES = [
    "Solve the following math problem. Make sure to put the answer (and only answer) inside \\boxed{}.\n\n",
    "Problem 7. ",
    "The following question comes from a recent contest. Think carefully before answering.\n",
    "You are a helpful assistant. Answer the question below.\n\nQuestion: ",
]
SYNONYMS = {
    "find": "determine", "compute": "calculate", "number": "count", "positive": "nonnegative", "each": "every",
    "what": "which", "integer": "whole", "many": "much", "largest": "greatest", "smallest": "least",
}  # fmt: skip
FALLBACK_WORDS = ["given", "certain", "following", "special"]


def benchmark_problems() -> list[tuple[str, int, str]]:
    """(set name, row in its file, problem text) of the six built-in benchmarks, as
    `oxa decontaminate` reads them."""
    from curate.benchmarks.sets import BUILTIN, load_prompt_set, resolve_sets

    sets = [load_prompt_set(name, path, require_answers=False) for name, path in resolve_sets(",".join(BUILTIN))]
    return [(s.name, p.source_row, p.question or p.problem) for s in sets for p in s.problems]


def background_problem(rng: random.Random) -> str:
    """One problem from a random template, lead-in, fillers and closing."""
    slots = {
        "a": rng.randint(2, 999), "b": rng.randint(2, 999), "c": rng.randint(2, 199), "d": rng.randint(2, 19),
        "e": rng.randint(2, 19), "f": rng.randint(2, 9), "p": rng.choice([7, 11, 13, 17, 19, 23, 29, 31, 97, 101]),
        "big": rng.randint(1000, 99999), "v": rng.choice(LETTERS), "name": rng.choice(NAMES),
        "obj": rng.choice(OBJECTS), "what": rng.choice(WHAT),
    }  # fmt: skip
    parts = [rng.choice(LEAD_INS) + rng.choice(TEMPLATES).format(**slots)]
    fillers = [s.format(**slots) for s in rng.sample(FILLERS, len(FILLERS))]
    wanted = rng.randint(0, 7)
    while fillers and (wanted > 0 or len(" ".join(parts).split()) < 30):  # at least 30 words
        parts.append(fillers.pop())
        wanted -= 1
    text = " ".join(parts)
    draw = rng.random()
    if draw < BOILERPLATE_SHARE[0]:
        text += BOILERPLATE[0].format()
    elif draw < sum(BOILERPLATE_SHARE):
        text += BOILERPLATE[1].format()
    return text


def background_problems(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    """n distinct problems (distinct after ingest's whitespace normalization), none in `taken`."""
    seen, out = set(taken), []
    while len(out) < n:
        text = background_problem(rng)
        key = " ".join(text.split())
        if key not in seen:
            seen.add(key)
            out.append(text)
    return out


def drift(text: str) -> str:
    """Formatting drift: other math delimiters, \\dfrac, line breaks."""
    out = re.sub(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", r"\\[\1\\]", text, flags=re.S)
    out = re.sub(r"(?<!\\)\$(.+?)(?<!\\)\$", r"\\(\1\\)", out, flags=re.S)
    out = out.replace("\\frac", "\\dfrac")
    return out.replace(". ", ".\n\n", 1) + "\n"


MATH = re.compile(
    r"(?<!\\)\$\$.+?(?<!\\)\$\$|(?<!\\)\$.+?(?<!\\)\$|\\\(.+?\\\)|\\\[.+?\\\]|\\begin\{(\w+)\}.+?\\end\{\1\}",
    re.S,
)  # $$..$$, $..$, \(..\), \[..\], \begin{env}..\end{env}
WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{4,}(?![A-Za-z])")  # not a LaTeX command's name


def one_word_changed(text: str, rng: random.Random) -> str | None:
    """The text with one word outside the math replaced by a synonym (or a filler word)."""
    spans = [m.span() for m in MATH.finditer(text)]
    outside = [m for m in WORD.finditer(text) if not any(a <= m.start() < b for a, b in spans)]
    if not outside:
        return None
    word = rng.choice(outside)
    old = word.group()
    new = SYNONYMS.get(old.lower()) or next(w for w in rng.sample(FALLBACK_WORDS, 4) if w != old.lower())
    if old[0].isupper():
        new = new.capitalize()
    return text[: word.start()] + new + text[word.end() :]


def numbers_changed(text: str, rng: random.Random) -> str | None:
    """The same text with every number changed: another problem from the same template."""
    if not re.search(r"\d", text):
        return None
    return re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), text)


def planted_problems(bench: list[tuple[str, int, str]], rng: random.Random, scale: float) -> list[dict]:
    """One problem of each kind per sampled benchmark problem (all 432 at --scale 1)."""
    count = min(len(bench), max(20, round(len(bench) * scale)))
    chosen = sorted(rng.sample(range(len(bench)), count))
    planted = []
    for i in chosen:
        name, row, text = bench[i]
        variants = {
            "exact": text,
            "drift": drift(text),
            "contained": rng.choice(PREFIXES) + text,
            "one-word": one_word_changed(text, rng),
            "numbers": numbers_changed(text, rng),
        }
        for kind, variant in variants.items():
            if variant is None or (kind == "drift" and " ".join(variant.split()) == " ".join(text.split())):
                continue
            planted.append({"text": variant, "kind": kind, "benchmark": name, "benchmark_problem": row})
    return planted


# -- the pool and the workspace ---------------------------------------------------------


def write_pool(out: Path, problems: list[str], rows: int, seed: int) -> None:
    """AceReason-layout parquet shards: every problem at least once, the rest drawn at
    random, rows in random order; short responses, each a distinct string."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n = len(problems)
    which = np.concatenate([np.arange(n), rng.integers(0, n, max(0, rows - n))])
    rng.shuffle(which)
    texts = pa.array(problems, pa.string())
    out.mkdir(parents=True)
    for shard, start in enumerate(range(0, len(which), SHARD_ROWS)):
        idx = which[start : start + SHARD_ROWS]
        a, b = rng.integers(2, 999, (2, len(idx))).tolist()
        responses = [
            f"<think>\nSet up the equations first: {x} + {y} = {x + y}. Case {start + j} checks out.\n</think>\n\n"
            f"So the answer is $\\boxed{{{(x * y) % 1000}}}$."
            for j, (x, y) in enumerate(zip(a, b))
        ]
        table = pa.table(
            {
                "category": pa.array(["math"] * len(idx)),
                "source": pa.array(["synthetic"] * len(idx)),
                "input": texts.take(pa.array(idx)),
                "output": pa.array(responses, pa.string()),
            }
        )
        pq.write_table(table, out / f"part-{shard:05d}.parquet", compression="zstd")


def build_workspace(wd: Path, scale: float, seed: int, rebuild: bool) -> dict:
    """Generate the pool and ingest it (both cached: reused when the manifest matches)."""
    import ingest as pool_bench  # bench/ingest.py: run_measured; bench/ is on sys.path when run as a script
    import pyarrow as pa
    import pyarrow.parquet as pq

    want = {"scale": scale, "seed": seed, "version": GEN_VERSION}
    manifest_path = wd / "manifest.json"
    if (
        not rebuild
        and manifest_path.exists()
        and {k: json.loads(manifest_path.read_text()).get(k) for k in want} == want
    ):
        print(f"workspace: reusing {wd / 'ws'}")
        return json.loads(manifest_path.read_text())
    manifest_path.unlink(missing_ok=True)
    for stale in ("pool", "ws"):
        shutil.rmtree(wd / stale, ignore_errors=True)
    n_problems, n_rows = round(FULL_PROBLEMS * scale), round(FULL_ROWS * scale)
    start = time.perf_counter()
    rng = random.Random(seed)
    bench = benchmark_problems()
    planted = planted_problems(bench, rng, scale)
    taken = {" ".join(p["text"].split()) for p in planted}
    problems = [p["text"] for p in planted] + background_problems(rng, n_problems - len(taken), taken)
    words = sorted(len(t.split()) for t in problems[len(planted) :])
    write_pool(wd / "pool", problems, n_rows, seed)
    pq.write_table(pa.Table.from_pylist(planted), wd / "planted.parquet")
    generated = time.perf_counter() - start
    print(f"pool: {n_rows:,} rows over {len(problems):,} problems ({len(planted):,} planted) in {generated:.1f} s")

    cli = [sys.executable, "-m", "curate.cli"]
    for step in (["init", str(wd / "ws")], ["ingest", str(wd / "ws"), str(wd / "pool"), "--preset", "acereason"]):
        ingest_s, rss, rc = pool_bench.run_measured(cli + step, wd / f"setup-{step[0]}.log")
        if rc != 0:
            sys.exit(1)
        print(f"setup: oxa {step[0]} {ingest_s:.1f} s, peak RSS {rss:,.0f} MB")
    manifest = {
        **want,
        "rows": n_rows,
        "problems": len(problems),
        "planted": dict(collections.Counter(p["kind"] for p in planted)),
        "benchmark_problems": len(bench),
        "background_words": {"min": words[0], "median": words[len(words) // 2], "max": words[-1]},
        "generate_s": round(generated, 1),
        "ingest_s": round(ingest_s, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def workspace_counts(ws_path: Path) -> dict:
    """What the ingest made of the pool: problems, samples, mean response length."""
    from curate.workspace import Workspace

    con = Workspace.open(ws_path).connect()
    samples, mean_chars = con.sql("SELECT count(*), avg(n_chars) FROM samples").fetchall()[0]
    problems = con.sql("SELECT count(*) FROM problems").fetchall()[0][0]
    con.close()
    return {"problems": problems, "samples": samples, "mean_response_chars": round(mean_chars)}


# -- the two contenders (each run in a child process) ----------------------------------


def run_oxa(ws_path: Path, out: Path) -> None:
    """Time run_decontaminate with default settings on every problem of the workspace."""
    from curate.decontaminate import DecontaminateConfig, run_decontaminate
    from curate.workspace import Workspace

    ws = Workspace.open(ws_path)
    for folder in (ws.table_folder("contamination"), ws.table_folder("contamination_checked")):
        for part in folder.glob("decontaminate-*.parquet"):  # else a rerun checks only new problems
            part.unlink()
    last = [0.0]

    def progress(what: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 10 or (total and done == total):
            last[0] = time.perf_counter()
            print(f"  {what}: {done:,}/{total:,}", flush=True)

    wall, cpu = time.perf_counter(), time.process_time()
    stats = run_decontaminate(ws, DecontaminateConfig(), progress)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    keep = ("summary", "candidate_pairs", "contaminated", "template_only", "seconds_matching", "checked")
    out.write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "stats": {k: stats.get(k) for k in keep}}))


def normalize_string(text: str) -> str:
    """open-r1: lower case, strip, whitespace runs as one space."""
    return " ".join(text.lower().strip().split())


def word_ngrams(text: str, n: int) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


def build_ngram_lookup(documents: list[str], n: int) -> dict[str, set[int]]:
    lookup: dict[str, set[int]] = collections.defaultdict(set)
    for doc_id, document in enumerate(documents):
        for gram in word_ngrams(normalize_string(document), n):
            lookup[gram].add(doc_id)
    return lookup


def shared_with(text: str, lookup: dict[str, set[int]], bench: list[tuple[str, int, str]]) -> list[str]:
    """The benchmark problems ('set:row') that share an 8-gram with `text`."""
    grams = word_ngrams(normalize_string(text), NGRAM)
    return sorted({f"{bench[d][0]}:{bench[d][1]}" for gram in grams for d in lookup.get(gram, ())})


def run_openr1(ws_path: Path, out: Path) -> None:
    """Time open-r1's check over the workspace's problems; write the flagged problem ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.workspace import Workspace

    wall, cpu = time.perf_counter(), time.process_time()
    bench = benchmark_problems()
    lookup = build_ngram_lookup([text for _, _, text in bench], NGRAM)
    con = Workspace.open(ws_path).connect()
    flagged, checked = [], 0
    for batch in con.sql("SELECT problem_id, problem FROM problems").to_arrow_reader(BATCH_ROWS):
        for problem_id, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            grams = set(word_ngrams(normalize_string(text), NGRAM))
            if any({gram in lookup for gram in grams}):  # as open-r1's find_contaminated
                flagged.append((problem_id, text))
        checked += batch.num_rows
    con.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    hits = [shared_with(text, lookup, bench) for _, text in flagged]  # untimed
    flagged = [problem_id for problem_id, _ in flagged]
    pq.write_table(pa.table({"problem_id": flagged, "hits": hits}), out.with_suffix(".parquet"))
    out.write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "checked": checked, "flagged": len(flagged)}))


def run_child(contender: str, wd: Path, log_name: str) -> dict:
    """Run one contender in its own process; its timing plus the process's peak RSS."""
    import ingest as pool_bench

    result = wd / f"{log_name}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", contender, "--workdir", str(wd)]
    wall, rss, rc = pool_bench.run_measured(cmd, wd / f"{log_name}.log")
    if rc != 0:
        sys.exit(1)
    return {**json.loads(result.read_text()), "process_s": wall, "peak_rss_mb": rss}


# -- the flags, side by side -----------------------------------------------------------


def flags_tables(wd: Path) -> tuple[list[dict], list[dict]]:
    """Per planted kind (and the unplanted rest): (1) how many problems each method flags,
    against any benchmark problem; (2) oxa's method against the benchmark problem each
    was made from, and whether open-r1 hit one of that problem's own 8-grams."""
    from curate.workspace import Workspace

    con = Workspace.open(wd / "ws").connect()
    con.execute(
        "CREATE TEMP TABLE planted AS SELECT DISTINCT ON (problem_id) oxa_problem_id(text) AS problem_id, kind, "
        "benchmark || ':' || benchmark_problem AS own FROM read_parquet($p)",
        {"p": str(wd / "planted.parquet")},
    )
    rank = "CASE method " + " ".join(f"WHEN '{m}' THEN {r}" for m, r in METHOD_RANK.items()) + " END"
    con.execute(
        f"""CREATE TEMP TABLE oxa AS
            SELECT c.problem_id, bool_or(c.method IN {CONTAMINATED}) AS contaminated,
                   arg_min(c.method, {rank}) FILTER (c.benchmark || ':' || c.benchmark_problem = pl.own) AS own_method
            FROM contamination AS c LEFT JOIN planted AS pl USING (problem_id)
            WHERE c.field = 'problem' GROUP BY c.problem_id"""
    )
    con.execute("CREATE TEMP TABLE openr1 AS SELECT * FROM read_parquet($p)", {"p": str(wd / "openr1.parquet")})
    rows = con.execute(
        """SELECT coalesce(pl.kind, 'unplanted') AS kind, count(*) AS problems,
                count(*) FILTER (o.contaminated) AS oxa_contaminated,
                count(*) FILTER (NOT o.contaminated) AS oxa_template_only,
                count(r.problem_id) AS openr1,
                count(*) FILTER (o.own_method = 'exact') AS exact,
                count(*) FILTER (o.own_method = 'contained') AS contained,
                count(*) FILTER (o.own_method = 'near') AS near,
                count(*) FILTER (o.own_method = 'template') AS template,
                count(*) FILTER (pl.kind IS NOT NULL AND o.own_method IS NULL) AS no_match,
                count(*) FILTER (list_contains(r.hits, pl.own)) AS openr1_own
            FROM problems AS p
            LEFT JOIN planted AS pl USING (problem_id)
            LEFT JOIN oxa AS o USING (problem_id)
            LEFT JOIN openr1 AS r USING (problem_id)
            GROUP BY ALL"""
    ).fetchall()
    missing = con.execute("SELECT count(*) FROM planted WHERE problem_id NOT IN (SELECT problem_id FROM problems)")
    if missing.fetchall()[0][0]:
        print("warning: planted problems missing from the workspace", file=sys.stderr)
    con.close()
    order = {k: i for i, k in enumerate([*KINDS, "unplanted"])}
    rows = sorted(rows, key=lambda r: order[r[0]])
    flags = ["kind", "problems", "oxa_contaminated", "oxa_template_only", "openr1"]
    own = ["kind", "problems", "exact", "contained", "near", "template", "no_match", "openr1_own"]
    return (
        [dict(zip(flags, r[:5])) for r in rows],
        [dict(zip(own, r[:2] + r[5:])) for r in rows if r[0] != "unplanted"],
    )


def print_table(title: str, rows: list[dict], headers: list[str]) -> None:
    print(f"\n{title}")
    print(f"{headers[0]:<11}" + "".join(f"{h:>15}" for h in headers[1:]))
    for row in rows:
        values = list(row.values())
        print(f"{values[0]:<11}" + "".join(f"{v:>15,}" for v in values[1:]))


def machine() -> str:
    import duckdb
    import polars

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs, {mem_gb:.1f} GB RAM, {platform.machine()}, python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, polars {polars.__version__}; load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="share of 350k problems / 2.6M rows (default: 1)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-decontam"), help="pool, workspace, logs")
    ap.add_argument("--seed", type=int, default=1234, help="generator seed (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the best wall time is reported")
    ap.add_argument("--rebuild", action="store_true", help="generate and ingest the pool again")
    ap.add_argument("--child", choices=["oxa", "openr1"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    wd = args.workdir.resolve()
    if args.child == "oxa":
        return run_oxa(wd / "ws", wd / "oxa.json")
    if args.child == "openr1":
        return run_openr1(wd / "ws", wd / "openr1.json")

    wd.mkdir(parents=True, exist_ok=True)
    manifest = build_workspace(wd, args.scale, args.seed, args.rebuild)
    counts = workspace_counts(wd / "ws")
    runs: dict[str, list[dict]] = {"oxa": [], "openr1": []}
    for r in range(args.repeat):
        for contender in runs:
            runs[contender].append(run_child(contender, wd, contender))
            last = runs[contender][-1]
            print(f"run {r + 1}/{args.repeat} {contender}: {last['wall_s']:.1f} s, {last['peak_rss_mb']:,.0f} MB")
    best = {  # best wall and CPU time, worst peak RSS over the runs
        k: {
            **min(v, key=lambda x: x["wall_s"]),
            "cpu_s": min(x["cpu_s"] for x in v),
            "peak_rss_mb": max(x["peak_rss_mb"] for x in v),
        }
        for k, v in runs.items()
    }
    oxa, openr1 = best["oxa"], best["openr1"]
    flags, own = flags_tables(wd)

    print(
        f"\nworkspace: {counts['samples']:,} samples (responses of {counts['mean_response_chars']} characters on "
        f"average), {counts['problems']:,} problems (background: {manifest['background_words']} words), "
        f"{sum(manifest['planted'].values()):,} planted {manifest['planted']}; against "
        f"{manifest['benchmark_problems']} benchmark problems; setup (untimed): generate {manifest['generate_s']} s, "
        f"ingest {manifest['ingest_s']} s"
    )
    print(
        f"{'':9}{'wall s':>9}{'CPU s':>9}{'process s':>11}{'peak RSS MB':>13}   (best times, worst RSS of {args.repeat})"
    )
    for name, res in (("oxa", oxa), ("open-r1", openr1)):
        print(f"{name:9}{res['wall_s']:>9.1f}{res['cpu_s']:>9.1f}{res['process_s']:>11.1f}{res['peak_rss_mb']:>13,.0f}")
    wall_ratio, cpu_ratio = oxa["wall_s"] / openr1["wall_s"], oxa["cpu_s"] / openr1["cpu_s"]
    print(f"oxa/open-r1: wall {wall_ratio:.2f}x, CPU {cpu_ratio:.2f}x (above 1: oxa is slower)")
    print(f"oxa: {oxa['stats']['summary']}; {oxa['stats']['candidate_pairs']:,} candidate pairs")
    print_table(
        "problems flagged, against any benchmark problem (oxa: exact/contained/near; template only apart)",
        flags,
        ["kind", "problems", "oxa contam.", "oxa template", "open-r1"],
    )
    print_table(
        "against the benchmark problem each was made from: oxa's method, and open-r1 hitting one of its 8-grams",
        own,
        ["kind", "problems", "exact", "contained", "near", "template", "no match", "open-r1"],
    )
    print(f"machine: {machine()}")
    result = {
        "bench": "decontaminate",
        "manifest": manifest,
        "workspace": counts,
        "oxa": oxa,
        "openr1": openr1,
        "flags": flags,
        "own": own,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
