"""The CPU chain at DeepSeek-R1's real lengths: init, ingest, trace, verify, decontaminate, select, export.

Every other benchmark used responses of about 1 KB; AceReason-1.1-SFT's math responses
are R1 traces of thousands of tokens (issue 33). This script generates a pool shaped like
its math split at real lengths and runs the whole chain over it, each stage in its own
process, at one or more sizes; then measures what one row can cost the per-row text
functions (the slowest rows), and, with --smoke, runs the same chain over the problems
and answers the repository ships (curate/data/).

The pool (seeded, generated once per size and cached under --workdir):

  shards     zstd parquet with AceReason's columns (category, source, input, output) and
             the PPL's two (below), ROW_GROUP_ROWS rows per row group, SHARD_ROWS rows per shard; ~95% math,
             5% code (which ingest filters out); about 7.6 responses per problem (Poisson),
             rows in random problem order; problems from bench/ingest.py's templates. Ingest
             reads parquet in batches of 32,768 rows and verify reads ingest's row groups,
             so their memory follows rows per shard (up to that) times the row's length
  lengths    tokens per response ~ log-normal, median TOKENS_MEDIAN = 5,000, shape
             TOKENS_SIGMA = 0.85 (mean ~7,200), at least MIN_TOKENS = 300: 1.35% of the
             responses are longer than the 32,768-token cutoff, and those beyond
             TOKENS_MAX = 56,000 (0.24%) are cut there (~200 KB: the longest rows). The
             paper prints no length statistics (Figure 2a plots the lengths of the 7B
             model's training data; its numbers are not in the text), so the numbers are
             chosen to fit what it and the issue state: SFT trains with a 32,768-token
             cutoff (Appendix A.3) and the released make_ULloss_data.py drops negatives over
             25k tokens (configs/oxa-full-*), so some responses are longer; models
             fine-tuned on this data answer AIME24, the hardest problems, in 12-15k tokens
             on average (Table 2), so the pool's median, over easier problems too, sits
             lower. Characters per token: CHARS_PER_TOKEN = 3.6, an assumption (English
             prose runs about 4 under the Qwen2.5 and DeepSeek tokenizers, LaTeX and digits
             fewer). Half the responses beyond the cutoff were cut there: their thinking
             never closes (no `</think>`, verdict no_answer).
  text       `<think>` + a restated product unique to the row + paragraphs drawn from a
             seeded bank of ~16k (sentence templates full of inline `$...$`, `\\frac{}{}`,
             `\\sqrt{}`, sums, congruences, and intermediate `\\boxed{}`s), each ending in a
             random number; 1% of the thinking holds a digit string of 1,000-8,000 digits,
             2% an unclosed brace or box; then `</think>`, a summary and the final answer.
  answers    per problem a gold (bench/verify.py's forms: 60% integers, fractions, radicals,
             tuples, multiples of pi, polynomials over Zipf-like values); per response:
             ANSWER_SHARES (the gold's text, another equivalent form, a wrong answer, no
             box, an unclosed final box, a final box of 200-1,500 digits), so verify does
             real work, and every row's expected verdict is known (truth.parquet).
  references references.parquet, NuminaMath-1.5's layout (problem, solution, answer,
             question_type, source): REFERENCE_SHARES of the problems verbatim (exact),
             drifted (normalized: bench/trace.py's drift), or missing (unmatched; their
             rows bad_gold); 10% of the golds written in another equivalent form.
  PPL        two more columns on every row, as a scored copy of the data carries them: `ppl`
             (float64: 1 + log-normal(median 1.45, sigma 0.35), x1.1 for wrong answers) and
             `n_tokens` (int64: round(characters / CHARS_PER_TOKEN)). Ingest maps them into
             scores/qwen2.5-math-1.5b/ (SCORES_TAG), which the selection presets read; no model
             runs (`oxa score` is the GPU's part of the chain).

The chain, each stage a process under a wrapper that records wall time, CPU time (user +
system of the stage and every process under it, verify's workers included), peak RSS (of
the largest process), bytes written (the block layer's count) and the workspace's growth
and peak size (polled):

  init      oxa init WS
  ingest    oxa ingest WS pool/ --preset acereason --map ppl=ppl --map n_tokens=n_tokens
            --scores-tag qwen2.5-math-1.5b
  trace     oxa trace WS --answers references.parquet
  verify    oxa verify WS --workers N (default: the CPUs)
  select    oxa select WS PRESET --set N=n for oxa-mle-qwen2.5-1.5b, sft-lp-qwen2.5-1.5b and
            sft-random, n = 50,000 x rows / 2.6M (the paper's 50k at 2.6M rows)
  export    oxa export WS oxa-mle-qwen2.5-1.5b --format trl (hf if trl refuses it)

Then the baseline of issue 33's item 6 ("no stage more than 3x the cost of reading its
input once with DuckDB"): for every stage but init, a DuckDB query that reads the stage's
input once, every row and every byte of the columns it reads (sum(strlen(column))), in
its own process under the same wrapper; x_read = the stage's wall time / the read's:

  ingest    the shards: category, source, input, output
  trace     the problems' text and the reference files (every column, as text)
  verify    the samples' responses and the golds (answers)
  select    the samples' responses, the scores (sample_id, ppl, n_tokens) and the verdicts
            (sample_id, problem_id, verdict); measured once for the three presets
  export    the subset's data.parquet: problem, response

Then checks that the funnel adds up (samples = math rows generated), that every row's
verdict is the one its generation implies, and that every stage exited 0; prints a table,
and per stage at the largest size its cost per million math rows of the pool (wall and
CPU seconds, disk written: the workspace's growth, for export the file) and peak RSS,
and each stage's estimate at 2.6M rows on 64 cores (on_cores: from its busiest lone
thread or its CPU over 64 cores to its main thread, each thread's CPU sampled by
bench/stage_usage.py); writes pipeline.json (and pipeline.png, time and memory against rows on log-log axes, the
reads dashed, when two sizes or more ran) under --workdir. A size whose disk or time,
extrapolated from the last size run, exceeds the free disk or --hours is skipped, saying why.

    .venv/bin/python bench/pipeline.py --scale 0.01 --workdir /tmp/oxa-bench-pipeline
    .venv/bin/python bench/pipeline.py --scale 0.01 --scale 0.1 --scale 1 --smoke --workdir /tmp/oxa-bench-pipeline
    .venv/bin/python bench/pipeline.py --rows 200 --shard-rows 100 --workdir /tmp/p   # the tests' size
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# bench/verify.py and bench/trace.py import bench/ingest.py as `ingest`: bench/ goes last
# on the path, so that it shadows nothing of the standard library (bench/trace.py is a name
# the standard library has too).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH] + [str(BENCH)]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import partial  # noqa: E402

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.ingest import SOURCES, _problem_table, run_measured  # noqa: E402
from bench.trace import normalized_drift  # noqa: E402
from bench.verify import KIND_SHARES, VALUE_WEIGHTS, VALUES, answer_forms  # noqa: E402
from curate.thread_names import PREFIX  # noqa: E402

GEN_VERSION = 2  # bump when the generated pool changes
FULL_ROWS = 2_600_000  # AceReason-1.1-SFT's math samples, as the paper counts them
PER_PROBLEM = 7.6  # responses per problem
CODE_SHARE = 0.05
SHARD_ROWS = 50_000
ROW_GROUP_ROWS = 2_048  # ~55 MB of text per row group at the mean length
TOKENS_MEDIAN = 5_000
TOKENS_SIGMA = 0.85
MIN_TOKENS = 300
TOKENS_MAX = 56_000
CUTOFF = 32_768  # the paper's SFT cutoff
CHARS_PER_TOKEN = 3.6
TRUNCATED_BEYOND_CUTOFF = 0.5  # of the responses beyond the cutoff: cut there, thinking unclosed
DIGITS_SHARE, UNCLOSED_SHARE = 0.01, 0.02  # of the responses: a long digit string / an unclosed brace in the thinking
# What a complete math response answers, and the verdict it must get (its problem traced).
ANSWER_SHARES = {
    "gold": 0.64,  # the gold's canonical text
    "equivalent": 0.16,  # another form of the same value
    "wrong": 0.157,
    "no_box": 0.03,
    "unclosed_box": 0.01,
    "long_digits": 0.003,  # a final box of 200-1,500 digits: math-verify parses it, incorrect
}
EXPECTED = {
    "gold": "correct",
    "equivalent": "correct",
    "wrong": "incorrect",
    "no_box": "no_answer",
    "unclosed_box": "no_answer",
    "long_digits": "incorrect",
    "truncated": "no_answer",
}
REFERENCE_SHARES = {"exact": 0.80, "normalized": 0.12, "missing": 0.08}
# The real data of --smoke: the benchmark sets and DeepScaleR's verl prompt file the package ships.
REAL_DATA = REPO / "curate" / "data"
REAL_REFERENCES = [*sorted((REAL_DATA / "benchmarks").glob("*.json")), REAL_DATA / "formats" / "aime24.verl.parquet"]
OTHER_FORM_SHARE = 0.10  # of the references: the gold in another equivalent form
SCORES_TAG = "qwen2.5-math-1.5b"
# the pool's PPL columns into scores/<SCORES_TAG>/ (docs/ingest.md)
INGEST_OPTIONS = ["--preset", "acereason", "--map", "ppl=ppl", "--map", "n_tokens=n_tokens", "--scores-tag", SCORES_TAG]
PRESETS = ("oxa-mle-qwen2.5-1.5b", "sft-lp-qwen2.5-1.5b", "sft-random")
PAPER_N = 50_000

# -- the text ------------------------------------------------------------------------------------

OPENERS = ["Hmm, wait", "Let me think again", "Alternatively", "So", "Now", "Okay", "Actually", "Then",
           "Let me double-check", "Going back to the setup", "On the other hand", "Wait"]  # fmt: skip
SENTENCES = [
    "substituting $x = {a}$ into $f(x) = x^2 + {b}x - {c}$ gives $f({a}) = {v}$",
    "the ratio simplifies: $\\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}} = "
    "\\frac{{{a}\\cdot {d} + {b}\\cdot {c}}}{{{b}\\cdot {d}}}$",
    "so $\\sqrt{{{s}}}$ lies between ${r}$ and ${r1}$, which bounds $|{x} - {a}|$",
    "if $n \\equiv {a} \\pmod{{{m}}}$ then $n^2 \\equiv {q} \\pmod{{{m}}}$, so only {d} residues remain",
    "by the formula $\\sum_{{k=1}}^{{{n}}} k = \\frac{{{n}({n}+1)}}{{2}} = {t}$",
    "the discriminant is $\\Delta = {b}^2 - 4\\cdot {a}\\cdot {c}$, and I need $\\Delta \\ge 0$",
    "we get $\\left( {a}, {b} \\right)$ as a candidate pair, with ${x} + {y} = {v}$",
    "so tentatively the answer would be $\\boxed{{{v}}}$, but I should check the case ${x} = {d}$",
    "then $\\binom{{{n}}}{{{d}}}$ counts the choices, and dividing by ${d}!$ removes the order",
    "the area is $\\frac{{1}}{{2}} \\cdot {a} \\cdot {b} \\sin\\theta$, maximal at $\\theta = \\frac{{\\pi}}{{2}}$",
    "taking logarithms, $\\log_{{{d}}} {a} = \\frac{{\\ln {a}}}{{\\ln {d}}}$, roughly {r}",
    "I can write ${x}^{{{d}}} - 1 = ({x} - 1)({x}^{{{e}}} + \\dots + 1)$ and compare factors",
    "hence $\\gcd({a}, {b})$ divides ${c}$, so the equation has solutions",
    "\\[ \\int_0^{{{d}}} ({a}t^2 + {b})\\,dt = \\frac{{{a}\\cdot {d}^3}}{{3}} + {b}\\cdot {d} \\]",
    "so far the partial result is $\\boxed{{{v}}}$; let me see whether it survives the next step",
    "the expected value is $E[X] = \\sum_i p_i x_i = \\frac{{{t}}}{{{m}}}$",
    "by AM-GM, $\\frac{{{x} + {y}}}{{2}} \\ge \\sqrt{{{x}{y}}}$, with equality at ${x} = {y}$",
    "the vectors $\\vec{{u}} = ({a}, {b})$ and $\\vec{{w}} = ({c}, {d})$ give $\\vec{{u}} \\cdot \\vec{{w}} = {v}$",
    "modulo ${m}$ the powers of ${d}$ cycle with period {e}, so I reduce the exponent ${n}$",
    "this contradicts the bound ${x} \\le {r}$ unless ${y} = 0$, which I had excluded",
    "the recurrence $a_{{k+1}} = {d}a_k - {e}$ has fixed point $\\frac{{{e}}}{{{d} - 1}}$",
    "so the count is ${n} - \\left\\lfloor \\frac{{{n}}}{{{d}}} \\right\\rfloor = {q}$",
]  # fmt: skip
LEAD_INS = [" So the running value is $", " Let me write this step as $", " That leaves $", " Keep in mind $"]
CLOSERS = ["$.\n\n", "$, which I will use below.\n\n", "$; let me keep that in mind.\n\n", "$.\n"]
UNCLOSED = [
    "Hmm, so $\\frac{{{a}}}{{{b}$ is what I get, or rather ",
    "the partial result is \\boxed{{{a} and then ",
    "Let me set $S = \\{{ {a}, {b}, {c}$ for now, ",
    "$\\sqrt{{{a} + \\frac{{1}}{{{b}}}$ hmm, ",
]
SUMMARIES = [
    "We set up the quantities, reduce the problem to a single equation and solve it; checking the "
    "boundary cases confirms the value.",
    "**Solution.** Substituting the given values and simplifying $\\frac{a}{b}$ step by step, the "
    "only case that survives is the one found above.",
    "To summarize: the constraint forces the smallest case, the computation above gives its value, and "
    "the remaining cases are excluded by the bound.",
    "Putting the pieces together (the count, the symmetry argument and the check modulo small primes), "
    "we obtain the result.",
]
OPENING = "<think>\nOkay, let me restate the problem and set up the notation first. Compute "


def token_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tokens per response: the documented log-normal, at least MIN_TOKENS, cut at TOKENS_MAX."""
    tokens = rng.lognormal(math.log(TOKENS_MEDIAN), TOKENS_SIGMA, n)
    return np.clip(tokens, MIN_TOKENS, TOKENS_MAX).astype(np.int64)


