"""The pool's own word on a gold answer: how many of a problem's teacher responses
agree with it.

Text similarity cannot tell a drifted copy of a problem from a templated neighbour
(same wording, other numbers or another quantity asked), and two reference sets can
disagree. A pool of teacher responses holds the strongest evidence there is: the
answers the teacher reached. For each (problem, answer) that needs it, `support` counts
the problem's teacher responses whose final answer (the last \\boxed of the text after
`</think>`, or of the whole response when it has none) equals the answer: the same
`answer_key`, two plain integers of one value, or math-verify finding them equal; and
`rival`, the most responses that share one final answer that is not it. At
most `max_distinct` distinct response answers per problem (the most frequent) are
compared, so a problem with hundreds of responses costs no more than a few.

Tracing uses it to confirm fuzzy matches and to settle conflicts by consensus
(curate/trace/trace.py, sql/trace/resolve.sql).
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from curate.text.extract import extract_answers
from curate.text.normalize import answer_keys
from curate.verify.deadline_pool import DeadlinePool
from curate.verify.mathcheck import PAIR, VerifierSettings, judge, start_worker
from curate.workspace import Workspace

ProgressFn = Callable[[str, int, int], None]

SUPPORT = pa.schema(
    [
        ("problem_id", pa.string()),
        ("answer_key", pa.string()),
        ("support", pa.int64()),  # teacher responses that agree with the answer
        ("rival", pa.int64()),  # the most responses that agree on one answer that is not it
        ("responses", pa.int64()),  # the problem's teacher responses
    ]
)
_INTEGER = re.compile(r"[-+]?[0-9]{1,15}")
_READ_ROWS = 4096


def equal_pairs(items: list[tuple[tuple[str, ...], str]], progress: ProgressFn, what: str) -> list[bool]:
    """Whether math-verify finds each (gold forms, answer) equal; a timeout or a crash
    is not equal. Runs in a DeadlinePool: a pathological answer cannot hang the run."""
    if not items:
        return []
    settings = VerifierSettings()
    with DeadlinePool(
        judge,
        workers=os.cpu_count() or 1,
        deadline_s=settings.deadline_s,
        initializer=start_worker,
        initargs=(settings,),
        preload=["curate.verify.mathcheck_warm"],
    ) as pool:
        progress(what, 0, len(items))
        verdicts = pool.map([(PAIR, forms, answer) for forms, answer in items])
    return [isinstance(v, tuple) and v[0] == "correct" for v in verdicts]


@dataclass
class PoolAnswers:
    """A problem's teacher responses: how many, and their final answers by answer_key
    (with the first text seen for each key, which math-verify is given)."""

    responses: int = 0
    counts: Counter = field(default_factory=Counter)
    texts: dict[str, str] = field(default_factory=dict)


def teacher_answers(ws: Workspace, problem_ids: list[str], progress: ProgressFn) -> dict[str, PoolAnswers]:
    """The PoolAnswers of each problem in `problem_ids` that has teacher responses;
    the responses stream through in batches."""
    found: defaultdict[str, PoolAnswers] = defaultdict(PoolAnswers)
    if not problem_ids:
        return found
    con = ws.connect()
    try:
        con.register("wanted", pa.table({"problem_id": pa.array(problem_ids, pa.string())}))
        reader = con.sql(
            "SELECT problem_id, response FROM samples "
            "WHERE origin = 'teacher' AND problem_id IN (SELECT problem_id FROM wanted)"
        ).to_arrow_reader(_READ_ROWS)
        done = 0
        for batch in reader:
            answers, _ = extract_answers(batch.column(1).to_pylist())
            for pid, answer, key in zip(batch.column(0).to_pylist(), answers, answer_keys(answers)):
                entry = found[pid]
                entry.responses += 1
                if key is not None:
                    entry.counts[key] += 1
                    entry.texts.setdefault(key, answer)
            done += batch.num_rows
            progress("reading the pool's answers", done, 0)
    finally:
        con.close()
    return found


def pool_support(
    ws: Workspace,
    candidates: pa.Table,
    progress: ProgressFn,
    max_distinct: int = 8,
) -> pa.Table:
    """SUPPORT rows for `candidates` (problem_id, answer_key, gold_answer,
    gold_alternatives): how many of each problem's teacher responses agree with it."""
    pids = candidates["problem_id"].to_pylist()
    pool_answers = teacher_answers(ws, sorted(set(pids)), progress)
    nothing = PoolAnswers()
    rows = []
    asks: list[tuple[tuple[str, ...], str]] = []
    owners: list[tuple[int, int]] = []  # (candidate row, responses that agree if equal)
    rivals: list[list[int]] = []  # per candidate row: the counts of the answers that differ
    for i, (pid, key, gold, alternatives) in enumerate(
        zip(pids, *(candidates[c].to_pylist() for c in ("answer_key", "gold_answer", "gold_alternatives")))
    ):
        pool = pool_answers.get(pid, nothing)
        agree = pool.counts.get(key, 0)
        forms = (gold, *(alternatives or ()))
        gold_int = int(key) if _INTEGER.fullmatch(key or "") and not alternatives else None
        rivals.append([])
        for other, n in pool.counts.most_common(max_distinct):
            if other == key:
                continue
            if gold_int is not None and _INTEGER.fullmatch(other):
                if int(other) == gold_int:
                    agree += n
                else:
                    rivals[i].append(n)
            else:
                asks.append((forms, pool.texts[other]))
                owners.append((i, n))
        rows.append([pid, key, agree, pool.responses])
    for (i, n), equal in zip(owners, equal_pairs(asks, progress, "checking golds against the pool's answers")):
        if equal:
            rows[i][2] += n
        else:
            rivals[i].append(n)
    for row, counts in zip(rows, rivals):
        row.insert(3, max(counts, default=0))
    return pa.Table.from_pylist([dict(zip(SUPPORT.names, r)) for r in rows], SUPPORT)
