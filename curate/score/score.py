"""`oxa score`: the perplexity of each sample's response under one model (the paper's Eq. 2).

PPL = exp(nll_sum / n_tokens) over the scored response tokens. `context='none'` scores
the response text alone (the paper's released code), so its first token is not scored;
`context='prompt'` conditions on the chat-templated problem + instruction and scores
every response token. A response longer than `max_tokens` (the whole sequence fed to the
model) is cut and flagged truncated, or dropped with `drop_long`; empty responses are
rejected. Every selected row is scored, already scored, or rejected with its reason.

Output: WS/scores/<tag>/score-<fingerprint>-shard<i>of<n>-<digest>.parquet and
manifest.json. The fingerprint covers the model's weights, tokenizer, dtype, backend,
context mode, template, instruction and max_tokens; a tag scored under another
fingerprint is refused unless `overwrite`, which deletes the other parts. Resume: the
selected rows are cut into fixed blocks in a stable order, parts hold whole blocks, and a
rerun skips rows already scored under the fingerprint, so it scores the same blocks an
uninterrupted run would and writes the same numbers.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

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
from curate.workspace.parts import PartWriter, fingerprint, part_glob
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun
from curate.workspace.sandbox import check_expression, lock_down
from curate.workspace.schema import SCORES

ProgressFn = Callable[[str, int, int], None]  # (what, done, total)
CONTEXTS = ("none", "prompt")


@dataclass
class ScoreConfig:
    """How to score. Every field is also an `oxa score` option."""

    model: str  # Hugging Face model folder
    tag: str  # scores/<tag>/, and the candidates view's ppl_<tag> column
    context: str = "none"  # 'none': the response alone; 'prompt': after the chat-templated problem
    instruction: str | None = None  # prompt mode: appended to the problem (default: the paper's)
    max_tokens: int | None = None  # tokens fed to the model per sample (default: its max_position_embeddings)
    drop_long: bool = False  # reject responses over max_tokens instead of scoring their start
    backend: str = "hf"  # 'hf' (transformers) or 'vllm'
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    where: str | None = None  # SQL predicate over the candidates view
    overwrite: bool = False  # replace the tag's scores made under another config
    token_budget: int = 16384  # tokens per forward pass (the hf backend halves it on out-of-memory)
    packed: bool = True  # hf: pack sequences in one row; False: padded batches
    batch_rows: int = 512  # samples per block: tokenized and scored together
    rows_per_part: int = 8192  # samples per parquet part (rounded to whole blocks)

    def check(self) -> None:
        from curate.backends import BACKENDS

        check_tag(self.tag)
        if self.where is not None:
            check_expression(self.where, "--where")
        if self.backend not in BACKENDS:
            raise OxaError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.context not in CONTEXTS:
            raise OxaError(f"--context must be one of {', '.join(CONTEXTS)}, got {self.context!r}")
        if self.max_tokens is not None and self.max_tokens < 2:
            raise OxaError(f"--max-tokens must be at least 2, got {self.max_tokens}")
        for name in ("token_budget", "batch_rows", "rows_per_part"):
            if getattr(self, name) < 1:
                raise OxaError(f"{name} must be >= 1, got {getattr(self, name)}")


class _Score:
    """One worker's scoring run: the rows to score, the backend, the writers, counters."""

    def __init__(self, ws: Workspace, config: ScoreConfig, shard: Shard, manifest: dict, run: StageRun) -> None:
        self.ws, self.config, self.shard, self.run = ws, config, shard, run
        self.fp = manifest["fingerprint"]
        self.folder = ws.scores_folder(config.tag)
        self.max_tokens = manifest["max_tokens"]
        self.instruction = manifest["instruction"]
        self.counts = Counter(scored=0, truncated=0, tokens=0)
        self.reasons: Counter[str] = Counter()
        self.reader = ResponseReader()

    def select(self, progress: ProgressFn) -> pa.Table:
        parts = sorted(self.folder.glob(f"score-{self.fp}-*.parquet"))
        done = pa.concat_tables(
            [pq.read_table(p, columns=["sample_id"]) for p in parts]
            or [pa.table({"sample_id": pa.array([], pa.string())})]
        )
        query = (
            sql_text("score/todo.sql")
            .replace("{shard}", self.shard.sql("s.sample_id"))
            .replace("{where}", self.config.where or "true")
        )
        progress("selecting samples", 0, 0)
        con = retry_busy(self.ws.connect)
        try:
            lock_down(con, self.ws.root)  # --where runs here
            con.register("done", done)
            try:
                glob = part_glob(self.ws.table_folder("samples"))
                rows = con.sql(query, params={"glob": glob}).to_arrow_table()
            except Exception as exc:  # a bad --where is the usual cause
                raise OxaError(f"selecting samples failed: {exc}; check --where {self.config.where!r}") from exc
            self.problems: dict[str, str] = {}
            if self.config.context == "prompt":
                ids = pa.table({"problem_id": pa.array(sorted(set(rows["problem_id"].to_pylist())), pa.string())})
                con.register("wanted", ids)
                self.problems = dict(
                    con.execute(
                        "SELECT problem_id, problem FROM problems WHERE problem_id IN (SELECT * FROM wanted)"
                    ).fetchall()
                )
        finally:
            con.close()
        return rows

    def score_all(self, rows: pa.Table, backend, tokenizer, progress: ProgressFn) -> None:
        size = self.config.batch_rows
        blocks_per_part = max(1, self.config.rows_per_part // size)
        self.selected, self.already = rows.num_rows, sum(rows["done"].to_pylist())
        todo_total = self.selected - self.already
        writer = None
        handled = 0
        try:
            for number, start in enumerate(range(0, rows.num_rows, size)):
                block = rows.slice(start, size)
                block = block.filter(pc.invert(block["done"]))
                if block.num_rows == 0:
                    continue
                if writer is None:
                    writer = PartWriter(self.folder, f"score-{self.fp}-{self.shard.label}", SCORES, "sample_id")
                writer.write(self._score_block(block, backend, tokenizer))
                if (number + 1) % blocks_per_part == 0:
                    writer.close()
                    writer = None
                handled += block.num_rows
                progress("scoring", handled, todo_total)
            if writer is not None:
                writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    def _score_block(self, block: pa.Table, backend, tokenizer) -> pa.Table:
        from curate.backends.base import ScoreItem

        responses = self.reader.read(block)
        targets = tokenizer([r or "" for r in responses], add_special_tokens=False)["input_ids"]
        prompts: dict[str, list[int]] = {}  # a problem's prompt, tokenized once per block
        items, truncated = [], {}
        for i, (sample_id, problem_id, response, target) in enumerate(
            zip(block["sample_id"].to_pylist(), block["problem_id"].to_pylist(), responses, targets)
        ):
            context = []
            if self.problems:
                if problem_id not in prompts:
                    prompts[problem_id] = prompt_ids(tokenizer, self.problems[problem_id], self.instruction)
                context = prompts[problem_id]
            room = self.max_tokens - len(context)
            reason = None
            if not target:
                reason, detail = "empty_response", "the response has no tokens"
            elif room < 1:
                reason, detail = (
                    "prompt_too_long",
                    f"the prompt has {len(context)} tokens; max_tokens is {self.max_tokens}",
                )
            elif len(target) > room and self.config.drop_long:
                reason, detail = "too_long", f"{len(context) + len(target)} tokens; max_tokens is {self.max_tokens}"
            elif len(context) + min(len(target), room) < 2:
                reason, detail = "too_short", "one token and no context: nothing to score"
            if reason:
                self._reject(block, i, reason, detail, response)
                continue
            truncated[sample_id] = len(target) > room
            items.append(ScoreItem(sample_id, tuple(context), tuple(target[:room])))
        scores = backend.score(items) if items else []
        self.counts.update(
            scored=len(scores), truncated=sum(truncated.values()), tokens=sum(s.n_tokens for s in scores)
        )
        return pa.table(
            {
                "sample_id": [s.key for s in scores],
                "n_tokens": [s.n_tokens for s in scores],
                "nll_sum": [s.nll_sum for s in scores],
                "ppl": [math.exp(s.nll_sum / s.n_tokens) for s in scores],
                "truncated": [truncated[s.key] for s in scores],
            },
            schema=SCORES,
        )

    def _reject(self, block: pa.Table, i: int, reason: str, detail: str, response: str | None) -> None:
        self.reasons[reason] += 1
        self.run.rejects.write(
            pa.table(
                {
                    "source_file": [block["file"][i].as_py()],
                    "source_row": [block["row"][i].as_py()],
                    "source_index": pa.nulls(1, pa.int32()),
                    "reason": [reason],
                    "detail": [f"sample {block['sample_id'][i].as_py()}: {detail}"],
                    "preview": [(response or "")[:200]],
                }
            )
        )

    def stats(self, seconds: float) -> dict:
        rejected = sum(self.reasons.values())
        assert self.selected == self.already + self.counts["scored"] + rejected
        return {
            "summary": f"{self.selected:,} samples: {self.already:,} already scored; {self.counts['scored']:,} scored "
            f"({self.counts['truncated']:,} truncated); {rejected:,} rejected",
            "tag": self.config.tag,
            "fingerprint": self.fp,
            "shard": str(self.shard),
            "funnel": {
                "selected": self.selected,
                "already_scored": self.already,
                "scored": self.counts["scored"],
                "rejected": rejected,
            },
            "truncated": self.counts["truncated"],
            "rejects": dict(self.reasons.most_common()),
            "tokens_scored": self.counts["tokens"],
            "tokens_per_second": round(self.counts["tokens"] / seconds, 1) if seconds > 0 else None,
        }


class ResponseReader:
    """Responses by (file, row), reading only the row groups that hold them; the last
    group read is kept, since consecutive blocks mostly fall in the same one."""

    def __init__(self) -> None:
        self._cached: tuple[str, int, pa.ChunkedArray] | None = None

    def read(self, block: pa.Table) -> list[str | None]:
        return [self._one(f, r) for f, r in zip(block["file"].to_pylist(), block["row"].to_pylist())]

    def _one(self, file: str, row: int) -> str | None:
        cached = self._cached
        if cached is None or cached[0] != file or not cached[1] <= row < cached[1] + len(cached[2]):
            parquet = pq.ParquetFile(file)
            first = 0
            for group in range(parquet.num_row_groups):
                size = parquet.metadata.row_group(group).num_rows
                if row < first + size:
                    break
                first += size
            cached = self._cached = (file, first, parquet.read_row_group(group, columns=["response"])["response"])
        return cached[2][row - cached[1]].as_py()


def score_manifest(config: ScoreConfig, tokenizer, folder: Path) -> dict:
    """The manifest of scores/<tag>/: what made the scores; its fingerprint names the parts."""
    prompt = config.context == "prompt"
    max_tokens = config.max_tokens
    if max_tokens is None:
        max_tokens = json.loads((folder / "config.json").read_text()).get("max_position_embeddings") or 4096
    facts = {
        "model_fingerprint": model_fingerprint(folder),
        "tokenizer_fingerprint": tokenizer_fingerprint(folder),
        "dtype": resolve_dtype(config.dtype),
        "backend": config.backend,
        "context": config.context,
        "chat_template": chat_template(tokenizer, folder, "--context prompt") if prompt else None,
        "instruction": (KNOWN_SUFFIXES[0] if config.instruction is None else config.instruction) if prompt else None,
        "max_tokens": max_tokens,
        "drop_long": config.drop_long,
    }
    return {
        "format": "oxa-scores/1",
        "tag": config.tag,
        "model_path": str(folder),
        **facts,
        "fingerprint": fingerprint(facts),
    }


def run_score(
    ws: Workspace, config: ScoreConfig, shard: Shard | None = None, progress: ProgressFn | None = None
) -> dict:
    """Score the selected samples of this shard that the tag lacks; returns the run's stats."""
    from curate.backends import load_backend

    config.check()
    ws.check_score_tag(config.tag)
    shard = shard or Shard(0, 1)
    progress = progress or (lambda what, done, total: None)
    folder = model_folder(config.model)
    tokenizer = load_tokenizer(folder)
    manifest = score_manifest(config, tokenizer, folder)
    with ws.lock(f"score-{config.tag}-{shard.label}", f"oxa score --tag {config.tag} --shard {shard}"):
        prefix = f"score-{manifest['fingerprint']}-"
        claim_folder(ws.scores_folder(config.tag), manifest, prefix, config.overwrite, "scores", check_only=True)
        run = StageRun(ws, "score", {**asdict(config), "shard": str(shard), "manifest": manifest})
        try:
            state = _Score(ws, config, shard, manifest, run)
            rows = state.select(progress)
            started = time.monotonic()
            backend = None
            if rows.num_rows > sum(rows["done"].to_pylist()):
                progress("loading the model", 0, 0)
                options = {"dtype": manifest["dtype"], "token_budget": config.token_budget}
                if config.backend == "hf":
                    options["packed"] = config.packed
                try:
                    backend = load_backend(config.backend, str(folder), **options)
                except ValueError as exc:
                    raise OxaError(str(exc)) from exc
            claim_folder(ws.scores_folder(config.tag), manifest, prefix, config.overwrite, "scores")
            ws.ensure_scores_folder(config.tag)
            try:
                state.score_all(rows, backend, tokenizer, progress)
            finally:
                if backend is not None:
                    backend.close()
            return retry_busy(lambda: run.finish(state.stats(time.monotonic() - started)))
        except BaseException as exc:
            run.fail(exc)
            raise
