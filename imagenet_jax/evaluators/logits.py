"""The eval-mode logits every classification evaluator scores, and top-k correctness (ReaL label sets too)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.core.metrics import normalize_images, topk_correct
from imagenet_jax.models.outputs import split_outputs


def eval_logits(model: nn.Module, state, images: jax.Array, mean: Sequence[float], std: Sequence[float],
                class_subset: Sequence[int] | None = None, **apply_kwargs) -> jax.Array:
    """The model's eval-mode logits of uint8-valued images, restricted to `class_subset` when given."""
    outputs = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                          normalize_images(images, mean, std), train=False, **apply_kwargs)
    logits, _ = split_outputs(outputs)
    if class_subset is not None:
        logits = jnp.take(logits, jnp.asarray(class_subset, jnp.int32), axis=-1)
    return logits


def correct(logits: jax.Array, batch: dict, k: int) -> jax.Array:
    """Per-example 1.0 where a top-k prediction is the label (or, with "label_set", any label of the set)."""
    if "label_set" not in batch:
        return topk_correct(logits, batch["label"], k)
    _, top = jax.lax.top_k(logits, min(k, logits.shape[-1]))
    hits = (top[:, :, None] == batch["label_set"][:, None, :]) & (batch["label_set"][:, None, :] >= 0)
    return jnp.any(hits, axis=(1, 2)).astype(jnp.float32)
