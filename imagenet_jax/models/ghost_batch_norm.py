"""Ghost BatchNorm: training statistics from groups of `group_size` examples instead of the global batch.

The ablation of Goyal et al. (2017, BN over 32 images per GPU) and Hoffer et al. (2017). Parameters and running
statistics are named as in flax's BatchNorm (scale, bias; mean, var), so weights move between the two.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class GhostBatchNorm(nn.Module):
    """BatchNorm over the last axis with per-group batch statistics in training; float32 statistics."""

    group_size: int
    use_running_average: bool = False
    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: Any = None
    scale_init: Any = nn.initializers.ones
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        features = x.shape[-1]
        scale = self.param("scale", self.scale_init, (features,), jnp.float32)
        bias = self.param("bias", self.bias_init, (features,), jnp.float32)
        running_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
        running_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
        x32 = x.astype(jnp.float32)
        if self.use_running_average:
            normalized = (x32 - running_mean.value) * jax.lax.rsqrt(running_var.value + self.epsilon)
        else:
            batch = x.shape[0]
            if batch % self.group_size:
                raise ValueError(f"bn_group_size={self.group_size} does not divide the batch of {batch}")
            groups = x32.reshape(batch // self.group_size, self.group_size, *x.shape[1:])
            axes = tuple(range(1, groups.ndim - 1))
            mean = jnp.mean(groups, axis=axes, keepdims=True)
            var = jnp.mean(jnp.square(groups - mean), axis=axes, keepdims=True)
            normalized = ((groups - mean) * jax.lax.rsqrt(var + self.epsilon)).reshape(x.shape)
            if not self.is_initializing():
                # Running statistics average the groups' statistics, as per-GPU BN with synced averages does.
                group_mean = jnp.mean(mean, axis=0).reshape(features)
                group_var = jnp.mean(var, axis=0).reshape(features)
                running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * group_mean
                running_var.value = self.momentum * running_var.value + (1 - self.momentum) * group_var
        return (normalized * scale + bias).astype(self.dtype or x.dtype)


class BatchNorm(GhostBatchNorm):
    """GhostBatchNorm under flax's class name, so auto-named modules (BatchNorm_0, ...) keep their checkpoint paths."""


def batch_norm(train: bool, momentum: float, epsilon: float, dtype: Any,
               group_size: int = 0) -> Callable[..., nn.Module]:
    """The zoo's BatchNorm factory: flax's, or ghost BatchNorm over `group_size` examples (config.bn_group_size)."""
    module = functools.partial(BatchNorm, group_size=group_size) if group_size else nn.BatchNorm
    return functools.partial(module, use_running_average=not train, momentum=momentum, epsilon=epsilon, dtype=dtype)
