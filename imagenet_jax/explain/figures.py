"""Pictures of attribution maps: a map over its image, the images × methods grid, deletion/insertion curves.

Figures are bare `matplotlib.figure.Figure`s with their own Agg canvas, never pyplot's: the report draws them at
the end of a run, and a notebook that trained in-process keeps its own backend and inline plots.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

# Colour maps: signed maps (gradient × input, Integrated Gradients, LIME) diverge around zero; maps that are
# non-negative by construction (gradient magnitude, Grad-CAM, occlusion's drops) use a sequential one.
SIGNED_COLORMAP = "RdBu_r"
UNSIGNED_COLORMAP = "inferno"
ALPHA = 0.55  # the map's weight over the (grey) image


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] of a pixel image [H, W, C] (C = 1 or 3), clipped to 0..255."""
    image = np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def colorize(attribution: np.ndarray) -> np.ndarray:
    """float RGB [H, W, 3] in 0..1 of one map, scaled by its 99th percentile of |map| (one outlier pixel does not
    wash the rest out)."""
    from matplotlib import colormaps

    attribution = np.asarray(attribution, np.float32)
    scale = float(np.percentile(np.abs(attribution), 99)) or float(np.abs(attribution).max()) or 1.0
    if attribution.min() < 0:
        values = np.clip(attribution / scale, -1, 1) * 0.5 + 0.5
        return colormaps[SIGNED_COLORMAP](values)[..., :3]
    return colormaps[UNSIGNED_COLORMAP](np.clip(attribution / scale, 0, 1))[..., :3]


def overlay(image: np.ndarray, attribution: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3]: the map's colours blended over the grey version of the image."""
    grey = to_rgb(image).astype(np.float32).mean(axis=-1, keepdims=True) / 255.0
    blended = (1 - ALPHA) * grey + ALPHA * colorize(attribution)
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)


def png(image: np.ndarray, scale: int = 1) -> bytes:
    """PNG bytes of a uint8 [H, W, 3] image, enlarged `scale` times by nearest neighbour (28-pixel images)."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    stream = io.BytesIO()
    Image.fromarray(image).save(stream, format="PNG")
    return stream.getvalue()


def display_scale(size: int) -> int:
    """How much to enlarge a size-pixel image for viewing (28 -> 8x, 224 -> 1x)."""
    return max(1, 224 // max(size, 1))


def grid_figure(images: np.ndarray, maps: dict[str, np.ndarray], titles: Sequence[str]) -> bytes:
    """PNG: one row per image (the image, then each method's map over it), one column per method."""
    columns = 1 + len(maps)
    figure = new_figure(1.6 * columns, 1.6 * len(images))
    axes = figure.subplots(len(images), columns, squeeze=False)
    for row, image in enumerate(images):
        panels = [("image", to_rgb(image))] + [(name, overlay(image, values[row])) for name, values in maps.items()]
        for column, (name, picture) in enumerate(panels):
            axis = axes[row][column]
            axis.imshow(picture, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name, fontsize=7)
        axes[row][0].set_ylabel(titles[row], fontsize=6)
    figure.tight_layout()
    return figure_png(figure)


def curves_figure(results: dict[str, dict]) -> bytes:
    """PNG: each method's mean deletion and insertion curves beside the random-order ones."""
    figure = new_figure(9, 3.5)
    axes = figure.subplots(1, 2)
    for axis, kind in zip(axes, ("deletion", "insertion"), strict=True):
        random_drawn = False
        for name, result in results.items():
            axis.plot(result["fractions"], result[f"{kind}_curve"], label=f"{name} ({result[f'{kind}_auc']:.3f})")
            if not random_drawn:
                axis.plot(result["fractions"], result[f"random_{kind}_curve"], "k--",
                          label=f"random order ({result[f'random_{kind}_auc']:.3f})")
                random_drawn = True
        axis.set_title(f"{kind}: target probability (area)")
        axis.set_xlabel("fraction of pixels " + ("removed" if kind == "deletion" else "revealed"))
        axis.legend(fontsize=6)
    figure.tight_layout()
    return figure_png(figure)


def new_figure(width: float, height: float, dpi: int = 110):
    """A bare Figure with its own Agg canvas: no pyplot, no global backend switch, nothing left open."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure) -> bytes:
    """PNG bytes of a Figure made by new_figure."""
    stream = io.BytesIO()
    figure.savefig(stream, format="png")
    return stream.getvalue()
