"""`oxa eval`: sample k completions per benchmark problem once, judge and score them, and
store them, so that every metric can be recomputed later without a model.

Per benchmark: prompts (the chat template over problem + instruction) -> k completions
from the generation backend (vllm or hf) -> OUT/.generated/<set>.parquet (the token ids)
-> the policy's entropy at every generated token (the hf backend's score with context =
prompt) and a verdict per completion (the extraction and math-verify judging of `oxa
verify`, each answer under a wall-clock deadline; for a multiple-choice set, the letter
judge of curate/benchmarks/choice.py) -> OUT/samples/<set>.parquet. Then
train/eval/report.py turns the samples into the table and the plot.

Contamination: when the model folder holds an `oxa train sft` record (or comes from one
through `oxa train grpo`), the sets are compared with what its training subset was
checked against (train/eval/contamination.py); each warning is a line on stderr at the
start, and OUT/config.json keeps them for table.md.

Resume: a set whose samples (or generations) carry the run's fingerprint (model files,
the set's content, every setting) is not generated again; OUT holds one configuration,
and another one fails with the difference unless --overwrite.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.benchmarks.choice import CHOICE_INSTRUCTION, judge_letters
from curate.benchmarks.sets import BUILTIN, PromptSet, load_prompt_set, resolve_sets
from curate.text.instructions import KNOWN_SUFFIXES
from curate.verify import VerifierSettings
from curate.workspace import OxaError
from curate.workspace.errors import refuse_in_a_rerun_main
from curate.workspace.parts import atomic_target, atomic_write_json, fingerprint, refuse_to_fill
from curate.workspace.progress import warn
from train.eval.contamination import check_model
from train.eval.judge import AnswerJudge
from train.eval.sampling import ProgressFn, entropy_means, generate_set, load_chat_tokenizer

SAMPLES = pa.schema(
    [
        ("problem_id", pa.string()),
        ("source_row", pa.int64()),
        ("problem", pa.string()),
        ("gold_answer", pa.list_(pa.string())),  # accepted forms, the gold first
        ("sample_index", pa.int32()),
        ("completion", pa.string()),
        ("n_tokens", pa.int32()),  # generated tokens, the end-of-sequence token included
        ("finish_reason", pa.string()),  # 'stop' | 'length'
        ("pred_answer", pa.string()),
        ("verdict", pa.string()),  # as in `oxa verify`: correct | incorrect | no_answer | bad_gold | timeout | error
        ("reason", pa.string()),
        ("entropy_mean", pa.float64()),  # mean over the completion's tokens of the policy's entropy (nats)
        ("subject", pa.string()),  # multiple choice: the question's subject (MMLU) or domain (GPQA)
        ("choices", pa.list_(pa.string())),  # multiple choice: the options as shown, lettered A, B, ...; else null
        ("shuffle_seed", pa.int64()),  # multiple choice: the seed that shuffled the options
    ]
)
_META_KEY = b"oxa.eval"
# settings that change no sample: where the output goes, how many processes or tokens per batch
_NOT_FINGERPRINTED = ("model", "out", "benchmarks", "workers", "overwrite", "token_budget", "max_model_len")


@dataclass
class EvalConfig:
    """An evaluation. Every field is also an `oxa eval` option."""

    model: str = field(metadata={"help": "model folder (Hugging Face layout, with a chat template)"})
    out: str = field(metadata={"help": "output folder: samples/, table.md, metrics.parquet, pass_at_k.png"})
    benchmarks: str = field(
        default=",".join(BUILTIN),
        metadata={
            "help": "comma-separated built-in names and/or files (JSON, JSONL, verl parquet; multiple choice: "
            "GPQA csv or parquet, MMLU parquet) or subset folders"
        },
    )
    k: int = field(default=128, metadata={"help": "samples per problem, `oxa eval --n` (Pass@1 is averaged over them)"})
    k_for: dict[str, int] = field(
        default_factory=dict, metadata={"help": "another k for some sets, e.g. minerva=64 (the paper's; `--n-for`)"}
    )
    temperature: float = field(default=0.6, metadata={"help": "sampling temperature (the paper's 0.6)"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling (the paper's 0.95)"})
    max_new_tokens: int = field(default=32768, metadata={"help": "tokens per completion at most (the paper's 32768)"})
    backend: str = field(
        default="auto", metadata={"help": "generation backend: vllm (GPU extra), hf, or auto (vllm when installed)"}
    )
    seed: int = field(default=0, metadata={"help": "each problem samples from a seed derived from this and its id"})
    instruction: str = field(
        default=KNOWN_SUFFIXES[0], metadata={"help": "appended to each problem after a newline; '' for none"}
    )
    choice_instruction: str = field(
        default=CHOICE_INSTRUCTION,
        metadata={"help": "multiple-choice sets (GPQA, MMLU): appended to each question and its options"},
    )
    shuffle_seed: int = field(
        default=0,
        metadata={"help": "multiple choice: each question's options are shuffled from a seed derived from this"},
    )
    mmlu_subjects: str = field(
        default="stem",
        metadata={"help": "MMLU files: stem (the 18 MMLU-STEM subjects), all, or comma-separated subject names"},
    )
    limit: int | None = field(default=None, metadata={"help": "the first N problems of each set (a quick look)"})
    entropy: bool = field(default=True, metadata={"help": "score the policy entropy of every generated token (hf)"})
    dtype: str = field(default="auto", metadata={"help": "model weights: auto, bfloat16, float16, float32"})
    device: str = field(default="auto", metadata={"help": "hf backend device: auto, cpu, cuda, cuda:N"})
    token_budget: int = field(default=16384, metadata={"help": "tokens per scoring batch of the hf backend"})
    max_model_len: int | None = field(
        default=None, metadata={"help": "vLLM's context length (prompt + completion); default: the model's"}
    )
    # judged as `oxa verify` judges and the paper's evaluation reward does: no </think>, no answer
    # (`--no-require-think` for models that do not think: the whole completion is the answer region)
    verifier: VerifierSettings = field(default_factory=VerifierSettings)
    workers: int = field(default=0, metadata={"help": "processes judging answers; 0 = one per CPU"})
    overwrite: bool = field(default=False, metadata={"help": "replace what OUT holds from another configuration"})

    def check(self) -> None:
        if min(self.k, self.max_new_tokens, *self.k_for.values()) < 1:
            raise OxaError(f"k and max_new_tokens must be >= 1, got {self.k}, {self.k_for} and {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise OxaError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature} and {self.top_p}")
        if self.limit is not None and self.limit < 1:
            raise OxaError(f"--limit must be >= 1, got {self.limit}")
        if self.backend not in ("auto", "hf", "vllm"):
            raise OxaError(f"unknown backend {self.backend!r}; choose vllm, hf or auto")
        if self.backend == "auto":
            self.backend = "vllm" if importlib.util.find_spec("vllm") else "hf"


def model_fingerprint(model: Path) -> str:
    """The model folder's files by name, size and modification time (reading the weights
    of a 7B model to hash them would take minutes); subfolders (an eval OUT) do not count."""
    if not (model / "config.json").is_file():
        raise OxaError(f"{model} is not a model folder (no config.json)")
    files = sorted(p for p in model.iterdir() if p.is_file() and not p.name.startswith("."))
    return fingerprint([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])


def _read_meta(path: Path) -> dict | None:
    if not path.is_file():
        return None
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[_META_KEY]) if _META_KEY in meta else None


def _write(path: Path, table: pa.Table, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta, sort_keys=True)})
    with atomic_target(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _check_out(out: Path, resolved: dict, overwrite: bool) -> None:
    """OUT holds one configuration: another one fails, naming what changed; a folder holding
    files but no evaluation is written into only with --overwrite."""
    try:
        recorded = json.loads((out / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        recorded = None
    if not (isinstance(recorded, dict) and "config" in recorded):  # a model folder has a config.json too
        refuse_to_fill(out, overwrite)
        return
    previous = recorded["config"]
    changed = sorted(k for k in set(previous) | set(resolved) if previous.get(k) != resolved.get(k))
    if changed and not overwrite:
        listed = "; ".join(f"{k}: {previous.get(k)!r} -> {resolved.get(k)!r}" for k in changed)
        raise OxaError(
            f"{out} holds an evaluation with another configuration ({listed}); choose another --output or pass --overwrite"
        )
    if changed:
        for folder in ("samples", ".generated"):
            shutil.rmtree(out / folder, ignore_errors=True)


def run_eval(config: EvalConfig, progress: ProgressFn | None = None) -> dict:
    """Evaluate `config.model` on every set; returns what was done and the report."""
    from curate.backends.base import SamplingSettings

    refuse_in_a_rerun_main("run_eval")
    config.check()
    progress = progress or (lambda what, done, total: None)
    model, out = Path(config.model).expanduser().resolve(), Path(config.out).expanduser().resolve()
    if not model.is_dir():
        raise OxaError(f"model folder {config.model} does not exist")
    sets = [
        load_prompt_set(
            name, path, limit=config.limit, shuffle_seed=config.shuffle_seed, mmlu_subjects=config.mmlu_subjects
        )
        for name, path in resolve_sets(config.benchmarks)
    ]
    unknown = sorted(set(config.k_for) - {s.name for s in sets} - set(BUILTIN))  # a typo, not a set left out
    if unknown:
        raise OxaError(f"--n-for names {', '.join(unknown)}, which is no set of --benchmarks: {[s.name for s in sets]}")
    tokenizer = load_chat_tokenizer(model)
    resolved = {
        **{k: v for k, v in asdict(config).items() if k not in _NOT_FINGERPRINTED},
        "model_files": model_fingerprint(model),
        "verifier_hash": config.verifier.settings_hash(),
    }
    _check_out(out, resolved, config.overwrite)
    # before any GPU work, so that a run on sets the training data may hold can be stopped at once
    contamination = check_model(model, sets)
    for line in contamination["warnings"] if contamination else []:
        warn(line["line"])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", {"model": str(model), "config": resolved, "contamination": contamination})
    settings = SamplingSettings(config.k, config.temperature, config.top_p, config.max_new_tokens, config.seed)
    status: dict[str, str] = {}
    backends: dict[str, object] = {}
    options = {"dtype": config.dtype, "device": config.device, "token_budget": config.token_budget}
    if config.max_model_len:
        options["max_model_len"] = config.max_model_len

    def backend(name: str):
        if name not in backends:
            from curate.backends import load_backend

            for other in [n for n in backends if n != name]:  # one model on the GPU at a time
                backends.pop(other).close()
            progress(f"loading {model.name} ({name})", 0, 0)
            backends[name] = load_backend(name, str(model), **options)
        return backends[name]

    metas = {
        s.name: {"set": s.name, "set_sha256": s.digest, "fingerprint": fingerprint([resolved, s.digest])} for s in sets
    }
    try:
        for s in sets:  # generation first: with vLLM, one model load for every set
            samples, generated = out / "samples" / f"{s.name}.parquet", out / ".generated" / f"{s.name}.parquet"
            if _read_meta(samples) == metas[s.name]:
                status[s.name] = "reused"
            elif _read_meta(generated) != metas[s.name]:
                _write(
                    generated,
                    generate_set(
                        backend(config.backend),
                        tokenizer,
                        s,
                        replace(settings, n=config.k_for.get(s.name, config.k)),
                        _instruction(config, s),
                        progress,
                    ),
                    metas[s.name],
                )
        with AnswerJudge(config.verifier, config.workers) as judge:
            for s in sets:
                if s.name in status:
                    continue
                generated = out / ".generated" / f"{s.name}.parquet"
                table = pq.read_table(generated)
                progress(f"{s.name}: entropy and verdicts", 0, 0)
                entropy = (
                    entropy_means(backend("hf"), tokenizer, s, table, _instruction(config, s))
                    if config.entropy
                    else None
                )
                samples = _samples(s, table, entropy, judge, config.verifier.require_think)
                _write(out / "samples" / f"{s.name}.parquet", samples, metas[s.name])
                generated.unlink()
                status[s.name] = "generated"
    finally:
        for b in backends.values():
            b.close()
    if (out / ".generated").is_dir() and not any((out / ".generated").iterdir()):
        (out / ".generated").rmdir()
    from train.eval.report import write_report  # polars: for the report only

    report = write_report(out, [s.name for s in sets])
    return {"out": str(out), "sets": status, "report": report, "contamination": contamination}


def _instruction(config: EvalConfig, prompts: PromptSet) -> str:
    return config.choice_instruction if prompts.kind == "choice" else config.instruction


def _samples(
    prompts: PromptSet, generated: pa.Table, entropy: list | None, judge: AnswerJudge, require_think: bool
) -> pa.Table:
    problems = {p.problem_id: p for p in prompts.problems}
    rows = [problems[pid] for pid in generated["problem_id"].to_pylist()]
    completions = generated["completion"].to_pylist()
    choice = prompts.kind == "choice"
    if choice:  # the letter judge replaces math-verify
        verdicts = judge_letters([p.gold[0] for p in rows], [p.choices for p in rows], completions, require_think)
    else:
        verdicts = judge.judge([p.gold for p in rows], completions)
    return pa.table(
        {
            "problem_id": generated["problem_id"],
            "source_row": [p.source_row for p in rows],
            "problem": [p.problem for p in rows],
            "gold_answer": [list(p.gold) for p in rows],
            "sample_index": generated["sample_index"],
            "completion": completions,
            "n_tokens": [len(ids) for ids in generated["token_ids"].to_pylist()],
            "finish_reason": generated["finish_reason"],
            "pred_answer": [v[0] for v in verdicts],
            "verdict": [v[1] for v in verdicts],
            "reason": [v[2] for v in verdicts],
            "entropy_mean": entropy or [None] * generated.num_rows,
            "subject": [p.subject for p in rows],
            "choices": [list(p.choices) if choice else None for p in rows],
            "shuffle_seed": [p.shuffle_seed for p in rows],
        },
        schema=SAMPLES,
    )
