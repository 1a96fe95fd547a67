"""`oxa demo`: the whole OXA pipeline on the test bed, end to end on a CPU.

world + tiny models -> init -> ingest -> trace -> verify -> score (base model) -> select
SFT, SFT_LP, OXA_MLE at equal N -> generate from the instruct model -> verify -> score ->
OXA_Full (OXA_MLE's positives + the lowest-PPL wrong self answers) -> train the four
methods' models briefly -> evaluate them on the world's held-out problems -> summary.

Every step is recorded in DIR/demo.json with a fingerprint of its settings and of the
steps before it; a second run reuses the steps whose fingerprint is unchanged (and the
stages resume on their own where a step was cut short).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from curate.ingest import IngestConfig, run_ingest
from curate.select import SelectConfig, Selection, run_select
from curate.synth.world import HELDOUT_FILE, POOL_FILE, WorldConfig, build_world
from curate.trace import TraceConfig, run_trace
from curate.verify import VerifyConfig, run_verify
from curate.workspace import OxaError, Workspace
from curate.workspace.parts import atomic_write_json, fingerprint

Say = Callable[[str], None]
ProgressFn = Callable[[str, int, int], None]
STATE = "demo.json"
SCORER = "base"  # scores/<tag>/ of the pre-trained model: PPL for selection, as in the paper
SELF_TAG = "self"  # the instruct model's samples (generator tag)
CORRECT_TEACHER = "verdict = 'correct' AND origin = 'teacher'"
WRONG_SELF = "verdict = 'incorrect' AND origin = 'self'"


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: `--fast` and the full run differ only here."""

    world: dict  # WorldConfig fields
    models: dict  # TinyModelConfig fields
    n: int  # rows of SFT, SFT_LP and OXA_MLE (and OXA_Full's positives)
    negatives: int  # OXA_Full's loss_type 1 rows
    generate_n: int  # self-distillation samples per problem
    generate_tokens: int
    train_steps: int
    eval_k: int  # samples per held-out problem (Pass@1 averaged over them, Pass@k up to k)
    eval_tokens: int


SIZES = {
    "fast": DemoSize(
        world={"problems": 64, "heldout": 8, "reference_only": 16, "corpus_problems": 96},
        models={
            "block": 128,
            "batch": 8,
            "pretrain_steps": 150,
            "learning_rate": 5e-3,
            "sft_examples": 64,
            "sft_steps": 20,
        },
        n=24,
        negatives=8,
        generate_n=2,
        generate_tokens=96,
        train_steps=4,
        eval_k=4,
        eval_tokens=96,
    ),
    "full": DemoSize(
        world={},
        models={},
        n=120,
        negatives=40,
        generate_n=4,
        generate_tokens=192,
        train_steps=24,
        eval_k=8,
        eval_tokens=192,
    ),
}
METHODS = ("sft", "sft_lp", "oxa_mle", "oxa_full")
FUNNEL_STEPS = (
    "ingest",
    "trace",
    "verify",
    "score",
    "generate",
    "verify self",
    "score self",
)  # the paper's Table 1 rows (subset names below)


@dataclass
class DemoConfig:
    workdir: Path = Path("oxa-demo")
    fast: bool = False
    size: DemoSize = field(init=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).expanduser().resolve()
        self.size = SIZES["fast" if self.fast else "full"]


class _Steps:
    """Runs named steps once per fingerprint; the chain makes a changed step redo the ones after it."""

    def __init__(self, workdir: Path, say: Say) -> None:
        self.path, self.say = workdir / STATE, say
        self.state = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.chain = "start"
        self.timings: dict[str, float] = {}
        self.lines: dict[str, str] = {}  # each step's one-line result, for the summary

    def run(self, name: str, settings: object, work: Callable[[], dict], line: Callable[[dict], str]) -> dict:
        self.chain = fingerprint([self.chain, name, settings])
        done = self.state.get(name)
        if done and done["fingerprint"] == self.chain:
            self.lines[name] = line(done["result"])
            self.say(f"[dim]{name:<16} reused  {self.lines[name]}[/]")
            self.timings[name] = 0.0
            return done["result"]
        started = time.monotonic()
        result = work()
        self.timings[name] = time.monotonic() - started
        self.state[name] = {"fingerprint": self.chain, "result": result, "seconds": round(self.timings[name], 1)}
        atomic_write_json(self.path, self.state)
        self.lines[name] = line(result)
        self.say(f"{name:<16} {self.timings[name]:5.1f} s  {self.lines[name]}")
        return result


