"""A tiny resnet_small trained for a few seconds on real Fashion-MNIST: the network the explain tests look into."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from imagenet_jax import models
from imagenet_jax.explain.network import Network
from tests.training.fashion_mnist_arrays import fashion_mnist

MEAN, STD = (72.9,), (90.0,)
OPTIONS = {"stage_widths": (8, 16, 32), "stem_width": 8}


def untrained(seed: int = 0) -> Network:
    """The tiny resnet_small at its initialization."""
    model = models.create("resnet_small", num_classes=10, **OPTIONS)
    return Network(model, model.init(jax.random.key(seed), jnp.zeros((1, 28, 28, 1)), train=False), MEAN, STD)


@functools.cache
def trained(steps: int = 60, seed: int = 0) -> Network:
    """The tiny resnet_small after `steps` Adam steps of 64 training images (71% on 500 test images)."""
    network = untrained(seed)
    images, labels = fashion_mnist("train", 64 * steps)
    optimizer = optax.adam(3e-3)

    @jax.jit
    def step(variables, opt_state, x, y):
        def loss_fn(params):
            logits, updates = network.model.apply({**variables, "params": params}, network.normalize(x), train=True,
                                                  mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates

        (_, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
        changes, opt_state = optimizer.update(grads, opt_state, variables["params"])
        return {"params": optax.apply_updates(variables["params"], changes), **updates}, opt_state

    variables = network.variables
    opt_state = optimizer.init(variables["params"])
    for index in range(steps):
        batch = slice(index * 64, (index + 1) * 64)
        variables, opt_state = step(variables, opt_state, jnp.asarray(images[batch], jnp.float32), labels[batch])
    return network.with_variables(variables)


def fashion_test_images(count: int = 16, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(float32 pixel images [count, 28, 28, 1], labels) from Fashion-MNIST's test split."""
    images, labels = fashion_mnist("t10k", count, offset)
    return images.astype(np.float32), labels
