"""`oxa ingest`: put pool sources into the workspace as problems, samples and answers.

Per batch: read -> extract the preset's fields (reject missing/wrong-typed ones) ->
explode response lists -> filter (the preset's default filter and --where, SQL over the
staged fields) -> content checks (empty, NUL bytes, invalid UTF-8, size) -> strip
instruction suffixes -> ids (problem ids by the SQL macros in sql/macros.sql, sample ids
hashed from Arrow's buffers in ids.py, the same as the macro's) -> drop ids already in the
pool or earlier in the run (kept as 12-byte digests) -> parquet parts.

Every record read ends in exactly one bucket of the funnel:
read = accepted + duplicate + rejected + filtered. Rejects go to the run's rejects/ with
file, row, reason and a preview. A file with damaged bytes (a truncated .gz, a corrupt
parquet file) keeps the rows read before the damage; the unreadable rest counts as one
rejected record, `corrupt_file`, and the run goes on with the other files.

A run's parts stay hidden (temporary names) until it ends, then appear problems and
answers first, samples last: a killed run leaves nothing visible (its temporary files go
with the next writer), and no sample is ever visible without its problem. The parts are
named by content (the config and the sources' bytes), not by paths or times.

A run's license and source data sets (`--license`, `--source-dataset`, or the data set a
preset is the layout of) are metadata: recorded per file in stats.json, where subset
cards find them through each row's source_file, and never part of the parts' names.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__
from curate.ingest.ids import DigestSet, digests, first_rows, sample_ids
from curate.ingest.presets import (
    FIELD_KINDS,
    PRESETS,
    Preset,
    check_arrow_schema,
    column_path,
    detect_preset,
    extract_arrow,
    extract_dicts,
    generic_preset,
    list_layout,
    no_preset_error,
    scorer_tag,
    split_path,
)
from curate.ingest.records import (
    check_content,
    drop_invalid_scores,
    empty_staged,
    explode_responses,
    fill_defaults,
    filter_mask,
)
from curate.ingest.sources import (
    ArrowBatch,
    Damaged,
    DictBatch,
    FileDamaged,
    SourceFile,
    arrow_schema,
    content_record,
    discover,
    peek_columns,
    read_batches,
)
from curate.text.normalize import is_placeholder
from curate.thread_names import name_this_thread
from curate.workspace import OxaError, Workspace
from curate.workspace.parts import (
    PartWriter,
    SpreadPartWriter,
    atomic_write_json,
    file_sha256,
    fingerprint,
    part_glob,
)
from curate.workspace.progress import ProgressFn
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun
from curate.workspace.sandbox import check_expression, lock_down
from curate.workspace.schema import ANSWERS, GIVEN, PROBLEMS, REJECTS, SAMPLES, SCORES, VERIFY

GIVEN_VERDICTS = ("correct", "incorrect")
# Metadata of the rows, not what they derive from: recorded, left out of the parts' fingerprint.
METADATA_FIELDS = ("license", "source_datasets")
# The data set whose layout a preset reads, named for its files when --source-dataset is not given.
PRESET_DATASETS = {"acereason": ["nvidia/AceReason-1.1-SFT"]}


@dataclass
class IngestConfig:
    """What to ingest and how. Every field is also an `oxa ingest` option."""

    sources: list[str]
    preset: str | None = None  # a name in PRESETS; None detects the layout per file
    mapping: dict[str, str] = field(default_factory=dict)  # --map field=column
    where: str | None = None  # SQL predicate over the staged fields
    all_categories: bool = False  # drop the preset's default filter (acereason: math only)
    generator: str | None = None  # generator recorded when the source names none
    strip_instruction: bool | None = None  # None: the preset's default
    scores_tag: str | None = None  # tag for PPL lists carried by the source (oxa-lists)
    max_record_bytes: int = 4 * 2**20  # problem + response larger than this is rejected
    origin: str = "teacher"
    verdict: str | None = None  # 'correct' or 'incorrect': the source vouches for its responses
    license: str | None = None  # the sources' license: a Hub id (cc-by-4.0, mit) or its name; None: unknown
    source_datasets: list[str] = field(default_factory=list)  # Hub ids of the data sets they are; []: the preset's

    def check(self) -> None:
        if self.where is not None:
            check_expression(self.where, "--where")
        if self.verdict is not None and self.verdict not in GIVEN_VERDICTS:
            raise OxaError(f"--verdict takes {' or '.join(GIVEN_VERDICTS)}, got {self.verdict!r}")
        if self.license is not None and not self.license.strip():
            raise OxaError("--license is empty: give the sources' license (e.g. cc-by-4.0), or leave it out (unknown)")
        if any(not name.strip() for name in self.source_datasets):
            raise OxaError(
                f"--source-dataset takes a data set's name (e.g. nvidia/AceReason-1.1-SFT); got {self.source_datasets!r}"
            )

    def file_metadata(self, preset: Preset | None) -> dict:
        """The license and source data sets recorded for a file read with `preset`."""
        datasets = self.source_datasets or PRESET_DATASETS.get(preset.name if preset else "", [])
        return {"license": self.license, "source_datasets": list(datasets)}


def resolve_presets(config: IngestConfig, files: list[SourceFile]) -> list[Preset]:
    """The preset for each file: named, mapped, or detected from its columns. The OXA
    list layout is bound to each file's own column names; a PPL column that names its
    scorer gives the scores tag when --scores-tag is not set (config.scores_tag is set)."""
    if config.preset is not None and config.preset not in PRESETS:
        raise OxaError(f"unknown preset {config.preset!r}; presets: {', '.join(PRESETS)}")
    chosen = []
    derived = None  # the scores tag taken from a PPL column's name
    for file in files:
        columns = peek_columns(file)
        base = PRESETS[config.preset] if config.preset else None
        if base is None and not config.mapping:
            base = detect_preset(columns) or list_layout(columns)
            if base is None:
                raise no_preset_error(str(file.path), columns)
        if base is not None and base.name == "oxa-lists":
            base = list_layout(columns) or base
        mapping = {  # an unknown field is left for generic_preset to name
            name: _mapped_column(path, columns, name, file) if name in FIELD_KINDS else path
            for name, path in config.mapping.items()
        }
        preset = generic_preset(mapping, base) if mapping else base
        if file.format in ("parquet", "arrow"):
            check_arrow_schema(preset, arrow_schema(file), str(file.path))
        ppl = preset.field("ppl")
        if ppl is not None and split_path(ppl.path)[0] in columns and (not config.scores_tag or derived):
            if preset.scorer is None or "ppl" in mapping:
                raise OxaError(
                    f"{file.path} carries PPL lists ('{ppl.path}'); name the model that scored them "
                    "with --scores-tag TAG (e.g. --scores-tag qwen2.5-math-7b)"
                )
            tag = scorer_tag(preset.scorer)
            if derived and tag != derived:  # one run writes one scores/<tag>/
                raise OxaError(
                    f"{file.path} holds PPLs scored by {preset.scorer} (tag {tag}), an earlier file by another "
                    f"model (tag {derived}); ingest them in separate runs"
                )
            config.scores_tag = derived = tag
        chosen.append(preset)
    return chosen


def _mapped_column(path: str, columns: list[str], name: str, file: SourceFile) -> str:
    """A --map path checked against the file's columns: a column whose whole name is the
    path (dots and all) is that column; otherwise dots reach into nested objects."""
    if path in columns:
        return column_path(path)
    if split_path(path)[0] in columns:
        return path
    raise OxaError(
        f"--map {name}={path}: {file.path} has no column '{split_path(path)[0]}'; its columns are: "
        f"{', '.join(columns) or '(none)'}. A name with dots is read as a column when one has that whole name, "
        "else as a path into nested objects (write \\. for a literal dot inside a path)"
    )


def _damaged_at_start(files: list[SourceFile]) -> dict[SourceFile, Damaged]:
    """The files too damaged to show their columns (a .gz that is not gzip, a parquet
    file without its footer): they get no preset and are recorded, not read."""
    damaged = {}
    for file in files:
        try:
            peek_columns(file)
        except FileDamaged as exc:
            damaged[file] = exc.damaged
    return damaged


def _fingerprint_config(config: IngestConfig, files: list[SourceFile], presets: list[Preset | None]) -> dict:
    """The run's config as given, with where and when its sources were (the run folder's
    record; the parts are named by `_content_fingerprint`)."""
    resolved = asdict(config)
    resolved["sources"] = [
        {
            "path": str(f.path),
            "bytes": f.path.stat().st_size,
            "mtime_ns": f.path.stat().st_mtime_ns,
            "preset": p.name if p else None,
        }
        for f, p in zip(files, presets)
    ]
    resolved["oxa_version"] = __version__
    return resolved


def _content_fingerprint(
    config: IngestConfig, files: list[SourceFile], presets: list[Preset | None], hashes: list[str]
) -> str:
    """What the run's rows derive from: the config without the sources' paths, and per
    file its bytes' sha256, the data-set name (the default `source`) and the preset. The
    same bytes ingested from anywhere, or after a `touch`, give the same fingerprint; so do
    the same bytes under another license or source data set (metadata, not content)."""
    resolved = {k: v for k, v in asdict(config).items() if k not in ("sources", *METADATA_FIELDS)}
    resolved["sources"] = [
        {**content_record(f, h), "preset": p.name if p else None} for f, p, h in zip(files, presets, hashes)
    ]
    resolved["oxa_version"] = __version__
    return fingerprint(resolved)


def _hash_in_background(files: list[SourceFile]) -> list[Future]:
    """The sha256 of every file, computed in order on a thread that runs ahead of the
    reader (it warms the page cache for the reader rather than doubling the disk reads;
    93 MB of parquet hash in 0.08 s)."""
    hasher = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="hash-sources", initializer=name_this_thread, initargs=("hash-sources",)
    )
    futures = [hasher.submit(file_sha256, f.path) for f in files]
    hasher.shutdown(wait=False)
    return futures


class _Ingest:
    """The state of one ingest run: open part writers, seen ids and counters."""

    def __init__(self, ws: Workspace, run: StageRun, config: IngestConfig) -> None:
        self.ws, self.run, self.config = ws, run, config
        self.con = duckdb.connect()
        self.con.execute(sql_text("macros.sql"))
        prefix = f"ingest-{run.fingerprint}"  # a placeholder: the parts are named at publish()
        # the responses are most of a pool's bytes: more than one thread compresses them
        self.samples = SpreadPartWriter(ws.table_folder("samples"), prefix, SAMPLES, "sample_id", staged=True)
        self.problems = PartWriter(ws.table_folder("problems"), prefix, PROBLEMS, "problem_id", staged=True)
        self.answers = PartWriter(ws.table_folder("answers"), prefix, ANSWERS, "problem_id", staged=True)
        self.scores = None
        if config.scores_tag:
            folder = ws.ensure_scores_folder(config.scores_tag)
            self.scores = PartWriter(folder, prefix, SCORES, "sample_id", staged=True)
        self.score_rejects = PartWriter(run.dir / "score_rejects", "score_rejects", REJECTS, "source_row")
        self.verdicts = None
        if config.verdict:
            folder = ws.table_folder("verify")
            self.verdicts = PartWriter(folder, f"given-{run.fingerprint}", VERIFY, "sample_id", staged=True)
        self.scores_dropped: Counter[str] = Counter()
        self.placeholder_golds = 0  # given answers that say there is none
        # ids seen, as compact digests (curate/ingest/ids.py): the pool's, and this run's
        self.pool_samples = self._existing("pool/samples", "sample_id")
        self.pool_problems = self._existing("pool/problems", "problem_id")
        self.pool_answers = {
            tuple(r)
            for r in self.con.execute(
                "SELECT problem_id, answer_source, gold_answer FROM read_parquet(?, union_by_name=true)",
                [part_glob(ws.root / "answers")],
            ).fetchall()
        }
        self.pool_scores = self._existing(f"scores/{config.scores_tag}", "sample_id") if self.scores else DigestSet()
        lock_down(self.con, ws.root)  # --where runs here
        self.run_samples = DigestSet()
        self.run_problems = DigestSet()
        self.hash_workers = os.cpu_count() or 1
        self.hasher = ThreadPoolExecutor(max_workers=self.hash_workers, thread_name_prefix="sample-ids")
        self.run_answers: set[tuple] = set()
        self.funnel = Counter(read=0, accepted=0, duplicate=0, rejected=0, filtered=0)
        self.duplicates = Counter(in_pool=0, in_run=0)
        self.reasons: Counter[str] = Counter()
        self.added = Counter(problems=0, samples=0, answers=0, scores=0, verdicts=0)
        self.instructions_stripped = 0
        self.files: list[dict] = []
        self.damaged: list[dict] = []
        self.skipped_files: list[dict] = []  # what the source folders hold that is not read

    def _existing(self, folder: str, column: str) -> DigestSet:
        """The ids a pool folder holds, read in batches: the hex ids of a whole pool would
        take twice the memory of their digests."""
        rows = self.con.sql(
            f"SELECT {column} FROM read_parquet($glob, union_by_name=true)",
            params={"glob": part_glob(self.ws.root / folder)},
        ).to_arrow_reader(1_000_000)
        found = [digests(batch.column(0)) for batch in rows]
        return DigestSet(np.concatenate(found) if found else None)

    # -- one batch --------------------------------------------------------------------

    def process(self, batch: DictBatch | ArrowBatch, preset: Preset) -> int:
        """Ingest one batch; returns the number of records it read."""
        unreadable = batch.unreadable if isinstance(batch, DictBatch) else []
        if isinstance(batch, DictBatch):
            staged = extract_dicts(preset, batch.rows, batch.objects)
        else:
            staged = extract_arrow(preset, batch.first_row, batch.table)
        if preset.explodes:
            staged = explode_responses(self.con, staged)
        else:
            staged = staged.append_column("_sub", pa.nulls(staged.num_rows, pa.int32()))
        staged = fill_defaults(staged, batch.file.dataset_name, self.config.generator or preset.generator)
        keep = filter_mask(self.con, staged, self._filters(preset))
        texts = ["problem", "response"] if preset.has_responses else ["problem"]
        staged = check_content(staged, keep, texts, self._strip_instruction(preset), self.config.max_record_bytes)
        staged, dropped_scores = drop_invalid_scores(staged)
        if dropped_scores.num_rows:
            self._reject(batch.file, _with_preview(dropped_scores), self.score_rejects)

        filtered = staged.num_rows - (pc.sum(keep).as_py() or 0) if keep is not None else 0
        read = len(unreadable) + staged.num_rows
        self.funnel["read"] += read
        self.funnel["filtered"] += filtered
        for bad in unreadable:
            self._reject(
                batch.file,
                pa.table(
                    {
                        "_row": [bad.row],
                        "_sub": pa.nulls(1, pa.int32()),
                        "_reason": [bad.reason],
                        "_detail": [bad.detail],
                        "_preview": [bad.preview],
                    }
                ),
            )
        has_reason = pc.is_valid(staged["_reason"])  # reasons are only set on kept rows
        if pc.any(has_reason).as_py():
            self._reject(batch.file, _with_preview(staged.filter(has_reason)))
        valid_mask = pc.invert(has_reason) if keep is None else pc.and_(keep, pc.invert(has_reason))
        if staged.num_rows == 0:
            pass
        elif pc.all(valid_mask).as_py():
            self._write_valid(staged, preset, batch.file)  # the common case: no copy
        elif pc.any(valid_mask).as_py():
            self._write_valid(staged.filter(valid_mask), preset, batch.file)
        return read

    def record_damage(self, damaged: Damaged) -> None:
        """The unreadable rest of a damaged file: one rejected record, `corrupt_file`."""
        self.funnel["read"] += 1
        self._reject(
            damaged.file,
            pa.table(
                {
                    "_row": [damaged.row],
                    "_sub": pa.nulls(1, pa.int32()),
                    "_reason": ["corrupt_file"],
                    "_detail": [damaged.describe()],
                    "_preview": [""],
                }
            ),
        )
        self.damaged.append(
            {"path": str(damaged.file.path), "row": damaged.row, "byte": damaged.byte, "reason": damaged.reason}
        )

    def _filters(self, preset: Preset) -> list[str]:
        filters = []
        if preset.default_filter and not self.config.all_categories:
            filters.append(preset.default_filter)
        if self.config.where:
            filters.append(self.config.where)
        return filters

    def validate_filters(self, presets: list[Preset]) -> None:
        """Try each file's filters on an empty batch, so a bad --where fails before any work."""
        for preset in {p.name: p for p in presets}.values():
            filter_mask(self.con, empty_staged(), self._filters(preset))

    def _strip_instruction(self, preset: Preset) -> bool:
        if self.config.strip_instruction is None:
            return preset.strip_instruction
        return self.config.strip_instruction

    def _reject(self, file: SourceFile, rows: pa.Table, writer: PartWriter | None = None) -> None:
        """Record rejected records (or, with `writer` = score_rejects, records kept
        without their score: they count in the stats' scores_dropped, not the funnel)."""
        n = rows.num_rows
        (writer or self.run.rejects).write(
            pa.table(
                {
                    "source_file": pa.array([str(file.path)] * n, pa.string()),
                    "source_row": rows["_row"],
                    "source_index": rows["_sub"],
                    "reason": rows["_reason"],
                    "detail": rows["_detail"],
                    "preview": rows["_preview"],
                },
                schema=REJECTS,
            )
        )
        if writer is None:
            self.funnel["rejected"] += n
            self.reasons.update(rows["_reason"].to_pylist())
        else:
            self.scores_dropped.update(rows["_reason"].to_pylist())

    def _write_valid(self, valid: pa.Table, preset: Preset, file: SourceFile) -> None:
        self.con.register("valid", _in_morsels(valid.select(["problem", "response"])))
        ids = self.con.sql(
            "SELECT oxa_problem_id(problem) AS problem_id, length(response)::BIGINT AS n_chars FROM valid"
        ).to_arrow_table()
        self.con.unregister("valid")
        self.instructions_stripped += valid.num_rows - valid["instruction"].null_count
        problem_ids = ids["problem_id"].to_pylist()
        problem_digests = digests(ids["problem_id"])
        new_problems = self._new_problems(problem_digests)
        new_answers = self._new_answers(problem_ids, valid)
        if preset.has_responses:
            ids = ids.append_column(
                "sample_id", sample_ids(problem_ids, valid["response"], self.hasher, self.hash_workers)
            )
            sample_digests = digests(ids["sample_id"])
            new_samples = self._new_samples(sample_digests)
            new_scores = self._new_scores(sample_digests, valid) if self.scores is not None else []
        else:
            new_samples, new_scores = [], []
            self._count_problem_records(problem_digests, set(new_problems) | set(new_answers))
        path = pa.array([str(file.path)] * valid.num_rows, pa.string())
        table = valid.append_column("problem_id", ids["problem_id"]).append_column("source_file", path)
        table = table.rename_columns(
            [{"_row": "source_row", "_sub": "source_index"}.get(c, c) for c in table.column_names]
        )
        if new_problems:
            self.problems.write(_take(table, new_problems))
        if new_answers:
            answers = _take(table, new_answers)
            n = answers.num_rows
            self.answers.write(
                answers.append_column("answer_source", answers["source"])
                .append_column("match_method", pa.array(["given"] * n))
                .append_column("match_score", pa.array([1.0] * n))
                .append_column("conflict", pa.array([False] * n))
            )
        if new_samples or new_scores:
            table = table.append_column("sample_id", ids["sample_id"]).append_column("n_chars", ids["n_chars"])
        if new_samples:
            samples = _take(table, new_samples)
            self.samples.write(samples.append_column("origin", pa.array([self.config.origin] * samples.num_rows)))
            if self.verdicts is not None:
                self._write_given_verdicts(samples, file)
        if new_scores:
            scores = _take(table, new_scores)
            n_tokens = scores["n_tokens"].cast(pa.int64())
            nll_sum = pc.multiply(pc.ln(scores["ppl"]), n_tokens.cast(pa.float64()))
            self.scores.write(
                pa.table(
                    {
                        "sample_id": scores["sample_id"],
                        "n_tokens": n_tokens,
                        "nll_sum": nll_sum,
                        "ppl": scores["ppl"],
                        "truncated": pa.nulls(scores.num_rows, pa.bool_()),
                    }
                )
            )
        self.added.update(
            problems=len(new_problems), samples=len(new_samples), answers=len(new_answers), scores=len(new_scores)
        )

    def _write_given_verdicts(self, samples: pa.Table, file: SourceFile) -> None:
        """The verdict the source vouches for, recorded as verifier 'given' with where it came from."""
        from curate.text.extract import extract_answers

        n = samples.num_rows
        answers, _ = extract_answers(samples["response"].to_pylist())
        provenance = f"given by {file.dataset_name} at ingest ({file.path.name}, run {self.run.run_id})"
        self.verdicts.write(
            pa.table(
                {
                    "sample_id": samples["sample_id"],
                    "problem_id": samples["problem_id"],
                    "gold_key": pa.nulls(n, pa.string()),
                    "pred_answer": pa.array(answers, pa.string()),
                    "verdict": pa.array([self.config.verdict] * n),
                    "reason": pa.array([provenance] * n),
                    "simple_verdict": pa.nulls(n, pa.string()),
                    "verifier": pa.array([GIVEN] * n),
                    "settings_hash": pa.array([GIVEN] * n),
                }
            )
        )
        self.added["verdicts"] += n

    def _new_problems(self, problem_ids: np.ndarray) -> list[int]:
        """Rows holding the first sighting of a problem not yet in the pool."""
        new = first_rows(problem_ids) & ~self.pool_problems.contains(problem_ids)
        new &= ~self.run_problems.contains(problem_ids)
        self.run_problems.add_new(problem_ids[new])
        return np.flatnonzero(new).tolist()

    def _new_answers(self, problem_ids: list[str], valid: pa.Table) -> list[int]:
        if valid["gold_answer"].null_count == valid.num_rows:
            return []
        rows = []
        golds = valid["gold_answer"].to_pylist()
        placeholder = is_placeholder(golds)  # 'TBD', 'see solution', '-': no gold (the record stays)
        self.placeholder_golds += sum(placeholder)
        for i, key in enumerate(zip(problem_ids, valid["source"].to_pylist(), golds)):
            if placeholder[i]:
                continue
            if key[2] is not None and key not in self.pool_answers and key not in self.run_answers:
                self.run_answers.add(key)
                rows.append(i)
        return rows

    def _new_samples(self, sample_ids: np.ndarray) -> list[int]:
        """Rows with a sample not yet in the pool; the others are counted as duplicates:
        in_pool, or in_run (earlier in this run, this batch's earlier rows included)."""
        in_pool = self.pool_samples.contains(sample_ids)
        in_run = ~in_pool & (self.run_samples.contains(sample_ids) | ~first_rows(sample_ids))
        new = ~(in_pool | in_run)
        self.run_samples.add_new(sample_ids[new])
        self._duplicate(int(in_pool.sum()), int(in_run.sum()))
        self.funnel["accepted"] += int(new.sum())
        return np.flatnonzero(new).tolist()

    def _new_scores(self, sample_ids: np.ndarray, valid: pa.Table) -> list[int]:
        """Rows with a PPL for a sample that has no score under the tag yet (the first such row per sample)."""
        candidates = np.flatnonzero(pc.is_valid(valid["ppl"]).to_numpy(zero_copy_only=False))
        candidates = candidates[~self.pool_scores.contains(sample_ids[candidates])]
        rows = candidates[first_rows(sample_ids[candidates])]
        self.pool_scores.add_new(sample_ids[rows])
        return rows.tolist()

    def _count_problem_records(self, problem_ids: np.ndarray, added_rows: set[int]) -> None:
        """For sources without responses: a record is accepted when it added a problem or
        an answer, else it is a duplicate."""
        added = np.zeros(len(problem_ids), bool)
        added[list(added_rows)] = True
        in_pool = ~added & self.pool_problems.contains(problem_ids)
        self.funnel["accepted"] += int(added.sum())
        self._duplicate(int(in_pool.sum()), int((~added & ~in_pool).sum()))

    def _duplicate(self, in_pool: int, in_run: int) -> None:
        self.funnel["duplicate"] += in_pool + in_run
        self.duplicates.update(in_pool=in_pool, in_run=in_run)

    # -- the end ----------------------------------------------------------------------

    def close(self, content_fingerprint: str) -> None:
        """Finish the parts and make them visible: problems and answers first, then
        scores, samples last, so that no sample is ever seen without its problem."""
        self.hasher.shutdown()
        for writer in self._writers():
            writer.close()
        for writer in (self.problems, self.answers, self.scores, self.samples):
            if writer is not None:
                writer.publish(f"ingest-{content_fingerprint}")
                self.run.published = "parts of its pool"  # a failure from here on left them whole and readable
        if self.verdicts is not None:  # after their samples
            self.verdicts.publish(f"given-{content_fingerprint}")
        if self.scores is not None:
            atomic_write_json(
                self.scores.folder / "manifest.json",
                {
                    "tag": self.config.scores_tag,
                    "origin": "ingested",
                    "note": "PPL and token lengths as given by the source; oxa did not score these",
                    "sources": [f["path"] for f in self.files],
                    "ingest_fingerprint": content_fingerprint,
                },
            )

    def abort(self) -> None:
        self.hasher.shutdown(cancel_futures=True)
        for writer in self._writers():
            writer.abort()

    def _writers(self) -> list[PartWriter | SpreadPartWriter]:
        writers = (self.samples, self.problems, self.answers, self.scores, self.score_rejects, self.verdicts)
        return [w for w in writers if w is not None]

    def stats(self) -> dict:
        f = self.funnel
        assert f["read"] == f["accepted"] + f["duplicate"] + f["rejected"] + f["filtered"], f
        empty = [file["path"] for file in self.files if file["records"] == 0 and not file.get("damaged")]
        summary = (
            f"read {f['read']}: accepted {f['accepted']}, duplicate {f['duplicate']}, "
            f"rejected {f['rejected']}, filtered {f['filtered']}"
        )
        summary += "".join(
            f"; {n} {what}" for n, what in ((len(self.skipped_files), "files skipped"), (len(empty), "empty")) if n
        )
        if self.damaged:
            summary += f"; {len(self.damaged)} damaged file(s), their rows before the damage kept"
        if self.scores_dropped:
            summary += f"; scores dropped {sum(self.scores_dropped.values())} (their samples kept)"
        return {
            "summary": summary,
            "damaged_files": self.damaged,
            "funnel": dict(f),
            # records kept without their score (runs/ingest/<run>/score_rejects/)
            "scores_dropped": dict(sorted(self.scores_dropped.items())),
            "scores_tag": self.config.scores_tag,
            "placeholder_golds": self.placeholder_golds,
            "duplicates": dict(self.duplicates),
            "rejects": dict(sorted(self.reasons.items())),
            "added": dict(self.added),
            "instructions_stripped": self.instructions_stripped,
            "files": self.files,
            "empty_files": empty,
            "skipped_files": self.skipped_files,
        }


