"""Deletion/insertion and the parameter-randomization check on networks whose right answer is known."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.errors import ConfigError
from imagenet_jax.explain import checks
from imagenet_jax.explain.network import Network
from imagenet_jax.explain.pictures import gaussian_blur
from tests.explain import tiny_network

SIZE, REGION = 16, (slice(0, 4), slice(0, 4))  # the target logit reads only the top-left 4x4 pixels


class RegionModel(nn.Module):
    """Two classes; class 0's logit is 6 x the mean normalized pixel of the top-left region, minus 2."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        scale = self.param("scale", lambda key: jnp.asarray(6.0))
        region = x[:, REGION[0], REGION[1], :].mean(axis=(1, 2, 3))
        return jnp.stack([scale * region - 2.0, jnp.zeros_like(region)], axis=-1)


def _region_network() -> Network:
    model = RegionModel()
    return Network(model, model.init(jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 1))), (127.5,), (127.5,))


def _images(count: int = 3) -> np.ndarray:
    images = np.random.default_rng(0).uniform(0, 255, (count, SIZE, SIZE, 1)).astype(np.float32)
    images[:, REGION[0], REGION[1], :] = 255.0
    return images


def _region_map(first: bool) -> np.ndarray:
    score = np.random.default_rng(1).uniform(0, 1, (3, SIZE, SIZE)).astype(np.float32)
    score[:, REGION[0], REGION[1]] += 2.0 if first else -2.0
    return score


def _probability(network: Network, images: np.ndarray) -> np.ndarray:
    return np.asarray(jax.nn.softmax(network.logits(jnp.asarray(images)), axis=-1)[:, 0])


def test_a_map_ranking_the_region_first_deletes_fast_and_inserts_fast_unlike_random_orders():
    result = checks.deletion_insertion(_region_network(), _images(), np.zeros(3, int), _region_map(first=True),
                                       steps=16, insertion_start="mean", random_orders=3)
    assert result["deletion_auc"] < 0.25 < 0.5 < result["random_deletion_auc"]
    assert result["insertion_auc"] > result["random_insertion_auc"] + 0.2
    assert len(result["deletion_curve"]) == len(result["fractions"]) == 17


def test_a_map_ranking_the_region_last_does_the_opposite():
    result = checks.deletion_insertion(_region_network(), _images(), np.zeros(3, int), _region_map(first=False),
                                       steps=16, insertion_start="mean", random_orders=3)
    assert result["deletion_auc"] > result["random_deletion_auc"] + 0.2
    assert result["insertion_auc"] < result["random_insertion_auc"] - 0.2


@pytest.mark.parametrize("fill", ["mean", "zero", "blur"])
def test_curves_start_and_end_at_the_original_and_fully_replaced_images(fill):
    network, images = _region_network(), _images()
    result = checks.deletion_insertion(network, images, np.zeros(3, int), _region_map(True), steps=4,
                                       deletion_fill=fill, insertion_start="mean", random_orders=1)
    original = _probability(network, images).mean()
    filled = {"mean": np.full_like(images, 127.5), "zero": np.zeros_like(images),
              "blur": np.asarray(jax.vmap(lambda x: gaussian_blur(x, 5 / 224 * SIZE))(jnp.asarray(images)))}
    assert result["deletion_curve"][0] == pytest.approx(original, rel=1e-6)
    assert result["deletion_curve"][-1] == pytest.approx(_probability(network, filled[fill]).mean(), rel=1e-6)
    assert result["insertion_curve"][0] == pytest.approx(_probability(network, filled["mean"]).mean(), rel=1e-6)
    assert result["insertion_curve"][-1] == pytest.approx(original, rel=1e-6)
    assert result["random_deletion_curve"][0] == pytest.approx(original, rel=1e-6)
    # With the mean fill everything is known in closed form: sigmoid(6 * 1 - 2) and sigmoid(-2).
    if fill == "mean":
        assert result["deletion_curve"][0] == pytest.approx(1 / (1 + np.exp(-4)), rel=1e-5)
        assert result["deletion_curve"][-1] == pytest.approx(1 / (1 + np.exp(2)), rel=1e-5)


def test_deletion_insertion_rejects_an_unknown_fill():
    with pytest.raises(ConfigError, match="mean, zero, blur"):
        checks.deletion_insertion(_region_network(), _images(1), [0], _region_map(True)[:1], deletion_fill="noise")


def test_spearman_is_one_for_monotone_maps_and_minus_one_for_reversed():
    a = np.random.default_rng(0).normal(size=(8, 8))
    assert checks.spearman(a, np.exp(a)) == pytest.approx(1.0)
    assert checks.spearman(a, -a) == pytest.approx(-1.0)
    from scipy.stats import spearmanr

    b = np.random.default_rng(1).normal(size=(8, 8))
    assert checks.spearman(a, b) == pytest.approx(spearmanr(a.reshape(-1), b.reshape(-1)).statistic)


def input_gradient(network: Network, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """|d logit_target / d pixel| summed over channels: the simplest attribution."""
    def score(x):
        return jnp.take_along_axis(network.logits(x), jnp.asarray(targets)[:, None], axis=1).sum()

    return np.asarray(jnp.abs(jax.grad(score)(jnp.asarray(images))).sum(-1))


def test_randomization_check_with_nothing_re_initialized_correlates_perfectly():
    network = tiny_network.untrained(seed=7)
    images, labels = tiny_network.fashion_test_images(3)
    result = checks.randomization_check(network, input_gradient, images, labels, layers=[])
    assert result["spearman"] == pytest.approx(1.0) and result["spearman_abs"] == pytest.approx(1.0)
    assert result["ssim"] == pytest.approx(1.0)
    assert result["layers"] == []


def test_re_initializing_the_head_and_last_stage_decorrelates_input_gradients():
    network = tiny_network.untrained(seed=7)  # the check re-initializes from key(0): different weights
    images, labels = tiny_network.fashion_test_images(3)
    result = checks.randomization_check(network, input_gradient, images, labels, seed=0)
    assert result["layers"] == ["head", "stage3_block1"]
    assert [step["layers"] for step in result["cascade"]] == [["head"], ["head", "stage3_block1"]]
    assert len(result["per_image"]) == 3
    assert result["spearman"] < 0.5  # 0.20 measured (0.24 with the head alone)
    assert result["cascade"][1]["spearman"] <= result["cascade"][0]["spearman"] + 0.05
    randomized = checks.randomized_network(network, ["head"], images)
    trained_params, random_params = network.variables["params"], randomized.variables["params"]
    assert not np.allclose(random_params["head"]["kernel"], trained_params["head"]["kernel"])
    np.testing.assert_array_equal(random_params["stem_conv"]["kernel"], trained_params["stem_conv"]["kernel"])
