"""Converted keras.applications models compute the same logits as Keras (random weights and BN statistics)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from parity_report import check_and_record

from imagenet_jax import models
from imagenet_jax.convert import from_keras, keras_model_options
from imagenet_jax.models import accounting

keras = pytest.importorskip("keras")

BATCH = 2
# (Keras constructor, our model, image size): Keras' VGG Flatten fixes 224 px; InceptionV3 accepts 75 px.
CASES = [
    ("ResNet50", "resnet50", 64),
    ("ResNet101", "resnet101", 64),
    pytest.param("ResNet152", "resnet152", 64, marks=pytest.mark.slow),
    ("ResNet50V2", "resnet50", 64),
    pytest.param("VGG16", "vgg16", 224, marks=pytest.mark.slow),
    pytest.param("VGG19", "vgg19", 224, marks=pytest.mark.slow),
    ("InceptionV3", "inception_v3", 75),
]
# Keras' trainable parameter counts (model.summary()).
KERAS_TRAINABLE_PARAMS = {"ResNet50": 25_583_592, "ResNet50V2": 25_568_360, "InceptionV3": 23_817_352}


def randomized_keras_model(constructor: str, image_size: int):
    """A keras.applications model with random weights, biases, BN scales/offsets and moving statistics."""
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, constructor)(
        weights=None, input_shape=(image_size, image_size, 3), classifier_activation=None
    )
    rng = np.random.default_rng(1)
    draws = {
        "gamma": lambda shape: rng.uniform(0.5, 1.5, shape),
        "moving_variance": lambda shape: rng.uniform(0.5, 1.5, shape),
        "beta": lambda shape: rng.normal(0.0, 0.1, shape),
        "bias": lambda shape: rng.normal(0.0, 0.1, shape),
        "moving_mean": lambda shape: rng.normal(0.0, 0.2, shape),
    }
    for layer in model.layers:
        if not layer.weights:
            continue
        values = []
        for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
            draw = draws.get(variable.name.split("/")[-1].split(":")[0])
            values.append(draw(value.shape).astype(np.float32) if draw else value)
        layer.set_weights(values)
    return model


@pytest.mark.parametrize(("constructor", "name", "size"), CASES)
def test_eval_logits_match_keras(constructor, name, size):
    reference = randomized_keras_model(constructor, size)
    variables = from_keras(reference, name)
    options = keras_model_options(reference, name)
    images = np.random.default_rng(0).standard_normal((BATCH, size, size, 3)).astype(np.float32)
    expected = np.asarray(reference(images, training=False))
    model = models.create(name, **options)
    actual = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
    check_and_record("Keras", constructor, f"{size} px, eval", actual, expected)
    if constructor in KERAS_TRAINABLE_PARAMS and name != "inception_v3":
        assert accounting.count_params(variables) == KERAS_TRAINABLE_PARAMS[constructor]


def test_keras_inception_v3_options_and_unscaled_batch_norm():
    reference = randomized_keras_model("InceptionV3", 75)
    options = keras_model_options(reference, "inception_v3")
    assert options == {"num_classes": 1000, "aux_logits": False, "avg_pool_count_include_pad": False}
    variables = from_keras(reference, "inception_v3")
    # Keras' BatchNorms have no scale (scale=False): the converter supplies ones, 94 * channels extra parameters.
    scales = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(variables) if path[-1].key == "scale"]
    assert len(scales) == 94 and all(np.all(scale == 1.0) for scale in scales)
    scale_count = sum(scale.size for scale in scales)
    assert accounting.count_params(variables) - scale_count == KERAS_TRAINABLE_PARAMS["InceptionV3"]


def test_unsupported_keras_model_is_rejected():
    reference = randomized_keras_model("ResNet50", 32)
    with pytest.raises(ValueError, match="no Keras mapping"):
        from_keras(reference, "googlenet")