def ppl_values(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """PPL under the scoring model: 1 + log-normal (median 1.45, sigma 0.35), wrong answers x1.1."""
    ppl = 1.0 + rng.lognormal(math.log(1.45), 0.35, len(kind))
    return np.round(np.where(kind == "wrong", ppl * 1.1, ppl), 4)


def _paragraph_bank(rng: np.random.Generator, n: int) -> pa.Array:
    """n paragraphs of 2-7 sentences, each ending in a lead-in for the row's number."""
    py = random.Random(int(rng.integers(2**32)))
    paragraphs = []
    for _ in range(n):
        sentences = []
        for _ in range(py.randint(2, 7)):
            a, b, c, d = py.randint(2, 999), py.randint(2, 999), py.randint(2, 99), py.randint(2, 12)
            values = dict(a=a, b=b, c=c, d=d, e=d + 1, m=py.randint(3, 97), n=py.randint(5, 500))
            values.update(q=py.randint(0, 96), s=py.randint(2, 9999), t=py.randint(10, 99999), v=py.randint(0, 9999))
            values.update(r=py.randint(2, 99), r1=py.randint(100, 999), x=py.choice("xyzkmn"), y=py.choice("abpqst"))
            sentence = py.choice(SENTENCES).format(**values)
            sentences.append(sentence[0].upper() + sentence[1:] if sentences else sentence)
        paragraphs.append(f"{py.choice(OPENERS)}, " + ". ".join(sentences) + "." + py.choice(LEAD_INS))
    return pa.array(paragraphs, pa.string())


def _digits(rng: np.random.Generator, n: int) -> str:
    return (rng.integers(0, 10, n, dtype=np.uint8) + 48).tobytes().decode("ascii")


def _s(values) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


@dataclass
class Problems:
    """The pool's problems: text, source, gold forms and how the references hold them."""

    text: pa.Array
    source: np.ndarray
    gold: pa.Array  # the canonical form: what a 'gold' response writes
    equivalent: pa.Array  # another form of the same value
    wrong: pa.Array
    reference: np.ndarray  # 'exact' | 'normalized' | 'missing'
    reference_answer: list[str]  # what the references hold (10%: another equivalent form)

    @classmethod
    def make(cls, rng: np.random.Generator, n: int) -> Problems:
        text = _problem_table(rng, n)
        py = random.Random(int(rng.integers(2**32)))
        gold, equivalent, wrong, reference_answer = [], [], [], []
        for _ in range(n):
            kind = py.choices(range(len(KIND_SHARES)), KIND_SHARES)[0]
            g, eqs, wrongs = answer_forms(py.choices(VALUES, VALUE_WEIGHTS)[0], kind)
            gold.append(g)
            equivalent.append(py.choice(eqs))
            wrong.append(py.choice(wrongs))
            reference_answer.append(py.choice(eqs) if py.random() < OTHER_FORM_SHARE else g)
        cases = list(REFERENCE_SHARES)
        reference = np.array(cases)[rng.choice(len(cases), n, p=list(REFERENCE_SHARES.values()))]
        source = np.array(SOURCES)[rng.integers(0, len(SOURCES), n)]
        return cls(
            pa.array(text), source, pa.array(gold), pa.array(equivalent), pa.array(wrong), reference, reference_answer
        )

    @classmethod
    def real(cls) -> Problems:
        """The problems and answers the repository ships (REAL_REFERENCES): the benchmark
        sets' problems, and the verl file's (DeepScaleR's AIME 2024 prompts) user turns with
        their instruction. A wrong answer is the gold plus one for an integer, else 1/7 (no
        gold is); there is no other form."""
        text, source, gold = [], [], []
        for path in REAL_REFERENCES:
            if path.suffix == ".json":
                for row in json.loads(path.read_text(encoding="utf-8")):
                    answer = row["answer"][0] if isinstance(row["answer"], list) else row["answer"]
                    text.append(row["problem"])
                    gold.append(str(answer).strip())
                    source.append(path.stem)
            else:
                for row in pq.read_table(path).to_pylist():
                    text.append(next(m["content"] for m in row["prompt"] if m["role"] == "user"))
                    gold.append(row["reward_model"]["ground_truth"].strip())
                    source.append(path.name)
        # not gold + 1: math-verify takes 4.46 \times 10^{19}+1 for 4.46 \times 10^{19} (relative
        # tolerance) and can time out comparing an equation plus one
        wrong = [str(int(g) + 1) if g.lstrip("-").isdigit() else "\\frac{1}{7}" for g in gold]
        n = len(text)
        exact = np.array(["exact"] * n)
        return cls(pa.array(text), np.array(source), pa.array(gold), pa.array(gold), pa.array(wrong), exact, gold)


@dataclass
class Bank:
    """The seeded pieces responses are cut from."""

    paragraphs: pa.Array
    mean_piece: float  # characters of a paragraph with its number and closer
    digits: pa.Array  # 1,000-8,000 digits each, for the thinking
    unclosed: pa.Array

    @classmethod
    def make(cls, rng: np.random.Generator, paragraphs: int = 16_384) -> Bank:
        bank = _paragraph_bank(rng, paragraphs)
        mean = pc.mean(pc.utf8_length(bank)).as_py() + 5 + np.mean([len(c) for c in CLOSERS])
        digits = pa.array(
            [f"Let me expand ${d}^{{{e}}}$ in full: {_digits(rng, int(k))}.\n\n" for d, e, k in
             zip(rng.integers(2, 10, 256), rng.integers(1000, 9000, 256), rng.integers(1000, 8001, 256))]
        )  # fmt: skip
        py = random.Random(int(rng.integers(2**32)))
        unclosed = pa.array([py.choice(UNCLOSED).format(a=py.randint(2, 999), b=py.randint(2, 999), c=py.randint(2, 99))
                             for _ in range(1024)])  # fmt: skip
        return cls(bank, mean, digits, unclosed)


def _chunk(rng: np.random.Generator, first_row: int, n: int, problems: Problems, bank: Bank) -> tuple[pa.Table, dict]:
    """n rows of the pool (vectorized Arrow string joins) and their ground truth."""
    n_problems = len(problems.text)
    is_code = rng.random(n) < CODE_SHARE
    pid = rng.integers(0, n_problems, n)
    tokens = token_lengths(rng, n)
    truncated = (tokens > CUTOFF) & (rng.random(n) < TRUNCATED_BEYOND_CUTOFF) & ~is_code
    kinds = list(ANSWER_SHARES)
    kind = np.array(kinds)[rng.choice(len(kinds), n, p=list(ANSWER_SHARES.values()))]
    kind = np.where(truncated, "truncated", np.where(is_code, "code", kind))
    has_digits = rng.random(n) < DIGITS_SHARE
    has_unclosed = rng.random(n) < UNCLOSED_SHARE

    a = rng.integers(10, 9999, n)
    b = np.arange(first_row, first_row + n) + 1000  # unique per row: every response distinct
    head = pc.binary_join_element_wise(OPENING, _s(a), " \\times ", _s(b), " = ", _s(a * b), ".\n\n", "")
    digits = bank.digits.take(pa.array(rng.integers(0, len(bank.digits), n), mask=~has_digits))
    unclosed = bank.unclosed.take(pa.array(rng.integers(0, len(bank.unclosed), n), mask=~has_unclosed))

    pids = pa.array(pid)
    answer = pc.if_else(pa.array(kind == "equivalent"), problems.equivalent.take(pids), problems.gold.take(pids))
    answer = pc.if_else(pa.array(kind == "wrong"), problems.wrong.take(pids), answer)
    long_final = np.flatnonzero(kind == "long_digits")
    if len(long_final):  # 200-1,500 digits, never the gold: a first digit of 7 and a length over 15
        values = [f"7{_digits(rng, int(k) - 1)}" for k in rng.integers(200, 1501, len(long_final))]
        answer = pc.replace_with_mask(answer, pa.array(kind == "long_digits"), pa.array(values))
    summary = pa.array(SUMMARIES).take(pa.array(rng.integers(0, len(SUMMARIES), n)))
    final = pc.binary_join_element_wise(
        "\n</think>\n\n",
        summary,
        pa.array(
            np.where(kind == "no_box", " Therefore, the final answer is ", " Therefore, the final answer is $\\boxed{")
        ),
        answer,
        pa.array(np.select([kind == "no_box", kind == "unclosed_box"], [".", "$."], "}$.")),
        "",
    )
    code_final = pc.binary_join_element_wise(
        "\n</think>\n\n```python\ndef solve(xs):\n    k = ", _s(a % 50 + 1),
        "\n    return max(sum(xs[i:i+k]) for i in range(len(xs) - k + 1))\n```", "",
    )  # fmt: skip
    final = pc.if_else(pa.array(is_code), code_final, final)
    final = pc.if_else(pa.array(truncated), pa.nulls(n, pa.string()), final)

    fixed = (pc.utf8_length(head).to_numpy() + pc.utf8_length(pc.fill_null(final, "")).to_numpy()
             + pc.utf8_length(pc.fill_null(digits, "")).to_numpy(zero_copy_only=False))  # fmt: skip
    body_chars = np.maximum(tokens * CHARS_PER_TOKEN - fixed, 0)
    pieces = np.maximum(np.rint(body_chars / bank.mean_piece), 1).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(pieces)])
    total = int(offsets[-1])
    paragraph = bank.paragraphs.take(pa.array(rng.integers(0, len(bank.paragraphs), total)))
    closer = pa.array(CLOSERS).take(pa.array(rng.integers(0, len(CLOSERS), total)))
    flat = pc.binary_join_element_wise(paragraph, _s(rng.integers(0, 100_000, total)), closer, "")
    body = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat), "")
    # an unclosed brace opens the thinking; a truncated response ends in it (no final part)
    output = pc.binary_join_element_wise(head, unclosed, body, digits, final, "", null_handling="skip")

    code_input = pc.binary_join_element_wise(
        "Write a function `solve(xs)` that returns the maximum sum of a subarray of length ", _s(a % 50 + 1),
        " whose elements are all divisible by ", _s(b % 13 + 2), ".", "",
    )  # fmt: skip
    code = pa.array(is_code)
    chars = pc.utf8_length(output).to_numpy()
    ppl = ppl_values(rng, kind)
    n_tokens = np.rint(chars / CHARS_PER_TOKEN).astype(np.int64)
    table = pa.table(
        {
            "category": pa.array(np.where(is_code, "code", "math")),
            "source": pa.array(np.where(is_code, "code_contests", problems.source[pid])),
            "input": pc.if_else(code, code_input, problems.text.take(pids)),
            "output": output,
            "ppl": pa.array(ppl, pa.float64()),
            "n_tokens": pa.array(n_tokens, pa.int64()),
        }
    )
    truth = {
        "row": np.arange(n),
        "category": table["category"],
        "problem": pid,
        "kind": kind,
        "target_tokens": tokens,
        "n_chars": chars,
        "ppl": ppl,
        "n_tokens": n_tokens,
        "n_bytes": pc.binary_length(output).to_numpy() + pc.binary_length(table["input"]).to_numpy(),
    }
    return table, truth