def run_demo(config: DemoConfig, say: Say, progress: ProgressFn) -> dict:
    """Run (or resume) the demo in config.workdir; returns the summary (also DIR/summary.json)."""
    try:
        from train.tiny import TinyModelConfig, build_tiny_models
    except ImportError as exc:  # torch or transformers
        raise OxaError(f"the demo trains models and needs the train extra: pip install 'oxa[train]' ({exc})") from exc
    from datasets.utils.logging import disable_progress_bar as disable_datasets_progress_bar
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the demo shows its own progress
    disable_datasets_progress_bar()
    size, root = config.size, config.workdir
    root.mkdir(parents=True, exist_ok=True)
    world, models = root / "world", root / "models"
    steps = _Steps(root, say)

    world_config = WorldConfig(**size.world)
    steps.run(
        "world",
        asdict(world_config),
        lambda: {"counts": build_world(world, world_config)["counts"]},
        lambda r: f"{world / POOL_FILE}",
    )
    model_config = TinyModelConfig(world=str(world), out=str(models), **size.models)
    steps.run(
        "models",
        asdict(model_config),
        lambda: _brief(build_tiny_models(model_config, progress=lambda message: progress(message, 0, 0))),
        lambda r: f"{models}/{{base,instruct}}",
    )
    ws = Workspace.open(root / "ws") if (root / "ws" / "catalog.duckdb").is_file() else Workspace.init(root / "ws")
    _curate(ws, world, models, size, steps, progress)
    subsets = _select(ws, size, steps)
    trained = _train(root, models, subsets, size, steps, say)
    scores = _evaluate(root, world, models, trained, size, steps, progress)
    summary = _summary(ws, root, subsets, trained, scores, steps)
    atomic_write_json(root / "summary.json", summary)
    return summary


def _brief(build: dict) -> dict:
    return {k: build[k] for k in ("seconds", "losses") if k in build}


def _curate(ws: Workspace, world: Path, models: Path, size: DemoSize, steps: _Steps, progress: ProgressFn) -> None:
    from curate.score import GenerateConfig, ScoreConfig, run_generate, run_score

    base, instruct = str(models / "base"), str(models / "instruct")
    ingest = IngestConfig([str(world / POOL_FILE)], preset="acereason")
    steps.run(
        "ingest",
        asdict(ingest),
        lambda: run_ingest(ws, ingest, lambda n, file: progress(f"ingest {file.path.name}", n, 0)),
        _funnel_line,
    )
    trace = TraceConfig(sorted(str(p) for p in (world / "references").glob("*.parquet")))
    steps.run("trace", asdict(trace), lambda: run_trace(ws, trace, progress), _counts_line("by_method"))
    verify = VerifyConfig()
    steps.run("verify", asdict(verify), lambda: run_verify(ws, verify, progress), _counts_line("verdicts"))
    score = ScoreConfig(model=base, tag=SCORER)
    steps.run("score", asdict(score), lambda: run_score(ws, score, progress=progress), _counts_line())
    generate = GenerateConfig(
        model=instruct, tag=SELF_TAG, n=size.generate_n, max_new_tokens=size.generate_tokens, seed=0
    )
    steps.run("generate", asdict(generate), lambda: run_generate(ws, generate, progress=progress), _counts_line())
    steps.run("verify self", asdict(verify), lambda: run_verify(ws, verify, progress), _counts_line("verdicts"))
    steps.run("score self", asdict(score), lambda: run_score(ws, score, progress=progress), _counts_line())


def _select(ws: Workspace, size: DemoSize, steps: _Steps) -> dict[str, dict]:
    """SFT (random), SFT_LP (lowest PPL) and OXA_MLE (Gaussian) at equal N, one response per
    problem as in the paper; OXA_Full adds the lowest-PPL wrong self answers as loss_type 1."""
    common = {"n": size.n, "max_per_problem": 1, "where": CORRECT_TEACHER}
    gaussian = Selection(strategy="gaussian", scores_tag=SCORER, **_gaussian_shape(ws), **common)
    negatives = Selection(strategy="lowest_ppl", scores_tag=SCORER, n=size.negatives, where=WRONG_SELF)
    configs = {
        "sft": SelectConfig(name="sft", strategy="random", seed=0, **common),
        "sft_lp": SelectConfig(name="sft_lp", strategy="lowest_ppl", scores_tag=SCORER, **common),
        "oxa_mle": SelectConfig(name="oxa_mle", **asdict(gaussian)),
        "oxa_full": SelectConfig(name="oxa_full", strategy="mix", positives=gaussian, negatives=negatives),
    }
    subsets = {}
    for method, config in configs.items():
        config.validate()
        subsets[method] = steps.run(
            f"select {method}", config.resolved(), lambda c=config: run_select(ws, c), lambda r: r["summary"]
        )
    return subsets


