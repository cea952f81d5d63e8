"""Converted keras.applications models compute, from RGB pixels normalized by `keras_input_normalization`, the
logits Keras computes from its own `preprocess_input` of the same pixels (random weights and BN statistics)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from parity_report import check_and_record, relative_error

from imagenet_jax import models
from imagenet_jax.convert import from_keras, keras_input_normalization, keras_model_options, keras_preprocessing
from imagenet_jax.core.metrics import normalize_images
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
# The keras.applications module whose preprocess_input each constructor's weights expect.
PREPROCESS_MODULE = {"ResNet50": "resnet", "ResNet101": "resnet", "ResNet152": "resnet", "ResNet50V2": "resnet_v2",
                     "VGG16": "vgg16", "VGG19": "vgg19", "InceptionV3": "inception_v3"}
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


def keras_logits(reference, constructor: str, pixels: np.ndarray) -> np.ndarray:
    """Keras' logits of RGB `pixels` in [0, 255] after its own preprocess_input for `constructor`."""
    preprocess = getattr(keras.applications, PREPROCESS_MODULE[constructor]).preprocess_input
    return np.asarray(reference(preprocess(pixels.copy()), training=False))  # preprocess_input works in place


def converted_logits(reference, name: str, pixels: np.ndarray, variables=None) -> np.ndarray:
    """Our logits of the same RGB pixels: the converted model, behind the normalization the converter gives."""
    variables = from_keras(reference, name) if variables is None else variables
    model = models.create(name, **keras_model_options(reference, name))
    normalization = keras_input_normalization(reference, name)
    apply = jax.jit(lambda v, x: model.apply(
        v, normalize_images(x, normalization["normalize_mean"], normalization["normalize_std"]), train=False))
    return np.asarray(apply(variables, pixels))


def photo(size: int) -> np.ndarray:
    """scikit-image's cat photograph (chelsea), its centre square resized to `size`, as a batch of one."""
    import PIL.Image
    import skimage.data

    image = skimage.data.chelsea()
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = PIL.Image.fromarray(image[top:top + side, left:left + side]).resize((size, size), PIL.Image.BILINEAR)
    return np.asarray(square, np.float32)[None]


@pytest.mark.parametrize(("constructor", "name", "size"), CASES)
def test_eval_logits_match_keras(constructor, name, size):
    reference = randomized_keras_model(constructor, size)
    pixels = np.random.default_rng(0).uniform(0, 255, (BATCH, size, size, 3)).astype(np.float32)
    mode = keras_preprocessing(reference, name)
    actual = converted_logits(reference, name, pixels)
    check_and_record("Keras", constructor, f"{size} px, eval, {mode} preprocess_input", actual,
                     keras_logits(reference, constructor, pixels))
    if constructor in KERAS_TRAINABLE_PARAMS and name != "inception_v3":
        assert accounting.count_params(from_keras(reference, name)) == KERAS_TRAINABLE_PARAMS[constructor]


PHOTO_CASES = [
    ("ResNet50", "resnet50", 64),
    ("ResNet50V2", "resnet50", 64),
    ("InceptionV3", "inception_v3", 75),
    pytest.param("VGG16", "vgg16", 224, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("constructor", "name", "size"), PHOTO_CASES)
def test_photo_logits_match_keras_on_its_own_preprocess_input(constructor, name, size):
    reference = randomized_keras_model(constructor, size)
    pixels = photo(size)
    mode = keras_preprocessing(reference, name)
    check_and_record("Keras", constructor, f"photo {size} px, eval, {mode} preprocess_input",
                     converted_logits(reference, name, pixels), keras_logits(reference, constructor, pixels))


def test_preprocessing_modes_are_keras_own():
    # keras.applications: ResNet (v1) and VGG are "caffe" (BGR, mean-subtracted), ResNetV2 and InceptionV3 "tf".
    modes = {constructor: keras_preprocessing(randomized_keras_model(constructor, 75), name)
             for constructor, name in (("ResNet50", "resnet50"), ("ResNet50V2", "resnet50"),
                                       ("InceptionV3", "inception_v3"))}
    assert modes == {"ResNet50": "caffe", "ResNet50V2": "tf", "InceptionV3": "tf"}
    reference = randomized_keras_model("ResNet50", 32)
    assert keras_input_normalization(reference, "resnet50") == {
        "normalize_mean": (123.68, 116.779, 103.939), "normalize_std": (1.0, 1.0, 1.0)}


def test_caffe_model_without_the_folded_channel_swap_is_far_off_on_a_photo():
    # Proves the photo test can see channel order: the BGR swap undone, the logits differ by far more than 1e-4.
    reference = randomized_keras_model("ResNet50", 64)
    variables = from_keras(reference, "resnet50")
    stem = variables["params"]["stem_conv"]
    np.testing.assert_array_equal(stem["kernel"], reference.get_layer("conv1_conv").get_weights()[0][:, :, ::-1])
    unswapped = {**variables, "params": {**variables["params"], "stem_conv": {**stem, "kernel": stem["kernel"][
        :, :, ::-1]}}}
    pixels = photo(64)
    expected = keras_logits(reference, "ResNet50", pixels)
    assert relative_error(converted_logits(reference, "resnet50", pixels, unswapped), expected) > 1e-2
    assert relative_error(converted_logits(reference, "resnet50", pixels), expected) < 1e-4


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
