"""Numbers that say whether an attribution map means anything.

deletion_insertion   Petsiuk et al. 2018 (RISE): deleting the pixels a map ranks first should drop the target's
                     probability fast (low deletion AUC), revealing them should raise it fast (high insertion AUC),
                     both compared with random pixel orders.
randomization_check  Adebayo et al. 2018: a map that survives re-initializing the top layers does not depend on
                     what they learned (high rank correlation with the trained network's map is the bad sign).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain.network import Network
from imagenet_jax.explain.pictures import gaussian_blur

DELETION_FILLS = ("mean", "zero", "blur")
INSERTION_STARTS = ("blur", "mean")
# RISE blurs with a Gaussian of sigma 5 px (kernel 11) at 224 px; the same fraction of the image at other sizes.
BLUR_SIGMA_FRACTION = 5 / 224

Attribution = Callable[[Network, np.ndarray, np.ndarray], np.ndarray]


def _replacement(network: Network, image: jax.Array, kind: str) -> jax.Array:
    if kind == "mean":  # the normalization mean: the model's input is zero there
        return jnp.broadcast_to(jnp.asarray(network.mean, jnp.float32), image.shape)
    if kind == "zero":
        return jnp.zeros_like(image)
    return gaussian_blur(image, BLUR_SIGMA_FRACTION * max(image.shape[:2]))


def deletion_insertion(network: Network, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, *,
                       steps: int = 32, deletion_fill: str = "mean", insertion_start: str = "blur",
                       random_orders: int = 3, seed: int = 0) -> dict:
    """Deletion and insertion curves (target softmax probability at pixel fractions 0, 1/steps, ..., 1) and AUCs.

    Pixels are ranked by the map, descending (ties by position); deletion replaces the top fraction with
    `deletion_fill` ("mean": the normalization mean, "zero", "blur": the image blurred with sigma 5/224 of its
    size), insertion starts from `insertion_start` ("blur" or "mean") and reveals the original pixels in the same
    order. The fraction k/steps covers round(k/steps * H*W) pixels. AUC: trapezoid over the fraction in [0, 1].
    The random_* entries average `random_orders` uniformly random pixel orders (from jax.random.key(seed)).
    Curves and AUCs are means over images; "per_image" holds each image's AUCs.
    """
    if deletion_fill not in DELETION_FILLS:
        raise ConfigError(f"deletion_fill={deletion_fill!r} is not one of {', '.join(DELETION_FILLS)}.")
    if insertion_start not in INSERTION_STARTS:
        raise ConfigError(f"insertion_start={insertion_start!r} is not one of {', '.join(INSERTION_STARTS)}.")
    if steps < 1 or random_orders < 0:
        raise ConfigError(f"steps={steps} must be >= 1 and random_orders={random_orders} >= 0.")
    images = jnp.asarray(images, jnp.float32)
    maps = np.asarray(maps, np.float32)
    if maps.shape != images.shape[:3]:
        raise ConfigError(f"maps have shape {maps.shape}; expected one [H, W] map per image, {images.shape[:3]}.")
    count, height, width = maps.shape
    fractions = np.linspace(0.0, 1.0, steps + 1)
    revealed = jnp.asarray(np.round(fractions * height * width).astype(np.int32))

    @jax.jit
    def curves(image, target, ranks):
        # ranks [H, W]: 0 for the first pixel in the order. mask[s] covers the first revealed[s] pixels.
        masks = (ranks[None] < revealed[:, None, None])[..., None]
        fill, start = _replacement(network, image, deletion_fill), _replacement(network, image, insertion_start)
        deleted = jnp.where(masks, fill[None], image[None])
        inserted = jnp.where(masks, image[None], start[None])
        probabilities = jax.nn.softmax(network.logits(jnp.concatenate([deleted, inserted])), axis=-1)[:, target]
        return probabilities[:steps + 1], probabilities[steps + 1:]

    def ranks_of(order_scores: np.ndarray) -> jax.Array:
        order = np.argsort(-order_scores.reshape(-1), kind="stable")
        ranks = np.empty(height * width, np.int32)
        ranks[order] = np.arange(height * width, dtype=np.int32)
        return jnp.asarray(ranks.reshape(height, width))

    key = jax.random.key(seed)
    results: dict[str, list] = {name: [] for name in ("deletion", "insertion", "random_deletion", "random_insertion")}
    for index in range(count):
        target = int(np.asarray(targets)[index])
        deletion, insertion = curves(images[index], target, ranks_of(maps[index]))
        results["deletion"].append(np.asarray(deletion))
        results["insertion"].append(np.asarray(insertion))
        random_curves = []
        for _ in range(random_orders):
            key, subkey = jax.random.split(key)
            ranks = jax.random.permutation(subkey, height * width).reshape(height, width).astype(jnp.int32)
            random_curves.append([np.asarray(curve) for curve in curves(images[index], target, ranks)])
        if random_curves:
            results["random_deletion"].append(np.mean([pair[0] for pair in random_curves], axis=0))
            results["random_insertion"].append(np.mean([pair[1] for pair in random_curves], axis=0))

    out: dict = {"fractions": fractions.tolist(), "steps": steps, "deletion_fill": deletion_fill,
                 "insertion_start": insertion_start, "random_orders": random_orders, "per_image": {}}
    for name, per_image in results.items():
        if not per_image:
            continue
        aucs = [float(np.trapezoid(curve, fractions)) for curve in per_image]
        out[f"{name}_curve"] = np.mean(per_image, axis=0).tolist()
        out[f"{name}_auc"] = float(np.mean(aucs))
        out["per_image"][f"{name}_auc"] = aucs
    return out


def spearman(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (average ranks for ties); nan when either map is constant."""
    from scipy.stats import rankdata

    a = rankdata(np.asarray(map_a, np.float64).reshape(-1))
    b = rankdata(np.asarray(map_b, np.float64).reshape(-1))
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float(np.clip((a * b).sum() / norm, -1.0, 1.0)) if norm > 0 else float("nan")


