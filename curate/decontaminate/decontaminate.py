"""`oxa decontaminate`: find the pool problems (and, with --responses, the responses) that
hold a benchmark problem, so that selection can keep them out of training data.

Reading: each benchmark set as `oxa eval` reads it (curate/benchmarks/: the built-in
names, benchmark-layout files, verl parquet, GPQA and MMLU files; a multiple-choice
question is matched on its question, without the options), indexed by its masked token
n-grams (curate/decontaminate/ngrams.py). Matching: the pool's problems stream through
in batches of at most 16 MiB of text (R1 responses of thousands of tokens make millions of
tokens a batch), in the order DuckDB reads them; the pairs that share enough n-grams are
checked one by one (curate/decontaminate/matching.py): coverage, then numbers and
expressions. The texts are never sorted: the ids to check are, so the parts come out in
id order, byte for byte the same from the same pool, whatever order the reading took.

Output: one `contamination` row per match and one `contamination_checked` row per text
checked, as parts named for the settings' fingerprint (the settings and the benchmark
files' bytes). A rerun under the same fingerprint checks only what is new (problems
ingested since, or what a killed run did not reach); a finished run under other settings
removes the parts of every other fingerprint. The views follow the last finished run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa

from curate import __version__
from curate.benchmarks.names import BUILTIN
from curate.benchmarks.sets import PromptSet, load_prompt_set, resolve_sets
from curate.decontaminate.config import DecontaminateConfig
from curate.decontaminate.matching import CONTAMINATED, METHODS, RULES_VERSION, classify
from curate.decontaminate.ngrams import BenchmarkIndex, masked_tokens_expr, tokenize
from curate.ingest.sources import read_ahead
from curate.thread_names import name_this_thread
from curate.workspace import OxaError, Workspace
from curate.workspace.parts import PartWriter, fingerprint, part_glob, remove_part
from curate.workspace.runs import StageRun
from curate.workspace.schema import CONTAMINATION, CONTAMINATION_CHECKED

ProgressFn = Callable[[str, int, int], None]  # (what, done, total; 0 = unknown)
FIELDS = ("problem", "response")
# per field: the table its texts are in, the id a checked text is named by, the text
# column, and the sample_id it reads (NULL for problems)
_SOURCES = {
    "problem": ("problems", "problem_id", "problem", "NULL::VARCHAR AS sample_id"),
    "response": ("samples", "sample_id", "response", "sample_id"),
}
_BATCH_ROWS = 50_000
_BATCH_BYTES = 16 << 20  # of text: about 600 R1 responses, 5M tokens, a few hundred MB of token rows
_READ_ROWS = 256  # rows per record batch read, gathered into batches of _BATCH_BYTES
_PAIRING_THREADS = 4  # batches tokenized and paired at once: each holds a few hundred MB


@dataclass
class _Benchmarks:
    sets: list[PromptSet]
    owners: list[tuple[str, int, str]]  # per indexed problem: set name, row in its file, problem_id
    index: BenchmarkIndex

    @classmethod
    def load(cls, config: DecontaminateConfig) -> _Benchmarks:
        spec = ",".join(config.against)
        sets = [
            load_prompt_set(name, path, require_answers=False, mmlu_subjects=config.mmlu_subjects)
            for name, path in resolve_sets(spec)
        ]
        texts, owners = [], []
        for prompt_set in sets:
            for problem in prompt_set.problems:
                texts.append(problem.question or problem.problem)
                owners.append((prompt_set.name, problem.source_row, problem.problem_id))
        return cls(sets, owners, BenchmarkIndex.build(texts, config.ngram, config.min_coverage))

    def record(self) -> list[dict]:
        """What the card and the run record of each set: its name, file, bytes' digest, size."""
        return [
            {"name": s.name, "path": s.path.name if s.name in BUILTIN else str(s.path), "sha256": s.digest,
             "problems": len(s.problems), "kind": s.kind}
            for s in self.sets
        ]  # fmt: skip


def settings_fingerprint(config: DecontaminateConfig, benchmarks: _Benchmarks) -> str:
    """What a match derives from: the matching settings and rules, each set's name and bytes."""
    settings = {k: v for k, v in asdict(config).items() if k != "against"}
    sets = [{"name": s["name"], "sha256": s["sha256"]} for s in benchmarks.record()]
    return fingerprint(
        {"settings": settings, "benchmarks": sets, "rules": RULES_VERSION, "oxa_version": __version__}, 16
    )


