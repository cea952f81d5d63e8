"""What a model returns: logits, or in training with auxiliary heads a tuple `(logits, *aux_logits)`."""

from __future__ import annotations

import jax


def split_outputs(outputs: jax.Array | tuple[jax.Array, ...]) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Splits a model's output into `(logits, auxiliary_logits)`; the second is empty for single-head models.

    GoogLeNet (`aux_logits=True`, train) returns (logits, aux1, aux2), weighted 0.3 each in the paper;
    Inception-v3 (train) returns (logits, aux), weighted 0.4 by torchvision's reference recipe.
    """
    if isinstance(outputs, tuple):
        return outputs[0], tuple(outputs[1:])
    return outputs, ()
