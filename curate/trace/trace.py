"""`oxa trace`: find each pool problem's ground-truth answer in reference data sets.

Reading (curate/trace/references.py): every reference source, in the order given (its
priority), becomes rows of (problem keys, answer), or rejects with a reason.

Matching, in stages, for the pool problems that have no given answer:
1. exact: the reference's problem has the same problem_id (NFC and whitespace folded);
2. normalized: the same match_key (curate/text/normalize.py: LaTeX spacing, \\left/\\right,
   \\dfrac, NFKC and look-alikes, instruction suffixes, case, whitespace);
3. fuzzy: for problems neither stage found, token blocking plus the rapidfuzz ratio at
   a threshold (curate/trace/fuzzy.py), never all pairs.

Evidence (curate/trace/evidence.py): text alone cannot tell a drifted copy from a
templated neighbour, so the answers of fuzzy-only problems and of problems whose
references disagree are checked against the final answers of the problem's own teacher
responses. A fuzzy match is taken only when enough responses agree with its answer
(`confirm_min_responses`); otherwise the problem is `fuzzy_unconfirmed` and gets no answer
(`keep_unconfirmed` keeps those whose text differs only by drift).

Resolving (sql/trace/found.sql, resolve.sql): the best eligible match gives the answer
(exact before normalized before fuzzy, then source priority); differing answers are a
conflict unless math-verify finds them equal; the conflict policy takes the answer the
responses agree with ('consensus', falling back to priority when they agree with none
or tie), keeps the priority choice ('priority'), or drops the problem ('drop'). Every
conflict's outcome is in the `trace_conflicts` table.

Output: one `answers` row per traced problem, and one `trace_conflicts` row per problem
whose references differ, each written as one part that replaces the previous trace's
(answers given at ingest stay), the two published together (curate/trace/run_files.py),
and the outcome of every pool problem in runs/trace/<run>/outcomes.parquet. The work
tables live in a DuckDB file in the run folder (memory stays bounded), removed at the
end. A trace first finishes the publication of a trace killed during its own and
removes the scratch files of killed runs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__
from curate.ingest.sources import content_record, discover, read_batches
from curate.text.instructions import strip_instruction_suffixes
from curate.text.normalize import PLACEHOLDERS, match_key, match_text
from curate.trace.evidence import equal_pairs, pool_support
from curate.trace.fuzzy import fuzzy_matches
from curate.trace.references import REFERENCE_ROWS, ReferenceReader, resolve_reference_presets
from curate.trace.run_files import (
    SCRATCH_DATABASE,
    SCRATCH_SPILL,
    finish_unfinished_publications,
    publish_together,
    remove_scratch,
    remove_stale_scratch,
)
from curate.workspace import OxaError, Workspace
from curate.workspace.parts import file_sha256, fingerprint
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun

ProgressFn = Callable[[str, int, int], None]  # (what, done, total; 0 = unknown)

CONFLICT_POLICIES = ("consensus", "priority", "drop")
OUTCOMES = (
    "given", "exact", "normalized", "fuzzy", "conflict_dropped", "fuzzy_unconfirmed", "placeholder", "unmatched",
)  # fmt: skip
RESOLUTIONS = ("equivalent", "consensus", "priority_no_agreement", "priority", "dropped")
# Rows per insert into the scratch database: past DuckDB's row group (122,880 rows) an
# insert is written to the file at once, where a smaller one goes through the WAL first
# (299k reference rows in 10 inserts: 1.8 s of CPU; in one: 1.1 s).
_INSERT_ROWS = 131_072


@dataclass
class TraceConfig:
    """Where to look for answers and how to match. Every field is also an `oxa trace` option."""

    sources: list[str]  # reference sources, highest priority first
    preset: str | None = None  # a name in REFERENCE_PRESETS; None detects each file's layout
    mapping: dict[str, str] = field(default_factory=dict)  # --map field=column
    # 'consensus': the answer the pool's teacher responses agree with (else as 'priority');
    # 'priority': the best match of the first source, flagged; 'drop': no answer
    on_conflict: str = "consensus"
    check_equivalent: bool = True  # math-verify decides whether differing answers are one value
    fuzzy: bool = True  # the fuzzy stage
    fuzzy_threshold: float = 0.9  # rapidfuzz ratio (0-1) a fuzzy match needs
    fuzzy_same_numbers: bool = True  # a fuzzy match must keep the problem's numbers
    fuzzy_rare_tokens: int = 6  # blocking: the problem's rarest tokens used
    fuzzy_max_df: int = 1000  # blocking: a token in more reference rows than this is not used
    fuzzy_candidates: int = 20  # blocking: reference rows scored per problem
    confirm_min_responses: int = 1  # teacher responses that must agree with a fuzzy match's answer
    keep_unconfirmed: bool = False  # keep unconfirmed fuzzy matches whose text differs only by drift
    evidence_max_answers: int = 8  # distinct response answers per problem compared with a gold
    placeholders: list[str] = field(default_factory=lambda: list(PLACEHOLDERS))
    memory_limit: str = "4GB"  # DuckDB's limit for the matching work; it spills to disk beyond it

    def check(self) -> None:
        if not self.sources:
            raise OxaError("name at least one reference source: oxa trace WS --answers FILE_OR_FOLDER")
        if self.on_conflict not in CONFLICT_POLICIES:
            raise OxaError(f"unknown conflict policy {self.on_conflict!r}; choose {' or '.join(CONFLICT_POLICIES)}")
        if not 0.0 < self.fuzzy_threshold <= 1.0:
            raise OxaError(f"the fuzzy threshold is a ratio in (0, 1], got {self.fuzzy_threshold}; e.g. 0.9")
        for name in (
            "fuzzy_rare_tokens",
            "fuzzy_max_df",
            "fuzzy_candidates",
            "confirm_min_responses",
            "evidence_max_answers",
        ):
            if getattr(self, name) < 1:
                raise OxaError(f"{name} must be >= 1, got {getattr(self, name)}")


def keyed_problems(problem_ids: pa.Array, problems: pa.Array) -> pa.Table:
    """(problem_id, match_text, match_key) of pool problems."""
    import polars as pl

    stripped, _ = strip_instruction_suffixes(problems)
    frame = pl.DataFrame({"problem_id": problem_ids, "p": stripped}).select(
        "problem_id", match_text(pl.col("p")).alias("match_text")
    )
    return frame.with_columns(match_key(pl.col("match_text")).alias("match_key")).to_arrow()


def _rebatched(batches: Iterable[pa.RecordBatch | pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of `batches` in tables of at least `rows` (the last may hold fewer), each in
    one chunk. DuckDB hands a parquet scan over a row group at a time (a pool that ingest
    wrote of 325k problems came as 1,018 batches), and keying a batch costs a Polars plan
    and a DuckDB insert however small it is (see _INSERT_ROWS too)."""
    pending: list[pa.Table] = []
    held = 0
    for batch in batches:
        pending.append(pa.table(batch))
        held += batch.num_rows
        if held >= rows:
            yield pa.concat_tables(pending).combine_chunks()
            pending, held = [], 0
    if pending:
        yield pa.concat_tables(pending).combine_chunks()


