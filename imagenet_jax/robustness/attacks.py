"""FGSM and PGD (Madry et al.) on float images in 0-255 pixel units, before normalization.

`loss_fn(images, labels) -> scalar` sees images in [0, 255] (the caller normalizes inside it), so eps and
step_size are in pixel units of the uint8 image (eps=8 is the common "8/255"). Every iterate is clipped to
the eps-ball around the clean images and to [0, 255]. Pure functions: jit them or call them inside a step.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def project(adversarial: jax.Array, clean: jax.Array, eps: float) -> jax.Array:
    """Clips `adversarial` into the L-inf eps-ball around `clean` and into [0, 255]."""
    return jnp.clip(jnp.clip(adversarial, clean - eps, clean + eps), 0.0, 255.0)


def fgsm(loss_fn: LossFn, images: jax.Array, labels: jax.Array, *, eps: float) -> jax.Array:
    """One signed-gradient step of size eps (Goodfellow et al. 2015) that raises loss_fn."""
    images = images.astype(jnp.float32)
    grad = jax.grad(loss_fn)(images, labels)
    return project(images + eps * jnp.sign(grad), images, eps)


def pgd(loss_fn: LossFn, images: jax.Array, labels: jax.Array, *, eps: float, step_size: float, steps: int,
        random_start: bool = True, key: jax.Array | None = None) -> jax.Array:
    """`steps` signed-gradient ascent steps of `step_size`, projected onto the eps-ball and [0, 255] each time."""
    images = images.astype(jnp.float32)
    adversarial = images
    if random_start:
        if key is None:
            raise ValueError("pgd with random_start=True needs a PRNG key")
        noise = jax.random.uniform(key, images.shape, jnp.float32, -eps, eps)
        adversarial = project(images + noise, images, eps)
    grad_fn = jax.grad(loss_fn)

    def body(_, current):
        return project(current + step_size * jnp.sign(grad_fn(current, labels)), images, eps)

    return jax.lax.fori_loop(0, steps, body, adversarial)
