"""BatchNorm -> ReLU -> max-pool with the pool moved first: the same values, normalized on a quarter of the pixels.

A ResNet stem normalizes and rectifies its full-resolution map and then max-pools it. Per channel, BatchNorm is
x -> (x - mean) * mul + bias with mul = scale / sqrt(var + eps), and ReLU is non-decreasing, so the composite is a
monotone function of x: non-decreasing where mul >= 0, non-increasing where mul < 0. A max-pool commutes with a
non-decreasing function, and a non-increasing one turns it into a min-pool, so

    maxpool(relu(bn(x))) == relu(bn(sign * maxpool(sign * x))),   sign = +1 where mul >= 0, else -1,

exactly, in floating point too (rounding is monotone as well). The statistics are still those of the whole map; only
the normalization, the ReLU and their gradients run on the pooled map. On the default job's stem (256x28x28x32,
2x2 pool) this cut the stem's forward and backward time by more than half on CPU (BENCHMARKS.md, issue 28). The
module owns exactly nn.BatchNorm's variables (params scale/bias, batch_stats mean/var, same initializers and
running-average update), so checkpoints and converted weights are those of the unfused layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from imagenet_jax.models import pool_lowering


def applies(bn_group_size: int = 0) -> bool:
    """Whether a stem should use the fused layer: on CPU (like the other lowerings) and with plain batch statistics."""
    return pool_lowering.uses_slices() and not bn_group_size


class BatchNormReLUMaxPool(nn.Module):
    """nn.BatchNorm (feature axis last, no axis_name) then ReLU then a max-pool, computed with the pool first."""

    window: Sequence[int]
    strides: Sequence[int]
    padding: str | Sequence[tuple[int, int]] = "VALID"
    use_running_average: bool = False
    momentum: float = 0.99
    epsilon: float = 1e-5
    dtype: Any = None
    scale_init: Any = nn.initializers.ones
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """relu(batch_norm(x)), max-pooled."""
        features = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
        scale = self.param("scale", self.scale_init, (features,), jnp.float32)
        bias = self.param("bias", self.bias_init, (features,), jnp.float32)
        if self.use_running_average:
            mean, var = ra_mean.value, ra_var.value
        else:
            # nn.BatchNorm's statistics (use_fast_variance): float32 E[x] and E[x^2] - E[x]^2, clipped at 0.
            axes = tuple(range(x.ndim - 1))
            x32 = x.astype(jnp.float32)
            mean = jnp.mean(x32, axes)
            var = jnp.maximum(0.0, jnp.mean(jnp.square(x32), axes) - jnp.square(mean))
            if not self.is_initializing():
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        mul = lax.rsqrt(var + self.epsilon) * scale
        sign = jnp.where(mul >= 0, 1, -1).astype(x.dtype)
        pooled = sign * pool_lowering.max_pool(sign * x, self.window, self.strides, self.padding)
        y = (pooled - mean) * mul + bias  # nn.BatchNorm's order of operations, so the values are bit-identical
        return nn.relu(jnp.asarray(y, self.dtype or jnp.result_type(x, y)))