class _Trace:
    def __init__(self, ws: Workspace, run: StageRun, config: TraceConfig, progress: ProgressFn) -> None:
        self.ws, self.run, self.config, self.progress = ws, run, config, progress
        self.con = duckdb.connect(str(run.dir / SCRATCH_DATABASE))
        self.con.execute(sql_text("macros.sql"))
        self.con.execute(sql_text("trace/macros.sql"))
        # bounded memory: beyond the limit, joins and aggregates spill to the run folder
        self.con.execute("SET memory_limit = ?", [config.memory_limit])
        self.con.execute("SET temp_directory = ?", [str(run.dir / SCRATCH_SPILL)])
        self.con.execute("SET preserve_insertion_order = false")
        self.reader = ReferenceReader(tuple(config.placeholders), self.con)
        self.files: list[dict] = []
        self.conflicts = Counter(differing=0, equivalent=0)

    def read_references(self) -> None:
        files = discover(self.config.sources)
        presets = resolve_reference_presets(files, self.config.preset, self.config.mapping)
        ranks = {str(f.path): rank for rank, source in enumerate(self.config.sources) for f in discover([source])}
        self._create("refs", REFERENCE_ROWS.empty_table())
        for rows in _rebatched(self._staged_references(files, presets, ranks), _INSERT_ROWS):
            self._insert("refs", rows)

    def _staged_references(self, files: list, presets: list, ranks: dict[str, int]) -> Iterator[pa.Table]:
        """The REFERENCE_ROWS of each file's batches in turn; their rejects are written and
        each file recorded on the way."""
        for file, preset in zip(files, presets):
            read_before = self.reader.read
            for batch in read_batches(file, preset.source_columns()):
                rows, rejects = self.reader.stage(batch, preset, ranks[str(file.path)])
                self.run.rejects.write(rejects)
                self.progress(f"reading {file.path.name}", self.reader.read - read_before, 0)
                yield rows
            self.files.append(
                {
                    "path": str(file.path),
                    "preset": preset.name,
                    "rank": ranks[str(file.path)],
                    "records": self.reader.read - read_before,
                }
            )

    def read_pool(self) -> None:
        catalog = self.ws.connect()
        try:
            self.given = catalog.sql(
                "SELECT problem_id FROM problems "
                "WHERE problem_id IN (SELECT problem_id FROM answers WHERE match_method = 'given')"
            ).to_arrow_table()
            self._create("given", self.given)
            self.con.execute("CREATE TABLE pool (problem_id VARCHAR, match_text VARCHAR, match_key VARCHAR)")
            reader = catalog.sql("SELECT problem_id, problem FROM problems").to_arrow_reader(_INSERT_ROWS)
            total = 0
            for batch in _rebatched(reader, _INSERT_ROWS):
                keyed = keyed_problems(batch.column(0), batch.column(1))
                self.con.register("keyed", keyed)
                self.con.execute(
                    "INSERT INTO pool SELECT * FROM keyed WHERE problem_id NOT IN (SELECT problem_id FROM given)"
                )
                self.con.unregister("keyed")
                total += batch.num_rows
                self.progress("keying pool problems", total, 0)
        finally:
            catalog.close()
        self.pool_size = total

    def match(self) -> None:
        self.progress("matching: exact and normalized", 0, 0)
        self.con.execute(f"CREATE TABLE matches AS {sql_text('trace/candidates.sql')}")
        if self.config.fuzzy:
            self.progress("matching: fuzzy", 0, 0)
            self.con.execute(
                "CREATE TABLE unmatched AS SELECT problem_id, match_text FROM pool "
                "WHERE problem_id NOT IN (SELECT problem_id FROM matches)"
            )
            found = fuzzy_matches(
                self.con,
                self.config.fuzzy_threshold,
                self.config.fuzzy_same_numbers,
                self.config.fuzzy_rare_tokens,
                self.config.fuzzy_max_df,
                self.config.fuzzy_candidates,
            )
            self._insert("matches", found)

    def weigh_evidence(self) -> None:
        """The pool's support for the answers that need it, then every match with its
        eligibility (the `found` table)."""
        needed = self.con.sql(sql_text("trace/evidence_needed.sql")).to_arrow_table()
        self.checked_answers = needed.num_rows
        self._create("support", pool_support(self.ws, needed, self.progress, self.config.evidence_max_answers))
        self.con.execute(
            f"CREATE TABLE found AS {sql_text('trace/found.sql')}",
            {"confirm_min": self.config.confirm_min_responses, "keep_unconfirmed": self.config.keep_unconfirmed},
        )

    def find_equivalent_answers(self) -> None:
        """Problems whose differing eligible answers math-verify finds all equal to the first."""
        conflicts = self.con.sql(sql_text("trace/conflicts.sql")).to_arrow_table()
        self.conflicts["differing"] = conflicts.num_rows
        equivalent: list[str] = []
        if conflicts.num_rows and self.config.check_equivalent:
            ids, lists = conflicts["problem_id"].to_pylist(), conflicts["answers"].to_pylist()
            items = [((answers[0],), other) for answers in lists for other in answers[1:]]
            owners = [pid for pid, answers in zip(ids, lists) for _ in answers[1:]]
            equal = equal_pairs(items, self.progress, "checking conflicting answers with math-verify")
            differ = {owner for owner, same in zip(owners, equal) if not same}
            equivalent = sorted(set(ids) - differ)
        self.conflicts["equivalent"] = len(equivalent)
        self._create("equivalent", pa.table({"problem_id": pa.array(equivalent, pa.string())}))

    def write(self) -> None:
        resolved = self.con.sql(
            sql_text("trace/resolve.sql"), params={"on_conflict": self.config.on_conflict}
        ).to_arrow_table()
        given = pa.table({"problem_id": self.given["problem_id"], "outcome": ["given"] * self.given.num_rows})
        outcomes = pa.concat_tables([resolved, given], promote_options="default").sort_by("problem_id")
        pq.write_table(outcomes, self.run.dir / "outcomes.parquet", compression="zstd")
        traced = resolved.filter(pc.is_in(resolved["outcome"], pa.array(["exact", "normalized", "fuzzy"])))
        publish_together(
            self.ws,
            self.run.dir,
            f"trace-{_content_fingerprint(self.config)}",
            {"answers": traced, "trace_conflicts": self._conflict_rows(resolved)},
        )
        self.conflicted = int(pc.sum(resolved["conflict"]).as_py() or 0)
        self.outcomes = Counter(outcomes["outcome"].to_pylist())
        self.resolutions = Counter(r for r in resolved["resolution"].to_pylist() if r is not None)

    def _conflict_rows(self, resolved: pa.Table) -> pa.Table:
        """The trace_conflicts rows. A dropped conflict took no answer: its row names none
        (outcomes.parquet keeps the one priority would have taken)."""
        conflicted = resolved.filter(pc.is_valid(resolved["resolution"]))
        dropped = pc.equal(conflicted["resolution"], "dropped")
        for name in ("gold_answer", "answer_source", "match_method"):
            column = conflicted[name]
            taken = pc.if_else(dropped, pa.scalar(None, column.type), column)
            conflicted = conflicted.set_column(conflicted.schema.get_field_index(name), name, taken)
        return conflicted.append_column("policy", pa.array([self.config.on_conflict] * conflicted.num_rows))

    def _create(self, table: str, rows: pa.Table) -> None:
        self.con.register("incoming", rows)
        self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming")
        self.con.unregister("incoming")

    def _insert(self, table: str, rows: pa.Table) -> None:
        self.con.register("incoming", rows)
        self.con.execute(f"INSERT INTO {table} SELECT * FROM incoming")
        self.con.unregister("incoming")

    def close(self) -> None:
        self.con.close()
        remove_scratch(self.run.dir)