def _generate_pool(
    pool: Path, rows: int, shard_rows: int, problems: Problems, bank: Bank, rng: np.random.Generator
) -> tuple[list[str], pa.Table]:
    """Write the shards; return their names and the ground truth of every row."""
    files, truths = [], []
    for shard, first in enumerate(range(0, rows, shard_rows)):
        name = f"part-{shard:05d}.parquet"
        size = min(shard_rows, rows - first)
        writer = None
        for start in range(0, size, ROW_GROUP_ROWS):
            n = min(ROW_GROUP_ROWS, size - start)
            table, truth = _chunk(rng, first + start, n, problems, bank)
            if writer is None:
                writer = pq.ParquetWriter(pool / name, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=n)
            truth["row"] = truth["row"] + start
            truths.append(pa.table({"file": pa.array([name] * n), **truth}))
        writer.close()
        files.append(name)
    return files, pa.concat_tables(truths)


def _write_references(path: Path, problems: Problems, seed: int) -> int:
    """The problems' golds in NuminaMath-1.5's layout, as REFERENCE_SHARES say; returns the text bytes."""
    py = random.Random(seed)
    rows = []
    for text, case, answer in zip(problems.text.to_pylist(), problems.reference, problems.reference_answer):
        if case == "missing":
            continue
        problem = text.replace(" ", "  ", 1) if case == "exact" else normalized_drift(text, py)
        rows.append((problem, answer))
    py.shuffle(rows)
    table = pa.table(
        {
            "problem": [p for p, _ in rows],
            "solution": [f"Working it through, the answer is $\\boxed{{{a}}}$." for _, a in rows],
            "answer": [a for _, a in rows],
            "question_type": ["math-word-problem"] * len(rows),
            "source": ["olympiads"] * len(rows),
        }
    )
    pq.write_table(table, path, compression="zstd")
    return sum(pc.sum(pc.binary_length(table[c])).as_py() or 0 for c in ("problem", "solution", "answer"))


