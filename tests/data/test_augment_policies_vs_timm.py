"""AutoAugment and RandAugment against timm's tables and PIL ops: the ImageNet policy (ops, probabilities, levels),
RandAugment's op set, every op's level-to-argument mapping at every integer level 0..10 and both signs, each op's
pixels on a real photograph, and the registered ops' outputs explained by those tables.

Our op names map to timm's explicitly (AUTOAUGMENT_TO_TIMM, RANDAUGMENT_TO_TIMM); the differences from timm that
imagenet_jax/data/augment.py documents are each allowed by name here, and nothing else.

timm is the oracle, read as a file: `timm/data/auto_augment.py` needs only PIL and numpy, while importing the timm
package imports torch, torchvision and triton, and triton's import crashes (SIGSEGV) a process that has already
loaded TensorFlow (triton 3.8 / TF 2.21). `make install` installs timm without its dependencies; the tests skip
where timm is not installed, and fail under CI.
"""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import ndimage

from imagenet_jax.data import augment
from imagenet_jax.data import preprocessing as pp
from tests.conftest import running_in_ci

# Our name -> timm's name, AutoAugment: timm's "original" policy names the paper's posterize PosterizeOriginal.
AUTOAUGMENT_TO_TIMM = {
    "AutoContrast": "AutoContrast", "Equalize": "Equalize", "Invert": "Invert", "Rotate": "Rotate",
    "Posterize": "PosterizeOriginal", "Solarize": "Solarize", "Color": "Color", "Contrast": "Contrast",
    "Brightness": "Brightness", "Sharpness": "Sharpness", "ShearX": "ShearX", "ShearY": "ShearY",
    "TranslateX": "TranslateXRel", "TranslateY": "TranslateYRel"}
# RandAugment: timm's "increasing" ops (`rand-mM-inc1`); translate as a fraction of the size in both.
RANDAUGMENT_TO_TIMM = {
    "AutoContrast": "AutoContrast", "Equalize": "Equalize", "Rotate": "Rotate", "Posterize": "PosterizeIncreasing",
    "Solarize": "SolarizeIncreasing", "Color": "ColorIncreasing", "Contrast": "ContrastIncreasing",
    "Brightness": "BrightnessIncreasing", "Sharpness": "SharpnessIncreasing", "ShearX": "ShearX", "ShearY": "ShearY",
    "TranslateX": "TranslateXRel", "TranslateY": "TranslateYRel"}
NO_ARGUMENT = {"Identity", "AutoContrast", "Equalize", "Invert"}
GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"}
GRAY = (augment.FILL_GRAY,) * 3


@pytest.fixture(scope="module")
def timm_augment() -> types.ModuleType:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        message = "timm is not installed (`make install` installs it, without its dependencies)"
        if running_in_ci():
            pytest.fail(message)
        pytest.skip(message)
    path = Path(spec.submodule_search_locations[0]) / "data" / "auto_augment.py"
    module_spec = importlib.util.spec_from_file_location("timm_auto_augment_oracle", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea()[::3, ::3])  # 100 x 151 x 3, a real photograph


def _timm_argument(timm_augment, timm_name: str, level: int, sign: float):
    """timm's argument for op `timm_name` at `level`, its random negation forced to happen (sign -1) or not."""
    stub = types.SimpleNamespace(random=lambda: 1.0 if sign < 0 else 0.0)  # _randomly_negate: random() > 0.5
    saved, timm_augment.random = timm_augment.random, stub
    try:
        (argument,) = timm_augment.LEVEL_TO_ARG[timm_name](level, dict(timm_augment._HPARAMS_DEFAULT))
    finally:
        timm_augment.random = saved
    return argument


def test_autoaugment_imagenet_policy_is_timms_original_paper_policy_step_for_step(timm_augment):
    theirs = timm_augment.auto_augment_policy_original(dict(timm_augment._HPARAMS_DEFAULT))
    ours = [[(AUTOAUGMENT_TO_TIMM[name], probability, level) for name, probability, level in sub_policy]
            for sub_policy in augment.AUTOAUGMENT_IMAGENET]
    assert ours == [[(op.name, op.prob, op.magnitude) for op in sub_policy] for sub_policy in theirs]
    assert len(ours) == 25 and all(len(sub_policy) == 2 for sub_policy in ours)
    # Not the TF TPU "v0" policy, which shares only a few sub-policies.
    v0 = timm_augment.auto_augment_policy_v0(dict(timm_augment._HPARAMS_DEFAULT))
    shared = sum(sub in [[(op.name, op.prob, op.magnitude) for op in v] for v in v0] for sub in ours)
    assert shared <= 2