def _fingerprint_config(config: TraceConfig) -> dict:
    resolved = asdict(config)
    resolved["sources"] = [
        {"path": str(f.path), "bytes": f.path.stat().st_size, "mtime_ns": f.path.stat().st_mtime_ns}
        for f in discover(config.sources)
    ]
    resolved["oxa_version"] = __version__
    return resolved


def _content_fingerprint(config: TraceConfig) -> str:
    """What the traced answers derive from (the pool aside, whose ids name the part): the
    config and each reference file's bytes and rank, not their paths or times."""
    resolved = {k: v for k, v in asdict(config).items() if k != "sources"}
    resolved["sources"] = [
        {**content_record(f, file_sha256(f.path)), "rank": rank}
        for rank, source in enumerate(config.sources)
        for f in discover([source])
    ]
    resolved["oxa_version"] = __version__
    return fingerprint(resolved)


def run_trace(ws: Workspace, config: TraceConfig, progress: ProgressFn | None = None) -> dict:
    """Trace the gold answers of `ws`'s pool problems in `config.sources`; returns the
    run's stats (also in stats.json)."""
    config.check()
    progress = progress or (lambda what, done, total: None)
    with ws.lock("answers", "oxa trace"):
        # what killed traces left: first the answers they were publishing, then their scratch
        finished = finish_unfinished_publications(ws)
        removed = remove_stale_scratch(ws)
        run = StageRun(ws, "trace", _fingerprint_config(config))
        state = None
        try:
            state = _Trace(ws, run, config, progress)
            seconds = {}
            for phase, step in (
                ("read_references", state.read_references),
                ("read_pool", state.read_pool),
                ("match", state.match),
                ("weigh_evidence", state.weigh_evidence),
                ("check_conflicts", state.find_equivalent_answers),
                ("write", state.write),
            ):
                start = time.perf_counter()
                step()
                seconds[phase] = round(time.perf_counter() - start, 2)
            state.close()
            left_by_killed_runs = {"publications_finished": finished, "scratch_removed": [str(p) for p in removed]}
            return run.finish({**_stats(state), "phase_seconds": seconds, "left_by_killed_runs": left_by_killed_runs})
        except BaseException as exc:
            if state is not None:
                state.close()
            run.fail(exc)
            raise


