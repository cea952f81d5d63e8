"""explain/network.py: any layer of any zoo model read and perturbed without changing the model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.errors import ConfigError
from imagenet_jax.explain.network import Network


@pytest.mark.parametrize("name, size, layer", [
    ("resnet_small", 28, "stage3_block1"), ("resnet18", 64, "stage4_block2"), ("resnet50", 64, "stage4_block3"),
    ("vgg11", 64, "block5_conv2"), ("alexnet", 127, "conv5"), ("googlenet", 96, "inception5b"),
    ("inception_v3", 299, "Mixed_7c"),
])
def test_grad_cams_default_layer_is_the_last_convolutional_stage_of_every_zoo_family(name, size, layer):
    model = models.create(name, num_classes=10)
    channels = 1 if name == "resnet_small" else 3
    images = jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(images.shape), train=False))
    network = Network(model, variables, (0.0,) * channels, (1.0,) * channels)
    assert network.default_layer(images) == layer


@pytest.fixture(scope="module")
def network() -> Network:
    model = models.create("resnet_small", num_classes=10)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)
    return Network(model, variables, (72.94,), (90.02,))


def test_reading_a_layer_leaves_the_logits_as_they_are_and_a_delta_moves_them(network):
    images = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 1)), jnp.float32)
    logits, activation = network.logits_and_activation(images, "stage2_block1")
    np.testing.assert_array_equal(logits, network.logits(images))
    assert activation.shape == (2, 14, 14, 64)
    same, _ = network.logits_with_delta(images, "stage2_block1", jnp.zeros_like(activation))
    np.testing.assert_allclose(same, logits, rtol=1e-6, atol=1e-6)
    moved, _ = network.logits_with_delta(images, "stage2_block1", jnp.ones_like(activation))
    assert not np.allclose(moved, logits)
    gradient = jax.grad(lambda delta: network.logits_with_delta(images, "stage2_block1", delta)[0][:, 3].sum())(
        jnp.zeros_like(activation))
    assert gradient.shape == activation.shape and float(jnp.abs(gradient).sum()) > 0


def test_an_unknown_layer_is_refused_naming_the_layers(network):
    with pytest.raises(ConfigError, match=r"layer='stage4_block1' is not a layer of ResNet.*stage3_block1"):
        network.logits_and_activation(jnp.zeros((1, 28, 28, 1)), "stage4_block1")