def test_randaugment_ops_are_the_papers_14_timms_increasing_set_with_identity_for_invert_and_solarize_add(
        timm_augment):
    ours = augment.RANDAUGMENT_OPS
    assert len(ours) == len(set(ours)) == 14
    mapped = {RANDAUGMENT_TO_TIMM[name] for name in ours if name != "Identity"}
    assert "Identity" in ours
    assert mapped == set(timm_augment._RAND_INCREASING_TRANSFORMS) - {"Invert", "SolarizeAdd"}
    # The named difference in how ops are applied: timm applies each drawn op with probability 0.5 (ours: always,
    # test_registered_randaugment_outputs_are_the_tables_ops) and clips the magnitude to the same 10.
    assert {op.prob for op in timm_augment.rand_augment_ops(9, transforms=timm_augment._RAND_INCREASING_TRANSFORMS)} \
        == {0.5}
    assert augment.MAX_LEVEL == timm_augment._LEVEL_DENOM == 10


@pytest.mark.parametrize("policy", ["autoaugment", "randaugment"])
def test_level_to_argument_equals_timms_at_every_integer_level_and_sign(timm_augment, policy):
    levels = {"autoaugment": augment.AUTOAUGMENT_LEVELS, "randaugment": augment.RANDAUGMENT_LEVELS}[policy]
    names = {"autoaugment": AUTOAUGMENT_TO_TIMM, "randaugment": RANDAUGMENT_TO_TIMM}[policy]
    ops = ({name for sub_policy in augment.AUTOAUGMENT_IMAGENET for name, _, _ in sub_policy}
           if policy == "autoaugment" else set(augment.RANDAUGMENT_OPS))
    assert ops - set(levels) <= NO_ARGUMENT  # every op that takes an argument has a level mapping
    for name in (ops | set(levels)) & NO_ARGUMENT - {"Identity"}:
        assert name not in levels and timm_augment.LEVEL_TO_ARG[names[name]] is None, name
    for name in levels:
        for level in range(11):
            for sign in (1.0, -1.0):
                ours = augment.level_argument(levels, name, level, sign)
                theirs = _timm_argument(timm_augment, names[name], level, sign)
                if policy == "randaugment" and name == "Posterize":
                    # Named difference: 8 down to 4 bits kept (the AutoAugment paper's range), timm 4 down to 0.
                    assert ours == theirs + 4, (name, level)
                elif isinstance(theirs, int):
                    assert ours == theirs and isinstance(ours, int), (name, level)
                else:
                    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12), (name, level, sign)
    # The published end points, so a table both sides got wrong would show.
    if policy == "randaugment":
        assert [augment.level_argument(levels, "Posterize", m) for m in (0, 9, 10)] == [8, 5, 4]
        assert [augment.level_argument(levels, "Solarize", m) for m in (0, 1, 9, 10)] == [256, 231, 26, 0]
        assert augment.level_argument(levels, "Color", 10, -1.0) == pytest.approx(0.1)
    else:
        assert [augment.level_argument(levels, "Posterize", m) for m in (0, 8, 10)] == [4, 7, 8]
        assert [augment.level_argument(levels, "Solarize", m) for m in (0, 3, 10)] == [0, 76, 256]
        assert augment.level_argument(levels, "Color", 0, -1.0) == pytest.approx(0.1)
    assert augment.level_argument(levels, "Rotate", 10, -1.0) == -30.0


def _timm_op(timm_augment, name: str, image: np.ndarray, argument) -> np.ndarray:
    timm_name = AUTOAUGMENT_TO_TIMM[name]
    args = () if argument is None else (argument,)
    out = timm_augment.NAME_TO_OP[timm_name](Image.fromarray(image), *args, fillcolor=GRAY, resample=Image.BILINEAR)
    return np.asarray(out).astype(int)


@pytest.mark.parametrize("name, arguments", [
    ("AutoContrast", [None]), ("Equalize", [None]), ("Invert", [None]),
    ("Posterize", [1, 4, 7, 8]), ("Solarize", [0, 26, 128, 230, 256])])
def test_pixel_ops_equal_timms_exactly_on_a_photo(timm_augment, photo, name, arguments):
    for argument in arguments:
        ours = augment.apply_named(name, tf.constant(photo), argument).numpy().astype(int)
        np.testing.assert_array_equal(ours, _timm_op(timm_augment, name, photo, argument), err_msg=str(argument))


