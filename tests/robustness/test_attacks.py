"""FGSM/PGD stay inside the eps-ball and [0, 255], and lower the accuracy of a classifier trained on Fashion-MNIST."""

from __future__ import annotations

import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax.robustness.attacks import fgsm, pgd

IDX_DIR = "/usr/share/datasets/fashion-mnist"


def _idx(name: str, offset: int, count: int, item_bytes: int) -> np.ndarray:
    with gzip.open(os.path.join(IDX_DIR, name)) as stream:
        data = stream.read()
    return np.frombuffer(data, np.uint8, count * item_bytes, offset)


def _fashion_mnist(count: int, train: bool) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if train else "t10k"
    images = _idx(f"{prefix}-images-idx3-ubyte.gz", 16, count, 784).reshape(count, 784).astype(np.float32)
    labels = _idx(f"{prefix}-labels-idx1-ubyte.gz", 8, count, 1).astype(np.int32)
    return images, labels


def _logits(params, images):
    return (images / 255.0 - 0.3) @ params["w"] + params["b"]


def _loss(params, images, labels):
    return optax.softmax_cross_entropy_with_integer_labels(_logits(params, images), labels).mean()


@pytest.fixture(scope="module")
def trained():
    """A linear classifier trained 40 full-batch Adam steps on 2,000 Fashion-MNIST images."""
    if not os.path.isdir(IDX_DIR):
        pytest.skip(f"{IDX_DIR} missing")
    images, labels = _fashion_mnist(2000, train=True)
    params = {"w": jnp.zeros((784, 10)), "b": jnp.zeros(10)}
    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        grads = jax.grad(_loss)(params, images, labels)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(40):
        params, opt_state = step(params, opt_state)
    return params, _fashion_mnist(500, train=False)


def _accuracy(params, images, labels) -> float:
    return float(np.mean(np.argmax(np.asarray(_logits(params, images)), -1) == labels))


def test_pgd_stays_in_eps_ball_and_pixel_range_and_lowers_trained_accuracy(trained):
    params, (images, labels) = trained
    clean = _accuracy(params, images, labels)
    adversarial = pgd(lambda x, y: _loss(params, x, y), jnp.asarray(images), jnp.asarray(labels), eps=8.0,
                      step_size=2.0, steps=10, random_start=True, key=jax.random.key(0))
    adversarial = np.asarray(adversarial)
    assert np.max(np.abs(adversarial - images)) <= 8.0 + 1e-4
    assert adversarial.min() >= 0.0 and adversarial.max() <= 255.0
    attacked = _accuracy(params, adversarial, labels)
    assert clean > 0.65, clean  # the model did learn
    assert attacked < clean - 0.2, (clean, attacked)


def test_fgsm_moves_every_free_pixel_by_exactly_eps_and_lowers_accuracy(trained):
    params, (images, labels) = trained
    adversarial = np.asarray(fgsm(lambda x, y: _loss(params, x, y), jnp.asarray(images), jnp.asarray(labels),
                                  eps=4.0))
    moved = np.abs(adversarial - images)
    assert moved.max() <= 4.0 + 1e-4 and adversarial.min() >= 0 and adversarial.max() <= 255
    interior = (images >= 4) & (images <= 251)  # not clipped by the pixel range
    grad = np.asarray(jax.grad(lambda x: _loss(params, x, jnp.asarray(labels)))(jnp.asarray(images)))
    np.testing.assert_allclose(moved[interior & (grad != 0)], 4.0, atol=1e-4)
    assert _accuracy(params, adversarial, labels) < _accuracy(params, images, labels)


def test_pgd_without_random_start_and_zero_steps_returns_the_clean_images():
    images = jnp.full((2, 3), 100.0)
    out = pgd(lambda x, y: jnp.sum(x), images, jnp.zeros(2, jnp.int32), eps=8.0, step_size=2.0, steps=0,
              random_start=False)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(images))


def test_pgd_ascends_to_the_eps_ball_boundary_on_a_linear_loss():
    images = jnp.asarray([[0.0, 128.0, 254.0]])
    out = pgd(lambda x, y: jnp.sum(x), images, jnp.zeros(1, jnp.int32), eps=8.0, step_size=3.0, steps=5,
              random_start=True, key=jax.random.key(1))
    np.testing.assert_allclose(np.asarray(out), [[8.0, 136.0, 255.0]])
