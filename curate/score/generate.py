"""`oxa generate`: the model's own answers to the pool's problems (self-distillation samples).

Each selected problem, chat-templated with the instruction, gets `n` sampled completions,
drawn from a seed derived from (seed, problem_id), so shards, resumes and reruns draw the
same ones. New responses are appended to pool/samples as origin 'self' with generator =
tag, the sampling settings, the seed and the finish reason, their sample_id made by the
same macro as ingest's (sql/macros.sql); a response the problem already has is counted as
a duplicate, an empty one is rejected. Trace, verify and score then treat them like any
other sample.

Resume: after a block's samples part is in place, a marker part in pool/self/<tag>/ names
its problems under the config fingerprint; a rerun skips marked problems, and a problem
whose samples landed but whose marker did not is drawn again and finds only duplicates.
A tag generated under another config is refused: use a new tag. The tag is claimed for a
config (pool/self/<tag>/manifest.json) when its first samples are written, so a run that
failed before (no vLLM, a model that would not load, a prompt too long) claims nothing and
the rerun its error suggests, under other settings, is not refused.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.score.modelinfo import (
    chat_template,
    load_tokenizer,
    model_fingerprint,
    model_folder,
    prompt_ids,
    resolve_dtype,
    tokenizer_fingerprint,
)
from curate.score.shards import Shard, claim_folder, retry_busy
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError, Workspace, check_tag
from curate.workspace.parts import SCHEMA_PART, PartWriter, fingerprint, part_files
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun
from curate.workspace.sandbox import check_expression, lock_down
from curate.workspace.schema import GENERATED_PROBLEMS, SELF_SAMPLES

ProgressFn = Callable[[str, int, int], None]


@dataclass
class GenerateConfig:
    """How to generate. Every field is also an `oxa generate` option."""

    model: str  # Hugging Face model folder (a chat model: its tokenizer needs a chat template)
    tag: str  # the samples' generator, and pool/self/<tag>/
    n: int = 8  # completions per problem
    temperature: float = 0.85  # 0 = greedy
    top_p: float = 0.95
    max_new_tokens: int = 4096
    seed: int = 0  # each problem's seed is derived from this and its problem_id
    instruction: str | None = None  # appended to the problem (default: the paper's)
    where: str | None = None  # SQL predicate over the problems view
    backend: str = "hf"
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    batch_prompts: int = 64  # problems per block; each block is one samples part

    def check(self) -> None:
        from curate.backends import BACKENDS

        check_tag(self.tag)
        if self.where is not None:
            check_expression(self.where, "--where")
        if self.backend not in BACKENDS:
            raise OxaError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.n < 1 or self.max_new_tokens < 1 or self.batch_prompts < 1:
            raise OxaError(
                f"--n, --max-new-tokens and batch_prompts must be >= 1, got {self.n}, {self.max_new_tokens}, "
                f"{self.batch_prompts}"
            )
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise OxaError(f"need --temperature >= 0 and 0 < --top-p <= 1, got {self.temperature} and {self.top_p}")


def prompt_seed(seed: int, problem_id: str) -> int:
    """The seed of one problem's completions (31 bits), the same on every shard and rerun."""
    return int(hashlib.md5(f"{seed}\n{problem_id}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def generate_manifest(config: GenerateConfig, tokenizer, folder) -> dict:
    facts = {
        "model_fingerprint": model_fingerprint(folder),
        "tokenizer_fingerprint": tokenizer_fingerprint(folder),
        "dtype": resolve_dtype(config.dtype),
        "backend": config.backend,
        "chat_template": chat_template(tokenizer, folder, "oxa generate"),
        "instruction": KNOWN_SUFFIXES[0] if config.instruction is None else config.instruction,
        "sampling": {k: getattr(config, k) for k in ("n", "temperature", "top_p", "max_new_tokens", "seed")},
    }
    return {
        "format": "oxa-generate/1",
        "tag": config.tag,
        "model_path": str(folder),
        **facts,
        "fingerprint": fingerprint(facts),
    }


class _Generate:
    def __init__(self, ws: Workspace, config: GenerateConfig, shard: Shard, manifest: dict, run: StageRun) -> None:
        self.ws, self.config, self.shard, self.manifest, self.run = ws, config, shard, manifest, run
        self.fp = manifest["fingerprint"]
        self.folder = ws.root / "pool" / "self" / config.tag
        self.counts = Counter(completions=0, written=0, duplicates=0, empty=0)
        self.finish: Counter[str] = Counter()
        self.ids = duckdb.connect()
        self.ids.execute(sql_text("macros.sql"))
        self.claimed = False

    def select(self) -> pa.Table:
        parts = sorted(self.folder.glob(f"done-{self.fp}-*.parquet"))
        done = pa.concat_tables(
            [pq.read_table(p, columns=["problem_id"]) for p in parts]
            or [pa.table({"problem_id": pa.array([], pa.string())})]
        )
        query = (
            sql_text("generate/todo.sql")
            .replace("{shard}", self.shard.sql("p.problem_id"))
            .replace("{where}", self.config.where or "true")
        )
        con = retry_busy(self.ws.connect)
        try:
            lock_down(con, self.ws.root)  # --where runs here
            con.register("done", done)
            try:
                rows = con.sql(query).to_arrow_table()
            except duckdb.Error as exc:
                raise OxaError(f"selecting problems failed: {exc}; check --where {self.config.where!r}") from exc
            con.register("wanted", rows.select(["problem_id"]))
            self.existing = {
                r[0]
                for r in con.execute(
                    "SELECT sample_id FROM samples WHERE problem_id IN (SELECT problem_id FROM wanted)"
                ).fetchall()
            }
        finally:
            con.close()
        self.selected, self.already = rows.num_rows, sum(rows["done"].to_pylist())
        return rows.filter(pc.invert(rows["done"]))

    def generate_all(self, todo: pa.Table, backend, tokenizer, progress: ProgressFn) -> None:
        from curate.backends.base import GenerateItem, SamplingSettings

        c = self.config
        settings = SamplingSettings(c.n, c.temperature, c.top_p, c.max_new_tokens, c.seed)
        limit = getattr(backend, "max_model_len", None)  # positions the model was built for
        for start in range(0, todo.num_rows, c.batch_prompts):
            block = todo.slice(start, c.batch_prompts).to_pylist()
            items = [
                GenerateItem(
                    row["problem_id"],
                    tuple(prompt_ids(tokenizer, row["problem"], self.manifest["instruction"])),
                    prompt_seed(c.seed, row["problem_id"]),
                )
                for row in block
            ]
            longest = max(items, key=lambda item: len(item.prompt_ids))
            if limit and len(longest.prompt_ids) + c.max_new_tokens > limit:
                raise OxaError(
                    f"problem {longest.key}: its prompt of {len(longest.prompt_ids):,} tokens plus --max-new-tokens "
                    f"{c.max_new_tokens:,} exceeds the model's {limit:,} positions; lower --max-new-tokens, leave "
                    "long problems out with --where, or extend the model (`oxa model prepare --max-position-embeddings`)"
                )
            self._write(block, items, backend.generate(items, settings))
            progress("generating", start + len(block), todo.num_rows)

    def _write(self, block: list[dict], items: list, completions: list[list]) -> None:
        sampling = json.dumps(self.manifest["sampling"] | {"instruction": self.manifest["instruction"]}, sort_keys=True)
        rows, marks = [], []
        for row, item, drawn in zip(block, items, completions):
            texts = pa.table({"problem_id": [row["problem_id"]] * len(drawn), "response": [d.text for d in drawn]})
            self.ids.register("drawn", texts)
            ids = [r[0] for r in self.ids.execute("SELECT oxa_sample_id(problem_id, response) FROM drawn").fetchall()]
            self.ids.unregister("drawn")
            mark = Counter(completions=len(drawn), written=0, duplicates=0, empty=0)
            for index, (sample_id, completion) in enumerate(zip(ids, drawn)):
                self.finish[completion.finish_reason] += 1
                if not completion.text:
                    mark["empty"] += 1
                    self._reject(row["problem_id"], index, completion.finish_reason)
                elif sample_id in self.existing:
                    mark["duplicates"] += 1
                else:
                    self.existing.add(sample_id)
                    mark["written"] += 1
                    rows.append(
                        {
                            "sample_id": sample_id,
                            "problem_id": row["problem_id"],
                            "response": completion.text,
                            "origin": "self",
                            "generator": self.config.tag,
                            "n_chars": len(completion.text),
                            "source": row["source"],
                            "source_index": index,
                            "sampling": sampling,
                            "seed": item.seed,
                            "finish_reason": completion.finish_reason,
                        }
                    )
            self.counts.update(mark)
            marks.append({"problem_id": row["problem_id"], "fingerprint": self.fp, **mark})
        if not self.claimed:  # the tag is this config's from its first samples on
            claim_folder(self.folder, self.manifest, f"done-{self.fp}-", None, "generated samples")
            self.claimed = True
        prefix = f"generate-{self.config.tag}-{self.fp}-{self.shard.label}"
        samples = PartWriter(self.ws.table_folder("samples"), prefix, SELF_SAMPLES, "sample_id")
        samples.write(pa.Table.from_pylist(rows, SELF_SAMPLES))
        samples.close()  # the samples are in place before the marker that says so
        done = PartWriter(self.folder, f"done-{self.fp}-{self.shard.label}", GENERATED_PROBLEMS, "problem_id")
        done.write(pa.Table.from_pylist(marks, GENERATED_PROBLEMS))
        done.close()

    def _reject(self, problem_id: str, index: int, finish_reason: str) -> None:
        self.run.rejects.write(
            pa.table(
                {
                    "source_file": pa.nulls(1, pa.string()),
                    "source_row": pa.nulls(1, pa.int64()),
                    "source_index": pa.array([index], pa.int32()),
                    "reason": ["empty_response"],
                    "detail": [f"problem {problem_id}, completion {index} (finish_reason {finish_reason})"],
                    "preview": [""],
                }
            )
        )

    def stats(self) -> dict:
        c = self.counts
        assert c["completions"] == c["written"] + c["duplicates"] + c["empty"]
        generated = self.selected - self.already
        return {
            "summary": f"{self.selected:,} problems: {self.already:,} already done; {generated:,} generated -> "
            f"{c['written']:,} new samples, {c['duplicates']:,} duplicates, {c['empty']:,} empty",
            "tag": self.config.tag,
            "fingerprint": self.fp,
            "shard": str(self.shard),
            "funnel": {"problems": self.selected, "already_done": self.already, "generated": generated},
            "completions": dict(c),
            "finish_reasons": dict(self.finish.most_common()),
            "rejects": {"empty_response": c["empty"]} if c["empty"] else {},
        }


def _drop_unused_claim(ws: Workspace, folder: Path, tag: str, fp: str) -> None:
    """Remove a manifest of another config that wrote nothing, neither a marker nor a sample: it
    claims nothing (oxa wrote it before the model loaded, until a failed run's leftover
    refused the rerun its own error suggested)."""
    path = folder / "manifest.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8"))["fingerprint"]
    if old == fp or any(p.name != SCHEMA_PART for p in part_files(folder)):
        return
    if not any(ws.table_folder("samples").glob(f"generate-{tag}-{old}-*.parquet")):
        path.unlink()


