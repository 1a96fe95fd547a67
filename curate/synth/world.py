"""`oxa synth world`: write the synthetic world to a folder, with a manifest of its truth.

```
WORLD/
  pool/teacher.jsonl            the teacher pool, AceReason-1.1-SFT layout (category, source, input, output)
  references/numina15.parquet   answers in an `answer` column (NuminaMath-1.5 layout)
  references/numina_cot.parquet answers as the last \\boxed of a `solution` (NuminaMath-CoT layout)
  heldout.json                  evaluation problems in no pool or reference (benchmark layout)
  corpus.jsonl                  pretraining text for the tiny models: problems in every style
  manifest.json                 the composition, and per problem and per sample what is true
```

The same config gives byte-identical files. The manifest records, per pool problem, its
problem_id, family, gold answer and tracing case (which reference rows hold it, with
what drift, and the method that should find it), and per pool row its sample_id, style,
flaw and the content of its last \\boxed, so later stages can be checked exactly. With
`leaked` or `leaked_variants`, a few held-out problems are also planted in the pool
(leaks.py) and their manifest entries say which and how.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rapidfuzz import fuzz, process

from curate.synth.drills import DRILLS
from curate.synth.families import FAMILIES, Problem
from curate.synth.leaks import Leak, plant_leaks
from curate.synth.mix import exact_counts, exact_mix, stream
from curate.synth.references import (
    DISTINCT_BELOW,
    FUZZY_AT_LEAST,
    ORIGINS,
    TRACE_CASES,
    build_references,
    loose,
)
from curate.synth.responses import FLAWS, code_row, teacher_response
from curate.synth.styles import STRATEGIES, STYLES
from curate.trace.fuzzy import numbers_in
from curate.workspace import OxaError
from curate.workspace.resources import sql_text

MANIFEST = "manifest.json"
FORMAT = "oxa-synth-world/1"
POOL_FILE = "pool/teacher.jsonl"
HELDOUT_FILE = "heldout.json"
CORPUS_FILE = "corpus.jsonl"

DEFAULT_FLAW_SHARES = {
    "none": 0.66,
    "wrong_answer": 0.15,
    "equivalent_form": 0.08,
    "missing_box": 0.04,
    "missing_think_close": 0.03,
    "truncated": 0.04,
}
DEFAULT_TRACE_SHARES = {
    "exact": 0.35,
    "normalized": 0.20,
    "fuzzy": 0.15,
    "agree": 0.05,
    "conflict": 0.05,
    "placeholder": 0.08,
    "missing": 0.12,
}


@dataclass
class WorldConfig:
    """What `oxa synth world` makes; every field is also an option of the command."""

    seed: int = 0  # the only source of randomness
    problems: int = 240  # pool problems, dealt to the families in turn
    min_responses: int = 2  # teacher responses per pool problem: uniform in [min, max]
    max_responses: int = 8
    heldout: int = 40  # evaluation problems, in no pool or reference
    reference_only: int = 120  # reference rows for problems outside the pool
    corpus_problems: int = 480  # pretraining problems, each written once in every style
    families: list[str] = field(default_factory=lambda: list(DRILLS))  # problem families (families.py, drills.py)
    styles: list[str] = field(default_factory=lambda: list(STRATEGIES))  # the teacher's styles (styles.py)
    non_math_rows: int = 6  # category 'code' rows, which the acereason preset filters out
    flaw_shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FLAW_SHARES))
    trace_shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TRACE_SHARES))
    # Held-out problems planted in the pool (leaks.py), each with flawless responses and a
    # reference answer: copies, which decontamination should find and selection drop, and
    # numbers-changed variants of others (template matches, kept). None by default: the
    # held-out problems are then in no pool or reference, as tests of the world expect.
    leaked: int = 0  # copies, dealt in turn: verbatim, with formatting drift, after an instruction
    leaked_variants: int = 0  # other held-out problems with the same words and other numbers

    def check(self) -> None:
        if self.problems < 1 or self.heldout < 0 or self.reference_only < 0 or self.corpus_problems < 0:
            raise OxaError(f"problem counts must be positive (pool) or zero or more (the rest); got {self}")
        if self.leaked < 0 or self.leaked_variants < 0 or self.leaked + self.leaked_variants > self.heldout:
            raise OxaError(
                f"leaked ({self.leaked}) and leaked_variants ({self.leaked_variants}) must be zero or more and "
                f"add up to at most the held-out problems ({self.heldout})"
            )
        if not 1 <= self.min_responses <= self.max_responses:
            raise OxaError(
                f"responses per problem must satisfy 1 <= min <= max; got {self.min_responses}..{self.max_responses}"
            )
        for what, shares, known in (("flaw", self.flaw_shares, FLAWS), ("trace", self.trace_shares, TRACE_CASES)):
            unknown = sorted(set(shares) - set(known))
            if unknown:
                raise OxaError(f"unknown {what} kind(s) {', '.join(unknown)}; known: {', '.join(known)}")
        exact_counts(1, self.flaw_shares)  # raises on negative or all-zero shares
        exact_counts(1, self.trace_shares)
        for what, chosen, known in (("family", self.families, FAMILIES), ("style", self.styles, STYLES)):
            unknown = sorted(set(chosen) - set(known))
            if unknown or not chosen or len(set(chosen)) != len(chosen):
                raise OxaError(f"{what} list {chosen}: name each once, from {', '.join(known)}")
        wordy = [f for f in self.families if not FAMILIES[f].equations]
        strategies = [s for s in self.styles if STYLES[s].equations]
        if wordy and strategies:
            raise OxaError(
                f"styles {', '.join(strategies)} rewrite the steps of the drills ({', '.join(DRILLS)}); "
                f"families {', '.join(wordy)} have none: choose drills, or the styles {', '.join(s for s in STYLES if not STYLES[s].equations)}"
            )


class _ProblemDrawer:
    """Draws problems family by family, each from its own stream, keeping only those
    distinct from every problem already kept: a wordy problem must score below
    references.DISTINCT_BELOW against every kept wordy one, a drill against every kept
    drill with the same numbers (tracing's fuzzy stage keeps problems whose numbers differ
    apart). With `distinct` off (the corpus), only texts already taken are refused."""

    def __init__(self, seed: int, purpose: str, distinct: bool, families: list[str], taken: set) -> None:
        self.streams = {name: stream(seed, purpose, name) for name in families}
        self.families, self.distinct, self.taken = families, distinct, taken
        self.kept: dict[tuple | None, list[str]] = {}  # loose forms by numbers (drills) or all together
        self.drawn_from: dict[str, tuple] = {}  # with `remember`: the random state each problem was drawn from

    def draw(self, count: int, remember: bool = False) -> list[Problem]:
        return [self._one(self.families[i % len(self.families)], remember) for i in range(count)]

    def keep(self, problem: Problem, like: Problem | None = None) -> bool:
        """Take `problem` if it is new and (with `distinct`) reads apart from every problem
        taken, but `like`, which a variant may resemble; False if it does not."""
        if problem.text in self.taken:
            return False
        if self.distinct:
            # drills of one template differ in little but their numbers: only problems with the
            # same numbers (which tracing's fuzzy stage cannot tell apart) need to read apart
            kept = self.kept.setdefault(_numbers(problem.text) if FAMILIES[problem.family].equations else None, [])
            form = loose(problem.text)
            others = kept if like is None else [k for k in kept if k != loose(like.text)]
            if process.extractOne(form, others, scorer=fuzz.ratio, score_cutoff=DISTINCT_BELOW):
                return False
            kept.append(form)
        self.taken.add(problem.text)
        return True

    def _one(self, family: str, remember: bool) -> Problem:
        rng = self.streams[family]
        for _ in range(10_000):
            state = rng.getstate() if remember else None
            problem = FAMILIES[family].problem(rng)
            if self.keep(problem):
                if remember:
                    self.drawn_from[problem.text] = state
                return problem
        raise OxaError(
            f"could not draw another '{family}' problem distinct from those drawn so far; ask for fewer problems "
            "(wordy families: about 1,000 in all, pool + held-out + reference-only; drills: a few thousand each)"
        )


def build_world(out: Path, config: WorldConfig) -> dict:
    """Write the world to `out` (replacing a world already there) and return its manifest.

    The files are written to a temporary sibling folder that is renamed into place, so
    a killed build leaves no half-written world."""
    config.check()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise OxaError(f"{out} is not empty and holds no synthetic world ({MANIFEST}); pick a new or empty folder")
    seed = config.seed
    taken: set[str] = set()
    drawer = _ProblemDrawer(seed, "problems", True, config.families, taken)
    pool, heldout, others = (
        drawer.draw(config.problems),
        drawer.draw(config.heldout, remember=True),
        drawer.draw(config.reference_only),
    )
    corpus = _ProblemDrawer(seed, "corpus", False, config.families, taken).draw(config.corpus_problems)
    # planted last, from streams of their own: every other problem and response is as without them
    leaks = plant_leaks(seed, heldout, drawer.drawn_from, config.leaked, config.leaked_variants, drawer.keep)
    planted = [leak.problem for leak in leaks]
    leak_of = [None] * len(pool) + leaks

    sources = [stream(seed, "pool-source", i).choice(ORIGINS) for i in range(len(pool) + len(planted))]
    rows, owners, facts = _teacher_pool(seed, pool, planted, sources, config)
    references, traces = build_references(seed, pool, others, config.trace_shares, planted)
    pool = pool + planted
    math_rows = [i for i, owner in enumerate(owners) if owner is not None]
    problem_ids = _content_ids([p.text for p in pool])
    sample_ids = _content_ids([pool[owners[i]].text for i in math_rows], [rows[i]["output"] for i in math_rows])
    samples = [
        {"row": i, "sample_id": sid, "problem_id": problem_ids[owners[i]], **facts[i]}
        for i, sid in zip(math_rows, sample_ids)
    ]
    files = {
        POOL_FILE: _jsonl(rows),
        CORPUS_FILE: _jsonl(_corpus_documents(seed, corpus, config.styles)),
        HELDOUT_FILE: _json([{"problem": p.text, "answer": p.gold, "family": p.family} for p in heldout]),
        **{f"references/{name}.parquet": _parquet(table) for name, table in references.items()},
    }
    manifest = {
        "format": FORMAT,
        "seed": seed,
        "config": asdict(config),
        "families": list(config.families),
        "styles": list(config.styles),
        "flaws": list(FLAWS),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "counts": _counts(pool, samples, traces, references, leaks, config),
        "fuzzy": {
            "scorer": "rapidfuzz.fuzz.ratio",
            "text": "NFKC, case-folded, whitespace collapsed",
            "distinct_below": DISTINCT_BELOW,
            "fuzzy_at_least": FUZZY_AT_LEAST,
        },
        "problems": [
            {"problem_id": pid, "family": p.family, "source": source, "gold": p.gold, "trace": trace}
            | ({"leak": leak.facts} if leak else {})
            for p, pid, trace, source, leak in zip(pool, problem_ids, traces, sources, leak_of)
        ],
        "non_math_rows": [i for i, owner in enumerate(owners) if owner is None],
        "samples": samples,
    }
    files[MANIFEST] = _json(manifest)
    _write_folder(out, files)
    return manifest


def _teacher_pool(seed: int, pool: list[Problem], planted: list[Problem], sources: list[str], config: WorldConfig):
    """The pool's rows (acereason layout) in a seeded order and, beside each row, the index
    of its pool problem (the planted ones after the rest) and its facts (both None for a
    non-math row). The planted problems' responses are flawless, outside the flaw shares."""
    problems = pool + planted
    counts = [
        stream(seed, "responses", i).randint(config.min_responses, config.max_responses) for i in range(len(problems))
    ]
    flaws = iter(exact_mix(stream(seed, "flaws"), sum(counts[: len(pool)]), config.flaw_shares))
    rows, owners, facts = [], [], []
    for index, (problem, count) in enumerate(zip(problems, counts)):
        texts: set[str] = set()
        styles = stream(seed, "styles", index).sample(config.styles, len(config.styles))  # each once before repeats
        for j in range(count):
            flaw = next(flaws) if index < len(pool) else "none"
            rng, style = stream(seed, "response", index, j), styles[j % len(styles)]
            for _ in range(100):  # the stream goes on, so a repeat draws other phrasings
                response = teacher_response(problem, style, flaw, rng)
                if response.text not in texts:
                    break
            else:
                raise AssertionError(f"style {style!r} has too few phrasings for {count} responses")
            texts.add(response.text)
            rows.append({"category": "math", "source": sources[index], "input": problem.text, "output": response.text})
            owners.append(index)
            facts.append(
                {
                    "family": problem.family,
                    "style": style,
                    "flaw": flaw,
                    "boxed": response.boxed,
                    "think_closed": response.think_closed,
                }
            )
    for k in range(config.non_math_rows):
        problem_text, response_text = code_row(k)
        rows.append({"category": "code", "source": "codeforces", "input": problem_text, "output": response_text})
        owners.append(None)
        facts.append(None)
    order = list(range(len(rows)))
    stream(seed, "pool-order").shuffle(order)
    return [rows[i] for i in order], [owners[i] for i in order], [facts[i] for i in order]


