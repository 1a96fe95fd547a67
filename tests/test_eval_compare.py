"""Intervals and comparisons of evaluations (`oxa eval report`, `oxa eval compare`), from
stored samples written by hand: known numbers, and a naive bootstrap as the reference."""

import json
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.workspace import OxaError
from tests.test_eval import C, W, _write_samples
from train.eval.compare import CompareConfig, run_compare
from train.eval.report import write_report

runner = CliRunner()


def naive_interval(per_problem: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap written out: resample problems, take the mean, sort, cut."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(per_problem), size=(resamples, len(per_problem)))
    means = sorted(sum(per_problem[i] for i in row) / len(row) for row in draws)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def naive_pass_at_k(n: int, c: int, k: int) -> float:
    from math import comb

    return 1 - comb(n - c, k) / comb(n, k)


def _random_run(out: Path, seed: int, problems: int = 30, samples: int = 8, p: float = 0.3) -> dict[str, list[str]]:
    rng = random.Random(seed)
    verdicts = {f"p{i:02d}": [C if rng.random() < p else W for _ in range(samples)] for i in range(problems)}
    _write_samples(out, "held", verdicts, tokens=10 + seed, entropy=0.1 * (seed + 1))
    return verdicts


def test_report_intervals_equal_a_naive_bootstrap(tmp_path):
    verdicts = _random_run(tmp_path / "run", seed=1)
    write_report(tmp_path / "run")
    row = pl.read_parquet(tmp_path / "run" / "metrics.parquet").row(0, named=True)
    curve = pl.read_parquet(tmp_path / "run" / "pass_at_k.parquet")
    for k in (1, 2, 4, 8):
        per_problem = [naive_pass_at_k(8, vs.count(C), k) for vs in verdicts.values()]
        point = curve.filter(pl.col("k") == k).row(0, named=True)
        assert point["pass_at_k"] == pytest.approx(sum(per_problem) / len(per_problem))
        assert (point["ci_low"], point["ci_high"]) == pytest.approx(naive_interval(per_problem))
        assert point["ci_low"] < point["pass_at_k"] < point["ci_high"]
    assert (row["pass_at_1_low"], row["pass_at_1_high"]) == pytest.approx(
        naive_interval([vs.count(C) / 8 for vs in verdicts.values()])
    )
    assert (
        f"| held | 30 | 8 | {100 * row['pass_at_1']:.1f} [{100 * row['pass_at_1_low']:.1f}, "
        in (tmp_path / "run" / "table.md").read_text()
    )


def test_compare_on_fixed_samples_gives_known_numbers(tmp_path):
    base = _random_run(tmp_path / "base", seed=1)
    _random_run(tmp_path / "same", seed=1)  # the same verdicts: no difference at all
    _write_samples(tmp_path / "best", "held", {pid: [C] * 8 for pid in base}, tokens=30, entropy=0.9)
    result = run_compare(
        CompareConfig([str(tmp_path / n) for n in ("base", "same", "best")], str(tmp_path / "cmp"), ["b", "s", "x"])
    )
    rows = {r["run"]: r for r in result["rows"]}
    pass_1 = sum(vs.count(C) for vs in base.values()) / (8 * 30)
    assert rows["b"]["pass_at_1"] == pytest.approx(pass_1) and rows["b"]["k"] == 8
    assert rows["b"]["pass_at_k"] == pytest.approx(sum(C in vs for vs in base.values()) / 30)
    assert (rows["b"]["mean_length"], rows["b"]["mean_entropy"]) == pytest.approx((14.5, 0.2))  # 11..18 tokens
    assert rows["s"]["pass_at_1_diff"] == 0 and (rows["s"]["pass_at_1_diff_low"], rows["s"]["pass_at_1_diff_high"]) == (
        0,
        0,
    )
    assert not rows["s"]["pass_at_1_differs"] and not rows["b"]["pass_at_1_differs"]
    best = rows["x"]
    assert (best["pass_at_1"], best["pass_at_1_low"], best["pass_at_1_high"]) == (1.0, 1.0, 1.0)
    assert best["pass_at_1_diff"] == pytest.approx(1 - pass_1) and best["pass_at_1_differs"]
    # plain bools, so that a JSON record of the rows reads back the same (numpy.bool_ is written "False")
    assert json.loads(json.dumps(list(rows.values()), default=str)) == list(rows.values())
    # the paired interval of the difference is the naive bootstrap of per-problem differences
    differences = [1 - vs.count(C) / 8 for vs in base.values()]
    assert (best["pass_at_1_diff_low"], best["pass_at_1_diff_high"]) == pytest.approx(naive_interval(differences))
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| run | Pass@1 | Pass@8 | length | entropy | Pass@1 - b | Pass@8 - b |" in table
    assert "| x | 100.0 [100.0, 100.0] | 100.0 [100.0, 100.0] | 33.5 | 0.900 |" in table and " *" in table
    curves = pl.read_parquet(tmp_path / "cmp" / "pass_at_k.parquet")
    assert curves.filter(pl.col("run") == "x")["k"].to_list() == [1, 2, 4, 8]
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = {f: (tmp_path / "cmp" / f).read_bytes() for f in ("compare.md", "compare.parquet", "compare.png")}
    result = runner.invoke(
        app,
        ["eval", "compare", *(str(tmp_path / n) for n in ("base", "same", "best")), "-o", str(tmp_path / "cmp"),
         "--overwrite", "--names", "b,s,x"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert before == {f: (tmp_path / "cmp" / f).read_bytes() for f in before}  # the same samples, the same bytes
    assert "compared with b" in result.output


def test_compare_refuses_what_cannot_be_paired(tmp_path):
    _random_run(tmp_path / "a", seed=1)
    _random_run(tmp_path / "b", seed=2, problems=29)
    with pytest.raises(OxaError, match="holds other problems in b than in a"):
        run_compare(CompareConfig([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "c")))
    _write_samples(tmp_path / "d", "other", {"p00": [C, W]}, tokens=1, entropy=None)
    with pytest.raises(OxaError, match="the runs hold different sets"):
        run_compare(CompareConfig([str(tmp_path / "a"), str(tmp_path / "d")], str(tmp_path / "c")))
    with pytest.raises(OxaError, match="one distinct label per run"):
        run_compare(CompareConfig([str(tmp_path / "a"), str(tmp_path / "a")], str(tmp_path / "c")))
    with pytest.raises(OxaError, match="--reference 'z' is none of the labels"):
        run_compare(CompareConfig([str(tmp_path / "a")], str(tmp_path / "c"), reference="z"))
    with pytest.raises(OxaError, match="--k 16 needs 16 samples per problem"):
        run_compare(CompareConfig([str(tmp_path / "a")], str(tmp_path / "c"), k=16))
