"""README.md's real-run recipe and its Python block, run end to end on the test bed.

The blocks are read from README.md itself. What cannot run on a CPU at full scale is
changed by the short list of substitutions below, each of which must match the README;
every other word of each line runs as the README writes it, one line after another
(`set -e`: each must succeed), in a temporary folder with the venv's `oxa` and `python`
first on PATH.
"""

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.subsets import list_subsets, resolve_subset
from curate.workspace import Workspace
from tests.conftest import query
from tests.doc_commands import ROOT, Block, fenced_blocks, logical_lines

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
LINE_TIMEOUT_S = 600
OUTPUT = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}  # one stream, in order
TAG = "qwen2.5-math-1.5b"  # the recipe's score tag

# The tiny base model's PPLs of the world's correct teacher responses lie far above the
# paper's [1, 5] (measured: 5th percentile 5.7, median 20, 95th 55), and the world holds
# about 30 problems with a correct one: a Gaussian over them, with fewer rows than N taken.
GAUSSIAN = ["mu=20", "sigma=10", "p_min=1", "p_max=100", "w=1", "allow_shortfall=true"]


def sets(*overrides: str) -> str:
    return " ".join(f"--set {override}" for override in overrides)


def recipe_substitutions(world: Path) -> list[tuple[str, str]]:
    """(README words, test-bed words), each replaced wherever the words stand alone."""
    return [
        # no GPU, no vLLM here: transformers on the CPU
        ("--backend vllm", "--backend hf"),
        # scoring's worker per GPU, 8 shards: 2 CPU workers, so the two shards are still tested
        ("$(seq 0 7);", "$(seq 0 1);"),
        ("--shard $i/8", "--shard $i/2"),
        # DeepSpeed ZeRO-2 over 8 GPUs, and GRPO's 8 ranks: one CPU process
        ("accelerate launch --config_file configs/accelerate/zero2.yaml -m curate.cli", "python -m curate.cli"),
        ("accelerate launch --num-processes 8 -m curate.cli", "python -m curate.cli"),
        # the paper's training runs: the tiny presets, 2 optimizer steps
        ("--preset qwen2.5-math-1.5b", "--preset tiny --max-steps 2"),
        ("--preset paper", "--preset tiny --max-steps 2"),
        # the tiny models hold 1,024 positions (generate refuses more new tokens than that)
        # and answer in under 256
        ("--max-new-tokens 32768", "--max-new-tokens 256"),
        # selections sized for 2.6M rows: sized for the tiny world
        ("oxa select ws oxa-mle-qwen2.5-1.5b", "oxa select ws oxa-mle-qwen2.5-1.5b " + sets("N=30", *GAUSSIAN)),
        (
            "oxa select ws oxa-full-qwen2.5-1.5b",
            "oxa select ws oxa-full-qwen2.5-1.5b "
            + sets("positives.N=20", *(f"positives.{o}" for o in GAUSSIAN), "negatives.N=20")
            + " --set negatives.allow_shortfall=true",
        ),
        # the tiny instruct model solves about 1 in 200 of the world's problems: no pass rate
        # reaches 0.2, so the floor goes
        ("oxa select rl rlvr-pass-rate", "oxa select rl rlvr-pass-rate " + sets("N=8", "min_pass_rate=0")),
        # the six benchmarks at n = 128: the world's held-out set, 4 problems, n = 2, short answers
        (
            "--n 128 --n-for minerva=64",
            f"--benchmarks {world / 'heldout.json'} --n 2 --limit 4 --max-new-tokens 32 --backend hf",
        ),
    ]


# `--subset ws/subsets/NAME/VERSION`: VERSION is the one the `oxa select` before it made.
VERSION_PLACEHOLDER = re.compile(r"(?<!\S)(\S+)/subsets/([\w.-]+)/VERSION(?!\S)")


def readme_block(heading: str, language: str) -> Block:
    (block,) = [b for b in fenced_blocks(README) if b.heading == heading and b.language == language]
    return block


def substitute(lines: list[tuple[int, str]], substitutions: list[tuple[str, str]]) -> list[tuple[int, str]]:
    """The lines with the substitutions made; fails if one matches no line."""
    matched = dict.fromkeys((old for old, _ in substitutions), 0)
    out = []
    for number, line in lines:
        for old, new in substitutions:
            line, count = re.subn(rf"(?<!\S){re.escape(old)}(?!\S)", lambda _, new=new: new, line)
            matched[old] += count
        out.append((number, line))
    unmatched = [old for old, count in matched.items() if not count]
    assert not unmatched, f"the README's recipe no longer holds {unmatched}: update the substitutions"
    return out


def run_line(number: int, line: str, cwd: Path, env: dict[str, str]) -> None:
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, timeout=LINE_TIMEOUT_S, **OUTPUT)
    print(f"{time.monotonic() - started:6.1f}s  README.md:{number}  {line}")
    assert done.returncode == 0, (
        f"README.md line {number} failed (exit {done.returncode}):\n  {line}\n--- output (tail) ---\n"
        + done.stdout[-4000:]
    )


