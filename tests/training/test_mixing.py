"""Mixup and CutMix on device: the mixing arithmetic measured from the images, the draws' distributions, soft
targets in the train step, and unreadable images' stand-ins kept out of every real example."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from imagenet_jax.core.state import create_train_state
from imagenet_jax.training import mixing
from imagenet_jax.training.steps import make_train_step

BATCH, SIZE, CLASSES = 6, 8, 6
# Compiling dominates: one unoptimized compile per setting (Beta sampling alone costs seconds to optimize).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
mix_batch = jax.jit(mixing.mix_batch, static_argnames=("mixup_alpha", "cutmix_alpha", "prob", "switch_prob"),
                    compiler_options=FAST_COMPILE)


def _batch(seed=0):
    """Images with no two pixels equal across examples, and labels all different (so areas can be measured)."""
    rng = np.random.default_rng(seed)
    images = jnp.asarray(rng.normal(size=(BATCH, SIZE, SIZE, 3)), jnp.float32)
    labels = jnp.asarray(rng.permutation(CLASSES)[:BATCH])
    return images, jax.nn.one_hot(labels, CLASSES), np.asarray(labels)


def _share_from_partner(mixed, images) -> np.ndarray:
    """Per example, the fraction of pixels copied from its mirror partner (CutMix's pasted box)."""
    mixed, images = np.asarray(mixed), np.asarray(images)
    from_partner = (mixed == images[::-1]).all(axis=3)
    from_self = (mixed == images).all(axis=3)
    assert (from_partner | from_self).all(), "a CutMix pixel came from neither image"
    return from_partner.mean(axis=(1, 2))


def test_mixup_blends_each_example_with_its_mirror_and_targets_sum_to_one():
    images, targets, _ = _batch()
    targets = optax.smooth_labels(targets, 0.1)
    mixed, mixed_targets, lam = mix_batch(jax.random.key(1), images, targets, mixup_alpha=0.4,
                                                 cutmix_alpha=0.0)
    lam = float(lam[0])
    assert 0.0 < lam < 1.0
    np.testing.assert_allclose(mixed, lam * np.asarray(images) + (1 - lam) * np.asarray(images)[::-1], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(mixed_targets, lam * np.asarray(targets) + (1 - lam) * np.asarray(targets)[::-1],
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mixed_targets).sum(-1), 1.0, rtol=1e-6)


def test_cutmix_label_weight_equals_the_pasted_area_measured_from_the_images():
    images, targets, labels = _batch()
    areas = []
    for seed in range(10):
        mixed, mixed_targets, lam = mix_batch(jax.random.key(seed), images, targets, mixup_alpha=0.0,
                                                     cutmix_alpha=1.0)
        pasted = _share_from_partner(mixed, images)
        mixed_targets = np.asarray(mixed_targets)
        rows = np.arange(BATCH)
        np.testing.assert_allclose(mixed_targets[rows, labels[::-1]], pasted, atol=1e-6)  # partner's label weight
        np.testing.assert_allclose(mixed_targets[rows, labels], 1 - pasted, atol=1e-6)  # own label weight
        np.testing.assert_allclose(mixed_targets.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(np.asarray(lam), 1 - pasted, atol=1e-6)
        areas.append(pasted[0])
    assert len(set(areas)) > 5 and 0 < max(areas) < 1, "boxes of varied size were drawn"


def test_apply_and_switch_probabilities_and_mixup_lambda_follow_their_settings():
    draws, alpha = 2000, 0.4
    images = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 1)), jnp.float32)
    targets = jax.nn.one_hot(jnp.array([0, 1]), 2)

    def draw(key):
        mixed, _, lam = mixing.mix_batch(key, images, targets, mixup_alpha=alpha, cutmix_alpha=1.0, prob=0.6,
                                         switch_prob=0.3)
        untouched = jnp.all(mixed == images)
        pasted = jnp.all((mixed == images) | (mixed == images[::-1]))  # every pixel from one image: CutMix
        return untouched, pasted & ~untouched, lam[0]

    keys = jax.random.split(jax.random.key(0), draws)
    untouched, cutmix, lam = jax.device_get(jax.jit(jax.vmap(draw), compiler_options=FAST_COMPILE)(keys))
    mixed = ~untouched
    # Binomial standard deviations here are about 0.011 and 0.013: these bounds are > 3.5 of them.
    assert mixed.mean() == pytest.approx(0.6, abs=0.04)
    assert cutmix[mixed].mean() == pytest.approx(0.3, abs=0.05)
    mixup_lam = lam[mixed & ~cutmix]
    assert mixup_lam.mean() == pytest.approx(0.5, abs=0.03)
    assert mixup_lam.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.12)  # Beta(alpha, alpha) variance
    assert (lam[untouched] == 1.0).all()


