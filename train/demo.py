"""`oxa demo`: the whole OXA pipeline on the test bed, end to end on a CPU.

world + tiny models -> init -> ingest -> trace -> verify -> score (base model) -> generate
from the instruct model -> verify -> score -> decontaminate against the held-out problems
(the world plants a few in the pool) -> select SFT, SFT_LP, OXA_MLE at equal N and
OXA_Full (OXA_MLE's positives + the lowest-PPL wrong self answers) -> train the four
methods' models -> RLVR prompts (pass rate of the self samples) -> each model's initial
policy entropy on them -> GRPO from the SFT and OXA_Full models -> evaluate every model
on the world's held-out problems -> compare them with SFT, with 95% intervals -> summary.
Every step goes through the public functions that the `oxa` commands call: the demo is a
user of oxa, not a special path.

Every step is recorded in DIR/demo.json with a fingerprint of its settings and of the
steps before it; a second run reuses the steps whose fingerprint is unchanged (and the
stages resume on their own where a step was cut short). Both are written with DIR as
`<demo>`, so a demo folder moved or copied elsewhere resumes there as well.

The steps that do not depend on one another (the trainings; the GRPO runs, evaluations and
entropies) run side by side, one torch thread each, as many at once as `threads`; the
others run alone on two threads (train/threads.py says why). The results are the same
whatever `threads` is.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from curate.decontaminate import CONTAMINATED, DecontaminateConfig, run_decontaminate
from curate.decontaminate import METHODS as MATCH_METHODS
from curate.ingest import IngestConfig, run_ingest
from curate.select import SelectConfig, Selection, run_select
from curate.subsets import ExportConfig, run_export
from curate.synth.world import HELDOUT_FILE, POOL_FILE, WorldConfig, build_world
from curate.text.instructions import KNOWN_SUFFIXES
from curate.trace import TraceConfig, run_trace
from curate.verify import VerifierSettings, VerifyConfig, run_verify
from curate.workspace import OxaError, Workspace
from curate.workspace.parts import atomic_write_json, fingerprint
from train.threads import ALONE_THREADS, SIDE_BY_SIDE_THREADS, SideBySide, torch_threads, usable_cpus

if TYPE_CHECKING:
    from train.eval import EvalConfig
    from train.eval.entropy import EntropyConfig
    from train.grpo import GRPORun
    from train.sft import SftRunConfig

Say = Callable[[str], None]
ProgressFn = Callable[[str, int, int], None]
Display = Callable[[], AbstractContextManager[ProgressFn]]  # opens a progress display (stage_progress)
STATE = "demo.json"
DEMO_ROOT = "<demo>"  # the demo folder, as demo.json and the fingerprints write it
SCORER = "base"  # scores/<tag>/ of the pre-trained model: PPL for selection, as in the paper
SELF_TAG = "self"  # the instruct model's samples (generator tag)
CORRECT_TEACHER = "verdict = 'correct' AND origin = 'teacher'"
WRONG_SELF = "verdict = 'incorrect' AND origin = 'self'"
# The short R1-style instruction: the paper's is 45 tokens, as long as the tiny models' answers.
INSTRUCTION = KNOWN_SUFFIXES[1]
EVAL_TOKEN_BUDGET = 262_144  # hf backend: rows per generation batch = budget / (prompt + new tokens)


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: `--fast` and the full run differ only here."""

    world: dict  # WorldConfig fields
    models: dict  # TinyModelConfig fields
    n: int  # rows of SFT, SFT_LP and OXA_MLE (and OXA_Full's positives)
    negatives: int  # OXA_Full's loss_type 1 rows
    generate_n: int  # self-distillation samples per problem
    self_problems: str  # the problems the instruct model answers (ids are hex digests: '< 4' is a quarter)
    generate_tokens: int
    train_steps: int
    eval_k: int  # samples per held-out problem (Pass@1 averaged over them, Pass@k up to k)
    eval_tokens: int
    rl_prompts: int  # RLVR prompts: problems whose self samples are half right
    grpo_steps: int
    clip_cov: bool  # also OXA_Full+CC: OXA_Full's RLVR with Clip-Cov (the paper's Q3)