def _stats(state: _Trace) -> dict:
    problems = {"pool": state.pool_size, **{o: state.outcomes.get(o, 0) for o in OUTCOMES}}
    assert problems["pool"] == sum(problems[o] for o in OUTCOMES), problems
    reader = state.reader
    assert reader.read == reader.kept + reader.rejected, (reader.read, reader.kept, reader.rejected)
    traced = sum(problems[m] for m in ("exact", "normalized", "fuzzy"))
    return {
        "summary": (
            f"{problems['pool']:,} pool problems: {traced:,} traced ({problems['exact']:,} exact, "
            f"{problems['normalized']:,} normalized, {problems['fuzzy']:,} fuzzy), {problems['given']:,} given, "
            f"{problems['fuzzy_unconfirmed']:,} fuzzy unconfirmed, {problems['placeholder']:,} placeholder, "
            f"{problems['unmatched']:,} unmatched, {state.conflicted:,} conflicts"
        ),
        "problems": problems,
        "conflicts": {
            "differing_answers": state.conflicts["differing"],
            "equivalent_by_math_verify": state.conflicts["equivalent"],
            "conflicts": state.conflicted,
            "policy": state.config.on_conflict,
            "by_resolution": {r: state.resolutions.get(r, 0) for r in RESOLUTIONS},
        },
        "evidence": {
            "answers_checked": state.checked_answers,
            "confirm_min_responses": state.config.confirm_min_responses,
            "keep_unconfirmed": state.config.keep_unconfirmed,
        },
        "references": {"read": reader.read, "kept": reader.kept, "rejected": reader.rejected},
        "rejects": dict(sorted(reader.reasons.items())),
        "files": state.files,
    }
