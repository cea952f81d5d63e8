"""Real Fashion-MNIST images as numpy arrays (the Debian IDX files), and the default model's compiled train step
on them: the in-process tests of transfer learning, distillation and adversarial training."""

from __future__ import annotations

import gzip
import os

import jax
import numpy as np

import imagenet_jax.config
from imagenet_jax import models
from imagenet_jax.core.state import create_train_state
from imagenet_jax.training import adversarial_training, distill, optim, transfer
from imagenet_jax.training.steps import make_train_step

IDX_DIR = "/usr/share/datasets/fashion-mnist"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CONFIG = os.path.join(REPO, "configs", "default.py")


def fashion_mnist(split: str = "train", count: int = 256, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [count, 28, 28, 1], int32 labels) from the IDX files of `split` ("train" or "t10k")."""
    with gzip.open(os.path.join(IDX_DIR, f"{split}-images-idx3-ubyte.gz")) as stream:
        images = np.frombuffer(stream.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
    with gzip.open(os.path.join(IDX_DIR, f"{split}-labels-idx1-ubyte.gz")) as stream:
        labels = np.frombuffer(stream.read(), np.uint8, offset=8).astype(np.int32)
    return images[offset:offset + count], labels[offset:offset + count]


def batches(count: int, batch_size: int = 32) -> list[dict]:
    """`count` consecutive training batches."""
    images, labels = fashion_mnist("train", count * batch_size)
    return [{"image": images[i * batch_size:(i + 1) * batch_size], "label": labels[i * batch_size:(i + 1) * batch_size]}
            for i in range(count)]


def default_config(overrides: dict | None = None):
    """configs/default.py with `overrides`, validated like the CLI's."""
    return imagenet_jax.config.get(DEFAULT_CONFIG, {"schedule.warmup_epochs": 0.0, **(overrides or {})})


def train_setup(config, num_classes: int = 10, total_steps: int = 10):
    """(model, initial state, jitted train step) exactly as the loop builds them, on one device."""
    model = models.create(config.model, num_classes=num_classes, **config.model_options)
    optimizer, schedule = optim.create(config, total_steps=total_steps, steps_per_epoch=total_steps,
                                       num_classes=num_classes)
    state = create_train_state(model, optimizer, jax.random.key(config.seed), (28, 28, 1))
    distillation = distill.from_config(config, num_classes, jax.numpy.float32)
    step = make_train_step(
        model, optimizer, schedule, num_classes=num_classes, mean=config.normalize_mean, std=config.normalize_std,
        label_smoothing=config.label_smoothing, freeze=transfer.Freeze.from_config(config, num_classes),
        distill=distillation, adversarial=adversarial_training.AdversarialTraining.from_config(config))
    return model, state, jax.jit(step)