SIZES = {
    "fast": DemoSize(
        world={"problems": 1200, "heldout": 50, "reference_only": 100, "corpus_problems": 5000, "max_responses": 5},
        models={"pretrain_steps": 200, "sft_steps": 40},
        n=150,
        negatives=40,
        generate_n=2,
        self_problems="problem_id < '6'",
        generate_tokens=112,
        train_steps=24,
        eval_k=8,
        eval_tokens=112,
        rl_prompts=16,
        grpo_steps=2,
        clip_cov=False,
    ),
    "full": DemoSize(
        world={"problems": 5000, "heldout": 200, "reference_only": 600, "corpus_problems": 12000, "max_responses": 6},
        models={"pretrain_steps": 500},
        n=800,
        negatives=200,
        generate_n=2,
        self_problems="problem_id < '6'",
        generate_tokens=112,
        train_steps=160,
        eval_k=16,
        eval_tokens=112,
        rl_prompts=192,
        grpo_steps=12,
        clip_cov=True,
    ),
}
# The SFT runs: the tiny preset with the batch and learning rate of the tiny models' own
# training (the base model is far from converged, so more of the same data still teaches).
TRAIN_SETTINGS = ["global_batch_size=32", "per_device_train_batch_size=32", "learning_rate=2e-3", "warmup_steps=5"]
# GRPO from a model: 8 prompts x 8 rollouts per step, the tiny preset otherwise. The tiny
# models' short completions are judged whole (require_think=false), in the reward as in
# evaluation (_evaluate): the demo's figures as before both took oxa verify's default.
GRPO_SETTINGS = [
    "prompts_per_step=8", "num_generations=8", "max_completion_length=112", "save_strategy=no", "require_think=false",
]  # fmt: skip
METHODS = ("sft", "sft_lp", "oxa_mle", "oxa_full")
RL_FROM = ("sft", "oxa_full")  # the paper's Q2: which start is better for RLVR
# The paper's Q3 (Fig. 5a): OXA_Full's RLVR with Clip-Cov keeps policy entropy up (full run).
CLIP_COV_RUN = ("oxa_full_cc", "oxa_full", ("cov_mode=clip_cov",))
ENTROPY_PROMPTS = 64  # RL prompts on which each model's initial policy entropy is measured
ENTROPY_SAMPLES = 4  # completions per prompt, sampled as GRPO's rollouts (temperature 0.85)
# Held-out problems the world plants in the teacher pool, in both sizes (curate/synth/leaks.py):
# one copy of each kind (verbatim, formatting drift, after an instruction), which
# decontamination must find and every selection leave out, and numbers-changed variants,
# which it reports as template matches and selection keeps.
LEAKS = {"leaked": 3, "leaked_variants": 3}
FUNNEL_STEPS = (
    "ingest",
    "trace",
    "verify",
    "score",
    "generate",
    "verify self",
    "score self",
    "decontaminate",
)  # the paper's Table 1 rows (subset names below), and what decontamination found


@dataclass
class DemoConfig:
    workdir: Path = Path("oxa-demo")
    fast: bool = False
    threads: int | None = None  # steps side by side, one thread each (None: the CPUs this process may use)
    size: DemoSize = field(init=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).expanduser().resolve()
        self.size = SIZES["fast" if self.fast else "full"]
        self.threads = usable_cpus() if self.threads is None else self.threads
        if self.threads < 1:
            raise OxaError(f"--threads must be 1 or more; got {self.threads}")


class Step(NamedTuple):
    name: str
    settings: object  # what the step's fingerprint is made of
    work: Callable[[], dict]  # picklable where the step runs side by side (a partial of a module-level function)
    line: Callable[[dict], str]  # the one-line result


