"""One command-line grammar (issue 32, item 6), checked over the whole typer app, the
trainer's commands included, as docs/cli.md's conventions state it:

1. every command takes `-h` (and `--help`), and `oxa --version` answers;
2. a path a command writes is `-o/--output`, and nothing else is spelled so;
3. `--overwrite` is a plain flag, the same everywhere, and every command with an output has
   it (the demo's resumed folder excepted); without it a non-empty output is refused;
4. one knob, one spelling: CONCEPTS names each concept's spelling and the spellings it must
   not have;
5. the spellings renamed in this release still work, hidden, with a note on stderr, and hand
   the command exactly what the new spelling does; both at once is an error; the docs use
   none of them;
6. presets are TOML or YAML wherever a command takes one;
7. `oxa generate` recovers from a run that failed before writing anything.

Commands are parsed or stopped where they hand over their settings (the stage's run
function replaced): nothing is trained, evaluated or generated here but in 7, on a
random-weight model of a second.
"""

from __future__ import annotations

import importlib
import json
import tomllib

import pytest
import typer
import yaml
from typer.testing import CliRunner

from curate import __version__
from curate.cli import app
from curate.workspace import MissingExtra, OxaError
from tests.conftest import write_jsonl
from tests.doc_commands import (
    DOC_FILES,
    ROOT,
    fenced_blocks,
    inline_commands,
    logical_lines,
    oxa_invocations,
    synopsis_variants,
)

OXA = typer.main.get_command(app)
runner = CliRunner()

# Parameters that hold a path the command writes, by name. An input folder is named for
# what it is: `oxa eval report DIR` and `oxa eval compare RUNS...` read evaluations.
OUTPUT_NAMES = {"output", "out", "workdir", "output_dir", "out_dir", "dst", "dest", "destination"}
# Commands whose output is resumed, never overwritten: no --overwrite, and why.
RESUMED_WITHOUT_OVERWRITE = {
    "oxa demo": "its folder is the demo's workdir: run again, it reuses every step done (DIR/demo.json, "
    "tests/test_demo.py), and a folder holding anything else is refused",
}

# concept: (the one visible spelling, the parameter names that hold it, spellings it must not have)
CONCEPTS = {
    "output path": ("--output", {"output"}, {"--out", "--workdir", "--output-dir", "--dst", "--dest"}),
    "replace an output": ("--overwrite", {"overwrite"}, {"--force", "--replace", "--no-overwrite"}),
    "tokens per batch": (
        "--batch-tokens",
        {"batch_tokens"},
        {"--token-budget", "--tokens-per-batch", "--max-batch-tokens"},
    ),
    # what is drawn per problem or prompt (generate, eval, eval entropy); not Pass@k's k, below
    "samples per problem": ("--n", {"n"}, {"--k", "--num-samples", "--samples", "--num-generations"}),
    "samples per problem of a set": ("--n-for", {"n_for"}, {"--k-for"}),
    # the k of a Pass@k (at most n): only where stored samples are read
    "Pass@k's k": ("--k", {"k"}, set()),
    "seed": ("--seed", {"seed"}, {"--random-seed"}),
    "instruction": ("--instruction", {"instruction"}, {"--prompt-suffix", "--suffix"}),
    "backend": ("--backend", {"backend"}, {"--generation", "--engine", "--generation-backend"}),
    "dtype": ("--dtype", {"dtype"}, {"--torch-dtype", "--precision"}),
    "shard": ("--shard", {"shard"}, {"--rank"}),
    "tag": ("--tag", {"tag"}, set()),
    "model": ("--model", {"model"}, {"--model-path", "--model-dir"}),
    "where": ("--where", {"where"}, {"--filter", "--predicate"}),
    "preset": ("--preset", {"preset"}, {"--config"}),
    "set": ("--set", {"set_"}, {"--override"}),
    "answer after </think>": ("--require-think", {"require_think"}, set()),
}
K_IS_PASS_AT_K = {"oxa eval report", "oxa eval compare"}  # --k anywhere else would be samples per problem


def walk(command=OXA, path: str = "oxa"):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, f"{path} {name}")


COMMANDS = dict(walk())


def visible_options(command):
    return [p for p in command.params if p.param_type_name == "option" and not p.hidden]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


# -- 1. -h and --version ------------------------------------------------------------------