@pytest.mark.slow
def test_the_real_run_recipe_runs_on_the_test_bed(synth_world, tiny_models, tmp_path):
    paths = {
        "POOL": synth_world / "pool" / "teacher.jsonl",
        "REFS": synth_world / "references",  # a folder: trace reads each file in it, layout detected per file
        "BASE": tiny_models / "base",
        "SAMPLER": tiny_models / "instruct",
        "RL_POOL": synth_world / "references" / "numina15.parquet",  # problem, answer: DeepScaleR's columns
        "ROLLOUTS": tiny_models / "instruct",
    }
    block = readme_block("From the demo to a real run", "bash")
    lines = substitute(logical_lines(block), recipe_substitutions(synth_world))
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TOKENIZERS_PARALLELISM": "false"}
    assigned, versions = [], {}

    def current_version(match: re.Match) -> str:
        folder = resolve_subset(Workspace.open(tmp_path / match.group(1)), match.group(2))
        versions[match.group(2)] = folder.name
        return f"{match.group(1)}/subsets/{match.group(2)}/{folder.name}"

    for number, line in lines:
        assignment = re.fullmatch(r"([A-Z_]+)=(\S+)", line)
        if assignment:  # the shell's variables: the test bed's paths, for the lines that follow
            name = assignment.group(1)
            assert name in paths, f"README.md line {number}: the recipe sets {name}, which the test bed lacks"
            env[name] = str(paths[name])
            assigned.append(name)
            continue
        run_line(number, VERSION_PLACEHOLDER.sub(current_version, line), tmp_path, env)
    assert sorted(assigned) == sorted(paths)
    assert list(versions) == ["oxa-full-qwen2.5-1.5b"]

    ws = Workspace.open(tmp_path / "ws")
    samples = dict(query(ws, "SELECT origin, count(*) FROM samples GROUP BY origin"))
    assert samples["teacher"] > 0 and samples["self"] > 0
    unjudged = query(ws, "SELECT origin, count(*) FROM candidates WHERE verdict IS NULL GROUP BY origin")
    assert unjudged == []
    unscored = query(ws, f'SELECT origin, count(*) FROM candidates WHERE "ppl_{TAG}" IS NULL GROUP BY origin')
    assert unscored == []
    assert query(ws, "SELECT count(*) FROM candidates")[0][0] == sum(samples.values())
    shards = {re.search(r"shard\d+of\d+", part.name).group() for part in ws.scores_folder(TAG).glob("score-*.parquet")}
    assert shards == {"shard0of2", "shard1of2"}  # the two workers each scored their own share

    subsets = {s["name"]: s for s in list_subsets(ws)}
    assert sorted(subsets) == ["oxa-full-qwen2.5-1.5b", "oxa-mle-qwen2.5-1.5b"]
    loss_types = {
        name: Counter(pq.read_table(Path(s["path"]) / "data.parquet", columns=["loss_type"])["loss_type"].to_pylist())
        for name, s in subsets.items()
    }
    assert set(loss_types["oxa-mle-qwen2.5-1.5b"]) == {0}
    assert loss_types["oxa-full-qwen2.5-1.5b"][0] > 0 and loss_types["oxa-full-qwen2.5-1.5b"][1] > 0

    trained = json.loads((tmp_path / "out" / "oxa-full" / "oxa_train.json").read_text())
    assert trained["status"] == "done" and trained["global_step"] == 2
    assert trained["data"]["subset"]["name"] == "oxa-full-qwen2.5-1.5b"
    assert trained["data"]["subset"]["version"] == versions["oxa-full-qwen2.5-1.5b"]

    rl = Workspace.open(tmp_path / "rl")
    (rlvr,) = list_subsets(rl, "rlvr-pass-rate")
    exported = pq.read_metadata(tmp_path / "rl" / "exports" / "rlvr.verl.parquet").num_rows
    assert exported == rlvr["rows"] > 0

    grpo = json.loads((tmp_path / "out" / "oxa-full-grpo" / "oxa_grpo.json").read_text())
    assert grpo["train"]["global_step"] == 2 and grpo["prompts"]["rows"] == exported

    metrics = pq.read_table(tmp_path / "out" / "eval" / "metrics.parquet").to_pylist()
    (heldout,) = [row for row in metrics if row["benchmark"] == "heldout"]
    assert heldout["problems"] == 4 and heldout["samples"] == 8


@pytest.mark.slow
def test_the_python_block_runs_on_the_test_bed(synth_world, tmp_path):
    script = readme_block("From Python", "python").text
    replacements = [
        ('"AceReason-1.1-SFT/"', json.dumps(str(synth_world / "pool" / "teacher.jsonl"))),
        ('"NuminaMath-1.5/"', json.dumps(str(synth_world / "references"))),
        ('["N=1000"]', '["N=20"]'),  # about 30 of the world's problems have a correct response
    ]
    for old, new in replacements:
        assert script.count(old) == 1, f"the README's Python block no longer holds {old} once"
        script = script.replace(old, new)
    (tmp_path / "recipe.py").write_text(script, encoding="utf-8")
    done = subprocess.run([sys.executable, "recipe.py"], cwd=tmp_path, timeout=LINE_TIMEOUT_S, **OUTPUT)
    assert done.returncode == 0, done.stdout[-4000:]
    printed = re.search(r"^(\d+) rows in (\S+)$", done.stdout, re.M)
    assert printed, done.stdout[-4000:]
    folder = Path(printed.group(2))
    assert folder.parent == tmp_path.resolve() / "ws" / "subsets" / "sft-random" and int(printed.group(1)) == 20
    assert pq.read_metadata(folder / "data.parquet").num_rows == 20
