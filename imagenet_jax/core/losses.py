"""Classification losses by name (`config.loss`): per-example values against soft targets, in float32.

- "softmax_xent": cross-entropy of the softmax against the (smoothed, mixed) target distribution.
- "sigmoid_xent": binary cross-entropy of a sigmoid per class, as timm's `BinaryCrossEntropy` (ResNet strikes
  back): targets are the same (smoothed, mixed) vectors, optionally thresholded to 0/1 (target > threshold),
  and the loss is the mean over classes and examples — the per-example value is the mean over classes, which
  the step then averages over the batch (timm's default reduction="mean" over all batch x class elements).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from imagenet_jax.errors import ConfigError
from imagenet_jax.registry import Registry, UnknownNameError

PerExampleLoss = Callable[[jax.Array, jax.Array], jax.Array]
LossFactory = Callable[..., PerExampleLoss]  # factory(bce_target_threshold=...) -> loss(logits, targets)


class UnknownLossError(UnknownNameError, ValueError):
    """config.loss names no registered loss (a ConfigError; still a ValueError for older callers)."""


LOSSES: Registry[LossFactory] = Registry("loss", config_key="loss", error=UnknownLossError)


def softmax_xent(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Per-example softmax cross-entropy against target distributions [N, K]."""
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def sigmoid_xent(logits: jax.Array, targets: jax.Array, target_threshold: float = 0.0) -> jax.Array:
    """Per-example mean over classes of the sigmoid binary cross-entropy; threshold > 0 makes targets 0/1."""
    if target_threshold > 0:
        targets = (targets > target_threshold).astype(jnp.float32)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), targets), axis=-1)


def _check_softmax_xent(options: dict) -> None:
    if options.get("bce_target_threshold"):
        raise ConfigError(f"config.bce_target_threshold={options['bce_target_threshold']} only applies to "
                          "config.loss=\"sigmoid_xent\"; set it to 0.")


@LOSSES.register("softmax_xent", check=_check_softmax_xent)
def _softmax_xent_loss(bce_target_threshold: float = 0.0) -> PerExampleLoss:
    """softmax_xent (bce_target_threshold must be 0)."""
    return softmax_xent


@LOSSES.register("sigmoid_xent")
def _sigmoid_xent_loss(bce_target_threshold: float = 0.0) -> PerExampleLoss:
    """sigmoid_xent with targets thresholded at bce_target_threshold (0: soft targets)."""
    return functools.partial(sigmoid_xent, target_threshold=bce_target_threshold)


def create(name: str, bce_target_threshold: float = 0.0) -> PerExampleLoss:
    """The per-example loss `loss(logits, targets)` registered as `name`."""
    return LOSSES.get(name)(bce_target_threshold=bce_target_threshold)


def soft_targets(labels: jax.Array, num_classes: int, label_smoothing: float = 0.0) -> jax.Array:
    """One-hot targets [N, K], label-smoothed as (1 - s) * one_hot + s / K."""
    targets = jax.nn.one_hot(labels, num_classes)
    return optax.smooth_labels(targets, label_smoothing) if label_smoothing else targets
