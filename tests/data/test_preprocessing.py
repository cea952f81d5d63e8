"""The Inception crop draws from the published ranges; interpolation and antialiasing follow the config."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from imagenet_jax.config import get_base_config
from imagenet_jax.data import inputs
from imagenet_jax.data import preprocessing as pp
from imagenet_jax.errors import ConfigError


def _windows(height, width, count=400):
    window = tf.function(lambda seed: pp.inception_crop_window(tf.constant([height, width, 3]), seed))
    return np.array([window(tf.constant([5, k], tf.int64)).numpy() for k in range(count)], float)


def test_inception_crop_window_draws_the_published_area_and_aspect_ranges():
    windows = _windows(375, 500)
    top, left, height, width = windows.T
    assert (top >= 0).all() and (left >= 0).all() and (top + height <= 375).all() and (left + width <= 500).all()
    area = height * width / (375 * 500)
    ratio = width / height
    assert area.min() >= 0.08 * 0.97 and area.max() <= 1.0
    assert ratio.min() >= 0.75 * 0.97 and ratio.max() <= 4 / 3 * 1.03
    assert 0.38 < area.mean() < 0.48, "rejection of crops that do not fit shifts the mean below 0.54"
    assert len({tuple(w) for w in windows}) > 390, "windows differ between examples"


def test_inception_crop_falls_back_to_the_largest_center_crop_with_clamped_ratio():
    windows = _windows(20, 2000, count=20)  # aspect 100: no draw fits
    np.testing.assert_array_equal(windows, np.tile([0, 986, 20, 27], (20, 1)))


def test_interpolation_and_antialias_keys_reach_the_resize():
    config = get_base_config()
    image = tf.constant(np.random.default_rng(0).integers(0, 255, (300, 300, 3)), tf.uint8)
    outputs = {}
    for interpolation, antialias in (("bilinear", False), ("bilinear", True), ("bicubic", False), ("area", False)):
        config.interpolation, config.antialias = interpolation, antialias
        resize = pp.build("resize", inputs.context(config, 64, 3))
        outputs[interpolation, antialias] = resize(image, tf.zeros(2, tf.int64)).numpy()
        reference = np.clip(tf.image.resize(image, (64, 64), method=interpolation, antialias=antialias), 0, 255)
        assert np.abs(outputs[interpolation, antialias] - reference).max() <= 0.5 + 1e-3
    assert len({out.tobytes() for out in outputs.values()}) == 4


def test_op_keywords_are_checked_against_the_op_signature():
    assert pp.parse_chain("random_resized_crop(0.2, max_upscale=0)|flip_lr") == [
        ("random_resized_crop", (0.2,), {"max_upscale": 0}), ("flip_lr", (), {})]
    with pytest.raises(ConfigError, match="max_upscal.*signature: random_resized_crop"):
        pp.parse_chain("random_resized_crop(max_upscal=0)", "train_preprocess")
    with pytest.raises(ConfigError, match="flip_lr"):
        pp.parse_chain("flip_lr(1)")