def expected_verdicts(truth: pa.Table, reference: np.ndarray) -> np.ndarray:
    """The verdict each math row must get: bad_gold where its problem has no reference."""
    kind = truth["kind"].to_numpy(zero_copy_only=False)
    expected = np.array([EXPECTED.get(k, "") for k in kind], dtype=object)
    missing = reference[truth["problem"].to_numpy()] == "missing"
    return np.where(missing, "bad_gold", expected)


def generate(wd: Path, rows: int | None, seed: int, shard_rows: int, real: bool = False, force: bool = False) -> dict:
    """The pool (shards under wd/pool/), its references and truth.parquet (every math row's
    kind, length, PPL, expected verdict); reused while the manifest matches. `real`: the
    problems of REAL_REFERENCES, PER_PROBLEM responses each (rows None), and those files as
    the references."""
    manifest_path = wd / "pool.manifest.json"  # outside pool/: ingest reads every file there
    want = {"rows": rows, "seed": seed, "shard_rows": shard_rows, "real": real, "version": GEN_VERSION}
    if manifest_path.exists() and not force:
        m = json.loads(manifest_path.read_text())
        if {k: m.get(k) for k in want} == want and all((wd / "pool" / f).exists() for f in m["files"]):
            print(f"pool: reusing {len(m['files'])} shards in {wd / 'pool'}")
            return m
    t0, cpu0 = time.perf_counter(), time.process_time()
    pool = wd / "pool"
    shutil.rmtree(pool, ignore_errors=True)
    pool.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    if real:
        problems = Problems.real()
        rows = round(len(problems.text) * PER_PROBLEM / (1 - CODE_SHARE))
    else:
        problems = Problems.make(rng, max(1, round(rows * (1 - CODE_SHARE) / PER_PROBLEM)))
    bank = Bank.make(rng)
    files, truth = _generate_pool(pool, rows, shard_rows, problems, bank, rng)
    generated_s = time.perf_counter() - t0
    math_rows = truth.filter(pc.equal(truth["category"], "math"))
    expected = expected_verdicts(math_rows, problems.reference)
    math_rows = math_rows.append_column("expected", pa.array(expected.tolist(), pa.string()))
    math_rows = math_rows.append_column("reference", pa.array(problems.reference[math_rows["problem"].to_numpy()]))
    pq.write_table(math_rows, wd / "truth.parquet")
    if real:
        references = [str(p) for p in REAL_REFERENCES]
        reference_bytes = sum(p.stat().st_size for p in REAL_REFERENCES)
    else:
        references = [str(wd / "references.parquet")]
        reference_bytes = _write_references(wd / "references.parquet", problems, seed)
    used = np.unique(math_rows["problem"].to_numpy())
    verdicts, counts = np.unique(expected, return_counts=True)
    m = {
        **want,
        "rows": rows,
        "files": files,
        "references": references,
        "math_rows": math_rows.num_rows,
        "problems": len(used),
        "text_bytes": int(pc.sum(truth["n_bytes"]).as_py()),
        "math_text_bytes": int(pc.sum(math_rows["n_bytes"]).as_py()),
        "problem_text_bytes": int(pc.sum(pc.binary_length(problems.text.take(pa.array(used)))).as_py()),
        "reference_text_bytes": reference_bytes,
        "pool_bytes": sum((pool / f).stat().st_size for f in files),
        "generate_s": round(generated_s, 2),
        "generate_cpu_s": round(time.process_time() - cpu0, 2),
        "expected_verdicts": {str(v): int(c) for v, c in zip(verdicts, counts)},
        "reference_cases": {c: int((problems.reference[used] == c).sum()) for c in REFERENCE_SHARES},
    }
    manifest_path.write_text(json.dumps(m, indent=1))
    mb = m["text_bytes"] / 1e6
    print(
        f"pool: {rows:,} rows ({m['math_rows']:,} math, {m['problems']:,} problems), {mb:,.0f} MB of text "
        f"({m['pool_bytes'] / 1e6:,.0f} MB of parquet) in {len(files)} shards, generated in {generated_s:.1f} s "
        f"({mb / generated_s:,.0f} MB/s)"
    )
    return m


# -- running a stage -------------------------------------------------------------------------------

# The stage runs under this wrapper, itself under bench/ingest.py's peak-RSS wrapper. It is
# the child subreaper of everything the stage starts: a process orphaned on the way (verify's
# fork server and workers, when their parent ends first) is reaped here, not by init, so its
# CPU time counts. ru_oublock counts what the stage's processes wrote to the block layer
# (512-byte units), scratch files removed before the end included.
USAGE = Path(__file__).with_name("stage_usage.py")  # CPU, bytes written and busiest threads of a stage
OXA = [sys.executable, "-m", "curate.cli"]


