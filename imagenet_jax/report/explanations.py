"""The report's "Explanations" section: the newest `explain` output, else a small Grad-CAM panel of test images."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from html import escape

from imagenet_jax.storage.layout import RunLayout

# Figures of DIR/explain/<step>/ the report shows, with their captions.
EXPLAIN_FIGURES = (("grid.png", "images by attribution method"),
                   ("curves.png", "deletion and insertion curves against random pixel orders"),
                   ("filters.png", "first-layer filters"), ("feature_maps.png", "feature maps of the explained layer"),
                   ("embedding.png", "penultimate features projected, coloured by class"),
                   ("neighbours.png", "nearest neighbours in feature space"))
PANEL_IMAGES = 6


def newest_explanation(workdir: str):
    """DIR/explain/<step>/ of the highest step holding an explain.json, or None."""
    root = RunLayout.of(workdir).explain
    if not root.exists():
        return None
    steps = sorted((int(child.name) for child in root.iterdir() if child.name.isdigit()
                    and (child / "explain.json").exists()), reverse=True)
    return root / str(steps[0]) if steps else None


def explanations_section(workdir: str, write_figure: Callable[[str, bytes], str], samples: bool) -> str:
    """HTML of the section; `write_figure(name, png)` puts a figure beside index.html and returns its name."""
    from imagenet_jax.report import html

    folder = newest_explanation(workdir)
    if folder is not None:
        result = json.loads((folder / "explain.json").read_text())
        parts = [f"<p>From <code>{escape(str(folder))}</code> (step {result['step']}, layer "
                 f"<code>{escape(result['layer'])}</code>), written by the <code>explain</code> command.</p>",
                 checks_table(result)]
        for name, caption in EXPLAIN_FIGURES:
            if (folder / name).exists():
                parts.append(html.image(write_figure(f"explain_{name}", (folder / name).read_bytes()), caption))
        return "".join(parts)
    if not samples:
        return html.note("No explanations (run `python -m imagenet_jax explain --workdir DIR`).")
    try:
        return gradcam_panel(workdir, write_figure)
    except Exception as error:  # noqa: BLE001  (no checkpoint or no data here: the rest of the report stands)
        logging.info("report: no Grad-CAM panel (%s)", error)
        return html.note(f"No Grad-CAM panel: {error}")


def checks_table(result: dict) -> str:
    """Methods × deletion/insertion areas (random orders beside them) × randomization rank correlation."""
    from imagenet_jax.report import html

    rows = []
    for name, entry in result["methods"].items():
        if "deletion_insertion" not in entry:
            continue
        curves, randomized = entry["deletion_insertion"], entry["randomization"]
        rows.append([name, curves["deletion_auc"], curves["random_deletion_auc"], curves["insertion_auc"],
                     curves["random_insertion_auc"], randomized["spearman"], entry.get("other_training_spearman")])
    if not rows:
        return html.note("The checks were skipped (--no_checks).")
    fill = next(iter(result["methods"].values()))["deletion_insertion"].get("deletion_fill", "")
    return (f"<p>Deletion: area under the target probability as the map's top pixels are removed (filled: {fill}; "
            "lower is better); "
            "insertion: as they are revealed (higher is better); random: the same for random pixel orders. "
            "Randomization: rank correlation of each map with the map of the model whose top layers were "
            "re-initialized (lower: the map depends on what the model learned); another training: the same with a "
            "second training of the network (explain --compare_workdir), the yardstick.</p>"
            + html.table(["method", "deletion", "deletion, random", "insertion", "insertion, random",
                          "randomization corr.", "another training corr."], rows, css_id="explain-checks"))


def gradcam_panel(workdir: str, write_figure: Callable[[str, bytes], str]) -> str:
    """Grad-CAM of the latest checkpoint on the first test images (raises when the run has no checkpoint)."""
    import numpy as np

    from imagenet_jax.explain import figures, methods
    from imagenet_jax.explain.network import Network
    from imagenet_jax.report import html
    from imagenet_jax.runs import load_run

    run = load_run(workdir)
    network = Network.from_run(run, "latest")
    batch = next(run.eval_batches(1, batch_size=PANEL_IMAGES))
    images = batch["image"][batch["mask"]][:PANEL_IMAGES]
    pixels = images.astype(np.float32)
    predicted = np.asarray(network.logits(pixels)).argmax(-1)
    layer = network.default_layer(pixels)
    maps = methods.attribute(network, "gradcam", pixels, predicted, layer=layer)
    names = run.class_names
    titles = [f"{names[int(label)]}\n-> {names[int(p)]}" for label, p in zip(batch["label"], predicted, strict=False)]
    name = write_figure("gradcam.png", figures.grid_figure(images, {f"Grad-CAM ({layer})": maps}, titles))
    return ("<p>Latest checkpoint: Grad-CAM of the predicted class on the first test images (true -> predicted). "
            "<code>python -m imagenet_jax explain --workdir DIR</code> adds the other methods and their checks.</p>"
            + html.image(name, "Grad-CAM of test images"))
