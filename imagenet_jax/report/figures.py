"""The report's PNG figures (matplotlib, Agg backend): curves, confusion matrix, reliability diagram, samples.

Figures are `matplotlib.figure.Figure` objects, never pyplot's: a run in a notebook writes its report without
switching the notebook's backend, so its inline plots keep working after `imagenet_jax.train`.
"""

from __future__ import annotations

import io

import numpy as np

from imagenet_jax.report.data import RunData

# Curves: (title, metrics.jsonl key, which splits plot it).
CURVES = (("Loss", "loss", "all"), ("Top-1 accuracy", "top1", "all"), ("Learning rate", "learning_rate", "train"),
          ("Images per second", "images_per_second", "train"))


def new_figure(**kwargs):
    """A standalone Figure (rendered by Agg on save), outside pyplot's global state and backend."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def curve_keys(runs: list[RunData]) -> list[tuple[str, str, str]]:
    """CURVES that at least one run logged (a run without an LR key gets no empty LR plot)."""
    logged = {key for run in runs for row in run.rows for key in row}
    return [curve for curve in CURVES if curve[1] in logged]


def curves_figure(runs: list[RunData], key: str, title: str, which: str, x_axis: str = "step") -> bytes:
    """One metric against step or epoch: train and every eval set of every run (several runs overlaid)."""
    figure = new_figure(figsize=(5.2, 3.4))
    axes = figure.subplots()
    for run in runs:
        splits = ["train"] + (run.eval_sets if which == "all" else [])
        for split in splits:
            points = [(row.get(x_axis), row[key]) for row in run.split_rows(split)
                      if key in row and row.get(x_axis) is not None and isinstance(row[key], int | float)]
            if not points:
                continue
            label = split if len(runs) == 1 else f"{run.name}: {split}"
            xs, ys = zip(*points)
            axes.plot(xs, ys, marker="o" if split != "train" else None, markersize=3, label=label)
    axes.set_xlabel(x_axis)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7)
    return _png(figure)


def confusion_figure(per_class: dict) -> bytes:
    """The confusion matrix (rows true, columns predicted), row-normalized, with class names on both axes."""
    matrix = np.asarray(per_class["confusion_matrix"], dtype=np.float64)
    names = list(per_class["classes"])
    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(3 + 0.35 * len(names), 16)
    figure = new_figure(figsize=(size, size))
    axes = figure.subplots()
    image = axes.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    if len(names) <= 50:  # beyond that the names would overlap; the table below names them
        axes.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        axes.set_yticks(range(len(names)), names, fontsize=7)
        if len(names) <= 20:
            for (row, column), count in np.ndenumerate(matrix):
                axes.text(column, row, f"{int(count)}", ha="center", va="center", fontsize=6,
                          color="white" if normalized[row, column] > 0.5 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes, fraction=0.046, label="fraction of the true class")
    return _png(figure)


def reliability_figure(calibration: dict) -> bytes:
    """Reliability diagram: accuracy per confidence bin against the diagonal, bin counts below."""
    bins = calibration["bins"]
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    widths = [b["upper"] - b["lower"] for b in bins]
    figure = new_figure(figsize=(4.6, 5))
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.bar(centers, [b["accuracy"] if b["count"] else 0 for b in bins], width=widths, edgecolor="black",
            label="accuracy")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability (ECE {calibration.get('ece', float('nan')):.4f})")
    top.legend(fontsize=7)
    bottom.bar(centers, [b["count"] for b in bins], width=widths, color="gray")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    return _png(figure)


def samples_figure(images: np.ndarray, true_names: list[str], predicted_names: list[str]) -> bytes:
    """A grid of eval images titled "predicted / true" (green when right, red when wrong)."""
    count = len(images)
    columns = min(count, 8)
    rows = (count + columns - 1) // columns
    figure = new_figure(figsize=(1.6 * columns, 1.9 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        image = images[index]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        right = predicted_names[index] == true_names[index]
        axis.set_title(f"{predicted_names[index]}\n(true: {true_names[index]})", fontsize=7,
                       color="green" if right else "red")
    return _png(figure)
