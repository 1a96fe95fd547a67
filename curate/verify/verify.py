"""`oxa verify`: a verdict for every sample, judged against its problem's gold answer.

Per batch of samples: cut each response's answer region in DuckDB (the text after
`</think>`: sql/verify/answer_regions.sql) and extract the final answer from it in
Python (curate/text/extract.py) -> decide what needs
no math-verify (no gold, no answer, an answer written exactly as the gold, two plain
integers: the verdicts math-verify would give) -> judge each distinct (gold, answer)
pair that the cache does not hold, once, in a DeadlinePool whose every item has a
wall-clock deadline enforced from outside the worker -> fan the verdicts back out to
rows, with the simple verdict (normalized string equality of the last box) beside them.
Batches are judged on a second thread while this one reads the next: reading (DuckDB's
threads) and math-verify (the workers) overlap, and the verdict parts are written in
batch order, so the output is the same.

Verdict precedence for a row: bad_gold (no gold, an empty one, one holding a control
character, or one that does not parse), then no_answer (extraction found none), then
math-verify's correct, incorrect, timeout or error.

Resume: a sample is skipped when verify/ holds its verdict under the same settings
hash against the same gold (sql/verify/todo.sql). Verdict parts are atomic and pair
verdicts reach the cache (WS/verify/.cache/<settings_hash>/) as they come, so a killed
run loses no verdict it wrote, writes none twice, and redoes little work when rerun.

Retry: `timeout` and `error` verdicts are kept like the others, but `retry` names
verdicts to judge again (the rows and their cached pairs), under the same settings hash
(the timeouts are not part of it, so a longer deadline can be given). The verify view
prefers a decided verdict over a timeout or error of the same sample. An error from a
worker that died (a crash, not an answer) never enters the pair cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.text.characters import codepoint, control_character
from curate.text.extract import THINK_END, answers_of_regions, as_math_input
from curate.text.normalize import answer_key
from curate.thread_names import name_this_thread
from curate.verify.deadline_pool import DeadlinePool, ItemFailure
from curate.verify.mathcheck import EXTRACTIONS, GOLD, GOLD_OK, PAIR, VerifierSettings, judge, start_worker
from curate.workspace import OxaError, Workspace
from curate.workspace.parts import (
    PartWriter,
    duckdb_path,
    part_files,
    part_glob,
    publish_part,
    remove_part,
    temp_path,
)
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun
from curate.workspace.schema import GIVEN, PAIR_VERDICTS, VERIFY

ProgressFn = Callable[[str, int, int], None]  # (what, done, total)

RETRYABLE = ("timeout", "error")
_OUT_OF_MEMORY = ("error", "out of memory", None)  # as judge() reports a MemoryError

_READ_ROWS = 4096  # answer regions fetched at a time: whole responses where no </think> cuts them
_FAILED_JUDGING_WAIT_S = 30.0  # a failed run waits this long for its judging thread to stop


@dataclass
class VerifyConfig:
    """How to verify. Every field is also an `oxa verify` option."""

    settings: VerifierSettings = field(default_factory=VerifierSettings)
    workers: int = 0  # processes judging pairs; 0 = one per CPU
    batch_rows: int = 65_536  # samples per batch; pairs are judged once per run and cached
    rows_per_part: int = 1_000_000  # verdict rows per parquet part
    worker_max_items: int = 2000  # a worker is replaced after this many items (bounds sympy's caches)
    worker_memory_mb: int = 4096  # address space a worker may add (MemoryError beyond); 0 = no limit
    retry: tuple[str, ...] = ()  # verdicts judged again: 'timeout', 'error'

    def check(self) -> None:
        s = self.settings
        if s.extraction not in EXTRACTIONS:
            raise OxaError(f"unknown extraction {s.extraction!r}; choose one of: {', '.join(EXTRACTIONS)}")
        if s.deadline_s <= 0:
            raise OxaError(f"the deadline must be positive, got {s.deadline_s}; e.g. --deadline 15")
        for name in ("workers", "worker_memory_mb"):
            if getattr(self, name) < 0:
                raise OxaError(f"{name} must be >= 0, got {getattr(self, name)}")
        unknown = set(self.retry) - set(RETRYABLE)
        if unknown:
            raise OxaError(
                f"--retry takes {' and '.join(RETRYABLE)} (comma-separated), got {', '.join(sorted(unknown))}"
            )
        for name in ("batch_rows", "rows_per_part", "worker_max_items"):
            if getattr(self, name) < 1:
                raise OxaError(f"{name} must be >= 1, got {getattr(self, name)}")


class PairCache:
    """Verdicts of the golds and (gold, answer) pairs judged under one settings hash
    (WS/verify/.cache/<settings_hash>/), reused by every later run with those settings.
    New verdicts are flushed as small parts every few seconds; `compact` merges them."""

    FLUSH_ROWS = 5000
    FLUSH_SECONDS = 10.0
    COMPACT_PARTS = 32

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.entries: dict[str, tuple[str, str | None, str | None]] = {}
        for part in part_files(folder):
            table = pq.read_table(part)
            values = zip(*(table[c].to_pylist() for c in ("verdict", "reason", "pred_answer")))
            self.entries.update(zip(table["key"].to_pylist(), values))
        self.loaded = len(self.entries)
        self._unsaved: list[tuple[str, str, str | None, str | None]] = []
        self._flushed_at = time.monotonic()

    def hold(self, key: str, value: tuple[str, str | None, str | None]) -> None:
        """Keep a verdict for this run only (an error from a crashed worker)."""
        self.entries[key] = value

    def add(self, key: str, value: tuple[str, str | None, str | None]) -> None:
        self.entries[key] = value
        self._unsaved.append((key, *value))
        if len(self._unsaved) >= self.FLUSH_ROWS or time.monotonic() - self._flushed_at > self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._flushed_at = time.monotonic()
        if self._unsaved:
            self._write(self._unsaved)
            self._unsaved = []

    def _write(self, rows: list[tuple]) -> Path:
        writer = PartWriter(self.folder, "pairs", PAIR_VERDICTS, "key")
        writer.write(pa.Table.from_pylist([dict(zip(PAIR_VERDICTS.names, r)) for r in rows], PAIR_VERDICTS))
        return writer.close()[0]

    def compact(self) -> None:
        """Merge the cache's parts into one when they have become many."""
        self.flush()
        parts = part_files(self.folder)
        if len(parts) > self.COMPACT_PARTS:
            merged = self._write([(k, *v) for k, v in sorted(self.entries.items())])
            for part in parts:
                if part != merged:
                    remove_part(part)