def folder_bytes(path: Path) -> int:
    """The apparent size of the files under `path`."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # removed while walking
                pass
    return total


class PeakSize(threading.Thread):
    """The largest size of a folder while a stage runs, polled."""

    def __init__(self, path: Path, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.path, self.every_s, self.peak = path, every_s, folder_bytes(path)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            self.peak = max(self.peak, folder_bytes(self.path))

    def stop(self) -> int:
        self.done.set()
        self.join()
        return max(self.peak, folder_bytes(self.path))


@dataclass
class Stage:
    name: str
    command: list[str]
    rows: int | None = None  # what the stage goes through, for rows/s
    text_bytes: int | None = None  # the text it reads, for MB/s
    prepare: Callable[[], None] | None = None  # run first, outside the measurement


def run_stage(stage: Stage, logs: Path, ws: Path) -> dict:
    """Run one stage in its own process; its figures (rc 0 or not)."""
    usage = logs / f"{stage.name.replace(' ', '-')}.usage.json"
    usage.unlink(missing_ok=True)
    if stage.prepare is not None:
        stage.prepare()
    before = folder_bytes(ws)
    watch = PeakSize(ws)
    watch.start()
    command = [sys.executable, str(USAGE), str(usage), *map(str, stage.command)]
    wall, rss, rc = run_measured(command, logs / f"{stage.name.replace(' ', '-')}.log")
    peak = watch.stop()
    used = json.loads(usage.read_text()) if usage.exists() else {}
    f = {
        "stage": stage.name,
        "rc": rc,
        "wall_s": round(wall, 3),
        "cpu_s": round(used.get("cpu_s", float("nan")), 3),
        "peak_rss_mb": round(rss, 1),
        "io_written_bytes": used.get("io_written_bytes"),
        "busiest_threads": used.get("busiest_threads", []),
        "ws_growth_bytes": folder_bytes(ws) - before,
        "ws_peak_bytes": peak,
        "rows": stage.rows,
        "rows_per_s": round(stage.rows / wall, 1) if stage.rows else None,
        "text_mb": round(stage.text_bytes / 1e6, 4) if stage.text_bytes else None,
        "mb_per_s": round(stage.text_bytes / 1e6 / wall, 4) if stage.text_bytes else None,
    }
    return f


# -- the chain -------------------------------------------------------------------------------------


def select_n(math_rows: int) -> int:
    """The subsets' size: the paper's 50,000 at 2.6M rows, in proportion."""
    return max(1, round(PAPER_N * math_rows / FULL_ROWS))


VERIFY_CACHED = "verify cached"  # not part of the chain: verify run again, its pairs cached


def drop_verdicts(ws: Path) -> None:
    """Remove the verdict parts (the schema part and the pair cache stay), as oxa retires a part."""
    from curate.workspace import Workspace
    from curate.workspace.parts import part_files, remove_part

    for part in part_files(Workspace.open(ws).table_folder("verify")):
        if part.name.startswith("verify-"):
            remove_part(part)


def run_chain(wd: Path, m: dict, workers: int, real: bool = False) -> dict:
    """init, ingest, trace, verify, decontaminate, select (each preset) and export over the
    pool in wd; a failed stage ends the chain."""
    ws, logs = wd / "ws", wd / "logs"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.rmtree(wd / "export", ignore_errors=True)
    logs.mkdir(exist_ok=True)
    (wd / "export").mkdir()
    n = select_n(m["math_rows"])
    answers = [a for path in m["references"] for a in ("--answers", path)]
    # the smoke pool holds the shipped benchmark files themselves: decontamination finds
    # them, as it must, and selection keeps them there, so that it has rows to select
    keep = ["--set", "exclude_contaminated=false"] if real else []
    stages = [
        Stage("init", [*OXA, "init", ws]),
        Stage("ingest", [*OXA, "ingest", ws, wd / "pool", *INGEST_OPTIONS], m["rows"], m["text_bytes"]),
        Stage(
            "trace",
            [*OXA, "trace", ws, *answers],
            m["problems"],
            m["problem_text_bytes"] + m["reference_text_bytes"],
        ),
        Stage("verify", [*OXA, "verify", ws, "--workers", workers], m["math_rows"], m["math_text_bytes"]),
        # the same again with every (gold, answer) pair in the cache: verify's own work
        # (reading, extracting, writing) without math-verify's
        Stage(
            VERIFY_CACHED,
            [*OXA, "verify", ws, "--workers", workers],
            m["math_rows"],
            m["math_text_bytes"],
            prepare=partial(drop_verdicts, ws),
        ),
        # the problems against the six built-in benchmarks (the default): selection then
        # leaves out what it finds, and the cards say which sets were checked
        Stage("decontaminate", [*OXA, "decontaminate", ws], m["problems"], m["problem_text_bytes"]),
        *(
            Stage(f"select {preset}", [*OXA, "select", ws, preset, "--set", f"N={n}", *keep], m["math_rows"])
            for preset in PRESETS
        ),
    ]
    figures = []
    for stage in stages:
        figures.append(run_stage(stage, logs, ws))
        _print_stage(figures[-1])
        if figures[-1]["rc"] != 0:
            return {"stages": figures, "failed": stage.name, "select_n": n}
    export, exported = _export(ws, wd, logs)
    figures.append(export)
    _print_stage(export)
    return {"stages": figures, "failed": None if export["rc"] == 0 else "export", "select_n": n, "export": exported}


def _export(ws: Path, wd: Path, logs: Path) -> tuple[dict, dict]:
    """The first preset's subset as TRL prompt/completion parquet; a Hugging Face folder
    when the trl format refuses it."""
    subset = PRESETS[0]
    rows = pq.read_metadata(_newest_version(ws, subset) / "data.parquet").num_rows
    text = _subset_text_bytes(ws, subset)
    out = wd / "export" / f"{subset}.trl.parquet"
    figures = run_stage(
        Stage("export", [*OXA, "export", ws, subset, "--format", "trl", "-o", out], rows, text), logs, ws
    )
    if figures["rc"] == 0:
        return figures, {"format": "trl", "output": str(out), "bytes": out.stat().st_size}
    out = wd / "export" / f"{subset}.hf"
    figures = run_stage(
        Stage("export", [*OXA, "export", ws, subset, "--format", "hf", "-o", out], rows, text), logs, ws
    )
    return figures, {
        "format": "hf (trl refused)",
        "output": str(out),
        "bytes": folder_bytes(out) if out.exists() else 0,
    }


def _newest_version(ws: Path, subset: str) -> Path:
    return max((p.parent for p in (ws / "subsets" / subset).glob("*/card.json")), key=lambda p: p.stat().st_mtime)


def _subset_text_columns(data: Path) -> list[str]:
    return [c for c in ("problem", "response") if c in pq.read_schema(data).names]


def _subset_text_bytes(ws: Path, subset: str) -> int:
    data = _newest_version(ws, subset) / "data.parquet"
    columns = _subset_text_columns(data)
    table = pq.read_table(data, columns=columns)
    return sum(pc.sum(pc.binary_length(table[c])).as_py() or 0 for c in columns)


def check_chain(wd: Path, m: dict) -> dict:
    """The funnel (samples = math rows generated) and every row's verdict against the one
    its generation implies; the mismatches by (kind, expected, verdict)."""
    from curate.workspace import Workspace

    ws = Workspace.open(wd / "ws")
    con = ws.connect()
    try:
        con.execute("CREATE TEMP TABLE truth AS SELECT * FROM read_parquet(?)", [str(wd / "truth.parquet")])
        samples = con.sql("SELECT count(*) FROM samples").fetchall()[0][0]
        rows = con.sql(
            """SELECT t.kind, t.expected, coalesce(v.verdict, '(none)') AS verdict, count(*) AS n,
                      any_value(v.reason) AS reason
               FROM truth AS t
               LEFT JOIN samples AS s ON parse_filename(s.source_file) = t.file AND s.source_row = t.row
               LEFT JOIN verify AS v USING (sample_id)
               GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
        verdicts = dict(con.sql("SELECT verdict, count(*) FROM verify GROUP BY ALL ORDER BY ALL").fetchall())
        subsets = dict(con.sql("SELECT name, n_rows FROM subsets ORDER BY name").fetchall())
    finally:
        con.close()
    agree = sum(n for _, expected, verdict, n, _ in rows if expected == verdict)
    mismatches = [{"kind": k, "expected": e, "verdict": v, "rows": n, "reason": r} for k, e, v, n, r in rows if e != v]
    return {
        "samples": samples,
        "math_rows": m["math_rows"],
        "funnel_ok": samples == m["math_rows"],
        "verdicts": verdicts,
        "expected_verdicts": m["expected_verdicts"],
        "verdicts_as_expected": agree,
        "verdict_mismatches": mismatches,
        "subset_rows": subsets,
    }


def _print_stage(f: dict) -> None:
    mb = lambda x: "-" if x is None else f"{x / 1e6:,.0f}"  # noqa: E731
    rate = "-" if f["rows_per_s"] is None else f"{f['rows_per_s']:,.0f}"
    print(
        f"  {f['stage']:30}{'' if f['rc'] == 0 else ' FAILED rc=' + str(f['rc'])} {f['wall_s']:8.1f} s"
        f" {f['cpu_s']:8.1f} s cpu {f['peak_rss_mb']:7,.0f} MB  {rate:>9} rows/s"
        f" {'-' if f['mb_per_s'] is None else format(f['mb_per_s'], ',.1f'):>7} MB/s"
        f"  wrote {mb(f['io_written_bytes'])} MB, ws {f['ws_growth_bytes'] / 1e6:+,.0f} MB"
        f" (peak {mb(f['ws_peak_bytes'])} MB)"
    )


# -- the read baseline (issue 33, item 6) ---------------------------------------------------------