class _Steps:
    """Runs named steps once per fingerprint; the chain makes a changed step redo the ones after it.
    Fingerprints and the recorded results write the demo folder as DEMO_ROOT, so that a
    folder moved or copied elsewhere reuses its steps, with results that point into it.
    A step that runs alone shows its progress in a display of its own, closed when it ends."""

    def __init__(self, workdir: Path, say: Say, side_by_side: SideBySide, display: Display) -> None:
        self.root, self.path, self.say, self.side_by_side = workdir, workdir / STATE, say, side_by_side
        self.display = display
        self.state = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.chain = "start"
        self.timings: dict[str, float] = {}
        self.lines: dict[str, str] = {}  # each step's one-line result, for the summary
        self._report: ProgressFn | None = None  # the display of the step running alone

    def progress(self, what: str, done: int, total: int) -> None:
        """The ProgressFn of the steps' work: it moves the display of the step running now."""
        if self._report is not None:
            self._report(what, done, total)

    def run(self, name: str, settings: object, work: Callable[[], dict], line: Callable[[dict], str]) -> dict:
        """A step that runs alone, in this process."""
        step = Step(name, settings, work, line)
        done = self._done(step)
        if done is not None:
            return done
        started = time.monotonic()
        with self.display() as report:
            self._report = report
            try:
                result = work()
            finally:
                self._report = None
        self._record(step, self.chain, result, time.monotonic() - started)
        return result

    def run_side_by_side(self, steps: list[Step]) -> dict[str, dict]:
        """Steps that do not depend on one another, in the chain in the order given; those
        not done before run at once, up to the workers' count. Returns each step's result."""
        results, pending = {}, []
        for step in steps:
            done = self._done(step)
            if done is None:
                pending.append((step, self.chain))
            else:
                results[step.name] = done
        if len(pending) > 1 and self.side_by_side.workers > 1:
            names = ", ".join(step.name for step, _ in pending)
            self.say(f"[dim]{len(pending)} steps, {self.side_by_side.workers} at a time: {names}[/]")
        for index, result, seconds in self.side_by_side.run([step.work for step, _ in pending]):
            step, chain = pending[index]
            results[step.name] = result
            self._record(step, chain, result, seconds)
        return results

    def _done(self, step: Step) -> dict | None:
        """The step's result where it is done with the same fingerprint (None: not done)."""
        self.chain = fingerprint([self.chain, step.name, _portable(step.settings, self.root)])
        done = self.state.get(step.name)
        if not (done and done["fingerprint"] == self.chain):
            return None
        result = _placed(done["result"], self.root)
        self.lines[step.name] = step.line(result)
        self.say(f"[dim]{step.name:<16} reused  {self.lines[step.name]}[/]")
        self.timings[step.name] = 0.0
        return result

    def _record(self, step: Step, chain: str, result: dict, seconds: float) -> None:
        self.timings[step.name] = seconds
        record = {"fingerprint": chain, "result": _portable(result, self.root), "seconds": round(seconds, 1)}
        self.state[step.name] = record
        atomic_write_json(self.path, self.state)
        self.lines[step.name] = step.line(result)
        self.say(f"{step.name:<16} {seconds:5.1f} s  {self.lines[step.name]}")


def _portable(value: object, root: Path) -> object:
    """`value` (JSON-able: settings, a step's result) with every path in the demo folder
    written from DEMO_ROOT: a string that is the folder or a path in it, or a line that
    names one ("rlvr/... -> DIR/rl/prompts.verl.parquet (verl, 192 rows)")."""
    if isinstance(value, dict):
        return {key: _portable(item, root) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_portable(item, root) for item in value]
    if isinstance(value, str | Path):
        # DIR itself: not DIR-2 beside it, nor /elsewhere/DIR
        return re.sub(rf"(?<![\w.+/-]){re.escape(str(root))}(?![\w.+-])", DEMO_ROOT, str(value))
    return value