def _gaussian_shape(ws: Workspace) -> dict:
    """The paper's Gaussian (A.3: mu 2.5, sigma 0.25, bins of 0.05, PPL 1-5 for Qwen2.5-Math-1.5B)
    scaled to the tiny base model: mu 20% above the median PPL of the correct teacher
    responses, sigma mu/10, bins sigma/5, PPL from 1 to mu + 4 sigma."""
    con = ws.connect()
    try:
        (median,) = con.execute(f"SELECT median(ppl_{SCORER}) FROM candidates WHERE {CORRECT_TEACHER}").fetchone()
    finally:
        con.close()
    if median is None:
        raise OxaError("no correct teacher response has a PPL: the score step wrote nothing")
    mu = round(1.2 * median, 2)
    sigma = round(mu / 10, 3)
    return {
        "mu": mu, "sigma": sigma, "p_min": 1.0, "p_max": round(mu + 4 * sigma, 2), "bin_width": round(sigma / 5, 4),
        "rounding": "largest_remainder", "redistribute": True,
    }  # fmt: skip


def _train(root: Path, models: Path, subsets: dict, size: DemoSize, steps: _Steps, say: Say) -> dict[str, str]:
    from train.sft import SftRunConfig, run_sft

    trained = {}
    for method in METHODS:
        out = root / "train" / method
        config = SftRunConfig(
            subset=subsets[method]["path"], model=str(models / "base"), preset="tiny", output=str(out),
            max_steps=size.train_steps, overwrite=True,
            overrides=["disable_tqdm=true", *([] if method == "oxa_full" else ["ul_alpha=0"])],
        )  # fmt: skip
        steps.run(
            f"train {method}",
            asdict(config),
            lambda c=config, log=out.with_suffix(".log"): _brief_train(_quietly(log, lambda: run_sft(c))),
            lambda r: f"{r['global_step']} steps, train loss {r['train_loss']:.3f}",
        )
        trained[method] = str(out)
    return trained


def _quietly(log: Path, work: Callable[[], dict]) -> dict:
    """Run `work` with the trainer's printed logs going to `log` (the record keeps the metrics)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
        return work()


def _brief_train(record: dict) -> dict:
    return {"global_step": record["global_step"], "train_loss": record["metrics"].get("train_loss", float("nan"))}


def _evaluate(
    root: Path, world: Path, models: Path, trained: dict, size: DemoSize, steps: _Steps, progress: ProgressFn
) -> dict[str, dict]:
    from train.eval import EvalConfig, run_eval

    scores = {}
    for method, model in {"base": str(models / "base"), **trained}.items():
        config = EvalConfig(
            model=model, out=str(root / "eval" / method), benchmarks=str(world / HELDOUT_FILE), k=size.eval_k,
            max_new_tokens=size.eval_tokens, backend="hf", overwrite=True,
        )  # fmt: skip
        result = steps.run(
            f"eval {method}", asdict(config), lambda c=config: _brief_eval(run_eval(c, progress)), _eval_line
        )
        scores[method] = result
    return scores


def _brief_eval(result: dict) -> dict:
    average = result["report"]["metrics"][-1]
    return {"out": result["out"], **{k: average[k] for k in average if k != "benchmark"}}


def _eval_line(result: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in result.items() if isinstance(v, float))


def _funnel_line(stats: dict) -> str:
    return stats.get("summary") or json.dumps({k: v for k, v in stats.items() if isinstance(v, int)})


def _counts_line(key: str | None = None) -> Callable[[dict], str]:
    def line(stats: dict) -> str:
        if key and isinstance(stats.get(key), dict):
            return ", ".join(f"{k} {v:,}" for k, v in stats[key].items())
        return _funnel_line(stats)

    return line


def _summary(ws: Workspace, root: Path, subsets: dict, trained: dict, scores: dict, steps: _Steps) -> dict:
    con = ws.connect()
    try:
        verdicts = con.execute(
            "SELECT origin, verdict, count(*) FROM candidates GROUP BY ALL ORDER BY origin, verdict"
        ).fetchall()
    finally:
        con.close()
    return {
        "workdir": str(root),
        "workspace": str(ws.root),
        "verdicts": [{"origin": o, "verdict": v, "rows": n} for o, v, n in verdicts],
        "subsets": {m: {k: s.get(k) for k in ("name", "version", "path", "summary")} for m, s in subsets.items()},
        "models": trained,
        "scores": scores,
        "funnels": {name: steps.lines[name] for name in FUNNEL_STEPS},
        "seconds": {name: round(t, 1) for name, t in steps.timings.items()},
    }