class _Scan:
    """Matching a stream of texts against the benchmarks, writing matches and checked ids."""

    def __init__(self, ws: Workspace, config: DecontaminateConfig, bench: _Benchmarks, fp: str) -> None:
        self.config, self.bench, self.fp = config, bench, fp
        prefix = f"decontaminate-{fp}"
        # staged: a killed run publishes nothing; a finished one its matches, then what it checked
        self.matches = PartWriter(ws.table_folder("contamination"), prefix, CONTAMINATION, "problem_id", staged=True)
        self.checked = PartWriter(
            ws.table_folder("contamination_checked"), prefix, CONTAMINATION_CHECKED, "problem_id", staged=True
        )
        self.pairs = 0  # candidate pairs checked one by one
        self.new_matches = 0
        self._found: list[tuple[tuple, dict]] = []  # (order: field, text's id, benchmark problem; the row)

    def pairs_of(self, batch: pa.Table) -> pa.Table:
        """(row, bench, shared_ngrams) of a batch's texts and the benchmark problems they
        share enough n-grams with (Polars and numpy: safe on several threads at once)."""
        return self.bench.index.candidates(masked_frame(batch.column(2)))

    def batch(
        self, field_name: str, problem_ids: pa.ChunkedArray, sample_ids: pa.ChunkedArray | None, texts, pairs
    ) -> None:
        """Check a batch's pairs (`pairs_of`) one by one, in any order of batches: the
        matches are written in id order at close."""
        self.pairs += pairs.num_rows
        if not pairs.num_rows:
            return
        rows = sorted(set(pairs["row"].to_pylist()))
        tokens = dict(zip(rows, tokenize(texts.take(rows).to_pylist())))  # unmasked: only where a pair is
        for row, bench, shared in zip(*(pairs[c].to_pylist() for c in ("row", "bench", "shared_ngrams"))):
            match = classify(self.bench.index.tokens[bench], tokens[row], self.config.ngram, self.config.min_coverage)
            if match is None:
                continue
            name, bench_row, bench_id = self.bench.owners[bench]
            problem_id = problem_ids[row].as_py()
            sample_id = sample_ids[row].as_py() if sample_ids is not None else None
            found = {"problem_id": problem_id, "sample_id": sample_id, "field": field_name, "benchmark": name,
                     "benchmark_problem": bench_row, "benchmark_problem_id": bench_id, "method": match.method,
                     "score": round(match.score, 6), "shared_ngrams": shared, "evidence": match.evidence,
                     "fingerprint": self.fp}  # fmt: skip
            self._found.append(((FIELDS.index(field_name), sample_id or problem_id, bench), found))
        self.new_matches = len(self._found)

    def checked_rows(self, field_name: str, ids: pa.RecordBatch) -> None:
        """The texts checked, (problem_id, sample_id) in id order."""
        n = ids.num_rows
        self.checked.write(
            pa.table(
                {"problem_id": ids.column(0), "sample_id": ids.column(1).cast(pa.string()),
                 "field": pa.array([field_name] * n, pa.string()), "fingerprint": pa.array([self.fp] * n, pa.string())},
                schema=CONTAMINATION_CHECKED,
            )
        )  # fmt: skip

    def close(self) -> None:
        self._found.sort(key=lambda item: item[0])
        for start in range(0, len(self._found), _BATCH_ROWS):
            chunk = [row for _, row in self._found[start : start + _BATCH_ROWS]]
            self.matches.write(pa.Table.from_pylist(chunk, schema=CONTAMINATION))
        self.matches.close()
        self.checked.close()
        self.matches.publish()  # first: a text listed as checked has its matches in place
        self.checked.publish()

    def abort(self) -> None:
        self.matches.abort()
        self.checked.abort()


def _todo(ws: Workspace, fp: str, field_name: str) -> tuple[duckdb.DuckDBPyConnection, int, int, int]:
    """(connection, texts in the pool, already checked under fp, to check now); the ids to
    check are the connection's temporary table `todo` (problem_id, sample_id)."""
    con = ws.connect()
    checked = part_glob(ws.table_folder("contamination_checked"))
    con.execute(
        "CREATE TEMP TABLE done AS SELECT DISTINCT coalesce(sample_id, problem_id) AS id FROM "
        "read_parquet($parts, union_by_name = true) WHERE fingerprint = $fp AND field = $field",
        {"parts": checked, "fp": fp, "field": field_name},
    )
    table, key, _, sample_id = _SOURCES[field_name]
    total = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    done = con.execute("SELECT count(*) FROM done").fetchall()[0][0]
    con.execute(
        f"CREATE TEMP TABLE todo AS SELECT problem_id, {sample_id} FROM {table} "
        f"WHERE {key} NOT IN (SELECT id FROM done)"
    )
    return con, total, done, con.execute("SELECT count(*) FROM todo").fetchall()[0][0]