def _with_preview(rows: pa.Table) -> pa.Table:
    return rows.append_column(
        "_preview", pc.utf8_slice_codeunits(pc.coalesce(rows["problem"], rows["response"]), 0, 200)
    )


class _SourceProgress:
    """Ingest's progress in bytes of the sources: the files done, plus the share of the
    file being read (a parquet file's by its rows, from its footer; other formats count
    when they are done), with the file's number and its records read so far."""

    def __init__(self, files: list[SourceFile], progress: ProgressFn | None) -> None:
        self.files, self.progress = files, progress
        self.sizes = [file.path.stat().st_size for file in files]
        self.total = sum(self.sizes)
        self.done_files = self.done_bytes = 0
        self._rows: int | None = None

    def read(self, file: SourceFile, records: int) -> None:
        if self.progress is None:
            return
        if self._rows is None:
            self._rows = pq.ParquetFile(file.path).metadata.num_rows if file.format == "parquet" else 0
        share = int(self.sizes[self.done_files] * min(1.0, records / self._rows)) if self._rows else 0
        what = f"file {self.done_files + 1}/{len(self.files)} {file.path.name}: {records:,} records"
        self.progress(what, self.done_bytes + share, self.total)

    def finished(self, file: SourceFile, records: int) -> None:
        self.done_bytes += self.sizes[self.done_files]
        self.done_files += 1
        self._rows = None
        if self.progress is not None:
            what = f"{self.done_files}/{len(self.files)} files ({file.path.name}: {records:,} records)"
            self.progress(what, self.done_bytes, self.total)