def _numbers(text: str) -> tuple[str, ...]:
    return tuple(sorted(numbers_in(text).elements()))


def _corpus_documents(seed: int, corpus: list[Problem], styles: list[str]):
    """Each corpus problem solved once in every style of the world, with no flaw."""
    for index, problem in enumerate(corpus):
        for style in styles:
            response = teacher_response(problem, style, "none", stream(seed, "corpus", index, style))
            yield {"family": problem.family, "style": style, "problem": problem.text, "response": response.text}


def _content_ids(problems: list[str], responses: list[str] | None = None) -> list[str]:
    """problem_ids, or sample_ids when responses are given, from the SQL macros that
    ingest uses, so the manifest's ids are the catalog's ids."""
    con = duckdb.connect()
    try:
        con.execute(sql_text("macros.sql"))
        texts = pa.table(
            {
                "i": list(range(len(problems))),
                "problem": problems,
                "response": responses if responses is not None else [None] * len(problems),
            }
        )
        con.register("texts", texts)
        expression = (
            "oxa_problem_id(problem)" if responses is None else "oxa_sample_id(oxa_problem_id(problem), response)"
        )
        return [row[0] for row in con.execute(f"SELECT {expression} FROM texts ORDER BY i").fetchall()]
    finally:
        con.close()