_INTEGER = re.compile(r"[-+]?[0-9]{1,15}")


@dataclass(frozen=True)
class _GoldFacts:
    """What the main process knows of a gold without math-verify."""

    inputs: frozenset[str]  # the math-verify input of each form
    integers: frozenset[int] | None  # the forms' values when every form is a plain integer
    # a control character in a form (a NUL, say) marks damaged data: math-verify would
    # judge a right answer incorrect against it, or correct where it reads it as a space
    control: str | None

    @classmethod
    def of(cls, forms: tuple[str, ...]) -> _GoldFacts:
        plain = all(_INTEGER.fullmatch(form.strip()) for form in forms)
        return cls(
            frozenset(as_math_input(form) for form in forms),
            frozenset(int(form) for form in forms) if plain else None,
            control_character(*forms),
        )


def _digest(*texts: str) -> str:
    return hashlib.md5("\x00".join(texts).encode()).hexdigest()[:24]


class _Verify:
    """The state of one verify run: the gold snapshot, the cache, the pool, counters."""

    def __init__(self, ws: Workspace, config: VerifyConfig, progress: ProgressFn | None) -> None:
        self.ws, self.config, self.settings = ws, config, config.settings
        self.settings_hash = self.settings.settings_hash()
        self.progress = progress or (lambda what, done, total: None)
        self.cache = PairCache(ws.root / "verify" / ".cache" / self.settings_hash)
        self.writer = PartWriter(
            ws.table_folder("verify"), f"verify-{self.settings_hash}", VERIFY, "sample_id", config.rows_per_part
        )
        self._pool_start: Future | None = None  # the DeadlinePool, started with the first samples to verify
        self.con = duckdb.connect()
        self.con.execute(sql_text("macros.sql"))
        catalog = ws.connect()
        try:
            gold = catalog.sql(
                "SELECT problem_id, oxa_gold_key(gold_answer, gold_alternatives) AS gold_key, "
                "gold_answer, gold_alternatives FROM gold"
            ).to_arrow_table()
        finally:
            catalog.close()
        self.con.register("gold_snapshot", gold)
        self.con.execute("CREATE TEMP TABLE gold AS SELECT * FROM gold_snapshot")
        self.con.unregister("gold_snapshot")
        self.con.execute(
            # a verdict the source gave at ingest counts as done whatever the gold
            "CREATE TEMP TABLE done AS SELECT sample_id, gold_key, settings_hash = $given AS given "
            "FROM read_parquet($glob, union_by_name = true) "
            "WHERE (settings_hash = $hash AND NOT list_contains($retry, verdict)) OR settings_hash = $given",
            {
                "glob": part_glob(ws.table_folder("verify")),
                "hash": self.settings_hash,
                "retry": list(config.retry),
                "given": GIVEN,
            },
        )
        self.buffer: dict[str, list] = self._empty_buffer()
        self._judging: Future | None = None  # the batch being judged on the judging thread
        self._judging_progress: tuple[str, int, int] | None = None  # reported while this thread waits
        self.samples = self.skipped = 0
        self.verdicts: Counter[str] = Counter()
        self.simple: Counter[str] = Counter()
        self.crosstab: Counter[tuple[str, str]] = Counter()
        self.reasons: Counter[str] = Counter()
        self.judged = Counter(golds=0, pairs=0)
        self.rejudged: set[str] = set()  # cached pairs judged again (retry) in this run
        self.worker_deaths = 0
        self.distinct = Counter(golds=0, pairs=0)
        self.cache_hits = Counter(golds=0, pairs=0)
        # rows decided without math-verify, with the same verdict it gives
        self.decided_directly = Counter(identical_to_gold=0, integers=0)

    @staticmethod
    def _empty_buffer() -> dict[str, list]:
        return {k: [] for k in ("sample_id", "problem_id", "gold_key", "forms", "answer", "no_answer", "payload")}

    # -- reading ----------------------------------------------------------------------

    def run(self) -> None:
        files = part_files(self.ws.table_folder("samples"))
        self.total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        for path in files:
            todo = self.con.sql(sql_text("verify/todo.sql"), params={"file": duckdb_path(path)}).to_arrow_table()
            rows_in_file = pq.ParquetFile(path).metadata.num_rows
            self.skipped += rows_in_file - todo.num_rows
            if todo.num_rows:
                self._start_pool()
                self._read_regions(path, todo)
            self.samples += rows_in_file
            self.progress("samples", self.samples, self.total)
        self._hand_over()
        self._wait_judging()
        self.cache.compact()

    def _read_regions(self, path: Path, todo: pa.Table) -> None:
        """Stream the answer regions of the `todo` rows, reading only the runs of row
        groups that hold some."""
        rows = todo["row"].to_numpy()
        for first, end in _row_group_runs(pq.ParquetFile(path).metadata, rows):
            params = {
                "file": duckdb_path(path),
                "first": first,
                "end": end,
                "think_end": THINK_END,
                "require_think": self.settings.require_think,
            }
            regions = self.con.sql(sql_text("verify/answer_regions.sql"), params=params)
            expected = first
            for batch in regions.to_arrow_reader(min(_READ_ROWS, self.config.batch_rows)):
                batch_rows = batch["row"].to_numpy()
                # row i of the batch is row expected + i (positions below depend on it)
                if batch_rows[0] != expected or batch_rows[-1] - expected != batch.num_rows - 1:
                    raise RuntimeError(f"{path}: DuckDB returned rows out of file order at row {expected}")
                expected += batch.num_rows
                a, b = np.searchsorted(rows, [batch_rows[0], expected])
                if b > a:
                    at = pa.array(rows[a:b] - batch_rows[0])
                    regions_of = batch["region"].take(at).to_pylist()
                    self._extract(todo.slice(a, b - a), regions_of, batch["missing"].take(at).to_pylist())
                self.progress("samples", self.samples + expected, self.total)

    def _extract(self, rows: pa.Table, regions: list[str | None], missing: list[bool]) -> None:
        answers, no_answer = answers_of_regions(regions, missing)
        # lenient mode hands math-verify the whole region (None where there is none)
        payloads = regions if self.settings.extraction == "lenient" else answers
        golds, alternatives = rows["gold_answer"].to_pylist(), rows["gold_alternatives"].to_pylist()
        buffer = self.buffer
        buffer["sample_id"] += rows["sample_id"].to_pylist()
        buffer["problem_id"] += rows["problem_id"].to_pylist()
        buffer["gold_key"] += rows["gold_key"].to_pylist()
        buffer["forms"] += [None if g is None else (g, *(alt or ())) for g, alt in zip(golds, alternatives)]
        buffer["answer"] += answers
        buffer["no_answer"] += no_answer
        buffer["payload"] += payloads
        if len(buffer["sample_id"]) >= self.config.batch_rows:
            self._hand_over()

    def _hand_over(self) -> None:
        """Judge the buffered rows on the judging thread while this one reads on. One
        batch at a time: the previous one is finished (its parts written) first."""
        self._wait_judging()
        buffer, self.buffer = self.buffer, self._empty_buffer()
        if not buffer["sample_id"]:
            return
        self._judging, self._judging_progress = Future(), None
        threading.Thread(target=_run_into, args=(self._judging, self._judge_buffer, buffer), daemon=True).start()

    def _wait_judging(self) -> None:
        """Wait for the batch being judged (its error raised here); progress reports stay
        on this thread, so while it waits it reports the judging's."""
        while self._judging is not None:
            try:
                self._judging.result(timeout=1.0)
            except TimeoutError:
                if self._judging_progress is not None:
                    self.progress(*self._judging_progress)
                continue
            self._judging = None

    # -- judging ----------------------------------------------------------------------

    def _judge_buffer(self, b: dict[str, list]) -> None:
        """Verdicts for a batch of rows (on the judging thread). The pairs go first:
        judging one parses its gold, so a gold with pairs needs no check of its own; the
        golds left (every answer missing, or written as the gold) are checked after."""
        name_this_thread("judge")  # it runs on a thread of its own (_hand_over)
        n = len(b["sample_id"])
        verdict: list[str | None] = [None] * n
        reason: list[str | None] = [None] * n
        keys: list[str | None] = [None] * n
        pairs: dict[str, tuple] = {}
        pair_golds: dict[str, str] = {}  # pair key -> gold key
        golds: dict[str, tuple] = {}
        facts: dict[str, _GoldFacts] = {}
        lenient = self.settings.extraction == "lenient"
        for i, (gold_key, forms, payload) in enumerate(zip(b["gold_key"], b["forms"], b["payload"])):
            if gold_key is None:
                verdict[i], reason[i] = "bad_gold", "the problem has no gold answer (run oxa trace)"
                continue
            if not any(f.strip() for f in forms):
                verdict[i], reason[i] = "bad_gold", "the gold answer is empty"
                continue
            if gold_key not in facts:
                facts[gold_key] = _GoldFacts.of(forms)
            gold = facts[gold_key]
            if gold.control is not None:
                verdict[i], reason[i] = "bad_gold", f"the gold answer holds control character {codepoint(gold.control)}"
                continue
            if gold.integers is None:  # an integer always parses: no check needed
                golds.setdefault(gold_key, forms)
            if payload is None:
                verdict[i], reason[i] = "no_answer", "no_think" if lenient else b["no_answer"][i]
            elif not lenient and len(payload) > self.settings.max_answer_chars:
                verdict[i], reason[i] = "error", f"answer_too_long: {len(payload):,} characters"
            elif not lenient and as_math_input(payload) in gold.inputs:
                # The very text the gold parsed from: parse gives the same result, and
                # verify() finds identical parses equal, so math-verify would say correct.
                verdict[i] = "correct"
                self.decided_directly["identical_to_gold"] += 1
            elif not lenient and gold.integers is not None and _INTEGER.fullmatch(payload):
                # Integers of up to 15 digits: math-verify compares them exactly, as int() does
                # (checked against it on random pairs with signs and leading zeros).
                verdict[i] = "correct" if int(payload) in gold.integers else "incorrect"
                self.decided_directly["integers"] += 1
            else:
                keys[i] = key = _digest(gold_key, payload)
                pairs.setdefault(key, (PAIR, forms, payload))
                pair_golds[key] = gold_key
        self._judge_items(pairs, "pairs")
        for key, gold_key in pair_golds.items():
            self._learn_gold(gold_key, self.cache.entries[key])
        self._judge_items({f"gold:{k}": (GOLD, forms, None) for k, forms in golds.items()}, "golds")
        pred: list[str | None] = list(b["answer"]) if not lenient else [None] * n
        for i, gold_key in enumerate(b["gold_key"]):
            if gold_key is None or verdict[i] == "bad_gold":
                continue
            gold_verdict, gold_reason, _ = (
                (GOLD_OK, None, None)
                if facts[gold_key].integers is not None
                else self.cache.entries["gold:" + gold_key]
            )
            if gold_verdict != GOLD_OK:  # a bad gold (or its check's timeout) decides every row of its problem
                verdict[i], reason[i] = gold_verdict, gold_reason
            elif keys[i] is not None:
                verdict[i], reason[i], extracted = self.cache.entries[keys[i]]
                if lenient:
                    pred[i] = extracted
        self.cache.flush()
        self._write(b, verdict, reason, pred)

    def _learn_gold(self, gold_key: str, pair_result: tuple) -> None:
        """What judging a pair tells of its gold: bad_gold means the gold did not parse;
        any verdict that compared something means it did; a timeout or an error says
        nothing (the gold is then checked on its own)."""
        entry = "gold:" + gold_key
        verdict, reason, _ = pair_result
        if entry in self.cache.entries:
            return
        if verdict == "bad_gold":
            self.cache.add(entry, ("bad_gold", reason, None))
        elif verdict in ("correct", "incorrect", "no_answer"):
            self.cache.add(entry, (GOLD_OK, None, None))

    def _judge_items(self, items: dict[str, tuple], kind: str) -> None:
        """Judge the items the cache does not hold; their verdicts go to the cache."""
        todo = {key: item for key, item in items.items() if self._needs_judging(key)}
        self.distinct[kind] += len(items)
        self.cache_hits[kind] += len(items) - len(todo)
        if not todo:
            return
        # items of one gold side by side: a worker's chunk then parses that gold once
        keys = sorted(todo, key=lambda key: todo[key][1])
        values = [todo[key] for key in keys]
        for done, (index, result) in enumerate(self._pool().imap_unordered(values), start=1):
            # a crash or the memory limit (not part of the settings hash) says nothing of the answer
            crashed = isinstance(result, ItemFailure) and result.kind == "died" or result == _OUT_OF_MEMORY
            if isinstance(result, ItemFailure):
                what = "checking the gold answer: " if kind == "golds" else ""
                if result.kind == "timeout":
                    result = ("timeout", what + result.detail, None)
                else:
                    result = ("error", f"{what}worker {result.kind}: {result.detail}", None)
            if crashed:  # kept for this run, not cached: `--retry error` judges it again
                self.worker_deaths += 1
                self.cache.hold(keys[index], result)
            else:
                self.cache.add(keys[index], result)
            self._judging_progress = (f"judging {kind}", done, len(keys))
        self.judged[kind] += len(keys)

    def _needs_judging(self, key: str) -> bool:
        cached = self.cache.entries.get(key)
        if cached is None:
            return True
        if cached[0] in self.config.retry and key not in self.rejudged:
            self.rejudged.add(key)
            return True
        return False

    def _start_pool(self) -> None:
        """Start the workers on a thread: their fork server imports math-verify and warms
        its parser (a few seconds) while this thread reads and extracts responses."""
        if self._pool_start is None:
            starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="start-pool")
            self._pool_start = starter.submit(
                DeadlinePool,
                judge,
                workers=self.config.workers or os.cpu_count() or 1,
                deadline_s=self.settings.deadline_s,
                initializer=start_worker,
                initargs=(self.settings,),
                preload=["curate.verify.mathcheck_warm"],
                max_items_per_worker=self.config.worker_max_items,
                memory_limit_mb=self.config.worker_memory_mb or None,
            )
            starter.shutdown(wait=False)

    def _pool(self) -> DeadlinePool:
        self._start_pool()
        return self._pool_start.result()

    def _started_pool(self) -> DeadlinePool | None:
        if self._pool_start is None or self._pool_start.exception() is not None:
            return None
        return self._pool_start.result()

    def _write(self, b: dict[str, list], verdict: list, reason: list, pred: list) -> None:
        n = len(verdict)
        simple = simple_verdicts(b["answer"], b["forms"])
        max_chars = self.settings.max_answer_chars
        self.writer.write(
            pa.table(
                {
                    "sample_id": b["sample_id"],
                    "problem_id": b["problem_id"],
                    "gold_key": b["gold_key"],
                    "pred_answer": [p if p is None or len(p) <= max_chars else p[:max_chars] for p in pred],
                    "verdict": verdict,
                    "reason": reason,
                    "simple_verdict": simple,
                    "verifier": [self.settings.verifier] * n,
                    "settings_hash": [self.settings_hash] * n,
                },
                schema=VERIFY,
            )
        )
        self.verdicts.update(verdict)
        self.simple.update(simple)
        self.crosstab.update(zip(verdict, simple))
        self.reasons.update(f"{v}: {r.split(':')[0]}" for v, r in zip(verdict, reason) if r)

    # -- the end ----------------------------------------------------------------------

    def close(self, failed: bool = False) -> None:
        pool = self._started_pool()
        if pool is not None:
            pool.close(kill=failed)
        if failed and self._judging is not None:
            # its workers are gone, so it stops (with an error) before the writer is aborted
            wait([self._judging], timeout=_FAILED_JUDGING_WAIT_S)
        if failed:
            self.writer.abort()
        else:
            self.writer.close()
        self.con.close()

    def stats(self) -> dict:
        verified = sum(self.verdicts.values())
        assert self.samples == self.skipped + verified, (self.samples, self.skipped, verified)
        decided = {k: n for k, n in self.crosstab.items() if set(k) <= {"correct", "incorrect"}}
        agree = sum(n for (v, s), n in decided.items() if v == s)
        counts = ", ".join(f"{n:,} {v}" for v, n in self.verdicts.most_common())
        return {
            "summary": f"{self.samples:,} samples: {self.skipped:,} already verified; {verified:,} verified"
            + (f" ({counts})" if counts else ""),
            "settings_hash": self.settings_hash,
            "finished_ns": time.time_ns(),  # orders runs finished within one second (the verify view)
            "verifier": self.settings.verifier,
            "versions": self.settings.versions(),
            "funnel": {"samples": self.samples, "already_verified": self.skipped, "verified": verified},
            "retry": {"verdicts": list(self.config.retry), "pairs_judged_again": len(self.rejudged)},
            "worker_deaths": self.worker_deaths,
            "verdicts": dict(self.verdicts.most_common()),
            "reasons": dict(self.reasons.most_common()),
            "simple_verdicts": dict(self.simple.most_common()),
            "agreement": {
                "both_decided": sum(decided.values()),
                "agree": agree,
                "rate": round(agree / sum(decided.values()), 6) if decided else None,
                "math_verify_only_correct": decided.get(("correct", "incorrect"), 0),
                "simple_only_correct": decided.get(("incorrect", "correct"), 0),
            },
            "crosstab": {f"{v}/{s}": n for (v, s), n in sorted(self.crosstab.items())},
            "distinct": dict(self.distinct),
            "cache_hits": dict(self.cache_hits),
            "decided_directly": dict(self.decided_directly),
            "judged": dict(self.judged),
            "cache_entries": {"loaded": self.cache.loaded, "now": len(self.cache.entries)},
            "workers": dict(pool.stats) if (pool := self._started_pool()) else {},
        }