# What reading a stage's input once costs DuckDB: every row, and every byte of the columns
# named (None: every column, as text). argv[1]: a JSON list of {"files": [...], "columns": [...]};
# files are parquet files or globs, or one .json file.
READ_ONCE = """import duckdb, json, sys
con = duckdb.connect()
for read in json.loads(sys.argv[1]):
    files = {"files": read["files"]}
    is_json = read["files"][0].endswith(".json")
    relation = "read_json_auto($files)" if is_json else "read_parquet($files, union_by_name = true)"
    columns = read["columns"] or [c for c, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}", files).fetchall()]
    chars = " + ".join(f'coalesce(sum(strlen(CAST("{c}" AS VARCHAR))), 0)' for c in columns)
    rows, n = con.execute(f"SELECT count(*), {chars} FROM {relation}", files).fetchone()
    print(f"{rows:,} rows, {n:,} characters of {', '.join(columns)} from {read['files']}")"""
READ_FIGURES = ("read_s", "read_cpu_s", "read_peak_rss_mb", "x_read")


def stage_input(stage: str, wd: Path, m: dict) -> list[dict] | None:
    """What a stage reads, as READ_ONCE takes it (None: init, which reads nothing)."""
    from curate.workspace import Workspace
    from curate.workspace.parts import part_glob

    ws = Workspace.open(wd / "ws")
    responses = {"files": [part_glob(ws.table_folder("samples"))], "columns": ["response"]}
    match stage.split()[0]:  # 'select <preset>': select
        case "ingest":
            shards = [str(wd / "pool" / f) for f in m["files"]]
            return [{"files": shards, "columns": ["category", "source", "input", "output"]}]
        case "trace":
            problems = {"files": [part_glob(ws.table_folder("problems"))], "columns": ["problem"]}
            return [problems, *({"files": [path], "columns": None} for path in m["references"])]
        case "decontaminate":
            return [{"files": [part_glob(ws.table_folder("problems"))], "columns": ["problem_id", "problem"]}]
        case "verify":
            return [responses, {"files": [part_glob(ws.table_folder("answers"))], "columns": ["gold_answer"]}]
        case "select":
            scores = {"files": [part_glob(ws.scores_folder(SCORES_TAG))], "columns": ["sample_id", "ppl", "n_tokens"]}
            verdicts = {
                "files": [part_glob(ws.table_folder("verify"))],
                "columns": ["sample_id", "problem_id", "verdict"],
            }
            return [responses, scores, verdicts]
        case "export":
            data = _newest_version(ws.root, PRESETS[0]) / "data.parquet"
            return [{"files": [str(data)], "columns": _subset_text_columns(data)}]
    return None


def read_baseline(wd: Path, m: dict, stages: list[dict]) -> dict:
    """Add to each stage's figures what reading its input once with DuckDB costs (READ_FIGURES;
    None for init and a stage that failed), each distinct input read in a process of its own,
    measured like a stage. Returns the reads' seconds and the stages whose read failed."""
    print("  reading each stage's input once with DuckDB:")
    reads: dict[str, dict] = {}
    failed = []
    for f in stages:
        f.update(dict.fromkeys(READ_FIGURES))
        read = stage_input(f["stage"], wd, m) if f["rc"] == 0 else None
        if read is None:
            continue
        spec = json.dumps(read)
        if spec not in reads:  # the three selections read the same
            stage = Stage(f"read {f['stage'].split()[0]}", [sys.executable, "-c", READ_ONCE, spec])
            reads[spec] = run_stage(stage, wd / "logs", wd / "ws")
        r = reads[spec]
        if r["rc"] != 0:
            failed.append(f["stage"])
            print(f"  {f['stage']:30} read FAILED rc={r['rc']} (see {wd / 'logs'})")
            continue
        x_read = round(f["wall_s"] / r["wall_s"], 2)
        f.update(read_s=r["wall_s"], read_cpu_s=r["cpu_s"], read_peak_rss_mb=r["peak_rss_mb"], x_read=x_read)
        print(
            f"  {f['stage']:30} {r['wall_s']:8.1f} s {r['cpu_s']:8.1f} s cpu {r['peak_rss_mb']:7,.0f} MB"
            f"  stage / read {x_read:6.1f}x"
        )
    return {"reads_s": round(sum(r["wall_s"] for r in reads.values()), 3), "reads_failed": failed}


def per_million(result: dict) -> dict:
    """Each stage's cost per million math rows of the pool (whatever the stage goes through):
    wall and CPU seconds, disk written (disk_mb: the workspace's growth, which a stage that
    replaces parts can make negative, or export's file; io_written_mb: the block layer's
    count, scratch files included), and its peak RSS, which does not scale."""
    scale = 1e6 / result["math_rows"]
    figures = {}
    for f in result["stages"]:
        written = result["export"]["bytes"] if f["stage"] == "export" else f["ws_growth_bytes"]
        figures[f["stage"]] = {
            "wall_s": round(f["wall_s"] * scale, 2),
            "cpu_s": round(f["cpu_s"] * scale, 2),
            "disk_mb": round(written * scale / 1e6, 1),
            "io_written_mb": None if f["io_written_bytes"] is None else round(f["io_written_bytes"] * scale / 1e6, 1),
            "peak_rss_mb": f["peak_rss_mb"],
            "lone_thread_s": round(lone_thread_s(f) * scale, 2),
            "main_thread_s": round(main_thread_s(f) * scale, 2),
            f"on_{CORES}_cores_s": [round(seconds * scale, 2) for seconds in on_cores(f)],
        }
    return figures


CORES = 64  # the machine the sizing extrapolates to (issue 33, item 5)


def lone_threads(f: dict) -> list[dict]:
    """The stage's threads that oxa names `oxa:...` (curate/thread_names.py): each works
    alone, one task after another, whatever the cores (a part writer, a read-ahead)."""
    return [t for t in f["busiest_threads"] if t["name"].startswith(PREFIX)]


def lone_thread_s(f: dict) -> float:
    """The CPU seconds of the stage's busiest lone thread (0 where there is none)."""
    return max((t["cpu_s"] for t in lone_threads(f)), default=0.0)


def main_thread_s(f: dict) -> float:
    """The CPU seconds of the stage's main thread: its Python, which is one thread on any
    machine, and its share of the DuckDB queries it runs, which more cores would divide."""
    return max((t["cpu_s"] for t in f["busiest_threads"] if t["where"] == "the main thread"), default=0.0)


def on_cores(f: dict, cores: int = CORES) -> tuple[float, float]:
    """A stage's wall seconds on `cores` cores, estimated: (low, high). A thread runs on one
    core at a time, and nothing here can beat all the CPU seconds spread over every core, so
    low is the larger of those and the busiest lone thread; high counts the main thread
    whole too, as if none of it were DuckDB's. Both assume that nothing else waits."""
    low = max(lone_thread_s(f), f["cpu_s"] / cores)
    return low, max(low, main_thread_s(f))


# -- the slowest rows (issue 33, item 3) -------------------------------------------------------------

SIZES = (6_250, 12_500, 25_000, 50_000, 100_000, 200_000)  # characters per row
MAX_RECORD_BYTES = 4 * 2**20  # ingest's default limit: the longest row any stage can meet
GIVE_UP_S = 1.0  # a (function, row) measured this slow is not measured at larger sizes