def _counts(pool, samples, traces, references, leaks: list[Leak], config: WorldConfig) -> dict:
    def tally(values) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    return {
        "problems": {
            "pool": len(pool),
            "by_family": tally(p.family for p in pool),
            "heldout": config.heldout,
            "reference_only": config.reference_only,
            "corpus": config.corpus_problems,
        },
        "pool_rows": len(samples) + config.non_math_rows,
        "non_math_rows": config.non_math_rows,
        "samples": {
            "total": len(samples),
            "by_family": tally(s["family"] for s in samples),
            "by_style": tally(s["style"] for s in samples),
            "by_flaw": tally(s["flaw"] for s in samples),
            "by_family_style": {
                family: tally(s["style"] for s in samples if s["family"] == family) for family in config.families
            },
        },
        "traces": {
            "by_case": tally(t["case"] for t in traces),
            "by_drift": tally(t["drift"] for t in traces if "drift" in t),
            "by_placeholder": tally(t["placeholder"] for t in traces if "placeholder" in t),
        },
        "reference_rows": {name: table.num_rows for name, table in references.items()},
        "leaks": {
            "by_kind": tally(leak.facts["kind"] for leak in leaks),
            "by_method": tally(leak.facts["method"] for leak in leaks),
        },
        "corpus_documents": config.corpus_problems * len(config.styles),
    }


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def _json(obj) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode()


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _write_folder(out: Path, files: dict[str, bytes]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.partial")
    for name, data in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(data)
    if out.exists():  # an empty folder, or a world (build_world checked)
        shutil.rmtree(out)
    os.replace(tmp, out)


def load_manifest(world: Path) -> dict:
    path = Path(world) / MANIFEST
    if not path.is_file():
        raise OxaError(f"{world} holds no synthetic world (no {MANIFEST}); make one with `oxa synth world -o {world}`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise OxaError(f"{path} has format {manifest.get('format')!r}; this oxa reads {FORMAT!r}. Rebuild the world")
    return manifest
