"""Augmentation ops: PIL-exact pixel ops, exact geometry, stateless determinism, and their place in the train chain."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps

from imagenet_jax.config import get_base_config
from imagenet_jax.data import augment, inputs
from imagenet_jax.data import preprocessing as pp
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea()[::3, ::3])  # 100 x 151 x 3, a real photograph


@pytest.mark.parametrize("name, ours, pil", [
    ("equalize", augment.equalize, ImageOps.equalize),
    ("autocontrast", augment.autocontrast, ImageOps.autocontrast),
    ("invert", augment.invert, ImageOps.invert),
    ("posterize3", lambda image: augment.posterize(image, 3), lambda image: ImageOps.posterize(image, 3)),
    ("solarize100", lambda image: augment.solarize(image, 100), lambda image: ImageOps.solarize(image, 100)),
])
def test_pixel_ops_equal_pil_exactly(photo, name, ours, pil):
    low_contrast = (photo // 2 + 40).astype(np.uint8)  # autocontrast/equalize have work to do
    for image in (photo, low_contrast):
        np.testing.assert_array_equal(ours(tf.constant(image)).numpy(), np.asarray(pil(Image.fromarray(image))))


@pytest.mark.parametrize("ours, pil", [
    (augment.brightness, ImageEnhance.Brightness), (augment.contrast, ImageEnhance.Contrast),
    (augment.saturation, ImageEnhance.Color), (augment.sharpness, ImageEnhance.Sharpness)])
@pytest.mark.parametrize("factor", [0.3, 1.7])
def test_enhance_ops_match_pil_within_rounding(photo, ours, pil, factor):
    got = ours(tf.constant(photo), factor).numpy().astype(int)
    want = np.asarray(pil(Image.fromarray(photo)).enhance(factor)).astype(int)
    assert np.abs(got - want).max() <= 2 and np.abs(got - want).mean() < 0.6


def test_rotation_by_90_degrees_is_a_transpose_and_translation_moves_pixels(photo):
    square = tf.constant(photo[:99, :99])
    rotated = augment.rotate(square, 90.0, interpolation="NEAREST").numpy()
    turned = [np.rot90(photo[:99, :99], k) for k in (1, 3)]
    assert min(np.abs(rotated.astype(int) - turn.astype(int)).mean() for turn in turned) == 0
    moved = augment.translate(tf.constant(photo), 5.0, 0.0).numpy()
    np.testing.assert_array_equal(moved[:, 5:], photo[:, :-5])
    assert (moved[:, :5] == augment.FILL_GRAY).all()


def test_affine_with_zero_ranges_is_the_identity_and_ops_are_stateless(photo):
    context = pp.PreprocessContext(image_size=64, crop_pct=1.0, channels=3)
    image, seed = tf.constant(photo), tf.constant([3, 7], tf.int64)
    np.testing.assert_array_equal(augment.random_affine(image, seed, context).numpy(), photo)
    ops = {"random_affine": (20.0, 0.1, 0.1, 0.2, 10.0), "randaugment": (2, 9), "autoaugment": (),
           "color_jitter": (0.4,), "random_erasing": (1.0,)}
    for name, args in ops.items():
        chain = pp.build(f"{name}({', '.join(map(repr, args))})", context)
        first, again = chain(image, seed).numpy(), chain(image, seed).numpy()
        others = [chain(image, tf.constant([3, k], tf.int64)).numpy() for k in range(8, 14)]
        assert first.shape == (64, 64, 3) and first.dtype == np.uint8
        np.testing.assert_array_equal(first, again)  # a function of the seed only
        assert any(not np.array_equal(first, other) for other in others), name


def test_random_erasing_replaces_one_rectangle_of_the_published_size():
    context = pp.PreprocessContext(image_size=64, crop_pct=1.0, channels=3)
    image = tf.fill((64, 80, 3), tf.constant(7, tf.uint8))
    for k in range(20):
        out = augment.random_erasing(image, tf.constant([0, k], tf.int64), context, 1.0).numpy()
        rows, cols = np.nonzero((out != 7).any(axis=-1))
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert 0.02 * 64 * 80 * 0.9 <= box <= 64 * 80 / 3 + 64 + 80
        assert (out != 7).any(axis=-1).sum() >= 0.95 * box, "the whole rectangle is noise"
    untouched = augment.random_erasing(image, tf.constant([0, 0], tf.int64), context, 0.0).numpy()
    assert (untouched == 7).all()


def test_randaugment_with_zero_ops_is_the_identity(photo):
    context = pp.PreprocessContext(image_size=64, crop_pct=1.0, channels=3)
    out = augment.randaugment(tf.constant(photo), tf.constant([1, 2], tf.int64), context, 0, 9)
    np.testing.assert_array_equal(out.numpy(), photo)


def test_augmentations_are_ops_of_the_train_chain_in_the_order_written():
    config = get_base_config()
    assert inputs.train_chain(config) == "random_resized_crop|flip_lr"
    chain = ("random_resized_crop|flip_lr|random_affine(15.0, 0.0, 0.0, 0.1, 0.0, 'nearest')"
             "|randaugment(2, 7.0)|color_jitter(0.4)|random_erasing(0.25)")
    config.train_preprocess = chain
    assert inputs.train_chain(config) == chain
    validate_config(config, device_count=1)


@pytest.mark.parametrize("changes, expected", [
    # The flat augmentation keys are gone (tests/config/test_moved_keys.py); each op checks its own arguments.
    ({"color_jitter": 0.4}, 'config.color_jitter was removed: append "|color_jitter(0.4)" to config.train_preprocess'),
    ({"mixup_alpha": -1.0}, "config.mixup_alpha=-1.0 must be >= 0"),
    ({"cutmix_alpha": -1.0}, "config.cutmix_alpha=-1.0 must be >= 0"),
    ({"mix_prob": 1.5}, "config.mix_prob=1.5 must be in [0, 1]"),
    ({"mix_switch_prob": -0.5}, "config.mix_switch_prob=-0.5 must be in [0, 1]"),
    ({"interpolation": "cubic"}, "config.interpolation='cubic' is not one of"),
    ({"eval_image_size": -1}, "config.eval_image_size=-1 must be an integer >= 0"),
    ({"minival_examples": 5}, "unknown config key config.minival_examples. It moved to config.evals.minival"),
    ({"image_size_schedule": "10:128"}, "config.image_size_schedule='10:128' must start at epoch 0"),
    ({"image_size_schedule": "0:128,x"}, "config.image_size_schedule='0:128,x': 'x' is not EPOCH:SIZE"),
    ({"image_size_schedule": "0:128,1:224", "lowres_cache_max_size": 96},
     "config.lowres_cache_max_size=96 is below every training image size (128, 224)"),
    ({"lowres_cache_max_size": -1}, "config.lowres_cache_max_size=-1 must be an integer >= 0"),
    ({"evals": {"v3": {"type": "classification", "dataset": "imagenet_v3"}}},
     "config.evals.v3.dataset='imagenet_v3' is not a registered"),
    ({"evals": {"r": {"type": "classification", "dataset": "folder:/no/such/dir"}}},
     "config.evals.r.dataset='folder:/no/such/dir' names a folder that does not exist"),
    ({"dataset": "folder:/no/such/dir"}, "config.dataset='folder:/no/such/dir'"),
])
def test_bad_input_pipeline_keys_name_the_key(changes, expected):
    config = get_base_config()
    for key, value in changes.items():
        config[key] = value
    with pytest.raises(ConfigError) as raised:
        validate_config(config, device_count=1)
    assert expected in str(raised.value)