def _row_group_runs(metadata: pq.FileMetaData, rows: np.ndarray) -> list[tuple[int, int]]:
    """[first, end) row ranges of the runs of consecutive row groups holding any of the
    sorted `rows`: a fresh run reads the whole file in one range, a resumed one only
    what it still has to verify."""
    runs: list[tuple[int, int]] = []
    first = 0
    for group in range(metadata.num_row_groups):
        end = first + metadata.row_group(group).num_rows
        lo, hi = np.searchsorted(rows, [first, end])
        if hi > lo:
            if runs and runs[-1][1] == first:
                runs[-1] = (runs[-1][0], end)
            else:
                runs.append((first, end))
        first = end
    return runs


def _run_into(future: Future, fn: Callable, *args: object) -> None:
    """fn(*args) on a daemon thread (one that cannot hold the process open after a
    Ctrl-C), its result or error into `future`."""
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # handed to the thread that waits on it
        future.set_exception(exc)


def drop_superseded(folder: Path) -> int:
    """Rewrite each verify part that holds rows a later verdict replaced
    (sql/verify/superseded.sql) without them, atomically; returns the rows dropped. The
    new rows are written first, so a kill in between leaves a duplicate, never a gap,
    and the next run finishes the job."""
    con = duckdb.connect()
    try:
        stale = con.sql(sql_text("verify/superseded.sql"), params={"glob": part_glob(folder)})
        by_part: dict[str, set[tuple[str, str]]] = {}
        for filename, sample_id, settings_hash in stale.fetchall():
            by_part.setdefault(filename, set()).add((sample_id, settings_hash))
    finally:
        con.close()
    for filename, drop in by_part.items():
        part = pq.read_table(filename)
        keep = [k not in drop for k in zip(part["sample_id"].to_pylist(), part["settings_hash"].to_pylist())]
        if any(keep):
            tmp = temp_path(Path(filename))
            kept = part.filter(pa.array(keep))
            pq.write_table(kept, tmp, compression="zstd")
            publish_part(tmp, Path(filename), kept.num_rows)  # with its new record
        else:
            remove_part(Path(filename))
    return sum(len(d) for d in by_part.values())