def _ssim(map_a: np.ndarray, map_b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    def unit(m):
        m = np.asarray(m, np.float64)
        span = m.max() - m.min()
        return (m - m.min()) / span if span > 0 else np.zeros_like(m)

    side = min(map_a.shape)
    if side < 3:
        return float("nan")
    window = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(unit(map_a), unit(map_b), data_range=1.0, win_size=window))


def _replace_subtree(tree, path: Sequence[str], value):
    if not path:
        return value
    if not hasattr(tree, "items") or path[0] not in tree:
        return tree
    return {**tree, path[0]: _replace_subtree(tree[path[0]], path[1:], value)}


def _subtree(tree, path: Sequence[str]):
    for part in path:
        if not hasattr(tree, "items") or part not in tree:
            return None
        tree = tree[part]
    return tree


def randomized_network(network: Network, layers: Sequence[str], sample: np.ndarray, seed: int = 0) -> Network:
    """The network with the variables of `layers` (params and batch stats alike) as the model's own init makes them
    from jax.random.key(seed); the other layers keep their trained values."""
    for layer in layers:
        network.check_layer(layer)
    fresh = network.model.init(jax.random.key(seed), jnp.asarray(sample[:1], jnp.float32), train=False)
    variables = dict(network.variables)
    for collection in variables:
        for layer in layers:
            replacement = _subtree(fresh.get(collection, {}), layer.split("/"))
            if replacement is not None:
                variables[collection] = _replace_subtree(variables[collection], layer.split("/"), replacement)
    return network.with_variables(variables)


def randomization_check(network: Network, attribution: Attribution, images: np.ndarray, targets: np.ndarray, *,
                        layers: Sequence[str] | None = None, seed: int = 0) -> dict:
    """Adebayo et al.'s cascading model-parameter randomization test: trained vs re-initialized top layers' maps.

    `layers` run top first (default: "head" and network.default_layer, the last spatial stage); the cascade
    re-initializes layers[:1], layers[:2], ... (randomized_network: parameters and batch statistics from the
    model's init with jax.random.key(seed)) and recomputes `attribution(network, images, targets)` -> [N, H, W].
    The top-level numbers are for all `layers` re-initialized: mean over images of the Spearman correlation of the
    maps, of their absolute values, and the SSIM of the min-max normalized maps. "cascade" has the same per step.
    """
    images = np.asarray(images, np.float32)
    targets = np.asarray(targets)
    layers = list(layers) if layers is not None else ["head", network.default_layer(jnp.asarray(images[:1]))]
    trained = np.asarray(attribution(network, images, targets))
    cascade = []
    for depth in range(1, len(layers) + 1) if layers else [0]:
        randomized = randomized_network(network, layers[:depth], images, seed)
        maps = np.asarray(attribution(randomized, images, targets))
        per_image = [{"spearman": spearman(a, b), "spearman_abs": spearman(np.abs(a), np.abs(b)), "ssim": _ssim(a, b)}
                     for a, b in zip(trained, maps, strict=True)]
        # A constant map (Grad-CAM's ReLU often zeroes a randomized model's) ranks nothing: it keeps none of the
        # trained map's structure, so it counts as correlation 0 in the means (and is counted).
        constant = sum(1 for a, b in zip(trained, maps, strict=True) if np.ptp(a) == 0 or np.ptp(b) == 0)
        cascade.append({"layers": layers[:depth],
                        **{name: float(np.mean([np.nan_to_num(one[name], nan=0.0) for one in per_image]))
                           for name in per_image[0]},
                        "constant_maps": constant, "per_image": per_image})
    return {**cascade[-1], "cascade": cascade}