def test_stand_ins_of_unreadable_images_are_never_mixed_into_real_examples():
    images, targets, labels = _batch()
    stand_in = 1  # its mirror partner is example BATCH - 2
    images = images.at[stand_in].set(1e4)  # a sentinel no real pixel comes near
    mask = jnp.arange(BATCH) != stand_in
    for seed in range(6):
        for alphas in ({"mixup_alpha": 0.4, "cutmix_alpha": 0.0}, {"mixup_alpha": 0.0, "cutmix_alpha": 1.0}):
            mixed, mixed_targets, lam = mix_batch(jax.random.key(seed), images, targets, mask=mask, **alphas)
            real = np.asarray(mask)
            assert np.abs(np.asarray(mixed)[real]).max() < 100, "stand-in pixels reached a real example"
            assert (np.asarray(mixed_targets)[real][:, labels[stand_in]] == 0).all(), "the stand-in's label leaked"
            partner = BATCH - 1 - stand_in
            np.testing.assert_array_equal(mixed[partner], images[partner])
            np.testing.assert_array_equal(mixed_targets[partner], targets[partner])
            assert float(lam[partner]) == 1.0
            assert (np.asarray(lam)[real] < 1).sum() >= BATCH - 2, "the other real examples are still mixed"


class _Linear(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(CLASSES)(x.reshape((x.shape[0], -1)))


def _step(**kwargs):
    model, optimizer = _Linear(), optax.sgd(0.1)
    state = create_train_state(model, optimizer, jax.random.key(0), (SIZE, SIZE, 3))
    step = jax.jit(make_train_step(model, optimizer, optax.constant_schedule(0.1), num_classes=CLASSES,
                                   mean=(0.0,), std=(1.0,), label_smoothing=0.1, **kwargs),
                   compiler_options=FAST_COMPILE)
    return state, step


def _uint8_batch(seed, mask=None):
    rng = np.random.default_rng(seed)
    batch = {"image": jnp.asarray(rng.integers(0, 255, (BATCH, SIZE, SIZE, 3)), jnp.uint8),
             "label": jnp.asarray(rng.permutation(CLASSES)[:BATCH], jnp.int32)}
    return batch if mask is None else {**batch, "mask": jnp.asarray(mask)}


def test_train_step_loss_is_cross_entropy_against_the_mixed_soft_targets():
    state, step = _step(mixup_alpha=0.4, cutmix_alpha=1.0)
    batch, base_key = _uint8_batch(0), jax.random.key(5)
    _, metrics = step(state, batch, base_key)
    # The step's draw (a function of the step key), then the loss by hand in numpy.
    step_key = jax.random.fold_in(base_key, 0)
    images, _, lam = mix_batch(jax.random.fold_in(step_key, 0x6D6978), batch["image"].astype(jnp.float32),
                                      jnp.zeros((BATCH, CLASSES)), mixup_alpha=0.4, cutmix_alpha=1.0)
    lam = np.asarray(lam, np.float64)[:, None]
    smoothed = np.eye(CLASSES)[np.asarray(batch["label"])] * 0.9 + 0.1 / CLASSES
    soft_targets = lam * smoothed + (1 - lam) * smoothed[::-1]
    kernel, bias = (np.asarray(state.params["Dense_0"][name], np.float64) for name in ("kernel", "bias"))
    logits = np.asarray(images, np.float64).reshape(BATCH, -1) @ kernel + bias
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    assert float(lam.min()) < 1.0
    assert float(metrics["loss"]) == pytest.approx(-(soft_targets * log_p).sum(-1).mean(), rel=1e-4)


@pytest.mark.parametrize("alphas", [{"mixup_alpha": 0.4}, {"cutmix_alpha": 1.0}, {}], ids=["mixup", "cutmix", "none"])
def test_a_stand_in_changes_neither_the_loss_nor_the_metrics(alphas):
    state, step = _step(**alphas)
    batch = _uint8_batch(1, mask=[True] * (BATCH - 2) + [False, True])
    _, metrics = step(state, batch, jax.random.key(0))
    other = dict(batch, image=batch["image"].at[-2].set(255), label=batch["label"].at[-2].set(0))
    _, metrics_other = step(state, other, jax.random.key(0))
    for key in ("loss", "top1", "top5"):
        assert float(metrics[key]) == pytest.approx(float(metrics_other[key]), rel=1e-6), key
