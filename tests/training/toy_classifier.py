"""A BatchNorm + linear classifier on 2x2 images, and its batches: the train-step tests' smallest model."""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import optax

from imagenet_jax.training.steps import make_train_step

CLASSES = 3


class Toy(nn.Module):
    """BatchNorm then a linear classifier: both parameters and statistics move every step."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)
        return nn.Dense(CLASSES)(x)


def toy_batch(seed: int) -> dict:
    """Eight random uint8 2x2 images with labels."""
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 255, (8, 2, 2, 1)).astype(np.uint8), "label": rng.integers(0, CLASSES, 8)}


def toy_train_step(**options):
    """The jit-compiled train step of Toy with SGD at 0.5 and `options` (make_train_step's keywords)."""
    return jax.jit(make_train_step(Toy(), optax.sgd(0.5), optax.constant_schedule(0.5), num_classes=CLASSES,
                                   mean=(128.0,), std=(64.0,), label_smoothing=0.0, **options))


def all_weights(state) -> list[np.ndarray]:
    """The state's parameters and BatchNorm statistics as numpy arrays, in the order of the EMA's leaves."""
    return [np.asarray(leaf) for leaf in jax.tree.leaves({"params": state.params, "batch_stats": state.batch_stats})]
