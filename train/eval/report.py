"""The metrics of an evaluation, from its stored samples alone (no model, no GPU).

Per set: Pass@1 averaged over each problem's samples, unbiased Pass@k for k = 1, 2, 4,
..., n (train/eval/passk.py), the mean output length (generated tokens), and the mean policy
entropy over generated tokens (token-weighted: every token counts once, as RL trainers
log it). The average row is the plain mean of the sets' numbers, as the paper's
"Avg. Perf." column. Written to OUT: table.md (like the paper's Table 1),
metrics.parquet (one row per set and the average), pass_at_k.parquet (the curves, long
form) and pass_at_k.png (the curves, as the paper's Fig. 3).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from curate.subsets.plots import SAVE_OPTIONS, new_figure
from curate.workspace import OxaError
from curate.workspace.parts import atomic_target, atomic_write_text
from train.eval.passk import k_values, mean_pass_at_k

AVERAGE = "average"


def stored_sets(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / "samples").glob("*.parquet"))


def set_metrics(name: str, samples: pl.DataFrame, k: int | None) -> tuple[dict, list[dict]]:
    """(the set's row of metrics.parquet, its Pass@k curve rows)."""
    per_problem = samples.group_by("problem_id", maintain_order=True).agg(
        n=pl.len(), c=(pl.col("verdict") == "correct").sum().cast(pl.Int64)
    )
    n, c = per_problem["n"].to_list(), per_problem["c"].to_list()
    fewest = min(n)
    if k is not None and k > fewest:
        short = per_problem.filter(pl.col("n") == fewest)["problem_id"].sort()[0]
        raise OxaError(
            f"Pass@{k} needs {k} samples per problem, but {name} stores {fewest} for problem {short}; "
            f"lower --k to at most {fewest}, or evaluate again with --k {k}"
        )
    top = k or fewest
    curve = [{"benchmark": name, "k": kk, "pass_at_k": mean_pass_at_k(n, c, kk)} for kk in k_values(top)]
    scored = samples.filter(pl.col("entropy_mean").is_not_null())
    tokens = scored["n_tokens"].sum()
    row = {
        "benchmark": name,
        "problems": len(n),
        "samples": samples.height,
        "k": top,
        "pass_at_1": curve[0]["pass_at_k"],
        "pass_at_k": curve[-1]["pass_at_k"],
        "mean_length": float(samples["n_tokens"].mean()),
        "mean_entropy": float((scored["entropy_mean"] * scored["n_tokens"]).sum() / tokens) if tokens else None,
        "no_answer_rate": float((samples["verdict"] == "no_answer").mean()),
        "truncated_rate": float((samples["finish_reason"] == "length").mean()),
    }
    return row, curve


def write_report(out: Path, names: list[str] | None = None, k: int | None = None) -> dict:
    """Compute every metric from OUT/samples/ and write the table, the parquet files and the plot."""
    names = names or stored_sets(out)
    if not names:
        raise OxaError(f"{out} holds no samples (samples/*.parquet); run `oxa eval` first")
    rows, curves = [], []
    for name in names:
        path = out / "samples" / f"{name}.parquet"
        if not path.is_file():
            raise OxaError(f"{out} holds no samples of {name!r}; stored: {', '.join(stored_sets(out)) or 'none'}")
        row, curve = set_metrics(name, pl.read_parquet(path), k)
        rows.append(row)
        curves += curve
    metrics = pl.DataFrame(rows)
    average = metrics.select(
        pl.lit(AVERAGE).alias("benchmark"),
        pl.col("problems", "samples").sum(),
        pl.lit(None, pl.Int64).alias("k"),
        pl.exclude("benchmark", "problems", "samples", "k").mean(),
    )
    metrics = pl.concat([metrics, average], how="vertical_relaxed")
    for table, file in ((metrics, "metrics.parquet"), (pl.DataFrame(curves), "pass_at_k.parquet")):
        with atomic_target(out / file) as tmp:
            table.write_parquet(tmp)
    config = json.loads((out / "config.json").read_text(encoding="utf-8")) if (out / "config.json").is_file() else None
    atomic_write_text(out / "table.md", _markdown(config, metrics, curves))
    _plot(curves, out / "pass_at_k.png")
    return {"metrics": metrics.to_dicts(), "table": str(out / "table.md"), "plot": str(out / "pass_at_k.png")}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _markdown(config: dict | None, metrics: pl.DataFrame, curves: list[dict]) -> str:
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
    lines += [
        "Pass@1 is averaged over each problem's samples; Pass@k is unbiased (Chen et al. 2021) at the k shown;",
        "length is generated tokens per completion; entropy is the policy's mean token entropy (nats).",
        "",
        "| benchmark | problems | k | Pass@1 | Pass@k | length | entropy | no answer % | truncated % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in metrics.to_dicts():
        entropy = "-" if r["mean_entropy"] is None else f"{r['mean_entropy']:.3f}"
        lines.append(
            f"| {r['benchmark']} | {r['problems']} | {r['k'] or '-'} | {_pct(r['pass_at_1'])} | {_pct(r['pass_at_k'])} "
            f"| {r['mean_length']:.0f} | {entropy} | {_pct(r['no_answer_rate'])} | {_pct(r['truncated_rate'])} |"
        )
    ks = sorted({c["k"] for c in curves})
    by_set: dict[str, dict[int, float]] = {}
    for c in curves:
        by_set.setdefault(c["benchmark"], {})[c["k"]] = c["pass_at_k"]
    lines += ["", "## Pass@k", "", "| benchmark | " + " | ".join(f"k={k}" for k in ks) + " |"]
    lines.append("|---|" + "---:|" * len(ks))
    for name, values in by_set.items():
        lines.append(f"| {name} | " + " | ".join(_pct(values.get(k)) for k in ks) + " |")
    return "\n".join(lines) + "\n"


def _plot(curves: list[dict], path: Path) -> None:
    figure = new_figure()
    axis = figure.add_subplot(1, 1, 1)
    by_set: dict[str, list[dict]] = {}
    for c in curves:
        by_set.setdefault(c["benchmark"], []).append(c)
    for name, points in by_set.items():
        axis.plot([p["k"] for p in points], [100 * p["pass_at_k"] for p in points], marker="o", label=name)
    from matplotlib.ticker import ScalarFormatter

    axis.set_xscale("log", base=2)
    axis.xaxis.set_major_formatter(ScalarFormatter())
    axis.set_title("Pass@k")
    axis.set_xlabel("k")
    axis.set_ylabel("Pass@k (%)")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    with atomic_target(path) as tmp:
        figure.savefig(tmp, format="png", **SAVE_OPTIONS)
