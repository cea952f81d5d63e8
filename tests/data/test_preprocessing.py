"""The Inception crop draws from the published ranges; interpolation and antialiasing follow the config; every
registered op parses, runs and range-checks its own arguments when a chain is parsed."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from imagenet_jax.config import get_base_config
from imagenet_jax.data import inputs
from imagenet_jax.data import preprocessing as pp
from imagenet_jax.data.ops import OPS
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.registry import UnknownNameError
from tests.conftest import REPO


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


def test_every_registered_op_parses_with_its_defaults_and_runs():
    # Iterates the registry: a new op is covered without editing a list here.
    context = pp.PreprocessContext(image_size=24, crop_pct=0.875, channels=3)
    image = tf.constant(np.random.default_rng(0).integers(0, 255, (40, 48, 3)), tf.uint8)
    encoded = tf.io.encode_jpeg(image)
    assert {"random_resized_crop", "flip_lr", "random_affine", "randaugment"} <= set(OPS.names())
    for name in OPS.names():
        assert pp.parse_chain(name) == [(name, (), {})]
        chain = pp.build(name, context)
        for source in (encoded, image):
            assert chain(source, tf.constant([3, 4], tf.int64)).shape == (24, 24, 3), name


def test_every_op_with_numeric_or_choice_arguments_checks_them():
    # Ranges are each op's own: any op argument with a number (or a string) default needs a registered check.
    for name in OPS.names():
        parameters = list(inspect.signature(OPS.get(name)).parameters.values())[3:]
        if any(isinstance(p.default, int | float | str) for p in parameters):
            assert OPS.has_check(name), f"op {name!r} takes arguments but registered no check"


@pytest.mark.parametrize("chain, expected", [
    ("random_affine(500)", "config.train_preprocess: op 'random_affine(500)': rotation=500 must be in [0, 180]."),
    ("random_affine(0, 2.0)", "op 'random_affine(0, 2.0)': width_shift=2.0 must be in [0, 1]."),
    ("random_affine(zoom=1.0)", "zoom=1.0 must be in [0, 0.99]."),
    ("random_affine(shear=90)", "shear=90 must be in [0, 89]."),
    ("random_affine(fill_mode='mirror')", "fill_mode='mirror' is not one of: 'nearest', 'constant', 'reflect'"),
    ("random_affine('a')", "rotation='a' must be a number."),
    ("autoaugment('cifar')", "op \"autoaugment('cifar')\": policy='cifar' is not one of: 'imagenet'."),
    ("randaugment(2, 11)", "op 'randaugment(2, 11)': magnitude=11 must be in [0, 10]."),
    ("randaugment(-1)", "num_ops=-1 must be >= 0."),
    ("randaugment(1.5)", "num_ops=1.5 must be an integer."),
    ("color_jitter(1.5)", "op 'color_jitter(1.5)': strength=1.5 must be in [0, 1]."),
    ("random_erasing(1.5)", "op 'random_erasing(1.5)': probability=1.5 must be in [0, 1]."),
    ("random_erasing(area_min=0.5, area_max=0.2)", "area_min=0.5 must be <= area_max=0.2."),
    ("random_erasing(attempts=0)", "attempts=0 must be >= 1."),
    ("random_resized_crop(0.0)", "area_min=0.0 must be in (0, 1]."),
    ("random_resized_crop(ratio_min=2.0)", "ratio_min=2.0 must be <= ratio_max=1.3333"),
    ("random_resized_crop(max_upscale=-1)", "max_upscale=-1 must be >= 0."),
    ("scale_jitter_crop(480, 256)", "min_side=480 must be <= max_side=256."),
    ("random_crop_pad(-50)", "op 'random_crop_pad(-50)': padding=-50 must be >= 0."),
    ("resize(True)", "size=True must be an integer."),
])
def test_op_arguments_are_range_checked_when_the_chain_is_parsed(chain, expected):
    with pytest.raises(ConfigError) as raised:
        pp.parse_chain(f"random_resized_crop|{chain}|flip_lr", "train_preprocess")
    message = str(raised.value)
    assert expected in message and message.startswith("config.train_preprocess: op ") and "\n" not in message


def test_op_strings_in_the_config_are_checked_by_validation():
    config = get_base_config()
    config.train_preprocess = "random_resized_crop|flip_lr|random_affine(500)"
    with pytest.raises(ConfigError, match=r"config\.train_preprocess: op 'random_affine\(500\)': rotation=500"):
        validate_config(config, device_count=1)


def test_unknown_op_names_the_key_and_the_closest_op():
    with pytest.raises(UnknownNameError, match=r"^config\.eval_preprocess: op 'flip_ud' is not a registered "
                                               r"preprocessing op\. Did you mean flip_lr\?"):
        pp.parse_chain("resize_center_crop|flip_ud", "eval_preprocess")


def test_preprocessing_and_augment_do_not_import_each_other():
    # The op registry (data/ops.py) discovers both; neither needs the other (no import circle).
    for module, other in (("preprocessing", "augment"), ("augment", "preprocessing")):
        tree = ast.parse(Path(REPO, "imagenet_jax", "data", f"{module}.py").read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom | ast.Import)
                    for alias in node.names} | {node.module or "" for node in ast.walk(tree)
                                                if isinstance(node, ast.ImportFrom)}
        assert not any(name.endswith(other) for name in imported), f"{module}.py imports {other}"