def _placed(value: object, root: Path) -> object:
    """A recorded result with DEMO_ROOT back as the demo folder it is read in."""
    if isinstance(value, dict):
        return {key: _placed(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [_placed(item, root) for item in value]
    if isinstance(value, str):
        return value.replace(DEMO_ROOT, str(root))
    return value


def run_demo(config: DemoConfig, say: Say, display: Display) -> dict:
    """Run (or resume) the demo in config.workdir; returns the summary (also DIR/summary.json).
    `display` opens a progress display (curate.workspace.progress.stage_progress): each step
    that runs alone gets one, closed when the step ends, so that no step's progress stays
    on screen, or comes back in a log, after it."""
    try:
        from train.tiny import TinyModelConfig, build_tiny_models
    except ImportError as exc:  # torch or transformers
        raise OxaError(f"the demo trains models and needs the train extra: pip install 'oxa[train]' ({exc})") from exc
    _no_progress_bars()
    started = time.monotonic()
    size, root = config.size, config.workdir
    root.mkdir(parents=True, exist_ok=True)
    world, models = root / "world", root / "models"
    with SideBySide(config.threads, prepare=_no_progress_bars) as side_by_side, torch_threads(ALONE_THREADS):
        steps = _Steps(root, say, side_by_side, display)
        progress = steps.progress
        world_config = WorldConfig(**size.world, **LEAKS)
        built = steps.run(
            "world",
            asdict(world_config),
            lambda: {"counts": build_world(world, world_config)["counts"]},
            lambda r: f"{world / POOL_FILE}",
        )
        model_config = TinyModelConfig(world=str(world), out=str(models), threads=ALONE_THREADS, **size.models)
        steps.run(
            "models",
            asdict(model_config),
            lambda: _brief(build_tiny_models(model_config, progress=lambda message: progress(message, 0, 0))),
            lambda r: f"{models}/{{base,instruct}}",
        )
        ws = Workspace.open(root / "ws") if (root / "ws" / "catalog.duckdb").is_file() else Workspace.init(root / "ws")
        _curate(ws, world, models, size, steps, progress)
        planted = built["counts"]["leaks"]["by_method"]
        contamination = _decontaminate(ws, world, planted, steps, progress)
        subsets = _select(ws, size, steps)
        trained = _train(root, models, subsets, size, steps)
        prompts, rlvr = _rl_prompts(ws, root, size, steps)
        sft_models = {"base": str(models / "base"), **trained}
        grpo_steps, tuned = _grpo_steps(root, trained, prompts, size)
        eval_steps, evals = _eval_steps(root, world, sft_models, size)
        entropy_steps = _entropy_steps(root, sft_models, prompts, size)
        results = steps.run_side_by_side([*grpo_steps, *eval_steps, *entropy_steps])  # the longest first
        tuned_eval_steps, tuned_evals = _eval_steps(root, world, tuned, size)
        steps.run_side_by_side(tuned_eval_steps)
        comparison = _compare(root, evals | tuned_evals, steps)
    entropy = {method: results[f"entropy {method}"]["mean_entropy"] for method in sft_models}
    summary = _summary(ws, root, subsets, trained | tuned, comparison, entropy, steps)
    summary["decontamination"] = _decontamination_summary(contamination, planted, {**subsets, "rlvr": rlvr})
    summary["funnels"]["dropped as contaminated"] = _dropped_line(summary["decontamination"]["dropped"])
    summary["rlvr_entropy"] = {run: _first_last_entropy(results[f"grpo {run}"]) for run, _, _ in _grpo_runs(size)}
    summary["threads"] = {"alone": ALONE_THREADS, "side_by_side": SIDE_BY_SIDE_THREADS, "at_once": config.threads}
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    atomic_write_json(root / "summary.json", summary)
    return summary


def _no_progress_bars() -> None:
    """The demo shows its own progress (in its process and its workers)."""
    from datasets.utils.logging import disable_progress_bar as disable_datasets_progress_bar
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    disable_datasets_progress_bar()


def _brief(build: dict) -> dict:
    return {k: build[k] for k in ("seconds", "losses") if k in build}


def _curate(ws: Workspace, world: Path, models: Path, size: DemoSize, steps: _Steps, progress: ProgressFn) -> None:
    from curate.score import GenerateConfig, ScoreConfig, run_generate, run_score

    base, instruct = str(models / "base"), str(models / "instruct")
    ingest = IngestConfig([str(world / POOL_FILE)], preset="acereason")
    steps.run(
        "ingest",
        asdict(ingest),
        lambda: run_ingest(ws, ingest, lambda what, done, total: progress(f"ingest {what}", done, total)),
        _funnel_line,
    )
    trace = TraceConfig(sorted(str(p) for p in (world / "references").glob("*.parquet")))
    steps.run("trace", asdict(trace), lambda: run_trace(ws, trace, progress), _counts_line("by_method"))
    verify = VerifyConfig()
    steps.run("verify", asdict(verify), lambda: run_verify(ws, verify, progress), _counts_line("verdicts"))
    score = ScoreConfig(model=base, tag=SCORER)
    steps.run("score", asdict(score), lambda: run_score(ws, score, progress=progress), _counts_line())
    generate = GenerateConfig(
        model=instruct, tag=SELF_TAG, n=size.generate_n, max_new_tokens=size.generate_tokens, seed=0,
        where=size.self_problems, batch_prompts=256,
    )  # fmt: skip
    steps.run("generate", asdict(generate), lambda: run_generate(ws, generate, progress=progress), _counts_line())
    steps.run("verify self", asdict(verify), lambda: run_verify(ws, verify, progress), _counts_line("verdicts"))
    steps.run("score self", asdict(score), lambda: run_score(ws, score, progress=progress), _counts_line())


def _decontaminate(ws: Workspace, world: Path, planted: dict, steps: _Steps, progress: ProgressFn) -> dict:
    """The pool's problems checked against the held-out problems the models are evaluated
    on (`oxa decontaminate WS --against WORLD/heldout.json`), so that every selection after
    it leaves out the planted copies; its line sets what it found beside what was planted."""
    config = DecontaminateConfig(against=[str(world / HELDOUT_FILE)])
    return steps.run(
        "decontaminate",
        asdict(config),
        lambda: run_decontaminate(ws, config, progress),
        lambda r: _found_line(_found(r), planted, r),
    )


def _found(stats: dict) -> dict[str, int]:
    """Matches by method, over every benchmark set checked."""
    return {m: sum(s[f"problem_{m}"] for s in stats["matches"].values()) for m in MATCH_METHODS}


def _found_line(found: dict, planted: dict, stats: dict) -> str:
    """Matches by method beside the world's plants: every copy planted should be found, and
    no other; template matches (the planted variants, and in a world of templated drills
    many pool problems that share a held-out problem's words) are reported and kept."""
    copies = ", ".join(f"{m} {found[m]:,}" for m in CONTAMINATED)
    planted_copies = ", ".join(f"{m} {planted.get(m, 0)}" for m in CONTAMINATED)
    return (
        f"{copies} (planted: {planted_copies}): {stats['contaminated']['problem']:,} problems contaminated; "
        f"template {found['template']:,} matches on {stats['template_only']['problem']:,} problems "
        f"(planted variants: {planted.get('template', 0)}), kept"
    )


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
            f"select {method}", config.resolved(), lambda c=config: _met(run_select(ws, c)), _select_line
        )
    return subsets


def _contaminated_dropped(stats: dict) -> int:
    return sum(part["funnel"]["dropped"].get("contaminated", 0) for part in stats["parts"])


def _select_line(stats: dict) -> str:
    unit = stats["parts"][0]["funnel"]["unit"]
    return f"{stats['summary']}; left out as contaminated: {_rows(_contaminated_dropped(stats), unit)}"


def _rows(n: int, unit: str) -> str:
    """'9 samples', '1 problem': how many of a funnel's unit (samples or problems)."""
    return f"{n:,} {unit if n != 1 else unit.removesuffix('s')}"


def _met(stats: dict) -> dict:
    """A subset whose every part got its target, bin by bin: the demo compares methods at equal N.
    A version that exists already (its step run again on the same rows: a step before it
    redone with the same outcome) brings its parts' facts from its card."""
    if "parts" not in stats:
        card = json.loads((Path(stats["path"]) / "card.json").read_text(encoding="utf-8"))
        stats = {**stats, "parts": card["parts"]}
    short = {p["label"]: p["target"] - p["selected"] for p in stats["parts"] if p["selected"] < p["target"]}
    if short:
        raise OxaError(f"subset {stats['name']} is short of its target ({short}): the world's pool is too small")
    return stats


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
        "rounding": "largest_remainder", "redistribute": False,
    }  # fmt: skip