def run_generate(
    ws: Workspace, config: GenerateConfig, shard: Shard | None = None, progress: ProgressFn | None = None
) -> dict:
    """Generate completions for this shard's selected problems not yet done; returns the stats."""
    from curate.backends import load_backend

    config.check()
    shard = shard or Shard(0, 1)
    progress = progress or (lambda what, done, total: None)
    folder = model_folder(config.model)
    tokenizer = load_tokenizer(folder)
    manifest = generate_manifest(config, tokenizer, folder)
    with ws.lock(f"generate-{config.tag}-{shard.label}", f"oxa generate --tag {config.tag} --shard {shard}"):
        state_folder = ws.root / "pool" / "self" / config.tag
        _drop_unused_claim(ws, state_folder, config.tag, manifest["fingerprint"])
        # refused now if another config holds the tag; claimed with the first samples (_write)
        claim_folder(state_folder, manifest, f"done-{manifest['fingerprint']}-", None, "generated samples", True)
        run = StageRun(ws, "generate", {**asdict(config), "shard": str(shard), "manifest": manifest})
        state = _Generate(ws, config, shard, manifest, run)
        try:
            progress("selecting problems", 0, 0)
            todo = state.select()
            if todo.num_rows:
                progress("loading the model", 0, 0)
                try:
                    backend = load_backend(config.backend, str(folder), dtype=manifest["dtype"])
                except ValueError as exc:
                    raise OxaError(str(exc)) from exc
                try:
                    state.generate_all(todo, backend, tokenizer, progress)
                finally:
                    backend.close()
            return retry_busy(lambda: run.finish(state.stats()))
        except BaseException as exc:
            run.fail(exc)
            raise
        finally:
            state.ids.close()
