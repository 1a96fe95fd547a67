"""`oxa eval compare RUN...`: evaluations of several models side by side, from their
stored samples alone.

Every run must hold the same sets with the same problems (the comparison is paired:
each bootstrap resample of problems serves every run). Per run: Pass@1 and Pass@k for
k = 1, 2, 4, ..., k with 95% intervals (averaged over the sets, as `oxa eval report`'s
average row), mean length, mean policy entropy, and the difference from the reference
run in Pass@1 and Pass@k with the interval of that difference: a run differs from the
reference beyond the interval when the interval of the difference leaves out zero.
Written to OUT: compare.md, compare.parquet (one row per run), pass_at_k.parquet (the
curves) and compare.png (the Pass@k curves with their bands; entropy and length bars).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from curate.subsets.plots import new_figure, save_png
from curate.workspace import OxaError
from curate.workspace.parts import atomic_target, atomic_write_text
from train.eval.passk import k_values
from train.eval.report import plot_pass_at_k, set_metrics, stored_sets, with_interval
from train.eval.stats import bootstrap_means, interval, per_problem_pass_at_k, resample_index


@dataclass
class CompareConfig:
    """A comparison. Every field is also an `oxa eval compare` option."""

    runs: list[str] = field(metadata={"help": "evaluation output folders (each made by `oxa eval`)"})
    out: str = field(metadata={"help": "output folder: compare.md, compare.parquet, pass_at_k.parquet, compare.png"})
    names: list[str] | None = field(default=None, metadata={"help": "a label per run (default: the folder names)"})
    reference: str | None = field(
        default=None, metadata={"help": "the label the others are compared to (default: the first)"}
    )
    k: int | None = field(
        default=None, metadata={"help": "the largest k (default: the fewest samples per problem stored)"}
    )

    def labels(self) -> list[str]:
        labels = self.names or [Path(run).name for run in self.runs]
        if len(labels) != len(self.runs) or len(set(labels)) != len(labels):
            raise OxaError(f"need one distinct label per run; got {labels} for {len(self.runs)} runs (--names a,b,...)")
        return labels


def run_compare(config: CompareConfig) -> dict:
    """Compare the runs and write the report to config.out; returns the rows and paths."""
    labels = config.labels()
    if len(config.runs) < 1:
        raise OxaError("give at least one evaluation folder to compare")
    reference = config.reference or labels[0]
    if reference not in labels:
        raise OxaError(f"--reference {reference!r} is none of the labels {labels}")
    runs = {label: Path(run).expanduser().resolve() for label, run in zip(labels, config.runs)}
    sets = _common_sets(runs)
    samples = {
        label: {s: _per_problem(pl.read_parquet(run / "samples" / f"{s}.parquet")) for s in sets}
        for label, run in runs.items()
    }
    _check_same_problems(samples, sets)
    fewest = min(int(t["n"].min()) for by_set in samples.values() for t in by_set.values())
    top = config.k or fewest
    if top > fewest:
        raise OxaError(f"--k {top} needs {top} samples per problem; the runs store {fewest} at the fewest")
    ks = k_values(top)
    index = {s: resample_index(samples[reference][s].height, seed=position) for position, s in enumerate(sets)}

    values, resampled, rows, curves = {}, {}, [], []
    for label, run in runs.items():
        per_set = [
            per_problem_pass_at_k(samples[label][s]["n"].to_list(), samples[label][s]["c"].to_list(), ks) for s in sets
        ]
        values[label] = per_set
        resampled[label] = np.mean([bootstrap_means(v, index[s]) for v, s in zip(per_set, sets)], axis=0)
        means = np.mean([v.mean(axis=0) for v in per_set], axis=0)
        low, high = interval(resampled[label])
        curves += [
            {"run": label, "k": k, "pass_at_k": float(m), "ci_low": float(lo), "ci_high": float(hi)}
            for k, m, lo, hi in zip(ks, means, low, high)
        ]
        metric_rows = [set_metrics(s, pl.read_parquet(run / "samples" / f"{s}.parquet"), top)[0] for s in sets]
        entropies = [r["mean_entropy"] for r in metric_rows if r["mean_entropy"] is not None]
        rows.append(
            {
                "run": label,
                "path": str(run),
                "sets": ",".join(sets),
                "problems": sum(r["problems"] for r in metric_rows),
                "k": top,
                "pass_at_1": float(means[0]),
                "pass_at_1_low": float(low[0]),
                "pass_at_1_high": float(high[0]),
                "pass_at_k": float(means[-1]),
                "pass_at_k_low": float(low[-1]),
                "pass_at_k_high": float(high[-1]),
                "mean_length": float(np.mean([r["mean_length"] for r in metric_rows])),
                "mean_entropy": float(np.mean(entropies)) if entropies else None,
            }
        )
    for row in rows:
        difference = resampled[row["run"]] - resampled[reference]
        low, high = interval(difference)
        for column, at in (("pass_at_1", 0), ("pass_at_k", -1)):
            row[f"{column}_diff"] = row[column] - next(r[column] for r in rows if r["run"] == reference)
            row[f"{column}_diff_low"], row[f"{column}_diff_high"] = float(low[at]), float(high[at])
            # a Python bool: numpy.bool_ would be written as "False" to JSON records, which reads back true
            row[f"{column}_differs"] = bool(row["run"] != reference and (low[at] > 0 or high[at] < 0))
    out = Path(config.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    table = pl.DataFrame(rows)
    for frame, file in ((table, "compare.parquet"), (pl.DataFrame(curves), "pass_at_k.parquet")):
        with atomic_target(out / file) as tmp:
            frame.write_parquet(tmp)
    atomic_write_text(out / "compare.md", _markdown(rows, reference, sets, ks))
    _plot(rows, curves, out / "compare.png")
    return {"rows": rows, "reference": reference, "table": str(out / "compare.md"), "plot": str(out / "compare.png")}


def _common_sets(runs: dict[str, Path]) -> list[str]:
    stored = {label: stored_sets(run) for label, run in runs.items()}
    for label, names in stored.items():
        if not names:
            raise OxaError(f"{runs[label]} holds no samples (samples/*.parquet); run `oxa eval` first")
    first_label, first = next(iter(stored.items()))
    for label, names in stored.items():
        if names != first:
            raise OxaError(f"the runs hold different sets: {first_label} has {first}, {label} has {names}")
    return first


def _per_problem(samples: pl.DataFrame) -> pl.DataFrame:
    return (
        samples.group_by("problem_id")
        .agg(n=pl.len(), c=(pl.col("verdict") == "correct").sum().cast(pl.Int64))
        .sort("problem_id")
    )


def _check_same_problems(samples: dict[str, dict[str, pl.DataFrame]], sets: list[str]) -> None:
    first_label = next(iter(samples))
    for s in sets:
        problems = samples[first_label][s]["problem_id"]
        for label, by_set in samples.items():
            if not by_set[s]["problem_id"].equals(problems):
                raise OxaError(
                    f"set {s!r} holds other problems in {label} than in {first_label}: a paired comparison needs "
                    "the same problems (evaluate every model on the same --benchmarks and --limit)"
                )


def _markdown(rows: list[dict], reference: str, sets: list[str], ks: list[int]) -> str:
    lines = [
        f"# Comparison on {', '.join(sets)}",
        "",
        f"Pass@1 and Pass@{ks[-1]} with their 95% bootstrap intervals over problems, mean generated tokens and",
        f"mean policy entropy (nats); the last columns are the difference from {reference}, with the paired",
        "interval of the difference; '*' marks a difference whose interval leaves out zero.",
        "",
        f"| run | Pass@1 | Pass@{ks[-1]} | length | entropy | Pass@1 - {reference} | Pass@{ks[-1]} - {reference} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        entropy = "-" if r["mean_entropy"] is None else f"{r['mean_entropy']:.3f}"
        diffs = [
            "-"
            if r["run"] == reference
            else with_interval(r[f"{c}_diff"], r[f"{c}_diff_low"], r[f"{c}_diff_high"])
            + (" *" if r[f"{c}_differs"] else "")
            for c in ("pass_at_1", "pass_at_k")
        ]
        lines.append(
            f"| {r['run']} | {with_interval(r['pass_at_1'], r['pass_at_1_low'], r['pass_at_1_high'])} "
            f"| {with_interval(r['pass_at_k'], r['pass_at_k_low'], r['pass_at_k_high'])} | {r['mean_length']:.1f} "
            f"| {entropy} | {diffs[0]} | {diffs[1]} |"
        )
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], curves: list[dict], path: Path) -> None:
    figure = new_figure()
    figure.set_size_inches(12, 3.6)
    grid = figure.add_gridspec(1, 4)
    by_run: dict[str, list[dict]] = {}
    for c in curves:
        by_run.setdefault(c["run"], []).append(c)
    plot_pass_at_k(figure.add_subplot(grid[0, :2]), by_run, "Pass@k (95% intervals)")
    labels = [r["run"] for r in rows]
    colours = [f"C{i}" for i in range(len(rows))]
    for column, (key, title) in enumerate(
        (("mean_entropy", "policy entropy (nats)"), ("mean_length", "length (tokens)"))
    ):
        axis = figure.add_subplot(grid[0, 2 + column])
        axis.bar(labels, [r[key] or 0 for r in rows], color=colours)
        axis.set_title(title)
        axis.tick_params(axis="x", labelrotation=45)
        axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_target(path) as tmp:
        save_png(figure, tmp)
