"""`oxa eval`: stored samples, the table and plot from them, the entropy, and bad input."""

import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate.benchmarks.sets import load_prompt_set, resolve_sets
from curate.cli import app
from curate.workspace import OxaError
from train.eval.evaluate import SAMPLES, EvalConfig, run_eval
from train.eval.report import write_report
from train.eval.sampling import load_chat_tokenizer

runner = CliRunner()


def _write_samples(out: Path, name: str, verdicts: dict[str, list[str]], tokens: int, entropy: float | None) -> None:
    rows = [
        {
            "problem_id": pid,
            "source_row": i,
            "problem": f"problem {pid}",
            "gold_answer": ["1"],
            "sample_index": j,
            "completion": "\\boxed{1}",
            "n_tokens": tokens + j,
            "finish_reason": "length" if j == 0 else "stop",
            "pred_answer": "1",
            "verdict": v,
            "reason": None,
            "entropy_mean": entropy,
        }
        for i, (pid, vs) in enumerate(verdicts.items())
        for j, v in enumerate(vs)
    ]
    (out / "samples").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, SAMPLES), out / "samples" / f"{name}.parquet")


C, W, N = "correct", "incorrect", "no_answer"


def test_report_from_handwritten_samples(tmp_path):
    out = tmp_path / "out"
    # a: p1 2 of 4 correct, p2 none, p3 all; b: q1 1 of 4 correct, q2 3 of 4
    _write_samples(out, "a", {"p1": [C, W, C, N], "p2": [W, W, N, W], "p3": [C, C, C, C]}, tokens=10, entropy=0.5)
    _write_samples(out, "b", {"q1": [W, C, W, W], "q2": [C, C, W, C]}, tokens=20, entropy=None)
    report = write_report(out)
    metrics = {r["benchmark"]: r for r in pl.read_parquet(out / "metrics.parquet").to_dicts()}
    a, b, avg = metrics["a"], metrics["b"], metrics["average"]
    assert (a["problems"], a["samples"], a["k"]) == (3, 12, 4)
    assert a["pass_at_1"] == pytest.approx(float(Fraction(1, 2)))
    # Pass@2 of p1 = 1 - C(2,2)/C(4,2) = 5/6; the curve's last point is Pass@4
    assert a["pass_at_k"] == pytest.approx(2 / 3)
    assert a["mean_length"] == pytest.approx(11.5)  # 10, 11, 12, 13 per problem
    assert a["mean_entropy"] == pytest.approx(0.5)
    assert a["no_answer_rate"] == pytest.approx(2 / 12)
    assert a["truncated_rate"] == pytest.approx(3 / 12)
    assert b["pass_at_1"] == pytest.approx(0.5) and b["pass_at_k"] == 1.0 and b["mean_entropy"] is None
    assert avg["pass_at_1"] == pytest.approx(0.5) and avg["pass_at_k"] == pytest.approx((2 / 3 + 1) / 2)
    assert (avg["problems"], avg["samples"], avg["k"]) == (5, 20, None)
    assert avg["mean_entropy"] == pytest.approx(0.5)
    curve = pl.read_parquet(out / "pass_at_k.parquet")
    assert curve.filter(pl.col("benchmark") == "a")["k"].to_list() == [1, 2, 4]
    pass2 = curve.filter((pl.col("benchmark") == "a") & (pl.col("k") == 2))["pass_at_k"][0]
    assert pass2 == pytest.approx((5 / 6 + 0 + 1) / 3)
    q1_pass2 = 1 - Fraction(3, 6)  # C(3,2)/C(4,2)
    q2_pass2 = 1  # one incorrect sample cannot fill a pair
    expected_b2 = float((q1_pass2 + q2_pass2) / 2)
    assert curve.filter((pl.col("benchmark") == "b") & (pl.col("k") == 2))["pass_at_k"][0] == pytest.approx(expected_b2)
    table = (out / "table.md").read_text()
    ci = r"\[\d+\.\d, \d+\.\d\]"  # a 95% interval (tests/test_eval_compare.py checks its numbers)
    assert re.search(rf"\| a \| 3 \| 4 \| 50\.0 {ci} \| 66\.7 {ci} \| 12 \| 0\.500 \| 16\.7 \| 25\.0 \|", table)
    assert re.search(
        rf"\| b \| 2 \| 4 \| 50\.0 {ci} \| 100\.0 \[100\.0, 100\.0\] \| 22 \| - \| 0\.0 \| 25\.0 \|", table
    )
    assert re.search(rf"\| average \| 5 \| - \| 50\.0 {ci} \| 83\.3 {ci} \|", table)
    assert "| a | 50.0 | 61.1 | 66.7 |" in table  # the Pass@k section: k = 1, 2, 4
    assert (out / "pass_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["table"] == str(out / "table.md")

    # the same samples give the same bytes; a smaller k moves the Pass@k column
    before = {f: (out / f).read_bytes() for f in ("table.md", "metrics.parquet", "pass_at_k.parquet", "pass_at_k.png")}
    write_report(out)
    assert before == {f: (out / f).read_bytes() for f in before}
    result = runner.invoke(app, ["eval", "report", str(out), "--k", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out / "metrics.parquet").filter(pl.col("benchmark") == "a")["pass_at_k"][0] == pytest.approx(
        pass2
    )

    with pytest.raises(OxaError, match=r"Pass@8 needs 8 samples per problem, but a stores 4 for problem p1"):
        write_report(out, k=8)
    with pytest.raises(OxaError, match=r"holds no samples of 'c'"):
        write_report(out, ["c"])


def test_benchmark_files_and_their_errors(tmp_path):
    sets = dict(resolve_sets("aime24,minerva"))
    minerva = load_prompt_set("minerva", sets["minerva"])
    assert len(minerva.problems) == 272 and minerva.problems[0].gold == ("9.6",)
    verl = load_prompt_set(*resolve_sets(str(Path("curate/data/formats/aime24.verl.parquet").resolve()))[0])
    aime = load_prompt_set("aime24", sets["aime24"], limit=5)
    assert verl.name == "aime24.verl" and len(verl.problems) == 30
    # the instruction suffix of the verl prompts is stripped: the same problems, the same ids
    assert [p.problem_id for p in verl.problems[:5]] == [p.problem_id for p in aime.problems]
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?", "answer": "4"}\n')
    assert [p.gold for p in load_prompt_set(*resolve_sets(str(jsonl))[0]).problems] == [("2",), ("4",)]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"problem": "1+1?", "answer": "2"}, {"problem": "2+2?", "answer": " "}]))
    with pytest.raises(OxaError, match=rf"{bad} row 1: the answer is missing or empty"):
        load_prompt_set("bad", bad)
    bad.write_text(json.dumps([{"problem": "1+1?", "answer": "2"}, {"problem": "2+2?"}]))
    with pytest.raises(OxaError, match=rf"{bad} row 1: missing_field:gold_answer"):
        load_prompt_set("bad", bad)
    assert len(load_prompt_set("bad", bad, require_answers=False).problems) == 2  # entropy needs no answers
    with pytest.raises(OxaError, match="neither a built-in set"):
        resolve_sets("aime2024")


