"""Losses by name (train/losses.py): binary cross-entropy against the formula, in the train and eval steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax.core import losses
from imagenet_jax.core.state import create_train_state
from imagenet_jax.evaluators.classification import make_eval_step
from imagenet_jax.training.steps import make_train_step
from tests.training.toy_classifier import CLASSES, Toy, toy_batch


def _numpy_bce(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-example mean over classes of -[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))]."""
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return np.mean(-(targets * np.log(probabilities) + (1 - targets) * np.log(1 - probabilities)), axis=-1)


def test_sigmoid_xent_is_the_mean_over_classes_and_examples_of_binary_cross_entropy():
    # By hand: logits (0, 2), label 1: (log 2 + log(1 + e^-2)) / 2.
    value = losses.sigmoid_xent(jnp.array([[0.0, 2.0]]), jnp.array([[0.0, 1.0]]))
    assert float(value[0]) == pytest.approx((np.log(2) + np.log1p(np.exp(-2))) / 2, rel=1e-6)
    assert float(value[0]) == pytest.approx(0.4100375, rel=1e-6)

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32) * 3
    smoothed = np.full((6, 5), 0.1 / 5) + 0.9 * np.eye(5)[rng.integers(0, 5, 6)]  # (1 - 0.1) one-hot + 0.1 / K
    np.testing.assert_allclose(losses.sigmoid_xent(logits, smoothed), _numpy_bce(logits, smoothed), rtol=1e-5)
    # timm's target_threshold: targets above it become 1, the rest 0 (here the smoothing's 0.02 goes away).
    np.testing.assert_allclose(losses.sigmoid_xent(logits, smoothed, 0.2),
                               _numpy_bce(logits, (smoothed > 0.2).astype(np.float64)), rtol=1e-5)


@pytest.mark.parametrize("threshold", [0.0, 0.2])
def test_train_step_with_sigmoid_xent_reports_the_binary_cross_entropy_of_its_logits(threshold):
    model = Toy()
    state = create_train_state(model, optax.sgd(0.5), jax.random.key(0), (2, 2, 1))
    batch = toy_batch(3)
    images = (batch["image"].astype(np.float32) - 128.0) / 64.0
    logits, _ = model.apply({"params": state.params, "batch_stats": state.batch_stats}, images, train=True,
                            mutable=["batch_stats"])
    targets = np.full((8, CLASSES), 0.1 / CLASSES) + 0.9 * np.eye(CLASSES)[batch["label"]]
    if threshold:
        targets = (targets > threshold).astype(np.float64)
    step = jax.jit(make_train_step(model, optax.sgd(0.5), optax.constant_schedule(0.5), num_classes=CLASSES,
                                   mean=(128.0,), std=(64.0,), label_smoothing=0.1, loss_name="sigmoid_xent",
                                   bce_target_threshold=threshold))
    _, metrics = step(state, batch, jax.random.key(0))
    assert float(metrics["loss"]) == pytest.approx(float(np.mean(_numpy_bce(np.asarray(logits), targets))), rel=1e-5)


def test_eval_step_sums_the_configured_loss_over_real_examples():
    model = Toy()
    state = create_train_state(model, optax.sgd(0.5), jax.random.key(0), (2, 2, 1))
    batch = {**toy_batch(4), "mask": np.array([True] * 6 + [False] * 2)}
    images = (batch["image"].astype(np.float32) - 128.0) / 64.0
    logits = np.asarray(model.apply({"params": state.params, "batch_stats": state.batch_stats}, images))
    sums = make_eval_step(model, num_classes=CLASSES, mean=(128.0,), std=(64.0,), loss_name="sigmoid_xent")(
        state, batch)
    expected = _numpy_bce(logits, np.eye(CLASSES)[batch["label"]])[:6].sum()
    assert float(sums["loss"]) == pytest.approx(expected, rel=1e-5)