def _train(root: Path, models: Path, subsets: dict, size: DemoSize, steps: _Steps) -> dict[str, str]:
    """The four methods' SFT runs, side by side."""
    from train.sft import SftRunConfig

    trained, train_steps = {}, []
    for method in METHODS:
        out = root / "train" / method
        config = SftRunConfig(
            subset=subsets[method]["path"], model=str(models / "base"), preset="tiny", output=str(out),
            max_steps=size.train_steps, overwrite=True, instruction=INSTRUCTION,
            overrides=["disable_tqdm=true", *TRAIN_SETTINGS, *([] if method == "oxa_full" else ["ul_alpha=0"])],
        )  # fmt: skip
        train_steps.append(
            Step(
                f"train {method}",
                asdict(config),
                partial(_train_model, config, out.with_suffix(".log")),
                lambda r: f"{r['global_step']} steps, train loss {r['train_loss']:.3f}",
            )
        )
        trained[method] = str(out)
    steps.run_side_by_side(train_steps)
    return trained


def _train_model(config: SftRunConfig, log: Path) -> dict:
    from train.sft import run_sft

    record = _quietly(log, lambda: run_sft(config))
    return {"global_step": record["global_step"], "train_loss": record["metrics"].get("train_loss", float("nan"))}


def _quietly(log: Path, work: Callable[[], dict]) -> dict:
    """Run `work` with the trainer's printed logs going to `log` (the record keeps the metrics)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
        return work()


def _rl_prompts(ws: Workspace, root: Path, size: DemoSize, steps: _Steps) -> tuple[str, dict]:
    """RLVR prompts as the paper picks them (A.3): problems neither trivial nor hopeless for
    a sampler, here those of which the instruct model's self samples are half right;
    exported in verl's layout, which `oxa train grpo` reads. Returns the file and the
    selection's stats."""
    config = SelectConfig(
        name="rlvr", strategy="pass_rate", where="origin = 'self'", n=size.rl_prompts, k=size.generate_n,
        min_pass_rate=0.5, max_pass_rate=0.5, seed=0,
    )  # fmt: skip
    config.validate()
    subset = steps.run("select rlvr", config.resolved(), lambda: _met(run_select(ws, config)), _select_line)
    output = root / "rl" / "prompts.verl.parquet"
    export = ExportConfig(subset=f"rlvr/{subset['version']}", format="verl", output=str(output), overwrite=True)
    export.instruction = ""  # GRPO appends its own instruction to each prompt
    steps.run("export rlvr", asdict(export), lambda: run_export(ws, export), lambda r: r["summary"])
    return str(output), subset


