"""The metrics of an evaluation, from its stored samples alone (no model, no GPU).

Per set: Pass@1 averaged over each problem's samples, unbiased Pass@k for k = 1, 2, 4,
..., n (train/eval/passk.py), each with a 95% bootstrap interval over problems
(train/eval/stats.py), the mean output length (generated tokens), and the mean policy
entropy over generated tokens (token-weighted: every token counts once, as RL trainers
log it). The average row is the plain mean of the sets' numbers, as the paper's
"Avg. Perf." column (its interval resamples the problems of every set at once).
Written to OUT: table.md (like the paper's Table 1), metrics.parquet (one row per set
and the average), pass_at_k.parquet (the curves, long form) and pass_at_k.png (the
curves with their intervals, as the paper's Fig. 3). When the model was trained on an oxa
subset, table.md's Contamination section says what that subset was checked against and
repeats the warnings `oxa eval` recorded in config.json (train/eval/contamination.py).

Multiple-choice sets (kind 'choice', curate/benchmarks/choice.py) get the same numbers, Pass@1
being their accuracy; table.md lists them in their own section, with a table per
subject (MMLU) or domain (GPQA) whose accuracy has the same bootstrap interval over
that subject's questions (also in subjects.parquet). The average row is over the math
sets (the paper's "Avg." covers the math benchmarks only); a run of multiple-choice sets
alone averages those.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from curate.subsets.plots import new_figure, save_png
from curate.workspace import OxaError
from curate.workspace.parts import atomic_target, atomic_write_text
from train.eval.passk import k_values, mean_pass_at_k
from train.eval.stats import bootstrap_means, interval, per_problem_pass_at_k, resample_index

AVERAGE = "average"


def stored_sets(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / "samples").glob("*.parquet"))


def set_metrics(name: str, samples: pl.DataFrame, k: int | None, seed: int = 0) -> tuple[dict, list[dict], np.ndarray]:
    """(the set's row of metrics.parquet, its Pass@k curve rows, and the bootstrap means
    of Pass@1 and of Pass@k at the top k [resamples, 2], resampled with `seed`)."""
    per_problem = samples.group_by("problem_id", maintain_order=True).agg(
        n=pl.len(), c=(pl.col("verdict") == "correct").sum().cast(pl.Int64)
    )
    n, c = per_problem["n"].to_list(), per_problem["c"].to_list()
    fewest = min(n)
    if k is not None and k > fewest:
        short = per_problem.filter(pl.col("n") == fewest)["problem_id"].sort()[0]
        raise OxaError(
            f"Pass@{k} needs {k} samples per problem, but {name} stores {fewest} for problem {short}; "
            f"lower --k to at most {fewest}, or evaluate again with --n {k}"
        )
    top = k or fewest
    ks = k_values(top)
    resampled = bootstrap_means(per_problem_pass_at_k(n, c, ks), resample_index(len(n), seed=seed))
    low, high = interval(resampled)
    curve = [
        {"benchmark": name, "k": kk, "pass_at_k": mean_pass_at_k(n, c, kk), "ci_low": lo, "ci_high": hi}
        for kk, lo, hi in zip(ks, low.tolist(), high.tolist())
    ]
    scored = samples.filter(pl.col("entropy_mean").is_not_null())
    tokens = scored["n_tokens"].sum()
    row = {
        "benchmark": name,
        "kind": set_kind(samples),
        "problems": len(n),
        "samples": samples.height,
        "k": top,
        "pass_at_1": curve[0]["pass_at_k"],
        "pass_at_1_low": curve[0]["ci_low"],
        "pass_at_1_high": curve[0]["ci_high"],
        "pass_at_k": curve[-1]["pass_at_k"],
        "pass_at_k_low": curve[-1]["ci_low"],
        "pass_at_k_high": curve[-1]["ci_high"],
        "mean_length": float(samples["n_tokens"].mean()),
        "mean_entropy": float((scored["entropy_mean"] * scored["n_tokens"]).sum() / tokens) if tokens else None,
        "no_answer_rate": float((samples["verdict"] == "no_answer").mean()),
        "truncated_rate": float((samples["finish_reason"] == "length").mean()),
    }
    return row, curve, resampled[:, [0, -1]]


def set_kind(samples: pl.DataFrame) -> str:
    """'choice' for a multiple-choice set's samples (their options are stored), else 'math'."""
    return "choice" if "choices" in samples.columns and samples["choices"].is_not_null().any() else "math"


def subject_metrics(name: str, samples: pl.DataFrame) -> list[dict]:
    """Per subject of a multiple-choice set, in name order: questions, samples, accuracy
    (Pass@1) with its 95% bootstrap interval over the subject's questions, mean length,
    entropy and no-answer share; [] when the set records no subjects."""
    if "subject" not in samples.columns or samples["subject"].is_null().all():
        return []
    rows = []
    for position, subject in enumerate(sorted(samples["subject"].unique().to_list(), key=lambda x: (x is None, x))):
        group = samples.filter(pl.col("subject").is_null() if subject is None else pl.col("subject") == subject)
        row, _, _ = set_metrics(name, group, 1, seed=position)
        rows.append(
            {
                "benchmark": name,
                "subject": subject,
                "questions": row["problems"],
                "samples": row["samples"],
                "accuracy": row["pass_at_1"],
                "accuracy_low": row["pass_at_1_low"],
                "accuracy_high": row["pass_at_1_high"],
                "mean_length": row["mean_length"],
                "mean_entropy": row["mean_entropy"],
                "no_answer_rate": row["no_answer_rate"],
            }
        )
    return rows


