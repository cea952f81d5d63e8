"""The `explain` command's work: one checkpoint's explanations of some images, written to DIR/explain/<step>/.

    explain.json                 the images, targets, predictions, each method's options and its checks
    <method>/<index>.png         the method's map over each image
    grid.png                     images × methods
    curves.png                   deletion and insertion curves, each method against random pixel orders
    filters.png                  the first layer's filters (AlexNet Fig. 3)
    feature_maps.png             the explained layer's channels for the first image
    class_model_<class>.png      class-model visualizations (Simonyan et al.), when asked for
    embedding.png, neighbours.png  penultimate features projected and coloured by class; nearest neighbours
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain import checks, embedding, figures, methods, pictures
from imagenet_jax.explain.network import Network
from imagenet_jax.storage.layout import RunLayout

DEFAULT_METHODS = ("gradient", "integrated_gradients", "gradcam", "occlusion")
FIGURE_IMAGES = 8  # rows of grid.png and neighbours.png
RANDOMIZATION_SEED_OFFSET = 7919  # the randomized model's init key: seed + this


@dataclasses.dataclass(frozen=True)
class Request:
    """What to explain and how; the command line's flags (imagenet_jax/cli/explain.py) fill it in."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # method -> its options
    layer: str = ""  # Grad-CAM's and the feature maps' layer; "": the last convolutional stage
    checks: bool = True  # deletion/insertion areas and the randomization check per method
    check_steps: int = 16
    # What deleted pixels become. Black: the absence of light, and Fashion-MNIST's background; the normalization
    # mean ("mean", RISE's zero after normalization) keeps a grey silhouette of a garment, which the model still
    # recognizes, so on Fashion-MNIST it rewards maps that avoid the object (RESULTS.md measures both).
    deletion_fill: str = "zero"
    embedding: str = "tsne"  # "tsne", "umap", "pca" or "" (none)
    embedding_examples: int = 1000
    neighbours: int = 5
    class_models: tuple[int, ...] = ()
    batch_size: int = 32
    seed: int = 0


