"""An ensemble as one Flax module, so that every evaluator scores it as it scores a single model.

Its input is the eval images in [0, 255] (the evaluators' normalization is the identity for it); each member
resizes them to its own eval size on device when that differs, normalizes them with its own statistics and
computes its eval-mode logits. `combine="probabilities"` returns log(sum_i w_i softmax(z_i)): logits whose
softmax is the weighted mean of the members' probabilities, so the loss the evaluators compute is the ensemble's
NLL. `combine="logits"` returns sum_i w_i z_i. The weights are normalized to sum to 1.

Variables: {"params": {"members_0": ..., "members_1": ...}, "batch_stats": {...}}, as `stack_variables` builds.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.errors import ConfigError
from imagenet_jax.models.outputs import split_outputs

COMBINES = ("probabilities", "logits")


class Ensemble(nn.Module):
    """The weighted combination of member models, each with its own input size and normalization."""

    members: Sequence[nn.Module]
    sizes: Sequence[int]  # each member's eval image size
    means: Sequence[Sequence[float]]  # each member's normalization (0-255 units)
    stds: Sequence[Sequence[float]]
    weights: Sequence[float]
    combine: str = "probabilities"

    @property
    def supports_dense_eval(self) -> bool:
        """VGG's dense evaluation applies when every member supports it."""
        return all(getattr(member, "supports_dense_eval", False) for member in self.members)

    def member_logits(self, images: jax.Array, **kwargs) -> jax.Array:
        """[members, N, classes] float32 eval-mode logits of images in [0, 255]."""
        outputs = []
        for member, size, mean, std in zip(self.members, self.sizes, self.means, self.stds, strict=True):
            view = images.astype(jnp.float32)
            if view.shape[1:3] != (size, size) and not kwargs.get("dense"):
                view = jax.image.resize(view, (view.shape[0], size, size, view.shape[3]), "bilinear")
            view = (view - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
            logits, _ = split_outputs(member(view, train=False, **kwargs))
            outputs.append(logits.astype(jnp.float32))
        return jnp.stack(outputs)

    def __call__(self, images: jax.Array, train: bool = False, **kwargs) -> jax.Array:
        """The ensemble's logits (see the module docstring); eval mode only."""
        if train:
            raise ValueError("an Ensemble is evaluated, not trained (train=True)")
        logits = self.member_logits(images, **kwargs)
        weights = jnp.asarray(self.weights, jnp.float32) / sum(self.weights)
        if self.combine == "logits":
            return jnp.einsum("m,m...->...", weights, logits)
        log_probabilities = jax.nn.log_softmax(logits, axis=-1)
        return jax.nn.logsumexp(log_probabilities + jnp.log(weights)[:, None, None], axis=0)


def check_options(combine: str, weights: Sequence[float], count: int) -> None:
    """ConfigError for an unknown combine or weights that are not `count` non-negative numbers with a positive sum."""
    if combine not in COMBINES:
        raise ConfigError(f"--combine={combine!r} is not one of: {', '.join(COMBINES)}.")
    if len(weights) != count:
        raise ConfigError(f"--ensemble_weights has {len(weights)} weights for {count} members.")
    if any(weight < 0 for weight in weights) or sum(weights) <= 0:
        raise ConfigError(f"--ensemble_weights={','.join(map(str, weights))} must be >= 0 with a positive sum.")


def stack_variables(variables: Sequence[dict]) -> dict:
    """The Ensemble's variables from each member's {"params", "batch_stats"}."""
    return {collection: {f"members_{index}": member.get(collection) or {} for index, member in enumerate(variables)}
            for collection in ("params", "batch_stats")}
