"""Mixup and CutMix on device: exact mixing arithmetic, soft-target loss in the train step, masked examples."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax.train import mixing
from imagenet_jax.train.state import create_train_state
from imagenet_jax.train.steps import make_train_step

BATCH, SIZE, CLASSES = 6, 8, 5


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    images = jnp.asarray(rng.normal(size=(BATCH, SIZE, SIZE, 3)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, CLASSES, BATCH))
    return images, jax.nn.one_hot(labels, CLASSES)


def test_mixup_blends_each_example_with_its_mirror():
    images, targets = _batch()
    mixed, mixed_targets, lam = mixing.mix_batch(jax.random.key(1), images, targets, mixup_alpha=0.4,
                                                 cutmix_alpha=0.0)
    assert 0.0 < float(lam) < 1.0
    np.testing.assert_allclose(mixed, lam * images + (1 - lam) * images[::-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mixed_targets, lam * targets + (1 - lam) * targets[::-1], rtol=1e-6)
    np.testing.assert_allclose(mixed_targets.sum(-1), 1.0, rtol=1e-6)


def test_cutmix_pastes_a_box_whose_area_is_one_minus_lambda():
    images, targets = _batch()
    for seed in range(10):
        mixed, mixed_targets, lam = mixing.mix_batch(jax.random.key(seed), images, targets, mixup_alpha=0.0,
                                                     cutmix_alpha=1.0)
        from_partner = np.isclose(np.asarray(mixed), np.asarray(images[::-1])).all(axis=(0, 3))
        from_self = np.isclose(np.asarray(mixed), np.asarray(images)).all(axis=(0, 3))
        assert (from_partner | from_self).all()
        assert from_partner.sum() / SIZE**2 == pytest.approx(1 - float(lam), abs=1e-6)
        np.testing.assert_allclose(mixed_targets, lam * targets + (1 - lam) * targets[::-1], rtol=1e-6)


def test_switch_and_apply_probabilities():
    images, targets = _batch()
    kinds = set()
    for seed in range(12):
        mixed, _, lam = mixing.mix_batch(jax.random.key(seed), images, targets, mixup_alpha=0.4, cutmix_alpha=1.0,
                                         switch_prob=0.5)
        is_cut = np.isclose(np.asarray(mixed), np.asarray(images)).all(axis=(0, 3)).any() and float(lam) < 1
        kinds.add(bool(is_cut))
    assert kinds == {True, False}, "both CutMix and Mixup batches occur"
    untouched, same_targets, lam = mixing.mix_batch(jax.random.key(0), images, targets, mixup_alpha=0.4,
                                                    cutmix_alpha=1.0, prob=0.0)
    np.testing.assert_array_equal(untouched, images)
    np.testing.assert_array_equal(same_targets, targets)
    assert float(lam) == 1.0
    again = mixing.mix_batch(jax.random.key(3), images, targets, mixup_alpha=0.4, cutmix_alpha=1.0)
    np.testing.assert_array_equal(again[0], mixing.mix_batch(jax.random.key(3), images, targets, mixup_alpha=0.4,
                                                             cutmix_alpha=1.0)[0])


class _Linear(nn.Module):
    num_classes: int = CLASSES

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(self.num_classes)(x.reshape((x.shape[0], -1)))


def _step(**kwargs):
    model, optimizer = _Linear(), optax.sgd(0.1)
    state = create_train_state(model, optimizer, jax.random.key(0), (SIZE, SIZE, 3))
    step = jax.jit(make_train_step(model, optimizer, optax.constant_schedule(0.1), num_classes=CLASSES,
                                   mean=(0.0,), std=(1.0,), label_smoothing=0.1, aux_loss_weight=0.0, **kwargs))
    return model, state, step


def test_train_step_with_mixing_minimizes_soft_target_cross_entropy():
    model, state, step = _step(mixup_alpha=0.4, cutmix_alpha=1.0)
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.integers(0, 255, (BATCH, SIZE, SIZE, 3)), jnp.uint8),
             "label": jnp.asarray(rng.integers(0, CLASSES, BATCH), jnp.int32)}
    base_key = jax.random.key(5)
    _, metrics = step(state, batch, base_key)
    # The same loss, computed outside: mixed images against mixed, smoothed targets.
    step_key = jax.random.fold_in(base_key, 0)
    targets = optax.smooth_labels(jax.nn.one_hot(batch["label"], CLASSES), 0.1)
    images, targets, _ = mixing.mix_batch(jax.random.fold_in(step_key, 0x6D6978), batch["image"].astype(jnp.float32),
                                          targets, mixup_alpha=0.4, cutmix_alpha=1.0)
    logits = model.apply({"params": state.params}, images)
    assert float(metrics["loss"]) == pytest.approx(float(optax.softmax_cross_entropy(logits, targets).mean()),
                                                   rel=1e-5)


def test_masked_examples_do_not_count():
    _, state, step = _step()
    rng = np.random.default_rng(1)
    batch = {"image": jnp.asarray(rng.integers(0, 255, (BATCH, SIZE, SIZE, 3)), jnp.uint8),
             "label": jnp.asarray(rng.integers(0, CLASSES, BATCH), jnp.int32),
             "mask": jnp.array([True] * (BATCH - 1) + [False])}
    _, metrics = step(state, batch, jax.random.key(0))
    changed = dict(batch, image=batch["image"].at[-1].set(0), label=batch["label"].at[-1].set(0))
    _, metrics_changed = step(state, changed, jax.random.key(0))
    assert float(metrics["loss"]) == pytest.approx(float(metrics_changed["loss"]), rel=1e-6)
    unmasked = {key: value[:-1] for key, value in batch.items() if key != "mask"}
    _, metrics_small = step(state, unmasked, jax.random.key(0))
    assert float(metrics["loss"]) == pytest.approx(float(metrics_small["loss"]), rel=1e-5)