def write_report(out: Path, names: list[str] | None = None, k: int | None = None) -> dict:
    """Compute every metric from OUT/samples/ and write the table, the parquet files and the plot."""
    names = names or stored_sets(out)
    if not names:
        raise OxaError(f"{out} holds no samples (samples/*.parquet); run `oxa eval` first")
    rows, curves, resampled, subjects = [], [], [], []
    for position, name in enumerate(names):
        path = out / "samples" / f"{name}.parquet"
        if not path.is_file():
            raise OxaError(f"{out} holds no samples of {name!r}; stored: {', '.join(stored_sets(out)) or 'none'}")
        samples = pl.read_parquet(path)
        row, curve, means = set_metrics(name, samples, k, seed=position)
        rows.append(row)
        curves += curve
        resampled.append(means)
        subjects += subject_metrics(name, samples)
    metrics = pl.DataFrame(rows)
    averaged = "math" if "math" in metrics["kind"] else "choice"
    low, high = interval(  # each resample draws every averaged set's problems
        np.mean([means for means, row in zip(resampled, rows) if row["kind"] == averaged], axis=0)
    )
    average = (
        metrics.filter(pl.col("kind") == averaged)
        .select(
            pl.lit(AVERAGE).alias("benchmark"),
            pl.lit(averaged).alias("kind"),
            pl.col("problems", "samples").sum(),
            pl.lit(None, pl.Int64).alias("k"),
            pl.exclude("benchmark", "kind", "problems", "samples", "k").mean(),
        )
        .with_columns(
            pass_at_1_low=pl.lit(low[0]),
            pass_at_1_high=pl.lit(high[0]),
            pass_at_k_low=pl.lit(low[1]),
            pass_at_k_high=pl.lit(high[1]),
        )
    )
    metrics = pl.concat([metrics, average], how="vertical_relaxed")
    tables = [(metrics, "metrics.parquet"), (pl.DataFrame(curves), "pass_at_k.parquet")]
    if subjects:
        tables.append((pl.DataFrame(subjects), "subjects.parquet"))
    else:
        (out / "subjects.parquet").unlink(missing_ok=True)  # from an earlier report of other sets
    for table, file in tables:
        with atomic_target(out / file) as tmp:
            table.write_parquet(tmp)
    config = json.loads((out / "config.json").read_text(encoding="utf-8")) if (out / "config.json").is_file() else None
    atomic_write_text(out / "table.md", _markdown(config, metrics, curves, subjects))
    _plot(curves, out / "pass_at_k.png")
    return {
        "metrics": metrics.to_dicts(),
        "subjects": subjects,
        "table": str(out / "table.md"),
        "plot": str(out / "pass_at_k.png"),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _entropy(row: dict) -> str:
    return "-" if row["mean_entropy"] is None else f"{row['mean_entropy']:.3f}"


def with_interval(value: float, low: float, high: float) -> str:
    """'12.3 [10.1, 14.6]': a rate and its interval, in percent."""
    return f"{_pct(value)} [{_pct(low)}, {_pct(high)}]"


def _markdown(config: dict | None, metrics: pl.DataFrame, curves: list[dict], subjects: list[dict]) -> str:
    lines = ["# Evaluation" + (f" of {config['model']}" if config else ""), ""]
    if config:
        c = config["config"]
        lines += [
            f"Sampling: {c['k']} samples per problem"
            + "".join(f" ({name}: {k})" for name, k in sorted(c.get("k_for", {}).items()))
            + f", temperature {c['temperature']}, top-p {c['top_p']}, "
            f"at most {c['max_new_tokens']} new tokens, seed {c['seed']}, backend {c['backend']}.",
            "",
        ]
        warned = len(_contamination_warnings(config, {r["benchmark"] for r in metrics.to_dicts()}))
        if warned:  # the section comes after the tables; this line is where a reader starts
            lines += [f"**Contamination: {warned} warning{'s' if warned > 1 else ''}** (see below).", ""]
    lines += [
        "Pass@1 is averaged over each problem's samples; Pass@k is unbiased (Chen et al. 2021) at the k shown;",
        "[low, high] is the 95% bootstrap interval over problems; length is generated tokens per completion;",
        "entropy is the policy's mean token entropy (nats).",
    ]
    rows = metrics.to_dicts()
    math = [r for r in rows if r["kind"] == "math"]
    choice = [r for r in rows if r["kind"] == "choice"]  # with the average when no math set is there
    if math:
        lines += [
            "",
            "| benchmark | problems | k | Pass@1 | Pass@k | length | entropy | no answer % | truncated % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for r in math:
        pass_1 = with_interval(r["pass_at_1"], r["pass_at_1_low"], r["pass_at_1_high"])
        pass_k = with_interval(r["pass_at_k"], r["pass_at_k_low"], r["pass_at_k_high"])
        lines.append(
            f"| {r['benchmark']} | {r['problems']} | {r['k'] or '-'} | {pass_1} | {pass_k} "
            f"| {r['mean_length']:.0f} | {_entropy(r)} | {_pct(r['no_answer_rate'])} | {_pct(r['truncated_rate'])} |"
        )
    if choice:
        lines += [
            "",
            "## Multiple choice",
            "",
            "Accuracy is the share of correct letters, averaged over each question's samples (Pass@1).",
            "",
            "| benchmark | questions | k | accuracy | length | entropy | no answer % | truncated % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for r in choice:
        accuracy = with_interval(r["pass_at_1"], r["pass_at_1_low"], r["pass_at_1_high"])
        lines.append(
            f"| {r['benchmark']} | {r['problems']} | {r['k'] or '-'} | {accuracy} | {r['mean_length']:.0f} "
            f"| {_entropy(r)} | {_pct(r['no_answer_rate'])} | {_pct(r['truncated_rate'])} |"
        )
    for name in dict.fromkeys(r["benchmark"] for r in subjects):
        lines += [
            "",
            f"### {name} by subject",
            "",
            "| subject | questions | accuracy | length | entropy | no answer % |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in subjects if r["benchmark"] == name):
            accuracy = with_interval(r["accuracy"], r["accuracy_low"], r["accuracy_high"])
            lines.append(
                f"| {r['subject'] or '-'} | {r['questions']} | {accuracy} | {r['mean_length']:.0f} "
                f"| {_entropy(r)} | {_pct(r['no_answer_rate'])} |"
            )
    lines += _contamination_md(config, {r["benchmark"] for r in rows})
    ks = sorted({c["k"] for c in curves})
    by_set: dict[str, dict[int, float]] = {}
    for c in curves:
        by_set.setdefault(c["benchmark"], {})[c["k"]] = c["pass_at_k"]
    lines += ["", "## Pass@k", "", "| benchmark | " + " | ".join(f"k={k}" for k in ks) + " |"]
    lines.append("|---|" + "---:|" * len(ks))
    for name, values in by_set.items():
        lines.append(f"| {name} | " + " | ".join(_pct(values.get(k)) for k in ks) + " |")
    return "\n".join(lines) + "\n"


def _contamination_warnings(config: dict | None, names: set[str]) -> list[str]:
    """The warnings `oxa eval` recorded in config.json (train/eval/contamination.py) about
    the sets reported here, and those about the whole training subset."""
    found = (config or {}).get("contamination") or {"warnings": []}
    return [w["line"] for w in found["warnings"] if w["benchmark"] is None or w["benchmark"] in names]


def _contamination_md(config: dict | None, names: set[str]) -> list[str]:
    """The Contamination section: what the model was trained on and what that was checked
    against, then one item per warning; nothing for a model without an oxa training record
    (or an evaluation made before oxa checked)."""
    found = (config or {}).get("contamination")
    if not found:
        return []
    warnings = _contamination_warnings(config, names)
    lines = ["", "## Contamination", "", *(f"- {line}" for line in found["trained_on"]), ""]
    if warnings:
        return lines + ["Warnings:", "", *(f"- {line}" for line in warnings)]
    return lines + [
        "Every set here was among those checked; the subset keeps no row matched as contaminated and none unchecked."
    ]


def plot_pass_at_k(axis, curves: dict[str, list[dict]], title: str = "Pass@k") -> None:
    """Pass@k against k on a log2 axis with the k values as integer ticks, one line per
    label with its 95% interval as a band (shared with `oxa eval compare`)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ks: set[int] = set()
    for label, points in curves.items():
        x = [p["k"] for p in points]
        ks.update(x)
        (line,) = axis.plot(x, [100 * p["pass_at_k"] for p in points], marker="o", label=label)
        axis.fill_between(
            x, [100 * p["ci_low"] for p in points], [100 * p["ci_high"] for p in points], color=line.get_color(),
            alpha=0.15, linewidth=0,
        )  # fmt: skip
    axis.set_xscale("log", base=2)
    axis.xaxis.set_major_locator(FixedLocator(sorted(ks)))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.set_xticklabels([str(k) for k in sorted(ks)])
    axis.set_title(title)
    axis.set_xlabel("k")
    axis.set_ylabel("Pass@k (%)")
    axis.grid(True, alpha=0.3)
    axis.legend()


def _plot(curves: list[dict], path: Path) -> None:
    figure = new_figure()
    by_set: dict[str, list[dict]] = {}
    for c in curves:
        by_set.setdefault(c["benchmark"], []).append(c)
    plot_pass_at_k(figure.add_subplot(1, 1, 1), by_set)
    figure.tight_layout()
    with atomic_target(path) as tmp:
        save_png(figure, tmp)
