"""Model soups: averaging, the greedy rule of Wortsman et al. (Algorithm 1), and BatchNorm statistics recomputed."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.ensembles import soup
from imagenet_jax.errors import ConfigError


def _tree(value: float) -> dict:
    return {"params": {"dense": {"kernel": np.full((2, 3), value, np.float32),
                                 "bias": np.full((3,), value, np.float32)}},
            "batch_stats": {"bn": {"mean": np.full((3,), value, np.float32)}}}


def test_the_average_of_identical_weights_is_those_weights_exactly():
    weights = jax.tree.map(lambda x: x * np.float32(0.1234567), _tree(1.0))
    averaged = soup.average([weights, weights])
    for mine, theirs in zip(jax.tree.leaves(averaged), jax.tree.leaves(weights), strict=True):
        np.testing.assert_array_equal(mine, theirs)
        assert mine.dtype == theirs.dtype


def test_the_average_is_element_wise_over_every_collection():
    averaged = soup.average([_tree(1.0), _tree(2.0), _tree(6.0)])
    assert all(np.all(leaf == 3.0) for leaf in jax.tree.leaves(averaged))


def test_ingredients_of_different_architectures_are_refused_with_the_weight_named():
    other = _tree(1.0)
    other["params"]["head"] = {"kernel": np.zeros((3, 2), np.float32)}
    with pytest.raises(ConfigError, match="params/head/kernel is in one only"):
        soup.average([_tree(1.0), other])
    wider = _tree(1.0)
    wider["params"]["dense"]["bias"] = np.zeros((4,), np.float32)
    with pytest.raises(ConfigError, match=r"params/dense/bias of shape \(4,\)"):
        soup.average([_tree(1.0), wider])


def test_greedy_adds_ingredients_best_first_while_the_held_out_score_does_not_drop():
    # The score peaks where the soup's weight is 2. Tried best alone first (ties in the given order): 2.0, then the
    # other 2.0 (the soup's score stays 0: equal is kept), then 1.0 (mean 5/3: worse), then 10.0 (worse).
    ingredients = [_tree(value) for value in (10.0, 2.0, 1.0, 2.0)]

    def score(variables):
        return -abs(float(variables["params"]["dense"]["bias"][0]) - 2.0)

    kept, history = soup.greedy(ingredients, score)
    assert [step.ingredient for step in history] == [1, 3, 2, 0]
    assert kept == [1, 3]
    assert [step.kept for step in history] == [True, True, False, False]
    assert [step.alone for step in history] == [0.0, 0.0, -1.0, -8.0]
    assert history[2].with_it == pytest.approx(-1 / 3)


class _BatchNormNet(nn.Module):
    momentum: float

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Conv(4, (3, 3))(x)
        return nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x).mean((1, 2))


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_recomputed_batch_stats_are_the_mean_of_the_batches_statistics(momentum):
    model = _BatchNormNet(momentum)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 6, 6, 1)))
    variables = {"params": variables["params"], "batch_stats": jax.tree.map(lambda x: x + 7.0,
                                                                           variables["batch_stats"])}
    rng = np.random.default_rng(0)
    batches = [jnp.asarray(rng.integers(0, 256, (8, 6, 6, 1)), jnp.uint8) for _ in range(3)]
    recomputed = soup.recompute_batch_stats(model, variables, iter(batches), 3, (100.0,), (50.0,))
    conv = nn.Conv(4, (3, 3))
    features = [np.asarray(conv.apply({"params": variables["params"]["Conv_0"]},
                                      (batch.astype(jnp.float32) - 100.0) / 50.0)) for batch in batches]
    expected_mean = np.mean([f.mean((0, 1, 2)) for f in features], 0)
    expected_var = np.mean([f.var((0, 1, 2)) for f in features], 0)
    np.testing.assert_allclose(recomputed["batch_stats"]["BatchNorm_0"]["mean"], expected_mean, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(recomputed["batch_stats"]["BatchNorm_0"]["var"], expected_var, rtol=2e-4, atol=1e-5)


def test_too_few_training_batches_for_bn_batches_is_refused():
    model = _BatchNormNet(0.9)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 6, 6, 1)))
    batches = iter([jnp.zeros((2, 6, 6, 1), jnp.uint8)])
    with pytest.raises(ConfigError, match="--bn_batches=2: the training split has only 1 full batches"):
        soup.recompute_batch_stats(model, dict(variables), batches, 2, (0.0,), (1.0,))
