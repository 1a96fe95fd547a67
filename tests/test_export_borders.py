"""Exports never change what a row trains (issue 32): trl and alpaca refuse a subset holding
loss_type 1 rows until --negatives says drop, separate or keep; a trl folder reads with
`datasets.load_dataset(DIR)` as `trl sft --dataset_name DIR` calls it; alpaca writes the
dataset_info.json entry LLaMA-Factory reads; folder exports name their subset in
oxa_export.json; verl rows carry a data_source that verl's default reward scores, the
pool's source and problem_id in extra_info; and oxa's verl reward function, called as verl
calls it, gives `oxa verify`'s verdicts."""

import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import __version__
from curate.cli import app
from curate.select import SelectConfig, run_select
from curate.subsets import ExportConfig, run_export
from curate.subsets.export import ALPACA_COLUMNS, VERL_DATA_SOURCE
from curate.text.instructions import KNOWN_SUFFIXES
from curate.verify import VerifyConfig, run_verify
from curate.workspace import OxaError, Workspace
from tests.conftest import query
from tests.pools import TAG, add_pool, mix_subset

SUFFIX = "\n" + KNOWN_SUFFIXES[0]
REWARD_FILE = Path(__file__).resolve().parents[1] / "train" / "grpo" / "verl_reward.py"
ENTRY = {"formatting": "alpaca", "columns": ALPACA_COLUMNS}


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """A mix subset `full` (4 positives, then 2 negatives) and `pos` (3 positives only)."""
    root = tmp_path_factory.mktemp("borders")
    ws = Workspace.init(root / "ws")
    full = mix_subset(ws, root)
    run_select(ws, SelectConfig(name="pos", strategy="lowest_ppl", scores_tag=TAG, where="verdict = 'correct'", n=3))
    rows = pq.read_table(f"{full['path']}/data.parquet").to_pylist()
    assert [r["loss_type"] for r in rows] == [0, 0, 0, 0, 1, 1]
    return ws, rows, Path(full["path"]).name


def export(ws, fmt, output, subset="full", **options):
    return run_export(ws, ExportConfig(subset=subset, format=fmt, output=str(output), **options))


def refusal(version: str, reader: str, second: str) -> str:
    return (
        f"subset full/{version} holds 2 loss_type 1 rows (wrong answers to suppress), which {reader} trains as "
        "positives; choose --negatives drop (positives only, for plain SFT), --negatives separate (the negatives "
        f"in a second {second}) or --negatives keep (for trainers that read loss_type: oxa train sft, the paper's "
        "LLaMA-Factory fork)"
    )


def trl_row(row: dict) -> dict:
    return {
        "prompt": [{"role": "user", "content": row["problem"] + SUFFIX}],
        "completion": [{"role": "assistant", "content": row["response"]}],
        "loss_type": row["loss_type"],
    }


def sample_ids(rows: list[dict], responses: list[str]) -> list[str]:
    by_response = {r["response"]: r["sample_id"] for r in rows}
    return [by_response[response] for response in responses]


def ids_of(rows: list[dict], loss_types: tuple[int, ...]) -> list[str]:
    return [r["sample_id"] for r in rows if r["loss_type"] in loss_types]


def load_as_trl_does(folder: Path):
    """trl/scripts/sft.py: load_dataset(dataset_name, name=dataset_config, streaming=...)."""
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(str(folder), name=None, streaming=False)


# -- the refusal -----------------------------------------------------------------------


def test_trl_and_alpaca_refuse_negatives_naming_the_count_and_the_choices(subset, tmp_path):
    ws, _, version = subset
    for fmt, output, reader, second in (
        ("trl", tmp_path / "trl", "TRL's SFTTrainer", "split"),
        ("trl", tmp_path / "trl.parquet", "TRL's SFTTrainer", "split"),
        ("alpaca", tmp_path / "alpaca.json", "LLaMA-Factory as released", "file"),
    ):
        with pytest.raises(OxaError) as refused:
            export(ws, fmt, output)
        assert str(refused.value) == refusal(version, reader, second)
    assert list(tmp_path.iterdir()) == []  # nothing written, dataset_info.json included
    # a subset without loss_type 1 rows needs no choice
    assert export(ws, "trl", tmp_path / "pos", subset="pos")["rows"] == 3