def _row_shapes(bank: Bank, rng: np.random.Generator) -> dict:
    """Rows that stretch the per-row text functions, each a function of its length."""

    def r1_text(n: int) -> str:
        parts, size = [], 0
        while size < n:
            parts.append(bank.paragraphs[int(rng.integers(len(bank.paragraphs)))].as_py() + "1$.\n\n")
            size += len(parts[-1])
        return "".join(parts)[:n]

    short = "<think>\nshort\n</think>\n\n"
    return {
        "R1 response": lambda n: f"<think>\n{r1_text(n)}\n</think>\n\nSo the answer is $\\boxed{{42}}$.",
        "digits in the thinking": lambda n: (
            f"<think>\n{_digits(rng, n)}\n</think>\n\n$\\boxed{{{_digits(rng, 1999)}}}$"
        ),
        "final box never closes": lambda n: f"{short}$\\boxed{{{r1_text(n)}",
        "final box of digits": lambda n: f"{short}$\\boxed{{{_digits(rng, n)}}}$",
        "bare \\boxed mentions": lambda n: short + "I will put it in \\boxed later. " * (n // 31),
        "spaces in a power of ten": lambda n: "1 \\times 10^" + " " * n + "x",
    }


def _row_functions() -> dict:
    """The per-row work of the stages, on one text: what ingest, trace and verify's main
    process do with a response, a problem or an answer (math-verify's own work runs in
    workers under verify's deadline and is not here)."""
    import polars as pl

    from curate.decontaminate.config import DecontaminateConfig
    from curate.decontaminate.decontaminate import _Benchmarks
    from curate.decontaminate.ngrams import masked_tokens_expr
    from curate.text.extract import as_math_input, extract_answer
    from curate.text.normalize import answer_keys, match_key, match_text
    from curate.verify.verify import _INTEGER, _GoldFacts, simple_verdicts
    from curate.workspace.resources import sql_text

    con = duckdb.connect()
    con.execute(sql_text("macros.sql"))
    gold = ("42",)
    facts = _GoldFacts.of(gold)

    index = _Benchmarks.load(DecontaminateConfig()).index  # the six built-in sets

    def decontaminate_row(text: str):
        """`oxa decontaminate --responses` on one text: its masked tokens, n-grams and the
        pairs it forms with the benchmark problems."""
        frame = pl.DataFrame({"t": [text]}, schema={"t": pl.String}).with_row_index("row")
        return index.candidates(frame.select("row", masked_tokens_expr(pl.col("t")).alias("masked")))

    def verify_main_process(text: str) -> str:
        """_judge_buffer's work on one row before math-verify: extraction, the length
        limit, the gold's own text, the integer comparison, the simple verdict."""
        answer, _ = extract_answer(text, True)
        if answer is not None and len(answer) <= 2000:
            _ = as_math_input(answer) in facts.inputs or bool(_INTEGER.fullmatch(answer))
        return simple_verdicts([answer], [gold])[0]

    return {
        "extract (verify: after </think>)": lambda t: extract_answer(t, True),
        "extract (whole text: trace, eval)": lambda t: extract_answer(t, False),
        "verify's main process per row": verify_main_process,
        "answer_key (simple verdict, trace)": lambda t: answer_keys([t]),
        "match_text + match_key (trace)": lambda t: pl.select(match_key(match_text(pl.lit(t)))).item(),
        "content ids (ingest: NFC, md5)": lambda t: con.execute(
            "SELECT oxa_sample_id(oxa_problem_id($t), $t)", {"t": t}
        ).fetchone(),
        "as_math_input (a gold, in verify)": as_math_input,
        "tokens + n-grams (decontaminate)": decontaminate_row,
    }


def _time(function, text: str) -> float:
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - t0)
        if best > 0.2:
            break
    return best


def _growth(times: dict[int, float]) -> float | None:
    """The slope of log(seconds) against log(characters) over the three largest sizes taking
    a millisecond or more (None: too fast to tell, bounded by what was measured)."""
    points = [(math.log(n), math.log(t)) for n, t in times.items() if t >= 1e-3][-3:]
    if len(points) < 2:
        return None
    x, y = np.array(points).T
    return float(np.polyfit(x, y, 1)[0])


def slowest_rows(
    seed: int, pool_truth: Path | None = None, pool: Path | None = None, sizes: tuple[int, ...] = SIZES
) -> dict:
    """Per-row seconds of each text function on each shape at SIZES, the growth exponent
    between the two largest sizes measured, and the time extrapolated to a 200 KB and a
    4 MiB row; and, given a pool, the slowest of its 20 longest responses."""
    rng = np.random.default_rng(seed)
    shapes = _row_shapes(Bank.make(rng, 2_048), rng)
    functions = _row_functions()
    results = []
    for shape, make in shapes.items():
        texts = {n: make(n) for n in sizes}
        for name, function in functions.items():
            times = {}
            for n, text in texts.items():
                times[n] = _time(function, text)
                if times[n] > GIVE_UP_S:
                    break
            n2, t2 = list(times.items())[-1]
            exponent = _growth(times)
            growth = max(exponent or 1.0, 1.0)
            results.append(
                {
                    "function": name,
                    "shape": shape,
                    "seconds": {str(k): round(v, 9) for k, v in times.items()},
                    "exponent": None if exponent is None else round(exponent, 2),
                    "at_200k_s": round(t2 * (200_000 / n2) ** growth, 6),
                    "at_4mib_s": round(t2 * (MAX_RECORD_BYTES / n2) ** growth, 2),
                }
            )
    longest = []
    if pool_truth is not None and pool is not None:
        truth = pq.read_table(pool_truth, columns=["file", "row", "n_chars"]).sort_by([("n_chars", "descending")])
        for file, row, _ in zip(*(truth[c].to_pylist()[:20] for c in ("file", "row", "n_chars"))):
            shard = pq.ParquetFile(pool / file)
            group = row // ROW_GROUP_ROWS
            text = shard.read_row_group(group, columns=["output"])["output"][row - group * ROW_GROUP_ROWS].as_py()
            for name, function in functions.items():
                longest.append({"function": name, "chars": len(text), "seconds": _time(function, text)})
    slowest = {}
    for r in longest:
        if r["seconds"] > slowest.get(r["function"], {"seconds": -1})["seconds"]:
            slowest[r["function"]] = r
    return {"sizes": list(sizes), "shapes": results, "pool_longest": list(slowest.values())}


def _print_slowest(result: dict) -> None:
    print(
        "\nslowest rows: time per row at 200 KB (measured, or ~extrapolated), growth exponent (-: under a "
        "millisecond throughout), extrapolated to 4 MiB (ingest's --max-record-bytes)"
    )
    for r in result["shapes"]:
        measured = str(200_000) in r["seconds"]
        flag = "  SUPERLINEAR" if (r["exponent"] or 0) >= 1.5 and r["at_4mib_s"] > 1 else ""
        exponent = "-" if r["exponent"] is None else f"{r['exponent']:.2f}"
        print(
            f"  {r['function']:36} {r['shape']:26} {'' if measured else '~'}{r['at_200k_s'] * 1000:11.2f} ms"
            f"  n^{exponent:<5} 4 MiB: {r['at_4mib_s']:,.2f} s{flag}"
        )
    for r in result["pool_longest"]:
        print(f"  pool's longest rows: {r['function']:36} {r['seconds'] * 1000:8.2f} ms ({r['chars']:,} chars)")


# -- sizes, report, plot ----------------------------------------------------------------------------


def _machine() -> str:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, {mem_gb:.1f} GB RAM, {platform.machine()}, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, pyarrow {pa.__version__}; load average at the start {load}"
    )


# Before any size has run: 26,000 rows took 102 MB of pool, a workspace of 114 MB at its
# peak and 45 s from generation to export (2 CPUs, loaded).
PRIOR = {"rows": 26_000, "disk_bytes": 216e6, "seconds": 45.0}


def _too_big(rows: int, done: list[dict], wd: Path, deadline: float) -> str | None:
    """Why a size must be skipped (its disk or time, in proportion to the largest size run,
    with a fifth more), or None."""
    runs = [d for d in done if d.get("stages")]
    if runs:
        last = max(runs, key=lambda d: d["rows"])
        known = {
            "rows": last["rows"],
            "disk_bytes": last["pool_bytes"] + max(s["ws_peak_bytes"] for s in last["stages"]),
            "seconds": last["generate_s"] + sum(s["wall_s"] for s in last["stages"]) + last["reads_s"],
        }
    else:
        known = PRIOR
    scale = rows / known["rows"] * 1.2
    free = shutil.disk_usage(wd).free
    if known["disk_bytes"] * scale > free:
        return (
            f"needs ~{known['disk_bytes'] * scale / 1e9:,.0f} GB of disk (pool and workspace, in proportion to "
            f"{known['rows']:,} rows), {free / 1e9:,.0f} GB free"
        )
    if time.monotonic() + known["seconds"] * scale > deadline:
        hours = known["seconds"] * scale / 3600
        return f"needs ~{hours:.1f} h (in proportion to {known['rows']:,} rows), more than --hours leaves"
    return None