@pytest.mark.parametrize("path", list(COMMANDS))
def test_every_command_takes_dash_h(path):
    result = invoke(*path.split()[1:], "-h")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"oxa {__version__}"


# -- 2. and 3. outputs and --overwrite ----------------------------------------------------


def test_every_output_is_dash_o_output_and_comes_with_overwrite():
    problems = []
    for path, command in COMMANDS.items():
        outputs = [p for p in command.params if p.name in OUTPUT_NAMES and not getattr(p, "hidden", False)]
        for param in outputs:
            if param.param_type_name != "option" or sorted(param.opts) != ["--output", "-o"]:
                problems.append(f"{path}: the output {param.name} is {param.opts}, not -o/--output")
        for param in visible_options(command):
            if {"-o", "--output"} & set(param.opts) and param.name != "output":
                problems.append(f"{path}: {param.opts} is spelled as an output but holds {param.name}")
        overwrite = [p for p in visible_options(command) if "overwrite" in p.name or "--overwrite" in p.opts]
        for param in overwrite:
            if param.opts != ["--overwrite"] or param.secondary_opts or not param.is_flag or param.default:
                problems.append(f"{path}: {param.opts}/{param.secondary_opts} is not the plain flag --overwrite")
        if outputs and not overwrite and path not in RESUMED_WITHOUT_OVERWRITE:
            problems.append(f"{path} writes -o/--output but has no --overwrite")
    assert not problems, "\n".join(problems)
    assert set(RESUMED_WITHOUT_OVERWRITE) <= set(COMMANDS)


# the commands that write an output path, and the arguments they need besides it
REFUSING = [
    pytest.param(["sql", "WS", "SELECT 1"], "file", id="sql"),
    pytest.param(["eval", "compare", "a", "b"], "folder", id="eval compare"),
    pytest.param(["eval", "entropy", "--model", "m", "--prompts", "p"], "folder", id="eval entropy"),
    pytest.param(["synth", "world"], "folder", id="synth world"),
    pytest.param(["synth", "model", "--world", "w"], "folder", id="synth model"),
    pytest.param(["model", "prepare", "src"], "folder", id="model prepare"),
    pytest.param(["train", "grpo", "--model", "m", "--prompts", "p"], "folder", id="train grpo"),
    pytest.param(["train", "sft", "--model", "m", "--preset", "tiny", "--subset", "s"], "folder", id="train sft"),
]


@pytest.mark.parametrize(("command", "kind"), REFUSING)
def test_an_existing_output_is_refused_without_overwrite(command, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if command[0] == "sql":
        assert invoke("init", "WS").exit_code == 0
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text("{}")  # model prepare's source, checked first
    target = tmp_path / "taken"
    if kind == "file":
        target.write_text("mine")
    else:
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    result = invoke(*command, "-o", target)
    assert isinstance(result.exception, OxaError), result.output
    message = str(result.exception)
    assert message.startswith(f"{target} exists") and message.endswith(" or pass --overwrite"), message
    assert (target / "keep.txt" if kind == "folder" else target).read_text() == "mine"


def test_an_empty_output_folder_is_as_good_as_none(tmp_path):
    from curate.workspace.parts import refuse_to_fill

    (tmp_path / "empty").mkdir()
    refuse_to_fill(tmp_path / "empty", overwrite=False)
    refuse_to_fill(tmp_path / "new", overwrite=False)
    (tmp_path / "empty" / "x").write_text("")
    with pytest.raises(OxaError, match="exists and is not an empty folder; choose another path or pass --overwrite"):
        refuse_to_fill(tmp_path / "empty", overwrite=False)
    refuse_to_fill(tmp_path / "empty", overwrite=True)


def test_eval_refuses_a_folder_holding_no_evaluation(tmp_path):
    from train.eval.evaluate import _check_out

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "config.json").write_text("{}")
    with pytest.raises(OxaError, match="exists and is not an empty folder"):
        _check_out(tmp_path / "models", {"k": 2}, overwrite=False)
    _check_out(tmp_path / "models", {"k": 2}, overwrite=True)
    _check_out(tmp_path / "new", {"k": 2}, overwrite=False)


