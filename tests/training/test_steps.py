"""The train step's math against numbers computed here by hand: label smoothing, auxiliary-loss weighting, and
the non-finite skip (weights untouched, optimizer count and logged learning rate in step with the train step)."""

from __future__ import annotations

import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax import models
from imagenet_jax.core.state import create_train_state
from imagenet_jax.training.nonfinite import average_train_metrics
from imagenet_jax.training.steps import make_train_step

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
CLASSES = 5


def numpy_log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def smoothed_cross_entropy(logits: np.ndarray, labels: np.ndarray, smoothing: float) -> np.ndarray:
    """Szegedy et al. 2016, eq. for label-smoothing regularization: -(1-e) log p_y - e/K sum_k log p_k."""
    log_p = numpy_log_softmax(logits.astype(np.float64))
    classes = logits.shape[-1]
    return -(1 - smoothing) * log_p[np.arange(len(labels)), labels] - smoothing / classes * log_p.sum(axis=-1)


def _train_step(model, optimizer, schedule, image_shape, **options):
    """(initial state, train_step compiled for float32 batches of 8 images of `image_shape`)."""
    state = create_train_state(model, optimizer, jax.random.key(0), image_shape)
    step = make_train_step(model, optimizer, schedule, num_classes=CLASSES, mean=(0.0,), std=(1.0,), **options)
    batch = {"image": jax.ShapeDtypeStruct((8, *image_shape), jnp.float32),
             "label": jax.ShapeDtypeStruct((8,), jnp.int32)}
    compiled = jax.jit(step).lower(state, batch, jax.random.key(0)).compile(compiler_options=FAST_COMPILE)
    return state, compiled


class _Linear(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(CLASSES)(x.reshape((x.shape[0], -1)))


def _numpy_logits(dense: dict, images: np.ndarray) -> np.ndarray:
    features = images.reshape(len(images), -1).astype(np.float64)
    return features @ np.asarray(dense["kernel"], np.float64) + np.asarray(dense["bias"], np.float64)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.4])
def test_step_loss_is_the_label_smoothing_formula(smoothing):
    state, step = _train_step(_Linear(), optax.sgd(0.01), optax.constant_schedule(0.01), (4, 4, 3),
                              label_smoothing=smoothing)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 3, (8, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, CLASSES, 8).astype(np.int32)
    _, metrics = step(state, {"image": images, "label": labels}, jax.random.key(0))
    expected = smoothed_cross_entropy(_numpy_logits(state.params["Dense_0"], images), labels, smoothing).mean()
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)
    # The formula itself, on a case checked by hand: uniform logits cost log K whatever the smoothing.
    assert smoothed_cross_entropy(np.zeros((1, CLASSES)), np.array([2]), smoothing)[0] == pytest.approx(
        math.log(CLASSES))


def test_published_auxiliary_loss_weights_are_the_models_defaults():
    assert models.auxiliary_loss_weight(models.create("googlenet", aux_logits=True)) == 0.3  # GoogLeNet paper
    assert models.auxiliary_loss_weight(models.create("inception_v3")) == 0.4  # torchvision's recipe
    assert models.auxiliary_loss_weight(models.create("resnet18")) == 0.0
    with pytest.raises(ValueError, match="aux_loss_weight=-0.1"):
        models.create("googlenet", aux_logits=True, aux_loss_weight=-0.1)


class _TwoAuxiliaryHeads(nn.Module):
    """GoogLeNet's output contract at toy size: (logits, aux1, aux2) in training, with its own aux_loss_weight."""

    aux_loss_weight: float

    @nn.compact
    def __call__(self, x, train: bool = False):
        features = x.reshape((x.shape[0], -1))
        heads = tuple(nn.Dense(CLASSES, name=name)(features) for name in ("head", "aux1", "aux2"))
        return heads if train else heads[0]