def _in_morsels(table: pa.Table, rows: int = 4096) -> pa.Table:
    """The same table in small record batches: DuckDB scans an Arrow table's batches in
    parallel, so one big batch would use one core."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), table.schema)


def _take(table: pa.Table, rows: list[int]) -> pa.Table:
    return table if len(rows) == table.num_rows else table.take(rows)


def run_ingest(ws: Workspace, config: IngestConfig, progress: ProgressFn | None = None) -> dict:
    """Ingest `config.sources` into `ws`; returns the run's stats (also in stats.json)."""
    config.check()
    if config.scores_tag:
        ws.check_score_tag(config.scores_tag)
    given_tag = config.scores_tag
    skipped: list[dict] = []
    files = discover(config.sources, skipped)
    damaged_at_start = _damaged_at_start(files)
    readable = [f for f in files if f not in damaged_at_start]
    chosen = dict(zip(readable, resolve_presets(config, readable)))
    presets = [chosen.get(f) for f in files]
    if config.scores_tag != given_tag:  # taken from a PPL column's name
        ws.check_score_tag(config.scores_tag)
    with ws.lock("pool", "oxa ingest"):
        run = StageRun(ws, "ingest", _fingerprint_config(config, files, presets))
        hashes = _hash_in_background(files)
        state = None
        try:
            state = _Ingest(ws, run, config)
            state.validate_filters(list(chosen.values()))
            state.skipped_files = skipped
            tracker = _SourceProgress(files, progress)
            for file, preset in zip(files, presets):
                records, damaged = 0, damaged_at_start.get(file)
                if preset is not None:
                    for batch in read_batches(file, preset.source_columns(), keep_damaged=True):
                        if isinstance(batch, Damaged):
                            damaged = batch
                            break
                        records += state.process(batch, preset)
                        tracker.read(file, records)
                if damaged is not None:
                    state.record_damage(damaged)
                state.files.append(
                    {
                        "path": str(file.path),
                        "format": file.format,
                        "preset": preset.name if preset else None,
                        "records": records,
                        "damaged": damaged is not None,
                        **config.file_metadata(preset),
                    }
                )
                tracker.finished(file, records)
            state.close(_content_fingerprint(config, files, presets, [h.result() for h in hashes]))
            return run.finish(state.stats())
        except BaseException as exc:
            for pending in hashes:
                pending.cancel()
            if state is not None:
                state.abort()
            run.fail(exc)
            raise