def run_size(wd: Path, rows: int | None, args: argparse.Namespace, real: bool = False) -> dict:
    wd.mkdir(parents=True, exist_ok=True)
    m = generate(wd, rows, args.seed, args.shard_rows, real=real, force=args.regenerate)
    result = {key: m[key] for key in ("rows", "math_rows", "problems", "text_bytes", "math_text_bytes", "pool_bytes")}
    result.update(generate_s=m["generate_s"], generate_cpu_s=m["generate_cpu_s"], workdir=str(wd))
    result.update(run_chain(wd, m, args.workers, real=real))
    result.update(read_baseline(wd, m, result["stages"]))
    result["per_million"] = per_million(result)
    if result["failed"] is None or result["failed"] == "export":
        result["checks"] = check_chain(wd, m)
        c = result["checks"]
        print(
            f"  funnel: {c['samples']:,} samples of {c['math_rows']:,} math rows"
            f" {'OK' if c['funnel_ok'] else 'MISMATCH'};"
            f" verdicts as generated: {c['verdicts_as_expected']:,} of {c['math_rows']:,}; subsets {c['subset_rows']}"
        )
        for mismatch in c["verdict_mismatches"]:
            print(f"    {mismatch}")
    if args.clean:
        shutil.rmtree(wd / "ws", ignore_errors=True)
        shutil.rmtree(wd / "pool", ignore_errors=True)
    return result


def _print_summary(results: list[dict]) -> None:
    """One line per stage: wall s / CPU s / peak RSS MB / x read at each size; then, at the
    largest size, each stage's cost per million math rows."""
    if not results:
        return
    labels = [f"{r['math_rows']:,} math rows" + (" (smoke)" if r["workdir"].endswith("smoke") else "") for r in results]
    print(f"\n{'wall s / cpu s / peak RSS MB / x read':38}" + "".join(f"{label:>34}" for label in labels))
    stages = [s["stage"] for s in max(results, key=lambda r: len(r["stages"]))["stages"]]
    for name in stages:
        cells = []
        for r in results:
            f = next((s for s in r["stages"] if s["stage"] == name), None)
            x_read = "-" if f is None or f["x_read"] is None else f"{f['x_read']:.1f}x"
            cells.append(
                "-" if f is None else f"{f['wall_s']:.1f} / {f['cpu_s']:.1f} / {f['peak_rss_mb']:,.0f} / {x_read}"
            )
        print(f"{name:38}" + "".join(f"{c:>34}" for c in cells))
    largest = max(results, key=lambda r: r["math_rows"])
    print(f"\nper million math rows (from {largest['math_rows']:,}; disk: the workspace's growth, export's file)")
    print(
        f"{'':38}{'wall s':>12}{'cpu s':>12}{'disk MB':>12}{'written MB':>12}{'peak RSS MB':>12}"
        f"{'lone thr s':>12}{'main thr s':>12}{f'{CORES} cores s':>16}"
    )
    for name, f in largest["per_million"].items():
        written = "-" if f["io_written_mb"] is None else f"{f['io_written_mb']:,.1f}"
        print(
            f"{name:38}{f['wall_s']:12,.1f}{f['cpu_s']:12,.1f}{f['disk_mb']:12,.1f}{written:>12}"
            f"{f['peak_rss_mb']:12,.0f}{f['lone_thread_s']:12,.1f}{f['main_thread_s']:12,.1f}"
            f"{'{:,.1f} - {:,.1f}'.format(*f[f'on_{CORES}_cores_s']):>16}"
        )
    _print_many_cores(largest)


def _print_many_cores(result: dict) -> None:
    """Each stage at FULL_ROWS rows on CORES cores, estimated (on_cores), with its lone
    threads and its main thread."""
    scale = FULL_ROWS / result["rows"]
    print(
        f"\n{FULL_ROWS:,} rows on {CORES} cores, estimated: at least the busiest lone thread or the CPU over "
        f"{CORES} cores, at most that or the main thread"
    )
    total = np.zeros(2)
    for f in result["stages"]:
        if f["stage"] == VERIFY_CACHED:  # not part of the chain
            continue
        low, high = (seconds * scale for seconds in on_cores(f))
        total += (low, high)
        threads = ", ".join(f"{t['name']} {t['cpu_s'] * scale:,.0f} s" for t in lone_threads(f)[:3])
        print(
            f"  {f['stage']:36}{low:9,.0f} - {high:,.0f} s   main thread {main_thread_s(f) * scale:,.0f} s; "
            f"lone threads: {threads or '-'}"
        )
    print(f"  {'the whole chain':36}{total[0]:9,.0f} - {total[1]:,.0f} s")


def plot(results: list[dict], path: Path) -> None:
    """Wall time and peak RSS of each stage against math rows, log-log; dashed, the same of
    reading the stage's input once with DuckDB."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = [s["stage"] for s in results[-1]["stages"] if s["stage"] != "init"]
    for name in names:
        points = sorted(
            ((r["math_rows"], s) for r in results for s in r["stages"] if s["stage"] == name), key=lambda p: p[0]
        )
        rows = [n for n, _ in points]
        line = left.plot(rows, [s["wall_s"] for _, s in points], marker="o", label=name)[0]
        right.plot(rows, [s["peak_rss_mb"] for _, s in points], marker="o", label=name)
        reads = [(n, s) for n, s in points if s["read_s"] is not None]
        if reads:
            style = dict(linestyle="--", marker=".", color=line.get_color())
            left.plot([n for n, _ in reads], [s["read_s"] for _, s in reads], **style)
            right.plot([n for n, _ in reads], [s["read_peak_rss_mb"] for _, s in reads], **style)
    for ax, label in ((left, "wall time (s)"), (right, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("math rows")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    fig.suptitle("bench/pipeline.py: the CPU chain at R1's lengths (dashed: DuckDB reading its input once)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    path.write_bytes(buffer.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, action="append", help=f"a size as a fraction of {FULL_ROWS:,} rows; repeat")
    ap.add_argument("--rows", type=int, action="append", help="a size in rows; repeat (with --scale too)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-pipeline"), help="scratch dir")
    ap.add_argument("--seed", type=int, default=1234, help="generator seed (default: %(default)s)")
    ap.add_argument("--shard-rows", type=int, default=SHARD_ROWS, help="rows per shard (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="oxa verify --workers (default: the CPUs)")
    ap.add_argument("--hours", type=float, default=4.0, help="skip sizes extrapolated to end later than this")
    ap.add_argument("--smoke", action="store_true", help="also run the chain over the shipped real data (curate/data)")
    ap.add_argument("--no-slowest-rows", action="store_true", help="skip the per-row measurements")
    ap.add_argument("--clean", action="store_true", help="remove each size's pool and workspace when done")
    ap.add_argument("--regenerate", action="store_true", help="rebuild pools even if their manifests match")
    args = ap.parse_args()

    deadline = time.monotonic() + args.hours * 3600
    wd = args.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    sizes = sorted({*(round(s * FULL_ROWS) for s in args.scale or []), *(args.rows or [])})
    if not sizes and not args.smoke:
        sizes = [FULL_ROWS // 100]
    report = {"bench": "pipeline", "machine": _machine(), "sizes": [], "skipped": []}
    print(f"machine: {report['machine']}")
    for rows in sizes:
        reason = _too_big(rows, report["sizes"], wd, deadline)
        if reason:
            print(f"\n{rows:,} rows: skipped: {reason}")
            report["skipped"].append({"rows": rows, "reason": reason})
            continue
        print(f"\n{rows:,} rows")
        report["sizes"].append(run_size(wd / f"rows-{rows}", rows, args))
    if args.smoke:
        print("\nsmoke: the shipped benchmark sets and verl prompts, at their real sizes")
        report["smoke"] = run_size(wd / "smoke", None, args, real=True)
    if not args.no_slowest_rows:
        largest = max(report["sizes"], key=lambda r: r["rows"], default=None)
        pool_wd = Path(largest["workdir"]) if largest and not args.clean else None
        report["slowest_rows"] = slowest_rows(
            args.seed, pool_wd / "truth.parquet" if pool_wd else None, pool_wd / "pool" if pool_wd else None
        )
        _print_slowest(report["slowest_rows"])
    (wd / "pipeline.json").write_text(json.dumps(report, indent=1))
    ran = [r for r in report["sizes"] if r["failed"] is None]
    if len(ran) >= 2:
        plot(ran, wd / "pipeline.png")
    print(f"\nfigures: {wd / 'pipeline.json'}" + (f", plot: {wd / 'pipeline.png'}" if len(ran) >= 2 else ""))
    everything = [*report["sizes"], *([report["smoke"]] if "smoke" in report else [])]
    _print_summary(everything)
    ok = all(r["failed"] is None and r["checks"]["funnel_ok"] and not r["reads_failed"] for r in everything)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