def masked_frame(texts):
    """(row, masked) of a batch of texts: their masked tokens, cut lazily, so that Polars
    spreads the rows over its threads."""
    import polars as pl

    return (
        pl.LazyFrame({"t": texts}, schema={"t": pl.String})
        .with_row_index("row")
        .select("row", masked_tokens_expr(pl.col("t")).alias("masked"))
        .collect()
    )


def _paired(batches: Iterator[pa.Table], pairs_of: Callable[[pa.Table], pa.Table]) -> Iterator[tuple]:
    """(batch, its pairs) in the batches' order, the pairs found on up to _PAIRING_THREADS
    threads at once (Polars and numpy release the GIL), as many batches ahead: so that no
    one thread's share bounds the stage on many cores, in memory that does not grow with
    the pool."""
    from concurrent.futures import ThreadPoolExecutor

    threads = max(1, min(_PAIRING_THREADS, os.cpu_count() or 1))
    pending: deque = deque()
    with ThreadPoolExecutor(threads, initializer=name_this_thread, initargs=("pairs",)) as pool:
        try:
            for batch in batches:
                pending.append((batch, pool.submit(pairs_of, batch)))
                if len(pending) > threads:
                    batch, pairs = pending.popleft()
                    yield batch, pairs.result()
            while pending:
                batch, pairs = pending.popleft()
                yield batch, pairs.result()
        finally:
            for _, pairs in pending:
                pairs.cancel()


def _text_batches(con: duckdb.DuckDBPyConnection, field_name: str) -> Iterator[pa.Table]:
    """(problem_id, sample_id, text) of the texts in `todo`, as DuckDB reads them (no sort
    of the text), in tables of at most _BATCH_BYTES of text or _BATCH_ROWS rows."""
    table, key, text, sample_id = _SOURCES[field_name]
    reader = con.sql(
        f"SELECT problem_id, {sample_id}, {text} AS text FROM {table} WHERE {key} IN (SELECT {key} FROM todo)"
    ).to_arrow_reader(_READ_ROWS)
    gathered, rows, size = [], 0, 0
    for batch in reader:
        gathered.append(batch)
        rows, size = rows + batch.num_rows, size + batch.column(2).nbytes
        if rows >= _BATCH_ROWS or size >= _BATCH_BYTES:
            yield pa.Table.from_batches(gathered)
            gathered, rows, size = [], 0, 0
    if gathered:
        yield pa.Table.from_batches(gathered)


def _remove_other_fingerprints(ws: Workspace, fp: str) -> int:
    removed = 0
    for table in ("contamination", "contamination_checked"):
        for path in ws.table_folder(table).glob("decontaminate-*.parquet"):
            if not path.name.startswith(f"decontaminate-{fp}-"):
                remove_part(path)
                removed += 1
    return removed


def run_decontaminate(ws: Workspace, config: DecontaminateConfig, progress: ProgressFn | None = None) -> dict:
    """Check `ws`'s pool against `config.against`; returns the run's stats (also in stats.json)."""
    config.check()
    progress = progress or (lambda what, done, total: None)
    progress("reading the benchmarks", 0, 0)
    bench = _Benchmarks.load(config)
    fp = settings_fingerprint(config, bench)
    resolved = {**asdict(config), "benchmarks": bench.record(), "settings_fingerprint": fp, "oxa_version": __version__}
    with ws.lock("contamination", "oxa decontaminate"):
        run = StageRun(ws, "decontaminate", resolved)
        scan = None
        try:
            start = time.perf_counter()
            scan = _Scan(ws, config, bench, fp)
            counts = {}
            for field_name in FIELDS[: 2 if config.responses else 1]:
                counts[field_name] = _scan_field(ws, scan, fp, field_name, progress)
            scan.close()
            removed = _remove_other_fingerprints(ws, fp)
            stats = _stats(ws, config, bench, fp, scan, counts, removed)
            return run.finish({**stats, "seconds_matching": round(time.perf_counter() - start, 2)})
        except BaseException as exc:
            if scan is not None:
                scan.abort()
            run.fail(exc)
            raise