def test_the_demo_resumes_its_own_folder_and_refuses_any_other(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    result = invoke("demo", "-o", tmp_path / "mine")
    assert isinstance(result.exception, OxaError)
    assert "holds files but no demo (demo.json); choose another --output" in str(result.exception)


# -- 4. one knob, one spelling ------------------------------------------------------------


def test_one_spelling_per_concept():
    problems = []
    for path, command in COMMANDS.items():
        for param in visible_options(command):
            names = set(param.opts) | set(param.secondary_opts)
            for concept, (spelling, params, wrong) in CONCEPTS.items():
                if param.name in params and spelling not in param.opts:
                    problems.append(f"{path}: {concept} is {param.opts}, not {spelling}")
                taken = names & wrong
                if concept == "samples per problem" and path in K_IS_PASS_AT_K:
                    taken -= {"--k"}
                if taken:
                    problems.append(f"{path}: {sorted(taken)} spells {concept} otherwise than {spelling}")
            if param.name == "k" and path not in K_IS_PASS_AT_K:
                problems.append(f"{path}: --k is Pass@k's k, only where stored samples are read")
    assert not problems, "\n".join(problems)


def test_the_same_knob_has_the_same_default():
    def defaults(name):
        return {path: p.default for path, c in COMMANDS.items() for p in visible_options(c) if p.name == name}

    assert set(defaults("require_think").values()) == {True}  # oxa verify's, the paper's rule
    assert set(defaults("require_think")) == {"oxa verify", "oxa eval"}
    assert set(defaults("batch_tokens").values()) == {16384}
    assert set(defaults("batch_tokens")) == {"oxa score", "oxa eval", "oxa eval entropy"}
    assert {path for path, _ in defaults("n").items()} == {"oxa generate", "oxa eval", "oxa eval entropy"}


# -- 5. the old spellings, hidden for one release ------------------------------------------


class Handed(Exception):
    """What a command handed its stage: raised in place of the stage's run function."""


def hand_over(monkeypatch, module: str, *names: str) -> None:
    """Replace the stage's functions in the module the command imports them from (set in the
    module's namespace, so that a lazy package loads nothing)."""

    def stop(*args, **kwargs):
        raise Handed(*args)

    for name in names:
        monkeypatch.setitem(vars(importlib.import_module(module)), name, stop)


def record(**fields):
    return fields  # GRPORun's stand-in: the fields the command sets


# command (with what it needs besides), the old spellings, the new ones, where it hands over
RENAMED = [
    pytest.param(
        ["eval", "--model", "m"],
        ["--out", "o", "--k", "3", "--k-for", "s=2", "--token-budget", "99"],
        ["-o", "o", "--n", "3", "--n-for", "s=2", "--batch-tokens", "99"],
        ("train.eval", "run_eval"),
        id="eval",
    ),
    pytest.param(
        ["eval", "entropy", "--model", "m", "--prompts", "p"],
        ["--out", "o", "--token-budget", "99"],
        ["--output", "o", "--batch-tokens", "99"],
        ("train.eval", "run_entropy"),
        id="eval entropy",
    ),
    pytest.param(
        ["eval", "compare", "a", "b"], ["--out", "o"], ["-o", "o"], ("train.eval.compare", "run_compare"), id="compare"
    ),
    pytest.param(["demo", "--fast"], ["--workdir", "o"], ["-o", "o"], ("train.demo", "run_demo"), id="demo"),
    pytest.param(["synth", "world"], ["o"], ["-o", "o"], ("curate.cli.synth", "build_world"), id="synth world"),
    pytest.param(
        ["synth", "model", "--world", "w"], ["o"], ["-o", "o"], ("train.tiny", "build_tiny_models"), id="synth model"
    ),
    pytest.param(
        ["model", "prepare", "src"],
        ["o", "--no-overwrite"],
        ["-o", "o"],
        ("train.sft", "prepare_model"),
        id="model prepare",
    ),
    pytest.param(
        ["train", "sft", "--model", "m", "--preset", "tiny", "--subset", "s", "-o", "o"],
        ["--no-overwrite"],
        [],
        ("train.sft", "run_sft"),
        id="train sft",
    ),
    pytest.param(
        ["train", "grpo", "--model", "m", "--prompts", "p", "-o", "o"],
        ["--generation", "transformers"],
        ["--backend", "hf"],
        ("train.grpo", "run_grpo"),
        id="train grpo",
    ),
]


@pytest.mark.parametrize(("command", "old", "new", "stage"), RENAMED)
def test_old_spellings_still_work_hidden_with_a_note(command, old, new, stage, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hand_over(monkeypatch, *stage)
    if stage[0] == "train.grpo":  # GRPORun lives beside TRL's GRPOTrainer: stand in for it too
        monkeypatch.setitem(vars(importlib.import_module("train.grpo")), "GRPORun", record)
    via_old, via_new = invoke(*command, *old), invoke(*command, *new)
    assert isinstance(via_old.exception, Handed), via_old.output
    assert isinstance(via_new.exception, Handed), via_new.output
    assert via_old.exception.args == via_new.exception.args
    notes = [line for line in via_old.stderr.splitlines() if line.startswith("note: ")]
    spelled = [w for w in old if w.startswith("--")] + (["the positional OUT"] if not old[0].startswith("-") else [])
    assert len(notes) == len(spelled), notes
    for spelling in spelled:
        assert any(f"{spelling} is deprecated and goes in the next release; write " in n for n in notes), notes
    assert "note:" not in via_new.stderr


def test_grpo_backend_hf_is_transformers(tmp_path, monkeypatch):
    hand_over(monkeypatch, "train.grpo", "run_grpo")
    monkeypatch.setitem(vars(importlib.import_module("train.grpo")), "GRPORun", record)
    handed = invoke("train", "grpo", "--model", "m", "--prompts", "p", "-o", tmp_path / "o", "--backend", "hf")
    assert handed.exception.args[0]["generation_backend"] == "transformers"
    handed = invoke("train", "grpo", "--model", "m", "--prompts", "p", "-o", tmp_path / "o")
    assert handed.exception.args[0]["generation_backend"] is None  # the preset's


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "compare", "a", "b", "--out", "x", "-o", "y"],
        ["synth", "world", "x", "-o", "y"],
        [
            "train",
            "sft",
            "--model",
            "m",
            "--preset",
            "tiny",
            "--subset",
            "s",
            "-o",
            "o",
            "--overwrite",
            "--no-overwrite",
        ],
    ],
    ids=["option", "positional", "flag"],
)
def test_old_and_new_spelling_together_is_an_error(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert isinstance(result.exception, OxaError), result.output
    assert "is the old spelling of" in str(result.exception) and " only" in str(result.exception)


def test_old_spellings_are_hidden_from_help_and_reference():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for path, command in COMMANDS.items():
        for param in command.params:  # an old positional: see test_every_output_is_dash_o_output_...
            if getattr(param, "hidden", False) and param.param_type_name == "option":
                assert param.opts[0] not in invoke(*path.split()[1:], "-h").output.split(), (path, param.opts)
                assert f"| `{param.opts[0]}`" not in page.split(f"\n## {path}\n")[1].split("\n## ")[0]


def deprecated_spellings(argv: list[str]) -> list[str]:
    """The hidden spellings a documented command uses: options, and a positional output."""
    command, found, positional, i = OXA, [], 0, 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("-") and word != "-":
            name = word.partition("=")[0]
            options = [p for p in command.params if p.param_type_name == "option"]
            param = next((p for p in options if name in (*p.opts, *p.secondary_opts)), None)
            if param is not None:
                if param.hidden:
                    found.append(name)
                if not param.is_flag and "=" not in word:
                    i += param.nargs
        elif hasattr(command, "commands") and word in command.commands:
            command, positional = command.commands[word], 0
        else:
            positional += 1
        i += 1
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    takes = sum(p.nargs if p.nargs > 0 else 10**6 for p in arguments if not p.hidden)
    if any(p.hidden for p in arguments) and positional > takes:
        found.append("a positional output")
    return found


def test_the_docs_use_no_old_spelling():
    used = []
    for doc in DOC_FILES:
        page = doc.relative_to(ROOT)
        for block in fenced_blocks(doc):
            if block.is_shell:
                for number, line in logical_lines(block):
                    for variants in synopsis_variants(line):
                        used += [f"{page}:{number}: {s}" for v in variants for s in deprecated_spellings(v)]
        for number, code in inline_commands(doc):
            for variants in synopsis_variants(code):
                used += [f"{page}:{number}: {s}" for v in variants for s in deprecated_spellings(v)]
    assert not used, "\n".join(sorted(set(used)))
    assert deprecated_spellings(["synth", "world", "WORLD"]) == ["a positional output"]
    assert deprecated_spellings(["model", "prepare", "SRC", "-o", "DST"]) == []
    assert deprecated_spellings(["eval", "--model", "M", "--k", "8"]) == ["--k"]
    assert oxa_invocations("oxa demo --workdir d") == [["demo", "--workdir", "d"]]


# -- 6. presets in TOML or YAML -----------------------------------------------------------


def test_a_training_preset_may_be_yaml(tmp_path):
    from train.sft.presets import presets_dir, resolve_preset, training_preset_names

    table = tomllib.loads((presets_dir() / "tiny.toml").read_text(encoding="utf-8"))
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(table), encoding="utf-8")
    as_yaml, as_toml = resolve_preset(str(mine), ["learning_rate=1e-3"]), resolve_preset("tiny", ["learning_rate=1e-3"])
    assert as_yaml.settings == as_toml.settings and as_yaml.global_batch_size == as_toml.global_batch_size
    assert as_yaml.name == "mine" and "tiny" in training_preset_names()
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(OxaError, match="must hold a table of settings"):
        resolve_preset(str(tmp_path / "bad.yaml"))
    with pytest.raises(OxaError, match="no training preset or file 'nope'; give a .toml or .yaml file or one of: "):
        resolve_preset("nope")