def _entropy_steps(root: Path, models: dict[str, str], prompts: str, size: DemoSize) -> list[Step]:
    """Each model's initial policy entropy (`oxa eval entropy`): the mean token entropy of
    its completions to the RL prompts, sampled as GRPO's rollouts are (the paper's Fig. 2c
    at step 0)."""
    from train.eval.entropy import EntropyConfig

    entropy_steps = []
    for method, model in models.items():
        config = EntropyConfig(
            model=model, prompts=prompts, n=ENTROPY_SAMPLES, max_new_tokens=size.eval_tokens, backend="hf",
            instruction=INSTRUCTION, limit=ENTROPY_PROMPTS, out=str(root / "entropy" / method),
        )  # fmt: skip
        entropy_steps.append(
            Step(
                f"entropy {method}",
                asdict(config),
                partial(_measure_entropy, config),
                lambda r: (
                    f"{r['mean_entropy']:.3f} nats per token, {r['completions']} completions of {r['prompts']} prompts"
                ),
            )
        )
    return entropy_steps


def _measure_entropy(config: EntropyConfig) -> dict:
    from train.eval.entropy import run_entropy

    return run_entropy(config)["overall"]


def _grpo_runs(size: DemoSize) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, the SFT model it starts from, its extra settings) of each GRPO run."""
    return [(method, method, ()) for method in RL_FROM] + ([CLIP_COV_RUN] if size.clip_cov else [])


def _grpo_steps(root: Path, trained: dict, prompts: str, size: DemoSize) -> tuple[list[Step], dict[str, str]]:
    """A short GRPO run from each of RL_FROM's models, and in the full run OXA_Full+CC
    (reward and entropy curves in curves.png). Returns the steps, whose results have the
    policy entropy at every GRPO step, and the tuned models."""
    from train.grpo import GRPORun

    tuned, grpo_steps = {}, []
    for method, start, extra in _grpo_runs(size):
        out = root / "grpo" / method
        run = GRPORun(
            model=trained[start], prompts=prompts, output=str(out), preset="tiny", max_steps=size.grpo_steps,
            overrides=(*GRPO_SETTINGS, *extra, f"instruction={INSTRUCTION}", "disable_tqdm=true"), overwrite=True,
        )  # fmt: skip
        grpo_steps.append(
            Step(
                f"grpo {method}",
                asdict(run),
                partial(_tune, run, out.with_suffix(".log")),
                lambda r: (
                    f"{r['global_step']} steps, reward {_first_last(r['reward'])}, entropy {_first_last(r['entropy'])}"
                ),
            )
        )
        tuned[f"{method}+grpo"] = str(out)
    return grpo_steps, tuned


def _tune(run: GRPORun, log: Path) -> dict:
    from train.grpo import run_grpo

    record = _quietly(log, lambda: run_grpo(run))
    curves = record["curves"]
    return {
        "global_step": record["train"]["global_step"],
        "reward": [v for _, v in curves["reward"]],
        "entropy": [v for _, v in curves["entropy"]],
    }


def _first_last_entropy(record: dict) -> dict:
    return {"initial": record["entropy"][0], "final": record["entropy"][-1]} if record["entropy"] else {}


def _first_last(values: list[float]) -> str:
    return f"{values[0]:.3f} -> {values[-1]:.3f}" if values else "-"


def _eval_steps(root: Path, world: Path, models: dict[str, str], size: DemoSize) -> tuple[list[Step], dict[str, str]]:
    """An evaluation of each model on the held-out problems; returns the steps and each
    model's evaluation folder."""
    from train.eval import EvalConfig

    eval_steps, evals = [], {}
    for method, model in models.items():
        config = EvalConfig(
            model=model, out=str(root / "eval" / method), benchmarks=str(world / HELDOUT_FILE), k=size.eval_k,
            max_new_tokens=size.eval_tokens, backend="hf", overwrite=True, instruction=INSTRUCTION,
            token_budget=EVAL_TOKEN_BUDGET, verifier=VerifierSettings(require_think=False),
        )  # fmt: skip
        eval_steps.append(Step(f"eval {method}", asdict(config), partial(_evaluate, config), _eval_line))
        evals[method] = config.out
    return eval_steps, evals


