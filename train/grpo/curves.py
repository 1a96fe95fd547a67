"""The curves of a GRPO run, drawn from its logged history: mean reward, policy entropy
and completion length per optimizer step (OUTPUT/curves.png, as the paper's Fig. 5)."""

from __future__ import annotations

from pathlib import Path

from curate.subsets.plots import new_figure, save_png
from curate.workspace.parts import atomic_target

CURVES = (
    ("reward", "mean reward"),
    ("entropy", "policy entropy (nats)"),
    ("completions/mean_length", "length (tokens)"),
)


def training_curves(log_history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) per curve, from the training logs (evaluation logs left out)."""
    return {
        key: [(entry["step"], float(entry[key])) for entry in log_history if key in entry and "step" in entry]
        for key, _ in CURVES
    }


def plot_training_curves(log_history: list[dict], path: Path, title: str = "") -> None:
    curves = training_curves(log_history)
    figure = new_figure()
    figure.set_size_inches(12, 3.2)
    for column, (key, label) in enumerate(CURVES):
        axis = figure.add_subplot(1, len(CURVES), column + 1)
        points = curves[key]
        axis.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=3)
        axis.set_title(f"{title}: {label}" if title else label)
        axis.set_xlabel("step")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    with atomic_target(path) as tmp:
        save_png(figure, tmp)