def test_a_grpo_preset_may_be_yaml(tmp_path):
    from train.grpo.grpo import GRPORun, grpo_preset_names, resolve_grpo_settings

    mine = tmp_path / "mine.yml"
    mine.write_text("base: tiny\nmax_completion_length: 16\n", encoding="utf-8")
    settings, record = resolve_grpo_settings(GRPORun("m", "p", str(tmp_path / "o"), preset=str(mine)), ranks=1)
    tiny, _ = resolve_grpo_settings(GRPORun("m", "p", str(tmp_path / "o"), preset="tiny"), ranks=1)
    assert settings == tiny | {"max_completion_length": 16}
    assert record["name"] == "mine" and record["base"] == "tiny"
    assert grpo_preset_names() == ["paper", "paper-clipcov", "tiny"]


# -- 7. oxa generate after a failed run --------------------------------------------------

TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_generate_recovers_from_a_run_that_failed_before_writing(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: --backend vllm would not fail")
    from tests.tiny_random import save_tiny_random_model

    monkeypatch.chdir(tmp_path)
    rows = [{"question": f"What is {i}+{i}?", "solution": f"\\boxed{{{2 * i}}}"} for i in range(1, 3)]
    write_jsonl(tmp_path / "qa.jsonl", rows)
    assert invoke("init", "ws").exit_code == 0
    ingested = invoke("ingest", "ws", "qa.jsonl", "--map", "problem=question", "--map", "response=solution")
    assert ingested.exit_code == 0, ingested.output
    model = save_tiny_random_model(tmp_path / "m", [r["question"] + r["solution"] for r in rows], TEMPLATE)
    generate = ["generate", "ws", "--model", model, "--n", "1", "--max-new-tokens", "4"]

    # no vLLM: the run fails before its first sample and claims nothing
    failed = invoke(*generate, "--tag", "mine", "--backend", "vllm")
    assert isinstance(failed.exception, MissingExtra), failed.output
    assert not (tmp_path / "ws" / "pool" / "self" / "mine" / "manifest.json").exists()
    rerun = invoke(*generate, "--tag", "mine", "--backend", "hf")  # the rerun its error suggests
    assert rerun.exit_code == 0, rerun.output
    assert json.loads((tmp_path / "ws" / "pool" / "self" / "mine" / "manifest.json").read_text())["backend"] == "hf"

    # a claim an earlier oxa left, with nothing written under it, is dropped
    stale = tmp_path / "ws" / "pool" / "self" / "old"
    stale.mkdir(parents=True)
    (stale / "manifest.json").write_text(json.dumps({"fingerprint": "0" * 16, "model_path": "gone", "backend": "vllm"}))
    assert invoke(*generate, "--tag", "old", "--backend", "hf").exit_code == 0
    assert json.loads((stale / "manifest.json").read_text())["backend"] == "hf"

    # a tag that holds samples of another config is refused, naming no option generate lacks
    refused = invoke(*generate, "--tag", "mine", "--backend", "hf", "--temperature", "0.5")
    assert isinstance(refused.exception, OxaError)
    assert str(refused.exception).endswith("; use a new --tag") and "--overwrite" not in str(refused.exception)