def simple_verdicts(answers: list[str | None], forms: list[tuple | None]) -> list[str]:
    """The simple verdict per row: bad_gold without a gold, no_answer without a box,
    else correct when the box's answer_key equals one of the gold forms' keys."""
    import polars as pl

    frame = pl.DataFrame(
        {"answer": answers, "forms": [None if f is None else list(f) for f in forms]},
        schema={"answer": pl.String, "forms": pl.List(pl.String)},
    )
    gold_keys = pl.col("forms").list.eval(answer_key(pl.element()))
    return (
        frame.select(
            pl.when(pl.col("forms").is_null() | gold_keys.list.eval(pl.element() != "").list.any().not_())
            .then(pl.lit("bad_gold"))
            .when(pl.col("answer").is_null())
            .then(pl.lit("no_answer"))
            .when(gold_keys.list.contains(answer_key(pl.col("answer"))))
            .then(pl.lit("correct"))
            .otherwise(pl.lit("incorrect"))
        )
        .to_series()
        .to_list()
    )


def run_verify(ws: Workspace, config: VerifyConfig | None = None, progress: ProgressFn | None = None) -> dict:
    """Verify every sample of `ws` that has no verdict under these settings against its
    current gold; returns the run's stats (also in stats.json)."""
    config = config or VerifyConfig()
    config.check()
    with ws.lock("verify", "oxa verify"):
        resolved = {
            **asdict(config),
            "settings_hash": config.settings.settings_hash(),
            "versions": config.settings.versions(),
        }
        run = StageRun(ws, "verify", resolved)
        state = None
        try:
            superseded = drop_superseded(ws.table_folder("verify"))  # left by a killed retry
            state = _Verify(ws, config, progress)
            state.run()
            state.close()
            superseded += drop_superseded(ws.table_folder("verify")) if config.retry else 0
            return run.finish({**state.stats(), "superseded_rows_dropped": superseded})
        except BaseException as exc:
            if state is not None:
                state.close(failed=True)
            run.fail(exc)
            raise