def test_step_loss_is_main_plus_the_models_weight_times_auxiliary_cross_entropies():
    weight = 0.45  # no model's default, so a weight taken from anywhere but the model fails
    model = _TwoAuxiliaryHeads(aux_loss_weight=weight)
    state, step = _train_step(model, optax.sgd(0.01), optax.constant_schedule(0.01), (4, 4, 3), label_smoothing=0.1)
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (8, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, CLASSES, 8).astype(np.int32)
    _, metrics = step(state, {"image": images, "label": labels}, jax.random.key(0))

    head_logits = {name: _numpy_logits(dense, images) for name, dense in state.params.items()}  # in numpy
    expected = smoothed_cross_entropy(head_logits["head"], labels, 0.1).mean() + weight * sum(
        smoothed_cross_entropy(head_logits[name], labels, 0.1).mean() for name in ("aux1", "aux2"))
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-4)


class _ConvBNClassifier(nn.Module):
    """Conv, BatchNorm, pooled linear head: the parameter and statistics kinds a real model has."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        return nn.Dense(CLASSES)(jnp.mean(nn.relu(x), axis=(1, 2)))


def _counts(opt_state) -> list[int]:
    return [int(count) for _, count in optax.tree_utils.tree_get_all_with_path(opt_state, "count")]


def test_skipped_step_keeps_weights_and_keeps_the_optimizer_count_and_learning_rate_in_step():
    schedule = lambda count: 0.1 * (count + 1)  # a different rate at every update
    state, step = _train_step(_ConvBNClassifier(), optax.sgd(schedule), schedule, (6, 6, 3), label_smoothing=0.0,
                              skip_nonfinite=True)
    rng = np.random.default_rng(2)
    good = {"image": rng.uniform(0, 255, (8, 6, 6, 3)).astype(np.float32),
            "label": rng.integers(0, CLASSES, 8).astype(np.int32)}
    poisoned = {**good, "image": good["image"].copy()}
    poisoned["image"][3, 2, 2, 1] = np.nan  # e.g. a corrupt decode: loss and gradients become NaN
    key = jax.random.key(0)

    after_first, first = step(state, good, key)
    after_skip, skipped = step(after_first, poisoned, key)
    after_third, third = step(after_skip, good, key)

    assert [float(m["finite"]) for m in (first, skipped, third)] == [1.0, 0.0, 1.0]
    for kept, before in ((after_skip.params, after_first.params), (after_skip.batch_stats, after_first.batch_stats)):
        for new, old in zip(jax.tree.leaves(kept), jax.tree.leaves(before), strict=True):
            np.testing.assert_array_equal(new, old)  # bit-equal: nothing of the bad batch got in
    assert int(after_third.step) == 3 and _counts(after_third.opt_state) == [3]
    # The logged rate is the one the optimizer applied: plain SGD moves the weights by lr x gradient.
    assert float(third["learning_rate"]) == pytest.approx(schedule(2))
    moved = optax.tree.norm(jax.tree.map(jnp.subtract, after_third.params, after_skip.params))
    assert float(moved) / float(third["grad_norm"]) == pytest.approx(schedule(2), rel=1e-5)


def test_logged_train_averages_leave_skipped_steps_out_and_stay_finite():
    def metrics(loss, finite, rate):
        return {"loss": loss, "top1": 0.5, "grad_norm": loss, "learning_rate": rate, "finite": finite}

    window = [metrics(2.0, 1.0, 0.1), metrics(float("nan"), 0.0, 0.2), metrics(4.0, 1.0, 0.3)]
    averages = average_train_metrics(window)
    assert averages == {"loss": 3.0, "top1": 0.5, "grad_norm": 3.0, "learning_rate": pytest.approx(0.2),
                        "skipped_steps": 1}
    only_skipped = average_train_metrics([metrics(float("inf"), 0.0, 0.1)])
    assert only_skipped == {"learning_rate": 0.1, "skipped_steps": 1}
    json.dumps([averages, only_skipped], allow_nan=False)  # what metrics.jsonl gets is valid, finite JSON
