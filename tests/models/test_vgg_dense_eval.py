"""VGG's dense evaluation: the FC layers applied as convolutions over a larger feature map equal lax convolutions
with the FC kernels reshaped, averaged over the class-score map; at the training size it is the plain call."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax import models


def _features(model, variables, images):
    # The last conv's output, through ReLU and the 2x2 max-pool the model applies after it.
    _, captured = model.apply(variables, images, capture_intermediates=True)
    last = captured["intermediates"]["block3_conv2"]["__call__"][0]
    return jax.lax.reduce_window(jax.nn.relu(last), -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def test_dense_logits_equal_fc_layers_as_convolutions_averaged_over_the_score_map():
    model = models.create("vgg_small", num_classes=10)  # pooled_size 3: fc1 becomes a 3x3 convolution
    images = jax.random.uniform(jax.random.key(0), (2, 48, 48, 1), minval=-1.0, maxval=1.0)
    variables = model.init(jax.random.key(1), images[:, :28, :28])
    params = variables["params"]
    features = _features(model, variables, images)
    assert features.shape[1:3] == (6, 6)  # 48 -> 24 -> 12 -> 6: a 4x4 map of 3x3 windows

    def conv(x, kernel, bias):
        y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         precision=jax.lax.Precision.HIGHEST)
        return y + bias

    channels = features.shape[-1]
    fc1 = params["fc1"]["kernel"].reshape(3, 3, channels, -1)  # the flatten order is (row, column, channel)
    x = jax.nn.relu(conv(features, fc1, params["fc1"]["bias"]))
    x = jax.nn.relu(conv(x, params["fc2"]["kernel"][None, None], params["fc2"]["bias"]))
    scores = conv(x, params["head"]["kernel"][None, None], params["head"]["bias"])
    assert scores.shape == (2, 4, 4, 10)
    dense = model.apply(variables, images, dense=True)
    np.testing.assert_allclose(np.asarray(dense), np.asarray(scores.mean(axis=(1, 2))), rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.asarray(dense), np.asarray(model.apply(variables, images)), rtol=1e-2, atol=0), \
        "the plain call pools the map to 3x3 instead: a different number"


def test_dense_at_the_training_size_is_the_plain_call():
    model = models.create("vgg11", num_classes=7)
    images = jax.random.uniform(jax.random.key(2), (1, 224, 224, 3))
    variables = jax.jit(model.init)(jax.random.key(3), images)
    np.testing.assert_array_equal(np.asarray(model.apply(variables, images, dense=True)),
                                  np.asarray(model.apply(variables, images)))
