"""The Ensemble module: its logits are the combination of the members' own, each at its own size and normalization."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.ensembles.model import Ensemble, check_options, stack_variables
from imagenet_jax.errors import ConfigError
from imagenet_jax.models import create


def _members():
    """Two different architectures at two input sizes, with their own normalization."""
    return [(create("resnet_small", num_classes=5), 16, (120.0,), (60.0,)),
            (create("vgg_small", num_classes=5), 24, (10.0,), (80.0,))]


def _own_logits(model, variables, images, size, mean, std):
    view = jax.image.resize(images.astype(jnp.float32), (images.shape[0], size, size, 1), "bilinear") \
        if images.shape[1] != size else images.astype(jnp.float32)
    return np.asarray(model.apply(variables, (view - mean[0]) / std[0], train=False), np.float64)


@pytest.fixture(scope="module")
def setting():
    images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, 24, 24, 1)), jnp.uint8)
    members, variables = _members(), []
    for index, (model, size, _, _) in enumerate(members):
        initial = model.init(jax.random.key(index), jnp.zeros((1, size, size, 1)), train=False)
        variables.append({"params": initial["params"], "batch_stats": initial.get("batch_stats", {})})
    own = [_own_logits(model, v, images, size, mean, std) for (model, size, mean, std), v in zip(members, variables)]
    return images, members, variables, own


def _ensemble(members, weights, combine):
    return Ensemble(members=tuple(m for m, _, _, _ in members), sizes=tuple(s for _, s, _, _ in members),
                    means=tuple(m for _, _, m, _ in members), stds=tuple(s for _, _, _, s in members),
                    weights=weights, combine=combine)


def test_probability_ensemble_is_the_weighted_mean_of_the_members_softmax(setting):
    images, members, variables, own = setting
    ensemble = _ensemble(members, (1.0, 3.0), "probabilities")
    logits = np.asarray(ensemble.apply(stack_variables(variables), images.astype(jnp.float32)), np.float64)
    softmax = [np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
               for z in own]
    expected = 0.25 * softmax[0] + 0.75 * softmax[1]
    np.testing.assert_allclose(np.exp(logits), expected, rtol=1e-5, atol=1e-7)
    assert np.abs(softmax[0] - softmax[1]).max() > 1e-3  # the members disagree, so the weights matter


def test_logit_ensemble_is_the_weighted_mean_of_the_members_logits(setting):
    images, members, variables, own = setting
    ensemble = _ensemble(members, (1.0, 1.0), "logits")
    logits = np.asarray(ensemble.apply(stack_variables(variables), images.astype(jnp.float32)))
    np.testing.assert_allclose(logits, (own[0] + own[1]) / 2, rtol=1e-5, atol=1e-5)


def test_member_logits_are_each_members_own(setting):
    images, members, variables, own = setting
    stacked = _ensemble(members, (1.0, 1.0), "logits").apply(stack_variables(variables), images.astype(jnp.float32),
                                                              method="member_logits")
    assert stacked.shape == (2, 6, 5)
    for index in range(2):
        np.testing.assert_allclose(np.asarray(stacked[index]), own[index], rtol=1e-5, atol=1e-5)


def test_an_ensemble_is_not_trained():
    class Linear(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            return nn.Dense(2)(x.reshape(x.shape[0], -1))

    ensemble = Ensemble(members=(Linear(),), sizes=(2,), means=((0.0,),), stds=((1.0,),), weights=(1.0,))
    variables = ensemble.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="evaluated, not trained"):
        ensemble.apply(variables, jnp.zeros((1, 2, 2, 1)), train=True)


def test_options_are_checked_with_the_flag_named():
    with pytest.raises(ConfigError, match="--combine='median'"):
        check_options("median", [1.0, 1.0], 2)
    with pytest.raises(ConfigError, match="3 weights for 2 members"):
        check_options("logits", [1.0, 1.0, 1.0], 2)
    with pytest.raises(ConfigError, match=">= 0 with a positive sum"):
        check_options("logits", [1.0, -1.0], 2)
    check_options("probabilities", [0.0, 2.0], 2)