def _evaluate(config: EvalConfig) -> dict:
    from train.eval import run_eval

    result = run_eval(config, _no_progress)
    average = result["report"]["metrics"][-1]
    return {"out": result["out"], **{k: average[k] for k in ("pass_at_1", "pass_at_k", "mean_length", "mean_entropy")}}


def _no_progress(what: str, done: int, total: int) -> None:
    """Steps side by side report when each is done, not how far each has got."""


def _eval_line(result: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in result.items() if isinstance(v, float))


def _compare(root: Path, evals: dict[str, str], steps: _Steps) -> dict:
    """Every model against SFT on the same held-out problems (`oxa eval compare`)."""
    from train.eval.compare import CompareConfig, run_compare

    config = CompareConfig(list(evals.values()), str(root / "compare"), list(evals), reference="sft")
    return steps.run("compare", asdict(config), lambda: run_compare(config), lambda r: r["table"])


def verdict_line(row: dict, reference: str) -> str:
    """One line per model: its Pass@1 against the reference's, and whether the difference
    lies beyond the 95% interval of the paired bootstrap."""
    low, high = 100 * row["pass_at_1_diff_low"], 100 * row["pass_at_1_diff_high"]
    diff = 100 * row["pass_at_1_diff"]
    if row["pass_at_1_differs"]:
        word = "higher" if diff > 0 else "lower"
        return f"{row['run']}: Pass@1 {diff:+.1f} points against {reference} [{low:+.1f}, {high:+.1f}]: {word}, beyond the interval"
    return f"{row['run']}: Pass@1 {diff:+.1f} points against {reference} [{low:+.1f}, {high:+.1f}]: within the interval"