def test_the_command_refuses_in_one_line_and_exports_with_a_choice(subset, tmp_path):
    ws, _, version = subset
    result = CliRunner().invoke(app, ["export", str(ws.root), "full", "--format", "trl", "-o", str(tmp_path / "t")])
    assert isinstance(result.exception, OxaError) and str(result.exception) == refusal(
        version, "TRL's SFTTrainer", "split"
    )
    result = CliRunner().invoke(
        app, ["export", str(ws.root), "full", "--format", "trl", "-o", str(tmp_path / "t"), "--negatives", "drop"]
    )
    assert result.exit_code == 0, result.output
    assert f"full/{version} -> " in result.output
    assert "(trl, 4 rows; 2 loss_type 1 rows left out)" in " ".join(result.output.split())


MISPLACED = [
    (
        "verl",
        "rl.parquet",
        {"negatives": "drop"},
        "--negatives applies to --format trl and alpaca; --format verl writes prompts, no responses",
    ),
    (
        "hf",
        "hf",
        {"negatives": "keep"},
        "--negatives applies to --format trl and alpaca; --format hf writes the subset's rows as they are",
    ),
    ("trl", "t", {"negatives": "all"}, "unknown --negatives 'all'; choose one of drop, separate, keep"),
    ("trl", "t", {"negatives": "keep", "data_source": "x"}, "--data-source applies to --format verl, not trl"),
    ("verl", "rl.parquet", {"data_source": " "}, f"--data-source is empty; leave it out for {VERL_DATA_SOURCE}"),
    (
        "trl",
        "t.parquet",
        {"negatives": "separate"},
        "--negatives separate writes the negatives as a second split of a folder; 't.parquet' is one file: give "
        "--output a folder (a name without .parquet or .jsonl), e.g. {tmp}/t",
    ),
    ("trl", "t.json", {"negatives": "keep"}, "--format trl writes a folder, .parquet or .jsonl; got 't.json'"),
    ("hf", "h.parquet", {}, "--format hf writes a folder; got 'h.parquet'"),
    (
        "alpaca",
        "dataset_info.json",
        {"negatives": "keep"},
        "--output dataset_info.json is where LLaMA-Factory lists its datasets; name the file otherwise",
    ),
]


