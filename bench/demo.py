"""The demo as a benchmark: `oxa demo` (and `--fast`) from nothing, timed step by step, and
the checks that the world is learnable (issue 16), whatever the ordering of the methods.

    .venv/bin/python bench/demo.py [--workdir /tmp/oxa-bench-demo] [--skip-full] [--skip-fast] [--skip-loaded] [--threads N]
    .venv/bin/python bench/demo.py --step-times     # the thread policy's evidence alone (~3 minutes)

--step-times: 20 training steps of a model as wide as the demo's (128, batch 32 x 128
tokens), in a fresh process each, on 1 thread, on 2 threads as torch spins them, and on 2
that sleep while they wait (OMP_WAIT_POLICY=PASSIVE), alone and beside a busy neighbour,
three rounds interleaved; printed as the fastest and slowest of each (train/threads.py).

Each size runs twice: on the machine as it is, then beside one busy neighbour (a child
process spinning on one CPU, killed after), so that the two wall times show what a
neighbour costs; the two runs must give the same results. Per run: wall time, each
step's seconds (DIR/demo.json), and the comparison table. Then,
for the full run: the pre-trained model's Pass@1 within 2-30% and its Pass@16 at least
twice that; the instruct model right on some self-distilled answers and wrong on others;
and the model trained on each subset (SFT, SFT_LP, OXA_MLE, OXA_Full) above the
pre-trained one beyond the 95% interval of the paired bootstrap (`oxa eval compare`
against base). For the fast run: the pre-trained model's Pass@1 above zero. The
ordering of the methods is printed, never checked. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from train.demo import METHODS  # noqa: E402

BUSY_NEIGHBOUR = [sys.executable, "-c", "while True: pass"]
# (label, torch threads, OMP_WAIT_POLICY or None for torch's own: spin a while before sleeping)
STEP_POLICIES = [("1 thread", 1, None), ("2 threads, spinning", 2, None), ("2 threads, sleeping", 2, "PASSIVE")]


@contextmanager
def neighbour_if(loaded: bool):
    """With `loaded`, a busy neighbour process for the block's length."""
    neighbour = subprocess.Popen(BUSY_NEIGHBOUR) if loaded else None
    try:
        yield
    finally:
        if neighbour:
            neighbour.kill()
            neighbour.wait()


def run_demo(workdir: Path, fast: bool, threads: int | None, loaded: bool) -> float:
    """Wall seconds of one demo from nothing; with `loaded`, beside a busy neighbour process."""
    if workdir.exists():
        shutil.rmtree(workdir)
    command = [sys.executable, "-m", "curate.cli", "demo", "-o", str(workdir), *(["--fast"] if fast else [])]
    command += ["--threads", str(threads)] if threads else []
    with neighbour_if(loaded):
        started, load = time.perf_counter(), os.getloadavg()[0]
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
    # the machine may be shared: its 1- and 15-minute load averages say what else ran
    print(
        f"\n{workdir.name}: load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        f"{os.getloadavg()[2]:.1f} over 15 minutes"
    )
    return wall


def report(workdir: Path, wall: float, title: str) -> dict:
    steps = json.loads((workdir / "demo.json").read_text())
    summary = json.loads((workdir / "summary.json").read_text())
    print(f"\n== {title}: {wall:.0f} s wall ({wall / 60:.1f} min), {summary['threads']}")
    for name, step in steps.items():
        print(f"  {name:<20} {step['seconds']:7.1f} s")
    print(f"  {'(sum of steps)':<20} {sum(s['seconds'] for s in steps.values()):7.1f} s")
    print()
    print((workdir / "compare" / "compare.md").read_text())
    for line in summary["against_reference"]:
        print(f"  {line}")
    return summary


def checks(workdir: Path) -> list[str]:
    from train.eval.compare import CompareConfig, run_compare

    failed = []
    evals = sorted(p.name for p in (workdir / "eval").iterdir() if (p / "samples").is_dir())
    names = ["base", *(e for e in evals if e != "base")]
    result = run_compare(
        CompareConfig([str(workdir / "eval" / n) for n in names], str(workdir / "compare-base"), names, "base")
    )
    rows = {r["run"]: r for r in result["rows"]}
    base = rows["base"]
    print(f"\npre-trained: Pass@1 {100 * base['pass_at_1']:.1f}%, Pass@{base['k']} {100 * base['pass_at_k']:.1f}%")
    if not 0.02 <= base["pass_at_1"] <= 0.30:
        failed.append(f"base Pass@1 {base['pass_at_1']:.3f} outside 2-30%")
    if base["pass_at_k"] < 2 * base["pass_at_1"]:
        failed.append(f"base Pass@{base['k']} {base['pass_at_k']:.3f} below twice its Pass@1")
    verdicts = {
        row["verdict"]: row["rows"]
        for row in json.loads((workdir / "summary.json").read_text())["verdicts"]
        if row["origin"] == "self"
    }
    judged = verdicts.get("correct", 0) + verdicts.get("incorrect", 0)
    print(f"instruct model's self samples: {verdicts.get('correct', 0)} right, {verdicts.get('incorrect', 0)} wrong")
    if not judged or not 0.02 <= verdicts.get("correct", 0) / judged <= 0.98:
        failed.append(f"instruct model right on {verdicts.get('correct', 0)} of {judged} judged self samples")
    above = [r["run"] for r in result["rows"] if r["pass_at_1_differs"] and r["pass_at_1_diff"] > 0]
    print("above the pre-trained model beyond the interval:", ", ".join(above) or "none")
    for r in result["rows"][1:]:
        print(
            f"  {r['run']:<16} Pass@1 {100 * r['pass_at_1_diff']:+.1f} points "
            f"[{100 * r['pass_at_1_diff_low']:+.1f}, {100 * r['pass_at_1_diff_high']:+.1f}] against base"
        )
    for method in METHODS:  # training on each subset, whichever wins
        if method not in above:
            failed.append(f"{method} is not above the pre-trained model beyond the interval")
    return failed


