"""ImageNet-C's noise corruptions on float NHWC images in [0, 1], on device, with ImageNet-C's parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp

GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)  # standard deviation
SHOT_NOISE = (60, 25, 12, 5, 3)  # photons at full intensity: fewer is noisier
IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)  # fraction of values set to 0 or 1


def gaussian_noise(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """x + N(0, c^2) per value."""
    return x + GAUSSIAN_NOISE[severity - 1] * jax.random.normal(key, x.shape)


def shot_noise(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Poisson(x * c) / c per value."""
    c = SHOT_NOISE[severity - 1]
    return jax.random.poisson(key, x * c, x.shape).astype(jnp.float32) / c


def impulse_noise(x: jax.Array, severity: int, key: jax.Array) -> jax.Array:
    """Salt and pepper (skimage's random_noise 's&p'): each value with probability c becomes 0 or 1, evenly."""
    hit_key, salt_key = jax.random.split(key)
    hit = jax.random.bernoulli(hit_key, IMPULSE_NOISE[severity - 1], x.shape)
    salt = jax.random.bernoulli(salt_key, 0.5, x.shape).astype(x.dtype)
    return jnp.where(hit, salt, x)
