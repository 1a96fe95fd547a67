"""The plots of a subset's card (PNG, matplotlib's Agg renderer, no display needed).

matplotlib is imported when a card is drawn, not when oxa starts. Figures are drawn on
their own canvas (no pyplot state) and saved without a timestamp or version stamp, so
the same subset draws the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

SAVE_OPTIONS = {"dpi": 100, "metadata": {"Software": None}}  # savefig options: no stamp, same bytes
_PART_COLOURS = ("#1f77b4", "#d62728")


def save_png(figure, path: Path) -> None:
    """Render to memory, then write the bytes: a full disk then raises OSError (ENOSPC)
    naming the file, where matplotlib's own file writer hid it behind an AttributeError."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **SAVE_OPTIONS)
    Path(path).write_bytes(buffer.getvalue())


def new_figure(rows: int = 1):
    """A figure on its own Agg canvas (eval's Pass@k plot draws on one too)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2 * rows))
    FigureCanvasAgg(figure)
    return figure


def plot_ppl(data: Path, parts: list[dict], path: Path) -> None:
    """Per part, the histogram of selected PPL; for a gaussian part, the rows selected
    per bin under the target count per bin (the Gaussian the selection aimed at)."""
    table = pq.read_table(data, columns=["ppl", "loss_type"])
    figure = new_figure(len(parts))
    for axis_index, part in enumerate(parts):
        axis = figure.add_subplot(len(parts), 1, axis_index + 1)
        mask = table["loss_type"].to_numpy() == part["loss_type"]
        ppl = table["ppl"].to_numpy(zero_copy_only=False)[mask]
        colour = _PART_COLOURS[part["loss_type"] % 2]
        if part["bins"]:
            # the selection's own per-bin counts: re-binning the PPL here could put a
            # value on an edge in the other bin (floating point), unlike the selection
            bins = part["bins"]
            lows = [b["low"] for b in bins]
            widths = [b["high"] - b["low"] for b in bins]
            axis.bar(
                lows, [b["achieved"] for b in bins], widths, align="edge", color=colour, alpha=0.7, label="selected"
            )
            targets = [b["target"] for b in bins]
            axis.step([*lows, bins[-1]["high"]], [*targets, targets[-1]], where="post", color="black", label="target")
        else:
            axis.hist(ppl[np.isfinite(ppl)], bins=50, color=colour, alpha=0.7, label="selected")
        axis.set_title(f"{part['label']} ({part['strategy']}): PPL under {part['scores_tag'] or 'no scorer'}")
        axis.set_xlabel("PPL")
        axis.set_ylabel("rows")
        axis.legend()
    figure.tight_layout()
    save_png(figure, path)


def plot_lengths(data: Path, parts: list[dict], path: Path) -> None:
    """The histogram of selected response lengths (tokens), one colour per part."""
    table = pq.read_table(data, columns=["n_tokens", "loss_type"])
    figure = new_figure()
    axis = figure.add_subplot(1, 1, 1)
    for part in parts:
        mask = table["loss_type"].to_numpy() == part["loss_type"]
        lengths = table["n_tokens"].to_numpy(zero_copy_only=False)[mask]
        lengths = lengths[np.isfinite(lengths)]
        if len(lengths):
            axis.hist(lengths, bins=50, alpha=0.6, color=_PART_COLOURS[part["loss_type"] % 2], label=part["label"])
    axis.set_xlabel("response tokens")
    axis.set_ylabel("rows")
    if axis.get_legend_handles_labels()[0]:
        axis.legend()
    else:  # a selection that read no scores (random) has no token counts
        axis.text(0.5, 0.5, "no token counts: the selection read no scores", ha="center", transform=axis.transAxes)
    figure.tight_layout()
    save_png(figure, path)


def plot_pass_rates(data: Path, path: Path) -> None:
    """Problems per pass rate (a prompt subset)."""
    rates = pq.read_table(data, columns=["pass_rate"])["pass_rate"].to_numpy()
    values, counts = np.unique(np.round(rates, 4), return_counts=True)
    figure = new_figure()
    axis = figure.add_subplot(1, 1, 1)
    axis.bar(values, counts, width=0.02)
    axis.set_xlabel("pass rate")
    axis.set_ylabel("problems")
    figure.tight_layout()
    save_png(figure, path)