def idle_and_loaded(workdir: Path, fast: bool, threads: int | None, loaded: bool) -> tuple[dict, list[str]]:
    """The demo as the machine is, then (with `loaded`) beside a busy neighbour: both
    tables, the two wall times side by side, and a failure where the results differ."""
    title = f"oxa demo{' --fast' if fast else ''}"
    idle = run_demo(workdir, fast, threads, loaded=False)
    summary = report(workdir, idle, title)
    if not loaded:
        return summary, []
    busy = run_demo(workdir.with_name(f"{workdir.name}-loaded"), fast, threads, loaded=True)
    loaded_summary = report(workdir.with_name(f"{workdir.name}-loaded"), busy, f"{title}, one busy neighbour")
    print(f"\n{title}: {idle:.0f} s as the machine is, {busy:.0f} s beside a busy neighbour ({busy / idle:.2f}x)")
    same = _results(loaded_summary) == _results(summary)
    return summary, [] if same else [f"{title}: the loaded run's results differ from the other's"]


def _results(summary: dict) -> tuple:
    """What must not change with the load: the subsets' versions and every model's figures."""
    rows = [{k: v for k, v in row.items() if k != "path"} for row in summary["comparison"]["rows"]]
    return {m: s["version"] for m, s in summary["subsets"].items()}, rows


def training_seconds(threads: int, steps: int = 20) -> float:
    """Seconds of `steps` training steps of a demo-wide Qwen2 on `threads` torch threads."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=1024, hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, tie_word_embeddings=True,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = torch.randint(0, config.vocab_size, (32, 128))
    started = None
    for step in range(steps + 1):  # the first, warming up, is not timed
        if step == 1:
            started = time.perf_counter()
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - started


def step_times(rounds: int = 3) -> None:
    """Each policy in a fresh process (OpenMP reads its wait policy as torch loads)."""
    seconds: dict[tuple[str, bool], list[float]] = {}
    for _ in range(rounds):
        for loaded in (False, True):
            with neighbour_if(loaded):
                for label, threads, wait in STEP_POLICIES:
                    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                    env |= {"OMP_WAIT_POLICY": wait} if wait else {}
                    child = [sys.executable, __file__, "--training-seconds", str(threads)]
                    out = subprocess.run(child, check=True, capture_output=True, text=True, env=env).stdout
                    seconds.setdefault((label, loaded), []).append(float(out.split()[-1]))
    print(f"20 training steps, fastest-slowest of {rounds} (load average now {os.getloadavg()[0]:.1f}):")
    print(f"  {'':<22} {'alone':>12} {'beside a busy neighbour':>26}")
    for label, _, _ in STEP_POLICIES:
        alone, loaded = (seconds[(label, x)] for x in (False, True))
        print(f"  {label:<22} {min(alone):5.1f}-{max(alone):4.1f} s {min(loaded):19.1f}-{max(loaded):4.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/oxa-bench-demo"))
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-fast", action="store_true")
    parser.add_argument("--skip-loaded", action="store_true", help="no second run beside a busy neighbour")
    parser.add_argument("--threads", type=int, help="oxa demo --threads (default: the demo's own)")
    parser.add_argument("--step-times", action="store_true", help="only the thread policies' training step times")
    parser.add_argument("--training-seconds", type=int, help=argparse.SUPPRESS)  # one child of --step-times
    args = parser.parse_args()
    if args.training_seconds:
        print(training_seconds(args.training_seconds))
        return
    if args.step_times:
        step_times()
        return
    failed = []
    if not args.skip_fast:
        summary, failed = idle_and_loaded(args.workdir / "fast", True, args.threads, not args.skip_loaded)
        base = next(r for r in summary["comparison"]["rows"] if r["run"] == "base")
        if not base["pass_at_1"] > 0:
            failed.append("the fast run's pre-trained model has a Pass@1 of zero")
    if not args.skip_full:
        _, differ = idle_and_loaded(args.workdir / "full", False, args.threads, not args.skip_loaded)
        failed += differ + checks(args.workdir / "full")
    for message in failed:
        print(f"CHECK FAILED: {message}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
