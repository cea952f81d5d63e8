"""Perturbation methods: `occlusion` (Zeiler & Fergus 2014) and `lime` (Ribeiro, Singh & Guestrin 2016).

methods.py registers them in METHODS with their option checks. `occlusion` is pure and jit-compatible; `lime` runs
SLIC on the host per image and compiles only its batched predictor of the target probability.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.explain.network import Network


def target_probabilities(network: Network, images: jax.Array, targets: jax.Array) -> jax.Array:
    """Each image's softmax probability of its target class (what occlusion and LIME perturb)."""
    probabilities = jax.nn.softmax(network.logits(images), axis=-1)
    return jnp.take_along_axis(probabilities, targets[:, None].astype(jnp.int32), axis=1)[:, 0]


def _patch_masks(size: int, patch: int, stride: int) -> jax.Array:
    """[patches, size] 0/1 masks of the patch offsets every `stride` pixels along one axis, plus one flush with the
    far edge so every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    starts = np.asarray(starts if starts[-1] == size - patch else [*starts, size - patch])[:, None]
    pixels = np.arange(size)[None, :]
    return jnp.asarray((pixels >= starts) & (pixels < starts + patch), jnp.float32)


def occlusion(network: Network, images: jax.Array, targets: jax.Array, *, patch: int = 8, stride: int = 4,
              fill: str = "mean") -> jax.Array:
    """Drop in the target probability when a patch x patch square is filled (mean pixel or zero), averaged over the
    patches covering each pixel; the occluded copies run as one lax.map over patch positions."""
    images = images.astype(jnp.float32)
    height, width = images.shape[1:3]
    row_masks, col_masks = _patch_masks(height, patch, stride), _patch_masks(width, patch, stride)  # [Py, H], [Px, W]
    value = jnp.asarray(network.mean if fill == "mean" else 0.0, jnp.float32)
    original = target_probabilities(network, images, targets)

    def drop(position: tuple[jax.Array, jax.Array]) -> jax.Array:
        mask = (row_masks[position[0]][:, None] * col_masks[position[1]][None, :])[None, :, :, None]
        return original - target_probabilities(network, images * (1 - mask) + value * mask, targets)

    grid_y, grid_x = jnp.meshgrid(jnp.arange(len(row_masks)), jnp.arange(len(col_masks)), indexing="ij")
    drops = jax.lax.map(drop, (grid_y.ravel(), grid_x.ravel())).reshape(len(row_masks), len(col_masks), -1)
    # A patch's mask is the outer product of a row and a column mask, so the sums over patches are two matmuls.
    total = jnp.einsum("yxn,yh,xw->nhw", drops, row_masks, col_masks)
    return total / jnp.einsum("yh,xw->hw", row_masks, col_masks)[None]


@functools.lru_cache(maxsize=8)
def _compiled_probabilities(model: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> Callable:
    """target_probabilities jitted once per model (the weights are an argument)."""
    network = Network(model, None, mean, std)
    return jax.jit(lambda variables, images, targets: target_probabilities(network.with_variables(variables), images,
                                                                           targets))


def lime(network: Network, images: jax.Array, targets: jax.Array, *, segments: int = 50, samples: int = 500,
         keep_probability: float = 0.5, kernel_width: float = 0.25, seed: int = 0) -> np.ndarray:
    """Each SLIC superpixel's coefficient in a ridge fit of the target probability of copies with random
    superpixels filled with the mean pixel, weighted by LIME's kernel on the cosine distance to the full image."""
    from skimage.segmentation import slic

    predict = _compiled_probabilities(network.model, network.mean, network.std)
    images, targets = np.asarray(images, np.float32), np.asarray(targets)
    mean = np.broadcast_to(np.asarray(network.mean, np.float32), images.shape[1:])
    maps = np.zeros(images.shape[:3], np.float32)
    chunk = min(samples, 64)  # one compiled shape: every chunk of masked copies is padded to it
    for index, image in enumerate(images):
        grey = image.shape[-1] == 1
        labels = slic(image[..., 0] / 255 if grey else image / 255, n_segments=segments, start_label=0,
                      channel_axis=None if grey else -1)
        count = int(labels.max()) + 1
        rng = np.random.default_rng(seed)  # per image: a map does not depend on the image's batch position
        keep = (rng.random((samples, count)) < keep_probability).astype(np.float32)
        keep[0] = 1  # the unperturbed image, as LIME does
        probabilities = []
        for start in range(0, samples, chunk):
            block = keep[start:start + chunk]
            block = np.concatenate([block, np.repeat(block[-1:], chunk - len(block), 0)])
            pixels = block[:, labels][..., None]
            copies = image[None] * pixels + mean[None] * (1 - pixels)
            probabilities.append(np.asarray(predict(network.variables, copies, np.full(chunk, targets[index]))))
        y = np.concatenate(probabilities)[:samples].astype(np.float64)
        # Cosine distance of each mask to the all-ones mask, and LIME's kernel sqrt(exp(-d^2 / width^2)).
        distance = 1 - keep.sum(1) / (np.sqrt(keep.sum(1)) * np.sqrt(count) + 1e-12)
        weights = np.sqrt(np.exp(-(distance**2) / kernel_width**2))
        maps[index] = _weighted_ridge(keep.astype(np.float64), y, weights)[labels]
    return maps


def _weighted_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray, penalty: float = 1.0) -> np.ndarray:
    """Coefficients of argmin sum_i w_i (y_i - b - x_i.c)^2 + penalty |c|^2 (LIME's Ridge(alpha=1)), intercept
    unpenalized: centre x and y on their weighted means, then solve the normal equations."""
    share = weights / weights.sum()
    xc, yc = x - share @ x, y - share @ y
    gram = xc.T @ (weights[:, None] * xc) + penalty * np.eye(x.shape[1])
    return np.linalg.solve(gram, xc.T @ (weights * yc))
