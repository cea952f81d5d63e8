"""Classification losses by name (`config.loss`): per-example values against soft targets, in float32.

- "softmax_xent": cross-entropy of the softmax against the (smoothed, mixed) target distribution.
- "sigmoid_xent": binary cross-entropy of a sigmoid per class, as timm's `BinaryCrossEntropy` (ResNet strikes
  back): targets are the same (smoothed, mixed) vectors, optionally thresholded to 0/1 (target > threshold),
  and the loss is the mean over classes and examples — the per-example value is the mean over classes, which
  the step then averages over the batch (timm's default reduction="mean" over all batch x class elements).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

LOSSES = ("softmax_xent", "sigmoid_xent")

PerExampleLoss = Callable[[jax.Array, jax.Array], jax.Array]


def softmax_xent(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Per-example softmax cross-entropy against target distributions [N, K]."""
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def sigmoid_xent(logits: jax.Array, targets: jax.Array, target_threshold: float = 0.0) -> jax.Array:
    """Per-example mean over classes of the sigmoid binary cross-entropy; threshold > 0 makes targets 0/1."""
    if target_threshold > 0:
        targets = (targets > target_threshold).astype(jnp.float32)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), targets), axis=-1)


def create(name: str, bce_target_threshold: float = 0.0) -> PerExampleLoss:
    """The per-example loss `loss(logits, targets)` registered as `name`."""
    if name == "softmax_xent":
        return softmax_xent
    if name == "sigmoid_xent":
        return lambda logits, targets: sigmoid_xent(logits, targets, bce_target_threshold)
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")


def soft_targets(labels: jax.Array, num_classes: int, label_smoothing: float = 0.0) -> jax.Array:
    """One-hot targets [N, K], label-smoothed as (1 - s) * one_hot + s / K."""
    targets = jax.nn.one_hot(labels, num_classes)
    return optax.smooth_labels(targets, label_smoothing) if label_smoothing else targets