def _scan_field(ws: Workspace, scan: _Scan, fp: str, field_name: str, progress: ProgressFn) -> dict:
    con, total, done, todo = _todo(ws, fp, field_name)
    try:
        what = "problems" if field_name == "problem" else "responses"
        checked = 0
        progress(f"checking {what}", done, total)
        # reading runs a batch ahead on its own thread, the pairs on a few: this one only
        # checks the few pairs that share enough n-grams. Both are closed (their threads
        # ended) before the connection they read is, whatever happens here.
        with (
            contextlib.closing(read_ahead(_text_batches(con, field_name), depth=1)) as texts,
            contextlib.closing(_paired(texts, scan.pairs_of)) as paired,
        ):
            for batch, pairs in paired:
                sample_ids = batch.column(1) if field_name == "response" else None
                scan.batch(field_name, batch.column(0), sample_ids, batch.column(2), pairs)
                checked += batch.num_rows
                progress(f"checking {what}", done + checked, total)
        if checked != todo:  # a part removed while the run read
            raise OxaError(
                f"{what}: {todo:,} to check, {checked:,} read: the pool changed during the run; "
                "run `oxa check` on the workspace, then `oxa decontaminate` again"
            )
        key = _SOURCES[field_name][1]
        for ids in con.sql(f"SELECT problem_id, sample_id FROM todo ORDER BY {key}").to_arrow_reader(_BATCH_ROWS):
            scan.checked_rows(field_name, ids)
    finally:
        con.close()
    return {"pool": total, "checked_before": done, "checked_now": checked}


def _stats(
    ws: Workspace, config: DecontaminateConfig, bench: _Benchmarks, fp: str, scan: _Scan, counts: dict, removed: int
) -> dict:
    """The run's record, counted over every match under `fp` (this run's and earlier ones')."""
    con = duckdb.connect()
    try:
        parts = part_glob(ws.table_folder("contamination"))
        found = con.execute(
            "SELECT field, benchmark, method, count(*), count(DISTINCT coalesce(sample_id, problem_id)) "
            "FROM read_parquet($parts, union_by_name = true) WHERE fingerprint = $fp GROUP BY ALL",
            {"parts": parts, "fp": fp},
        ).fetchall()
        flagged = dict(
            con.execute(
                "SELECT field, count(DISTINCT coalesce(sample_id, problem_id)) FROM read_parquet($parts, union_by_name = true) "
                "WHERE fingerprint = $fp AND method IN (SELECT unnest($methods)) GROUP BY ALL",
                {"parts": parts, "fp": fp, "methods": list(CONTAMINATED)},
            ).fetchall()
        )
    finally:
        con.close()
    matches = {s.name: {f"{f}_{m}": 0 for f in counts for m in METHODS} for s in bench.sets}
    templates = Counter()
    for field_name, name, method, n, distinct in found:
        matches[name][f"{field_name}_{method}"] = n
        if method == "template":
            templates[field_name] += distinct
    problems = counts["problem"]
    summary = (
        f"{problems['pool']:,} problems checked against {', '.join(s.name for s in bench.sets)} "
        f"({len(bench.owners):,} benchmark problems; {problems['checked_now']:,} checked now, "
        f"{problems['checked_before']:,} before): {flagged.get('problem', 0):,} contaminated, "
        f"{templates['problem']:,} with a template match"
    )
    if "response" in counts:
        summary += f"; {flagged.get('response', 0):,} responses quote a benchmark problem"
    return {
        "summary": summary,
        "fingerprint": fp,
        "benchmarks": bench.record(),
        "settings": {
            "ngram": config.ngram,
            "min_coverage": config.min_coverage,
            "responses": config.responses,
            "mmlu_subjects": config.mmlu_subjects,
        },
        "checked": counts,
        "candidate_pairs": scan.pairs,
        "new_matches": scan.new_matches,
        "matches": matches,
        "contaminated": {f: flagged.get(f, 0) for f in counts},
        "template_only": {f: templates[f] for f in counts},
        "parts_removed": removed,
        "finished_ns": time.time_ns(),  # orders runs finished within one second (decontamination_run)
    }