def _funnel_line(stats: dict) -> str:
    return stats.get("summary") or json.dumps({k: v for k, v in stats.items() if isinstance(v, int)})


def _counts_line(key: str | None = None) -> Callable[[dict], str]:
    def line(stats: dict) -> str:
        if key and isinstance(stats.get(key), dict):
            return ", ".join(f"{k} {v:,}" for k, v in stats[key].items())
        return _funnel_line(stats)

    return line


def _decontamination_summary(stats: dict, planted: dict, selections: dict[str, dict]) -> dict:
    """What decontamination found (match rows by method, beside what the world planted) and
    what each selection left out for it (samples; problems for the RLVR prompts)."""
    return {
        "against": [b["name"] for b in stats["benchmarks"]],
        "summary": stats["summary"],
        "found": _found(stats),
        "planted": planted,
        "contaminated_problems": stats["contaminated"]["problem"],
        "template_problems": stats["template_only"]["problem"],
        "dropped": {
            name: {"rows": _contaminated_dropped(s), "unit": s["parts"][0]["funnel"]["unit"]}
            for name, s in selections.items()
        },
    }


def _dropped_line(dropped: dict) -> str:
    return ", ".join(f"{name} {_rows(d['rows'], d['unit'])}" for name, d in dropped.items())


def _summary(
    ws: Workspace, root: Path, subsets: dict, trained: dict, comparison: dict, entropy: dict, steps: _Steps
) -> dict:
    con = ws.connect()
    try:
        verdicts = con.execute(
            "SELECT origin, verdict, count(*) FROM candidates GROUP BY ALL ORDER BY origin, verdict"
        ).fetchall()
    finally:
        con.close()
    reference = comparison["reference"]
    return {
        "workdir": str(root),
        "workspace": str(ws.root),
        "verdicts": [{"origin": o, "verdict": v, "rows": n} for o, v, n in verdicts],
        "subsets": {m: {k: s.get(k) for k in ("name", "version", "path", "summary")} for m, s in subsets.items()},
        "models": trained,
        "comparison": comparison,
        "against_reference": [verdict_line(r, reference) for r in comparison["rows"] if r["run"] != reference],
        "policy_entropy": entropy,
        "funnels": {name: steps.lines[name] for name in FUNNEL_STEPS},
        "seconds": {name: round(t, 1) for name, t in steps.timings.items()},
    }