def parse_options(texts: list[str], chosen: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """["integrated_gradients.steps=32", ...] -> {"integrated_gradients": {"steps": 32}}; values are literals."""
    import ast

    options: dict[str, dict[str, Any]] = {}
    for text in texts:
        key, has_value, value = text.partition("=")
        method, dot, option = key.partition(".")
        if not has_value or not dot or not option:
            raise ConfigError(f"--option {text!r} must be METHOD.OPTION=VALUE (e.g. integrated_gradients.steps=32).")
        if method not in chosen:
            raise ConfigError(f"--option {text!r}: {method!r} is not among --methods ({', '.join(chosen)}).")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        options.setdefault(method, {})[option] = parsed
    return options


def check_request(request: Request) -> None:
    """ConfigError for an unknown method or option, before any image is read or weights restored."""
    known = methods.method_names()
    for name in request.methods:
        methods.METHODS.get(name)  # unknown: the registry's message with near matches
        unknown = sorted(set(request.options.get(name, {})) - set(methods.method_defaults(name)))
        if unknown:
            raise ConfigError(f"--option {name}.{unknown[0]}: not an option of {name} (its options: "
                              f"{', '.join(sorted(methods.method_defaults(name))) or 'none'}).")
    if not request.methods:
        raise ConfigError(f"--methods is empty; choose among {', '.join(known)}.")
    if request.deletion_fill not in checks.DELETION_FILLS:
        raise ConfigError(f"--deletion_fill={request.deletion_fill!r} must be one of "
                          f"{', '.join(checks.DELETION_FILLS)}.")
    if request.embedding not in ("", "tsne", "umap", "pca"):
        raise ConfigError(f"--embedding={request.embedding!r} must be tsne, umap, pca or '' (none).")


def explain(run, variables: dict, step: int, images: np.ndarray, labels: np.ndarray, titles: list[str],
            request: Request, out_dir: str | None = None, compare_variables: dict | None = None) -> dict:
    """Writes the explanations of `images` (uint8 [N, H, W, C] at the run's eval size) and returns explain.json.

    `compare_variables`: another training of the same network (another seed); each method's maps of it are
    rank-correlated with this one's, the yardstick of the randomization check (a map that means something
    should change more when the model is randomized than when it is retrained)."""
    check_request(request)
    for target in request.class_models:
        if not 0 <= target < run.num_classes:
            raise ConfigError(f"--class_models: {target} is not a class index of this model "
                              f"(0..{run.num_classes - 1}).")
    started = time.time()
    network = Network(run.model, variables, tuple(run.config.normalize_mean), tuple(run.config.normalize_std))
    out = _out_dir(run, step, out_dir)
    pixels = np.asarray(images, np.float32)
    logits = np.asarray(network.logits(pixels))
    predictions = logits.argmax(-1)
    targets = predictions  # explain what the model decided; the labels are reported beside it
    layer = request.layer or network.default_layer(pixels)
    network.check_layer(layer)
    names = run.class_names
    scale = figures.display_scale(images.shape[1])
    result: dict[str, Any] = {
        "step": step, "layer": layer, "images": titles,
        "labels": [int(label) for label in labels], "predictions": [int(p) for p in predictions],
        "predicted_classes": [names[int(p)] for p in predictions], "methods": {}}
    maps: dict[str, np.ndarray] = {}
    for name in request.methods:
        options = _with_layer(name, request.options.get(name, {}), layer)
        maps[name] = methods.attribute(network, name, pixels, targets, batch_size=request.batch_size, **options)
        (out / name).mkdir(parents=True, exist_ok=True)
        for index, image in enumerate(images):
            (out / name / f"{index}.png").write_bytes(figures.png(figures.overlay(image, maps[name][index]), scale))
        entry: dict[str, Any] = {"options": {**methods.method_defaults(name), **options}}
        if request.checks:
            entry.update(_checks(network, name, options, pixels, targets, maps[name], request))
        if compare_variables is not None:
            other = methods.attribute(network.with_variables(compare_variables), name, pixels, targets,
                                      batch_size=request.batch_size, **options)
            entry["other_training_spearman"] = float(np.mean([np.nan_to_num(checks.spearman(a, b), nan=0.0)
                                                              for a, b in zip(maps[name], other, strict=True)]))
        result["methods"][name] = entry
        logging.info("explain: %s done (%.0f s so far)", name, time.time() - started)
    shown = slice(0, FIGURE_IMAGES)  # the figures show the first images; every image has its own PNGs and numbers
    (out / "grid.png").write_bytes(figures.grid_figure(images[shown], {name: values[shown] for name, values in
                                                                       maps.items()}, [
        f"{title}\n{names[int(p)]}" for title, p in zip(titles[shown], predictions[shown], strict=True)]))
    if request.checks:
        (out / "curves.png").write_bytes(figures.curves_figure(
            {name: entry["deletion_insertion"] for name, entry in result["methods"].items()}))
    (out / "filters.png").write_bytes(figures.png(pictures.first_layer_filters(network)))
    (out / "feature_maps.png").write_bytes(figures.png(pictures.feature_maps(network, pixels[0], layer)))
    for target in request.class_models:
        image = pictures.class_model(network, target, image_shape=pixels.shape[1:], seed=request.seed)
        (out / f"class_model_{target}.png").write_bytes(figures.png(figures.to_rgb(image), scale))
    result["class_models"] = list(request.class_models)
    if request.embedding:
        result["embedding"] = _embedding(run, network, pixels, targets, out, request)
    result["seconds"] = round(time.time() - started, 1)
    (out / "explain.json").write_text(json.dumps(result, indent=1))
    return result


def _with_layer(name: str, options: dict, layer: str) -> dict:
    """Grad-CAM's layer defaults to the explained layer."""
    if "layer" in methods.method_defaults(name) and not options.get("layer"):
        return {**options, "layer": layer}
    return dict(options)


def _checks(network: Network, name: str, options: dict, pixels: np.ndarray, targets: np.ndarray,
            maps: np.ndarray, request: Request) -> dict:
    """Deletion/insertion areas against random orders, and the model-randomization check."""
    curves = checks.deletion_insertion(network, pixels, targets, maps, steps=request.check_steps,
                                       deletion_fill=request.deletion_fill, seed=request.seed)

    def attribution(other: Network, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return methods.attribute(other, name, images, classes, batch_size=request.batch_size, **options)

    # Not the run's own init key: re-initializing from it would restore the run's starting weights.
    randomized = checks.randomization_check(network, attribution, pixels, targets, seed=RANDOMIZATION_SEED_OFFSET
                                            + request.seed)
    return {"deletion_insertion": _plain(curves), "randomization": _plain(randomized)}


def _embedding(run, network: Network, pixels: np.ndarray, targets: np.ndarray, out, request: Request) -> dict:
    """Penultimate features of the first examples of the eval split: a 2-D projection and nearest neighbours."""
    gallery_images, gallery_labels = first_examples(run, request.embedding_examples)
    features = embedding.penultimate_features(network, gallery_images.astype(np.float32))
    points = embedding.project(features, request.embedding, seed=request.seed)
    (out / "embedding.png").write_bytes(embedding.embedding_figure(
        points, gallery_labels, list(run.class_names),
        f"{request.embedding} of penultimate features, {len(points)} {run.config.eval_split} images"))
    queries = embedding.penultimate_features(network, pixels)
    indices = embedding.nearest_neighbours(queries, features, k=request.neighbours)
    (out / "neighbours.png").write_bytes(embedding.neighbours_figure(
        pixels[:FIGURE_IMAGES], gallery_images, indices[:FIGURE_IMAGES], gallery_labels, list(run.class_names)))
    # How often a neighbour's label is the class the model predicted for the query: feature space at work.
    agreement = float(np.mean(gallery_labels[indices] == np.asarray(targets)[:, None]))
    return {"method": request.embedding, "examples": int(len(points)), "neighbours": request.neighbours,
            "neighbour_indices": indices.tolist(), "neighbours_of_the_predicted_class": agreement}


def first_examples(run, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) of the first `count` examples of the run's eval split, after its eval preprocessing."""
    images, labels = [], []
    for batch in run.eval_batches(None, batch_size=min(count, 256)):
        images.append(batch["image"][batch["mask"]])
        labels.append(batch["label"][batch["mask"]])
        if sum(len(part) for part in images) >= count:
            break
    return np.concatenate(images)[:count], np.concatenate(labels)[:count]


def _out_dir(run, step: int, out_dir: str | None):
    from imagenet_jax.storage import run_path

    out = run_path(out_dir) if out_dir else RunLayout.of(run.workdir).explain / str(step)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _plain(value: Any) -> Any:
    """JSON-ready: numpy arrays and scalars as lists and Python numbers."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