def test_model_without_chat_template(tmp_path, tiny_models):
    model = tmp_path / "no_template"
    shutil.copytree(tiny_models / "instruct", model)
    (model / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(OxaError, match="has no chat template"):
        load_chat_tokenizer(model)
    with pytest.raises(OxaError, match="has no chat template"):
        run_eval(EvalConfig(model=str(model), out=str(tmp_path / "out"), benchmarks="aime24", backend="hf"))


def _heldout(synth_world: Path, tmp_path: Path) -> Path:
    """The world's held-out problems, which the tiny instruct model sometimes solves."""
    path = tmp_path / "heldout.json"
    shutil.copy(synth_world / "heldout.json", path)
    return path


def test_eval_end_to_end(tmp_path, tiny_models, synth_world):
    heldout = _heldout(synth_world, tmp_path)
    out = tmp_path / "out"
    args = ["eval", "--model", tiny_models / "instruct", "--benchmarks", heldout, "--out", out, "--k", "2"]
    args += [
        "--k-for",
        "heldout=4",
        "--max-new-tokens",
        "48",
        "--limit",
        "3",
        "--backend",
        "hf",
        "--device",
        "cpu",
        "--workers",
        "1",
    ]
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    samples = pl.read_parquet(out / "samples" / "heldout.parquet")
    assert samples.height == 12 and samples.columns == SAMPLES.names
    assert samples.group_by("problem_id").len()["len"].to_list() == [4, 4, 4]
    assert samples["sample_index"].to_list() == [0, 1, 2, 3] * 3
    assert set(samples["verdict"]) <= {"correct", "incorrect", "no_answer"}
    assert samples["n_tokens"].max() <= 48 and (samples["entropy_mean"] > 0).all()
    assert set(samples["finish_reason"]) <= {"stop", "length"}
    assert not (out / ".generated").exists() or not any((out / ".generated").iterdir())
    files = ("table.md", "metrics.parquet", "pass_at_k.parquet", "pass_at_k.png")
    first = {f: (out / f).read_bytes() for f in files}
    assert "| heldout | 3 | 4 |" in first["table.md"].decode()

    # report alone (no model) recomputes the same files
    for f in files:
        (out / f).unlink()
    assert runner.invoke(app, ["eval", "report", str(out)], catch_exceptions=False).exit_code == 0
    assert {f: (out / f).read_bytes() for f in files} == first

    # a rerun reuses the samples; another configuration in the same folder is refused
    stored = (out / "samples" / "heldout.parquet").read_bytes()
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert "heldout: reused" in result.output
    assert (out / "samples" / "heldout.parquet").read_bytes() == stored
    config = EvalConfig(model=str(tiny_models / "instruct"), out=str(out), benchmarks=str(heldout), k=2, limit=3)
    config.k_for, config.max_new_tokens, config.backend, config.device, config.workers = (
        {"heldout": 4},
        48,
        "hf",
        "cpu",
        1,
    )
    config.temperature = 0.7
    with pytest.raises(OxaError, match=r"another configuration \(temperature: 0.6 -> 0.7\)"):
        run_eval(config)
    config.k_for = {"minevra": 64}
    with pytest.raises(OxaError, match=r"--n-for names minevra, which is no set of --benchmarks"):
        run_eval(config)
    with pytest.raises(OxaError, match=r"Pass@8 needs 8 samples per problem, but heldout stores 4"):
        write_report(out, k=8)


def test_policy_entropy_equals_a_naive_reference(tmp_path, tiny_models, synth_world):
    """The entropy pass against full logits: per completion, the mean over its tokens of
    -sum_v p log p of the model's next-token distribution given prompt + completion so far."""
    import torch
    from transformers import AutoModelForCausalLM

    from curate.backends import load_backend
    from curate.backends.base import SamplingSettings
    from train.eval import EntropyConfig, run_entropy
    from train.eval.sampling import entropy_means, generate_set, prompt_ids

    model_dir = tiny_models / "instruct"
    prompts = load_prompt_set("heldout", _heldout(synth_world, tmp_path), require_answers=False, limit=2)
    tokenizer = load_chat_tokenizer(model_dir)
    backend = load_backend("hf", str(model_dir), device="cpu")
    settings = SamplingSettings(n=2, temperature=0.85, top_p=1.0, max_new_tokens=16, seed=3)
    generated = generate_set(backend, tokenizer, prompts, settings, "", lambda *a: None)
    means = entropy_means(backend, tokenizer, prompts, generated, "")
    backend.close()

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    context = {p.problem_id: prompt_ids(tokenizer, p.problem, "") for p in prompts.problems}
    naive = []
    for pid, ids in zip(generated["problem_id"].to_pylist(), generated["token_ids"].to_pylist()):
        sequence = torch.tensor([list(context[pid]) + ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(sequence).logits[0].double(), dim=-1)
        positions = logp[len(context[pid]) - 1 : -1]  # the positions that predict the completion's tokens
        naive.append(float(-(positions.exp() * positions).sum(-1).mean()))
    assert generated.num_rows == 4
    assert means == pytest.approx(naive, rel=1e-5)

    # the command: the same sampling and the same numbers, token-weighted over completions
    config = EntropyConfig(model=str(model_dir), prompts=str(prompts.path), n=2, max_new_tokens=16, seed=3)
    config.instruction, config.limit, config.backend, config.device, config.out = (
        "",
        2,
        "hf",
        "cpu",
        str(tmp_path / "e"),
    )
    summary = run_entropy(config)
    tokens = [len(ids) for ids in generated["token_ids"].to_pylist()]
    expected = sum(t * m for t, m in zip(tokens, naive)) / sum(tokens)
    assert summary["overall"]["mean_entropy"] == pytest.approx(expected, rel=1e-5)
    assert (summary["overall"]["completions"], summary["overall"]["tokens"]) == (4, sum(tokens))
    assert json.loads((tmp_path / "e" / "entropy.json").read_text())["overall"] == summary["overall"]


def test_answer_judge_gives_verify_verdicts():
    from curate.verify import VerifierSettings
    from train.eval.judge import AnswerJudge

    completions = [
        "<think>half</think> so \\boxed{0.5}",
        "<think>\\boxed{3}</think> the answer is \\boxed{\\frac{1}{2}}",
        "<think>hmm</think> \\boxed{2}",
        "<think>no box</think> it is one half",
        "\\boxed{9^{9^{9^{9}}}}",
        "\\boxed{1/2}",
        "\\boxed{1/2}",
    ]
    golds = [("\\frac{1}{2}",)] * 5 + [(" ",), ("\\frac{1}{2}\x00",)]
    settings = VerifierSettings(deadline_s=2.0, parse_timeout_s=0, verify_timeout_s=0, require_think=False)
    with AnswerJudge(settings, workers=1) as judge:
        verdicts = judge.judge(golds, completions)
    assert verdicts[:4] == [
        ("0.5", "correct", None),
        ("\\frac{1}{2}", "correct", None),
        ("2", "incorrect", None),
        (None, "no_answer", "no_box"),
    ]
    assert verdicts[4][:2] == ("9^{9^{9^{9}}}", "timeout")  # killed at the deadline, not a hang
    assert verdicts[5] == ("1/2", "bad_gold", "the gold answer is empty")
    # a NUL in the gold: damaged data, bad_gold with verify's own reason (tests/test_bad_rows.py)
    assert verdicts[6] == ("1/2", "bad_gold", "the gold answer holds control character U+0000")
