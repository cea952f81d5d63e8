"""First-layer filter grids, feature-map grids and class-model images of a tiny network trained on Fashion-MNIST."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.errors import ConfigError
from imagenet_jax.explain import pictures
from imagenet_jax.explain.network import Network
from tests.explain import tiny_network


def test_filter_grid_shape_is_the_kernel_count_size_and_columns_arithmetic():
    network = tiny_network.untrained()  # stem_conv: 8 kernels 3x3x1
    image = pictures.first_layer_filters(network, columns=3, scale=5)
    # 8 kernels in 3 columns -> 3 rows of 15 px cells with 1 px separators.
    assert image.shape == (3 * 15 + 2, 3 * 15 + 2, 3)
    assert image.dtype == np.uint8
    assert np.all(image[..., 0] == image[..., 1]) and np.all(image[..., 1] == image[..., 2])  # grey input -> grey


def test_a_kernel_set_to_a_known_pattern_appears_at_its_cell():
    network = tiny_network.untrained()
    kernel = np.array(network.variables["params"]["stem_conv"]["kernel"])
    kernel[:, :, 0, 4] = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # min 0 -> 0, max 8 -> 255 after min-max
    params = {**network.variables["params"], "stem_conv": {"kernel": jnp.asarray(kernel)}}
    image = pictures.first_layer_filters(network.with_variables({**network.variables, "params": params}),
                                         columns=4, scale=2)
    cell = image[7:13, 0:6, 0]  # kernel 4 of columns=4: row 1, column 0
    expected = np.round(np.arange(9).reshape(3, 3) / 8 * 255).astype(np.uint8)
    np.testing.assert_array_equal(cell, np.repeat(np.repeat(expected, 2, axis=0), 2, axis=1))
    assert np.all(image[6, :, :] == 0) and np.all(image[:, 6, :] == 0)  # the separators


def test_rgb_first_layer_is_drawn_in_colour_and_found_by_call_order():
    model = models.create("resnet_small", num_classes=10, stage_widths=(8, 8, 8), stem_width=4)
    variables = model.init(jax.random.key(1), jnp.zeros((1, 16, 16, 3)), train=False)
    network = Network(model, variables, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    name, kernel = pictures.first_conv_kernel(network)
    assert name == "stem_conv" and kernel.shape == (3, 3, 3, 4)
    image = pictures.first_layer_filters(network, scale=1)
    assert image.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    assert not np.all(image[..., 0] == image[..., 1])
    cell = image[:3, :3].astype(np.float64)  # kernel 0, its three channels min-max normalized together
    np.testing.assert_allclose(cell, np.round(pictures.to_uint8(kernel[..., 0])), atol=0)


def test_feature_maps_put_the_channel_with_the_largest_mean_activation_first():
    network = tiny_network.untrained()
    images, _ = tiny_network.fashion_test_images(1)
    layer = "stage1_block1"
    _, activation = network.logits_and_activation(jnp.asarray(images), layer)
    activation = np.asarray(activation[0])
    strongest = int(np.argmax(activation.mean(axis=(0, 1))))
    grid = pictures.feature_maps(network, images[0], layer, max_channels=4, columns=4, scale=1)
    assert grid.shape == (28, 4 * 28 + 3, 3)
    np.testing.assert_array_equal(grid[:, :28, 0], pictures.to_uint8(activation[:, :, strongest]))
    means = activation.mean(axis=(0, 1))
    order = pictures.channel_order(activation)
    assert np.all(np.diff(means[order]) <= 0)


def test_feature_maps_of_an_unknown_layer_name_the_layers():
    with pytest.raises(ConfigError, match="stem_conv, stem_bn, stage1_block1"):
        pictures.feature_maps(tiny_network.untrained(), np.zeros((28, 28, 1)), "stage9")


@pytest.mark.slow  # trains the tiny network first (10-20 s on the shared 2-core VM)
def test_class_model_raises_the_target_logit_until_the_image_is_classified_as_the_target():
    network = tiny_network.trained()
    target = 0  # T-shirt/top
    image = pictures.class_model(network, target, image_shape=(28, 28, 1))
    start = network.logits(jnp.full((1, 28, 28, 1), tiny_network.MEAN[0]))[0, target]
    logits = np.asarray(network.logits(jnp.asarray(image)[None])[0])
    assert image.shape == (28, 28, 1) and image.min() >= 0 and image.max() <= 255
    assert logits[target] > start + 3.0
    assert int(np.argmax(logits)) == target


def test_class_model_is_deterministic_for_a_seed_and_its_jitter_depends_on_it():
    model = models.create("resnet_small", num_classes=3, stage_sizes=(1,), stage_widths=(4,), stem_width=4)
    network = Network(model, model.init(jax.random.key(0), jnp.zeros((1, 12, 12, 1)), train=False), (72.9,), (90.0,))
    options = {"image_shape": (12, 12, 1), "steps": 10, "jitter": 2}
    first = pictures.class_model(network, 2, seed=3, **options)
    np.testing.assert_array_equal(first, pictures.class_model(network, 2, seed=3, **options))
    assert not np.array_equal(first, pictures.class_model(network, 2, seed=4, **options))


def test_gaussian_blur_keeps_a_constant_image_and_its_total():
    image = jnp.zeros((15, 15, 1)).at[7, 7, 0].set(1.0)
    blurred = pictures.gaussian_blur(image, 1.0)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(blurred[7, 7, 0]) == pytest.approx(1 / (2 * np.pi), rel=0.05)
    np.testing.assert_allclose(pictures.gaussian_blur(jnp.full((9, 9, 3), 5.0), 2.0), 5.0, rtol=1e-6)
