"""Small scored, verified pools for the selection tests: ingested from inline rows, with
verify and scores parts written directly (the stages that fill them are not needed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.ingest import IngestConfig, run_ingest
from curate.select.select import Candidates
from curate.workspace import Workspace
from curate.workspace.runs import StageRun
from curate.workspace.schema import SCORES, VERIFY
from tests.conftest import naive_problem_id, naive_sample_id

TAG = "base-model"
SETTINGS_HASH = "test-settings"


def add_pool(ws: Workspace, tmp_path: Path, rows: list[dict], tag: str = TAG) -> list[str]:
    """Ingest rows {problem, response, source?, gold?, origin?, verdict?, ppl?, n_tokens?}
    and write their verdicts and scores; returns the sample ids in row order. A key
    left out (or None) leaves that table without a row for the sample."""
    for origin in sorted({r.get("origin", "teacher") for r in rows}):
        path = tmp_path / f"pool-{origin}-{len(list(tmp_path.glob('pool-*')))}.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for r in rows:
                if r.get("origin", "teacher") == origin:
                    record = {"q": r["problem"], "a": r["response"], "src": r.get("source", "olympiads")}
                    record["gold"] = r.get("gold")
                    handle.write(json.dumps(record) + "\n")
        mapping = {"problem": "q", "response": "a", "source": "src", "gold_answer": "gold"}
        run_ingest(ws, IngestConfig([str(path)], mapping=mapping, generator="teacher-r1", origin=origin))
    ids = [naive_sample_id(r["problem"], r["response"]) for r in rows]
    verdicts = [(sid, r["verdict"]) for sid, r in zip(ids, rows) if r.get("verdict") is not None]
    if verdicts:
        write_verify(ws, verdicts)
    scored = [(sid, r["ppl"], r["n_tokens"]) for sid, r in zip(ids, rows) if "ppl" in r]
    if scored:
        write_scores(ws, tag, scored)
    return ids


def write_verify(ws: Workspace, verdicts: list[tuple[str, str]]) -> None:
    """Verdict rows as `oxa verify` writes them (against each problem's current gold),
    and a finished verify run with their settings hash, which the verify view follows."""
    con = ws.connect()
    try:
        golds = {
            sid: (pid, key)
            for sid, pid, key in con.execute(
                "SELECT s.sample_id, s.problem_id, oxa_gold_key(g.gold_answer, g.gold_alternatives) "
                "FROM samples AS s LEFT JOIN gold AS g USING (problem_id)"
            ).fetchall()
        }
    finally:
        con.close()
    rows = [
        {
            "sample_id": sid,
            "problem_id": golds[sid][0],
            "gold_key": golds[sid][1],
            "pred_answer": "x",
            "verdict": verdict,
            "verifier": "math-verify",
            "settings_hash": SETTINGS_HASH,
        }
        for sid, verdict in verdicts
    ]
    folder = ws.table_folder("verify")
    pq.write_table(
        pa.Table.from_pylist(rows, schema=VERIFY), folder / f"verify-test-{len(list(folder.glob('*'))):016x}.parquet"
    )
    stats = {"settings_hash": SETTINGS_HASH, "summary": "test verdicts", "versions": {"math-verify": "test"}}
    StageRun(ws, "verify", {"settings_hash": SETTINGS_HASH, "test_parts": len(list(folder.glob("*")))}).finish(stats)


def write_scores(ws: Workspace, tag: str, scored: list[tuple[str, float | None, int | None]]) -> None:
    folder = ws.ensure_scores_folder(tag)
    table = pa.table(
        {
            "sample_id": [s[0] for s in scored],
            "n_tokens": [s[2] for s in scored],
            "nll_sum": [None] * len(scored),
            "ppl": [s[1] for s in scored],
            "truncated": [False] * len(scored),
        },
        schema=SCORES,
    )
    pq.write_table(table, folder / f"scores-test-{len(list(folder.glob('*'))):016x}.parquet")
    (folder / "manifest.json").write_text(json.dumps({"tag": tag, "model": "tiny-test-model", "max_tokens": 32768}))


def problem_id(text: str) -> str:
    return naive_problem_id(text)


MASK = 2**64 - 1


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def tiebreak(content_id: str, seed: int) -> int:
    """The documented seeded key (curate/select/sampling.py), in plain Python integers:
    splitmix64(first 16 hex digits of the id XOR splitmix64(seed))."""
    return splitmix64(int(content_id[:16], 16) ^ splitmix64(seed % 2**64))


def _row(label, problem, verdict, origin, ppl, n_tokens):
    row = {"label": label, "problem": f"Problem {problem}: find x.", "response": f"<think>{label}</think> \\boxed{{1}}"}
    row.update({"gold": "1", "origin": origin, "source": "olympiads" if problem % 2 else "aops"})
    if verdict is not None:
        row["verdict"] = verdict
    if ppl != "none":
        row.update({"ppl": ppl, "n_tokens": n_tokens})
    return row


# A pool for exact ids per strategy: (label, problem, verdict, origin, ppl, n_tokens);
# ppl "none" leaves the sample without a scores row.
STRATEGY_POOL = [
    _row("a", 1, "correct", "teacher", 2.50, 300),
    _row("b", 1, "correct", "teacher", 2.52, 500),
    _row("c", 1, "incorrect", "self", 1.30, 200),
    _row("d", 2, "correct", "teacher", 1.10, 100),
    _row("e", 2, "correct", "teacher", 3.90, 800),
    _row("f", 2, "incorrect", "self", 1.25, 150),
    _row("g", 3, "correct", "teacher", float("nan"), 400),
    _row("h", 3, "correct", "teacher", float("inf"), 400),
    _row("i", 3, "correct", "teacher", "none", None),
    _row("j", 3, "correct", "teacher", 2.45, 50),
    _row("k", 4, "correct", "teacher", 2.90, 700),
    _row("l", 4, "incorrect", "self", 1.50, 30_000),
    _row("m", 5, "correct", "teacher", 6.00, 900),
    _row("n", 5, "incorrect", "self", 1.10, 100),
    _row("o", 6, None, "teacher", 2.50, 100),
]


def hex_id(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(24))


def random_pool(rng: random.Random, size: int, problems: int) -> list[tuple]:
    """(sample_id, problem_id, ppl, length) rows with ties everywhere."""
    problem_ids = [hex_id(rng) for _ in range(problems)]
    # PPL on a 0.01 grid from 0.9 to 5.2: many values on bin edges and outside [1, 5]
    ppl_grid = [round(0.9 + 0.01 * k, 2) for k in range(431)]
    rows = []
    for _ in range(size):
        sample_id = hex_id(rng)
        if rows and rng.random() < 0.05:  # same first 16 hex digits: the key ties, the id decides
            sample_id = rows[-1][0][:16] + hex_id(rng)[:8]
        rows.append((sample_id, rng.choice(problem_ids), rng.choice(ppl_grid), rng.choice([100, 200, 300, 400])))
    return rows


def in_memory(rows) -> Candidates:
    """Candidates (sample_id, problem_id, ppl, length) in memory, all verified correct,
    in several Arrow chunks as DuckDB and parquet give them."""
    table = pa.table(
        {
            "sample_id": [r[0] for r in rows],
            "problem_id": [r[1] for r in rows],
            "verdict": ["correct"] * len(rows),
            "ppl": pa.array([r[2] for r in rows], pa.float64()),
            "n_tokens": pa.array([r[3] for r in rows], pa.int64()),
        }
    )
    chunks = table.to_batches(max_chunksize=max(1, len(rows) // 3))
    return Candidates(pa.Table.from_batches(chunks, table.schema), len(rows))


def mix_subset(ws: Workspace, tmp_path: Path, name: str = "full") -> dict:
    """STRATEGY_POOL in `ws` and a mix subset of it, 4 lowest-PPL positives then 2
    lowest-PPL negatives (the exports' tests); the select stats."""
    from curate.select import SelectConfig, Selection, run_select

    add_pool(ws, tmp_path, STRATEGY_POOL)
    return run_select(
        ws,
        SelectConfig(
            name=name,
            strategy="mix",
            positives=Selection(strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'correct'", n=4),
            negatives=Selection(strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'incorrect'", n=2),
        ),
    )