@pytest.mark.parametrize("name", sorted(augment.ENHANCE_OPS))
def test_enhance_ops_match_timms_within_one_level_on_a_photo(timm_augment, photo, name):
    for factor in (0.1, 0.46, 1.0, 1.54, 1.9):  # the ends, the identity and two of the policy's factors
        difference = np.abs(augment.apply_named(name, tf.constant(photo), factor).numpy().astype(int)
                            - _timm_op(timm_augment, name, photo, factor))
        # Measured: max 1, mean <= 0.53 (PIL rounds the blend in 8-bit fixed point), 0 at factor 1.
        assert difference.max() <= (1 if factor != 1.0 else 0) and difference.mean() < 0.6, (factor, difference.max())


@pytest.mark.parametrize("name, arguments", [
    ("Rotate", [30.0, -12.0, 90.0]), ("ShearX", [0.3, -0.18]), ("ShearY", [0.15, -0.3]),
    ("TranslateX", [0.45, -0.1234]), ("TranslateY", [-0.3, 0.0777])])
def test_geometric_ops_match_timms_to_one_level_away_from_the_new_border(timm_augment, photo, name, arguments):
    white = np.full_like(photo, 255)
    height, width = photo.shape[:2]
    for argument in arguments:
        ours = augment.apply_named(name, tf.constant(photo), argument).numpy().astype(int)
        theirs = _timm_op(timm_augment, name, photo, argument)
        # Where the fill meets the image, PIL fills a sample whose source lies outside, TF blends it with the fill:
        # a transformed white image shows that band. It is one pixel wide, at most one pixel per perimeter pixel.
        white_ours = augment.apply_named(name, tf.constant(white), argument).numpy().astype(int)
        white_theirs = _timm_op(timm_augment, name, white, argument)
        band = (white_ours != white_theirs).any(axis=-1)
        assert band.sum() <= 2 * (height + width), argument
        # The fill regions agree and everything else equals timm's pixels to rounding (measured: max 1, mean < 0.21).
        near_fill = ndimage.binary_dilation(((white_ours != 255) | (white_theirs != 255)).any(axis=-1))
        inside = np.abs(ours - theirs).max(axis=-1)[~near_fill]
        assert inside.size > 0.5 * height * width and inside.max() <= 1, (argument, inside.max())
        assert np.abs(white_ours - white_theirs)[~band].max() == 0
        # The direction as well: the opposite argument is far off.
        assert np.abs(ours - _timm_op(timm_augment, name, photo, -argument)).mean() > 10 * np.abs(ours - theirs).mean()


def _candidates(image: tf.Tensor, levels: dict, name: str, level: float) -> list[np.ndarray]:
    signs = (1.0, -1.0) if name in levels else (1.0,)
    return [augment.apply_named(name, image, augment.level_argument(levels, name, level, sign)).numpy()
            for sign in signs]


def test_registered_randaugment_outputs_are_the_tables_ops_each_applied(photo):
    image = tf.constant(photo[:40, :56])
    magnitude = 9
    candidates = {name: _candidates(image, augment.RANDAUGMENT_LEVELS, name, magnitude)
                  for name in augment.RANDAUGMENT_OPS}
    context = pp.PreprocessContext(image_size=40, crop_pct=1.0, channels=3)
    chosen = []
    for k in range(40):
        out = augment.randaugment(image, tf.constant([5, k], tf.int64), context, 1, magnitude).numpy()
        matches = {name for name, outputs in candidates.items() if any(np.array_equal(out, o) for o in outputs)}
        assert matches, f"seed {k}: the output is none of the ops at magnitude {magnitude}"
        chosen.append(matches)
    # Every op is applied when drawn: only Identity (1 in 14) leaves the image as it was (timm's p=0.5: about half).
    assert sum(matches == {"Identity"} for matches in chosen) <= 8
    assert len(set().union(*chosen)) >= 10  # the seeds reach most of the 14 ops


def test_registered_autoaugment_outputs_are_the_policys_steps_at_the_papers_arguments(photo):
    image = tf.constant(photo[:40, :56])
    outputs = []
    for sub_policy in augment.AUTOAUGMENT_IMAGENET:
        (first, _, first_level), (second, _, second_level) = sub_policy
        for after_first in [image.numpy(), *_candidates(image, augment.AUTOAUGMENT_LEVELS, first, first_level)]:
            outputs.append(after_first)
            outputs.extend(_candidates(tf.constant(after_first), augment.AUTOAUGMENT_LEVELS, second, second_level))
    context = pp.PreprocessContext(image_size=40, crop_pct=1.0, channels=3)
    changed = 0
    for k in range(40):
        out = augment.autoaugment(image, tf.constant([6, k], tf.int64), context).numpy()
        assert any(np.array_equal(out, candidate) for candidate in outputs), f"seed {k}: not a step of the policy"
        changed += not np.array_equal(out, image.numpy())
    assert changed >= 20