@pytest.mark.parametrize(("fmt", "output", "options", "message"), MISPLACED)
def test_negatives_and_data_source_apply_to_their_formats_only(subset, tmp_path, fmt, output, options, message):
    ws, _, _ = subset
    with pytest.raises(OxaError) as refused:
        export(ws, fmt, tmp_path / output, **options)
    assert str(refused.value) == message.format(tmp=tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- drop, separate, keep ----------------------------------------------------------------


def test_drop_keeps_exactly_the_positives(subset, tmp_path):
    ws, rows, version = subset
    stats = export(ws, "trl", tmp_path / "sft", negatives="drop")
    assert (stats["rows"], stats["negatives"]) == (4, "drop")
    loaded = load_as_trl_does(tmp_path / "sft")
    assert list(loaded) == ["train"]
    train = loaded["train"].to_list()
    assert sample_ids(rows, [r["completion"][0]["content"] for r in train]) == ids_of(rows, (0,))
    assert train == [trl_row(r) for r in rows if r["loss_type"] == 0]
    assert json.loads((tmp_path / "sft" / "oxa_export.json").read_text()) == {
        "subset": f"full/{version}",
        "name": "full",
        "version": version,
        "format": "trl",
        "negatives": "drop",
        "instruction": KNOWN_SUFFIXES[0],
        "splits": {"train": {"path": "data/train-00000-of-00001.parquet", "rows": 4}},
        "oxa_version": __version__,
    }

    export(ws, "alpaca", tmp_path / "lf" / "full.json", negatives="drop")
    records = json.loads((tmp_path / "lf" / "full.json").read_text())
    assert sample_ids(rows, [r["output"] for r in records]) == ids_of(rows, (0,))
    assert {r["loss_type"] for r in records} == {0}
    assert sorted(p.name for p in (tmp_path / "lf").iterdir()) == ["dataset_info.json", "full.json"]

    export(ws, "trl", tmp_path / "one.jsonl", negatives="drop")  # a single file, as before
    lines = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    assert lines == [trl_row(r) for r in rows if r["loss_type"] == 0]


def test_separate_writes_both_with_exact_ids(subset, tmp_path):
    ws, rows, _ = subset
    stats = export(ws, "trl", tmp_path / "sft", negatives="separate")
    assert stats["rows"] == 6
    assert {split: s["rows"] for split, s in stats["splits"].items()} == {"train": 4, "negatives": 2}
    loaded = load_as_trl_does(tmp_path / "sft")  # `trl sft` trains the train split, and only it
    assert sorted(loaded) == ["negatives", "train"]
    for split, loss_types in (("train", (0,)), ("negatives", (1,))):
        got = loaded[split].to_list()
        assert sample_ids(rows, [r["completion"][0]["content"] for r in got]) == ids_of(rows, loss_types)
        assert got == [trl_row(r) for r in rows if r["loss_type"] in loss_types]
    marker = json.loads((tmp_path / "sft" / "oxa_export.json").read_text())
    assert (marker["negatives"], marker["splits"]) == (
        "separate",
        {
            "train": {"path": "data/train-00000-of-00001.parquet", "rows": 4},
            "negatives": {"path": "data/negatives-00000-of-00001.parquet", "rows": 2},
        },
    )

    export(ws, "alpaca", tmp_path / "lf" / "oxa.json", negatives="separate")
    for name, loss_types in (("oxa.json", (0,)), ("oxa.negatives.json", (1,))):
        records = json.loads((tmp_path / "lf" / name).read_text())
        assert sample_ids(rows, [r["output"] for r in records]) == ids_of(rows, loss_types)
        assert {r["loss_type"] for r in records} == set(loss_types)
    assert json.loads((tmp_path / "lf" / "dataset_info.json").read_text()) == {
        "full": {"file_name": "oxa.json", **ENTRY},
        "full-negatives": {"file_name": "oxa.negatives.json", **ENTRY},
    }


def test_keep_keeps_loss_type(subset, tmp_path):
    ws, rows, _ = subset
    export(ws, "trl", tmp_path / "sft", negatives="keep")
    train = load_as_trl_does(tmp_path / "sft")["train"]
    assert train.column_names == ["prompt", "completion", "loss_type"]
    assert train.to_list() == [trl_row(r) for r in rows]
    export(ws, "alpaca", tmp_path / "full.json", negatives="keep")
    records = json.loads((tmp_path / "full.json").read_text())
    assert sample_ids(rows, [r["output"] for r in records]) == ids_of(rows, (0, 1))
    assert [r["loss_type"] for r in records] == [0, 0, 0, 0, 1, 1]


def test_a_trl_folder_is_replaced_only_with_overwrite_and_a_name_with_a_dot_is_a_folder(subset, tmp_path):
    ws, _, _ = subset
    output = tmp_path / "oxa-full-qwen2.5-1.5b"  # the suffix '.5b' is no file type
    export(ws, "trl", output, negatives="drop")
    with pytest.raises(OxaError, match="exists; choose another path or pass --overwrite"):
        export(ws, "trl", output, negatives="keep")
    export(ws, "trl", output, negatives="keep", overwrite=True)
    assert load_as_trl_does(output)["train"].num_rows == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oxa-full-qwen2.5-1.5b"]


# -- dataset_info.json ------------------------------------------------------------------


def test_dataset_info_is_merged_never_clobbered(subset, tmp_path):
    ws, _, _ = subset
    folder = tmp_path / "data"
    folder.mkdir()
    theirs = {"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}
    (folder / "dataset_info.json").write_text(json.dumps(theirs))
    export(ws, "alpaca", folder / "full.json", negatives="keep")
    assert json.loads((folder / "dataset_info.json").read_text()) == theirs | {
        "full": {"file_name": "full.json", **ENTRY}
    }
    export(ws, "alpaca", folder / "full.json", negatives="drop", overwrite=True)  # the same file: replaced
    assert json.loads((folder / "dataset_info.json").read_text())["full"]["file_name"] == "full.json"

    with pytest.raises(OxaError) as refused:
        export(ws, "alpaca", folder / "other.json", negatives="keep")
    assert str(refused.value) == (
        f"{folder / 'dataset_info.json'} already has a dataset 'full' that is not other.json; export into another "
        "folder, or remove that entry"
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dataset_info.json").write_text("{not json")
    with pytest.raises(OxaError) as refused:
        export(ws, "alpaca", bad / "full.json", negatives="keep")
    assert str(refused.value) == (
        f"{bad / 'dataset_info.json'} is not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)); fix or remove it, and export again"
    )
    (bad / "dataset_info.json").write_text("[]")
    with pytest.raises(OxaError, match="holds a JSON list, not LLaMA-Factory's object of datasets"):
        export(ws, "alpaca", bad / "full.json", negatives="keep")
    assert sorted(p.name for p in bad.iterdir()) == ["dataset_info.json"]
    assert sorted(p.name for p in folder.iterdir()) == ["dataset_info.json", "full.json"]


# -- hf ----------------------------------------------------------------------------------


def test_the_hf_folder_carries_the_card_and_names_its_subset(subset, tmp_path):
    datasets = pytest.importorskip("datasets")
    ws, rows, version = subset
    export(ws, "hf", tmp_path / "hf")
    card = ws.root / "subsets" / "full" / version
    assert (tmp_path / "hf" / "README.md").read_bytes() == (card / "card.md").read_bytes()
    assert (tmp_path / "hf" / "card.json").read_bytes() == (card / "card.json").read_bytes()
    assert json.loads((tmp_path / "hf" / "oxa_export.json").read_text()) == {
        "subset": f"full/{version}",
        "name": "full",
        "version": version,
        "format": "hf",
        "negatives": None,
        "instruction": None,
        "splits": {"train": {"path": ".", "rows": 6}},
        "oxa_version": __version__,
    }
    assert datasets.load_from_disk(str(tmp_path / "hf")).to_list() == rows


# -- verl ----------------------------------------------------------------------------------


def test_verl_rows_name_a_scored_data_source_and_keep_source_and_problem_id(subset, tmp_path):
    ws, rows, _ = subset
    first = {}
    for r in rows:
        first.setdefault(r["problem_id"], r)
    export(ws, "verl", tmp_path / "rl.parquet")
    table = pq.read_table(tmp_path / "rl.parquet").to_pylist()
    assert {r["data_source"] for r in table} == {"DigitalLearningGmbH/MATH-lighteval"}
    assert [r["extra_info"] for r in table] == [
        {"index": i, "split": "train", "source": r["source"], "problem_id": r["problem_id"]}
        for i, r in enumerate(first.values())
    ]
    assert [r["reward_model"] for r in table] == [
        {"ground_truth": r["gold_answer"], "style": "rule"} for r in first.values()
    ]
    export(ws, "verl", tmp_path / "numina.parquet", data_source="numina_olympiads")
    assert {r["data_source"] for r in pq.read_table(tmp_path / "numina.parquet").to_pylist()} == {"numina_olympiads"}


# -- verl's reward --------------------------------------------------------------------------


def load_reward_as_verl_does(**reward_kwargs):
    """verl/trainer/ppo/reward.py get_custom_reward_fn: the file as module `custom_module`,
    the function wrapped to add custom_reward_function.reward_kwargs."""
    spec = importlib.util.spec_from_file_location("custom_module", REWARD_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_module"] = module
    spec.loader.exec_module(module)
    raw_fn = module.compute_score

    def wrapped_fn(*args, **kwargs):
        return raw_fn(*args, **kwargs, **reward_kwargs)

    return module, wrapped_fn


def R(answer: str) -> str:
    return f"<think>\nwork it out\n</think>\n\nThe answer is $\\boxed{{{answer}}}$."


REWARD_POOL = [
    ("What is 2+2?", "4", R("4")),  # right
    ("What is 2+2?", "4", R("5")),  # wrong
    ("What is 2+2?", "4", "<think>no box</think> it is four"),  # no answer
    ("What is 2+2?", "4", "\\boxed{4}"),  # no </think>: no answer (oxa verify's rule)
    ("What is 2+2?", "4", "<think>x</think> \\boxed{4} then \\boxed{7}"),  # the last box counts
    ("Half of one?", "0.5", R("\\frac{1}{2}")),  # boxed-equivalent
    ("Half of one?", "0.5", R("\\dfrac{1}{2}")),
    ("Half of one?", "0.5", R("0.50")),
    ("Half of one?", "0.5", R("2")),
]


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """REWARD_POOL verified by `oxa verify`, selected whole and exported for verl."""
    root = tmp_path_factory.mktemp("reward")
    ws = Workspace.init(root / "ws")
    pool = [
        {"problem": p, "gold": g, "response": r, "ppl": 1.0 + i / 10, "n_tokens": 10}
        for i, (p, g, r) in enumerate(REWARD_POOL)
    ]
    add_pool(ws, root, pool)
    run_verify(ws, VerifyConfig(workers=1))
    by_oxa_verify = dict(query(ws, "SELECT s.response, v.verdict FROM verify AS v JOIN samples AS s USING (sample_id)"))
    run_select(
        ws, SelectConfig(name="all", strategy="lowest_ppl", scores_tag=TAG, n=len(pool), max_per_problem=len(pool))
    )
    export(ws, "verl", root / "rl.parquet", subset="all")
    prompts = {
        r["prompt"][0]["content"].removesuffix(SUFFIX): r for r in pq.read_table(root / "rl.parquet").to_pylist()
    }
    return [(prompts[p], response, by_oxa_verify[response]) for p, _, response in REWARD_POOL]


def test_the_verl_reward_gives_oxa_verify_verdicts(verified):
    assert [verdict for *_, verdict in verified] == [
        "correct", "incorrect", "no_answer", "no_answer", "incorrect", "correct", "correct", "correct", "incorrect"
    ]  # fmt: skip
    module, compute_score = load_reward_as_verl_does()
    for row, response, verdict in verified:  # as verl's NaiveRewardManager calls it
        extra_info = dict(row["extra_info"], num_turns=None)
        score = compute_score(
            data_source=row["data_source"],
            solution_str=response,
            ground_truth=row["reward_model"]["ground_truth"],
            extra_info=extra_info,
        )
        assert (score, module.verdict(response, row["reward_model"]["ground_truth"])) == (
            1.0 if verdict == "correct" else 0.0,
            verdict,
        )

    def positional_in_a_thread(item):  # verl's prime manager: positional, from workers
        row, response, _ = item
        return compute_score(row["data_source"], response, row["reward_model"]["ground_truth"], row["extra_info"])

    with ThreadPoolExecutor(max_workers=3) as threads:
        scores = list(threads.map(positional_in_a_thread, verified))
    assert scores == [1.0 if verdict == "correct" else 0.0 for *_, verdict in verified]


def test_reward_kwargs_set_the_verifier_settings(verified):
    _, compute_score = load_reward_as_verl_does(require_think=False, unknown_to_oxa=1)
    row, response, verdict = verified[3]  # \boxed{4} without </think>
    assert (response, verdict) == ("\\boxed{4}", "no_answer")
    assert compute_score(row["data_source"], response, row["reward_model"]["ground_truth"], None) == 1.0
    assert compute_score(row["data_source"], response, None, None) == 0.0  # no gold: bad_gold


def test_verl_loads_the_reward_file_without_importing_oxa(tmp_path):
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('custom_module', {str(REWARD_FILE)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['custom_module'] = module\n"
        "spec.loader.exec_module(module)\n"
        "print(sorted(m for m in ('curate', 'train', 'math_verify', 'sympy', 'pyarrow', 'duckdb', 'torch') "
        "if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
