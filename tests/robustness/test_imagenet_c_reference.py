"""Our ImageNet-C corruptions against ImageNet-C's own code (imagecorruptions 1.1.2) on real 224-px photographs.

Deterministic corruptions, and the random ones given ImageNet-C's own random draws (motion blur's angle, frost's
photograph and crop, fog's plasma numbers, snow's noise and angle, elastic transform's displacement numbers), agree
pixel for pixel: measured on CPU, at most 1 gray level apart and on average under 0.05 (under 0.001 for most).
The others (the three noises and glass blur) use jax's random numbers, so their
change (corrupted - clean) is compared in statistics per severity: its mean, its spread, and the mean absolute
difference of horizontal neighbours of the result (texture: noise raises it, blur lowers it). Each severity must
be close to ImageNet-C's at that severity and closer to it than to ImageNet-C's at any other severity, so a wrong
or shuffled parameter table fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.robustness.corruptions import IMAGENET_C, SEVERITIES, blur, corrupt, digital, weather
from tests.robustness.imagenet_c_reference import photos, reference, reference_corrupt

DETERMINISTIC = ("brightness", "contrast", "defocus_blur", "zoom_blur", "pixelate", "jpeg_compression",
                 "gaussian_blur")


def to_uint8_values(x) -> np.ndarray:
    """What `corrupt` returns for [0, 1] values: truncated 0-255 integers."""
    return np.floor(np.clip(np.asarray(x), 0, 1) * 255 + 1e-3)


def assert_pixel_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    difference = np.abs(ours - theirs)
    assert difference.max() <= 1 and difference.mean() < 0.1, (difference.max(), difference.mean())


def test_the_fifteen_are_imagenet_c_s_names_in_its_order():
    names = reference().get_corruption_names("common")
    assert list(IMAGENET_C) == names and len(names) == 15


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruption_matches_imagenet_c_pixel_for_pixel(name, severity):
    images = photos(224)
    theirs = np.stack([reference_corrupt(image, name, severity, seed=0) for image in images])
    ours = np.asarray(corrupt(jnp.asarray(images), name, severity, jax.random.key(0)))
    assert_pixel_close(ours, theirs)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_motion_blur_along_imagenet_c_s_angle_matches_it(severity):
    images, seeds = photos(224), (11, 12, 13)
    theirs = np.stack([reference_corrupt(image, "motion_blur", severity, seed) for image, seed in zip(images, seeds)])
    angles = []
    for seed in seeds:  # motion_blur's first draw is its angle
        np.random.seed(seed)
        angles.append(np.random.uniform(-45, 45))
    ours = blur.motion_blur_at(jnp.asarray(images / 255.0, jnp.float32), severity, jnp.asarray(angles))
    assert_pixel_close(to_uint8_values(ours), theirs)


def seed_choosing_frost_photo(photo: int) -> int:
    """A seed for which frost's first draw, numpy.random.randint(5), is `photo`."""
    for seed in range(1000):
        np.random.seed(seed)
        if np.random.randint(5) == photo:
            return seed
    raise AssertionError(photo)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_frost_with_imagenet_c_s_photograph_and_crop_matches_it(severity):
    images = photos(224)
    layers = weather.frost_layers(224, 224)
    chosen = [(severity - 1 + offset) % 5 for offset in range(3)]  # over the severities, each photograph thrice
    theirs, draws = [], []
    for image, photo in zip(images, chosen):
        seed = seed_choosing_frost_photo(photo)
        theirs.append(reference_corrupt(image, "frost", severity, seed))
        np.random.seed(seed)
        which = np.random.randint(5)
        rows, cols = layers[which].shape[:2]  # its resized photograph must have imagecorruptions' size
        draws.append((which, np.random.randint(0, rows - 224), np.random.randint(0, cols - 224)))
    which, tops, lefts = (jnp.asarray(values) for values in zip(*draws))
    ours = weather.frost_at(jnp.asarray(images / 255.0, jnp.float32), severity, which, tops, lefts)
    assert_pixel_close(to_uint8_values(ours), np.stack(theirs))


@pytest.mark.parametrize("severity", SEVERITIES)
def test_fog_from_imagenet_c_s_plasma_numbers_matches_it(severity):
    images, seeds = photos(224), (21, 22, 23)
    theirs = np.stack([reference_corrupt(image, "fog", severity, seed) for image, seed in zip(images, seeds)])
    uniform = []
    for seed in seeds:  # fog's only draws are the plasma fractal's, all from numpy.random.uniform
        np.random.seed(seed)
        uniform.append(np.random.random_sample(weather.plasma_draws(256)))
    plasma = weather.plasma_from_uniform(jnp.asarray(np.stack(uniform), jnp.float32), 256, weather.FOG[severity - 1][1])
    ours = weather.fog_with(jnp.asarray(images / 255.0, jnp.float32), severity, plasma[:, :224, :224])
    assert_pixel_close(to_uint8_values(ours), theirs)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_snow_from_imagenet_c_s_noise_and_angle_matches_it(severity):
    images, seeds = photos(224), (41, 42, 43)
    theirs = np.stack([reference_corrupt(image, "snow", severity, seed) for image, seed in zip(images, seeds)])
    normal, angles = [], []
    for seed in seeds:  # snow draws its noise, then its motion-blur angle
        np.random.seed(seed)
        normal.append(np.random.normal(size=(224, 224)))
        angles.append(np.random.uniform(-135, -45))
    ours = weather.snow_with(jnp.asarray(images / 255.0, jnp.float32), severity,
                             jnp.asarray(np.stack(normal), jnp.float32), jnp.asarray(angles))
    assert_pixel_close(to_uint8_values(ours), theirs)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_elastic_transform_from_imagenet_c_s_displacement_numbers_matches_it(severity):
    images, seeds = photos(224), (51, 52, 53)
    theirs = np.stack([reference_corrupt(image, "elastic_transform", severity, seed)
                       for image, seed in zip(images, seeds)])
    uniform = []
    for seed in seeds:  # elastic_transform draws the column displacements, then the row displacements
        np.random.seed(seed)
        uniform.append(np.stack([np.random.random_sample((224, 224)), np.random.random_sample((224, 224))], -1))
    ours = digital.elastic_transform_with(jnp.asarray(images / 255.0, jnp.float32), severity,
                                          jnp.asarray(np.stack(uniform), jnp.float32))
    assert_pixel_close(to_uint8_values(ours), theirs)


def change_statistics(corrupted: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """(mean of the change, its standard deviation, mean |horizontal neighbour difference| of the result)."""
    change = corrupted - clean
    return np.array([change.mean(), change.std(), np.abs(np.diff(corrupted, axis=2)).mean()])


# name: (draws per photograph, photographs): glass blur's reference is a Python loop over pixels (2 s a photo,
# 20 s for the test: marked slow)
RANDOM = {"gaussian_noise": (2, 3), "shot_noise": (2, 3), "impulse_noise": (2, 3), "glass_blur": (1, 1)}


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if name == "glass_blur" else [])
                                  for name in sorted(RANDOM)])
def test_random_corruption_changes_images_as_imagenet_c_does_at_each_severity(name):
    draws, count = RANDOM[name]
    clean = np.concatenate([photos(224)[:count]] * draws).astype(np.float32)
    ours, theirs = [], []
    for severity in SEVERITIES:
        reference_images = [reference_corrupt(image.astype(np.uint8), name, severity, seed=100 * severity + index)
                            for index, image in enumerate(clean)]
        theirs.append(change_statistics(np.stack(reference_images), clean))
        corrupted = np.asarray(corrupt(jnp.asarray(clean), name, severity, jax.random.key(severity)))
        ours.append(change_statistics(corrupted, clean))
    ours, theirs = np.array(ours), np.array(theirs)
    # tolerances: the mean within 1.5 gray levels + 2 %, the spread within 4 %, the texture within 5 %
    tolerance = np.stack([1.5 + 0.02 * np.abs(theirs[:, 0]), 0.04 * theirs[:, 1], 0.05 * theirs[:, 2]], axis=1)
    assert np.all(np.abs(ours - theirs) <= tolerance), (ours, theirs)
    distances = (((ours[:, None, :] - theirs[None, :, :]) / tolerance[None, :, :]) ** 2).sum(-1)
    assert list(distances.argmin(axis=1)) == [s - 1 for s in SEVERITIES], (distances, ours, theirs)


def test_frost_draws_every_photograph_and_crops_inside_it():
    which, tops, lefts = (np.asarray(v) for v in weather.frost_draws(jax.random.key(0), 400, 224, 224))
    shapes = np.array([layer.shape[:2] for layer in weather.frost_layers(224, 224)])
    assert set(which.tolist()) == {0, 1, 2, 3, 4}
    assert np.all(tops >= 0) and np.all(tops < shapes[which, 0] - 224)
    assert np.all(lefts >= 0) and np.all(lefts < shapes[which, 1] - 224)


@pytest.mark.parametrize("height,width,reach", [(30, 30, 4), (40, 33, 2), (16, 16, 1)])
def test_glass_blur_waves_keep_the_loop_order_of_every_two_steps_that_share_a_pixel(height, width, reach):
    positions, real = blur.copy_waves(height, width, reach)
    wave_of = {}
    for wave, slot in zip(*np.nonzero(real)):
        wave_of[positions[wave, slot]] = wave
    loop = [h * width + w for h in range(height - reach, reach, -1) for w in range(width - reach, reach, -1)]
    assert sorted(wave_of) == sorted(loop)  # every step of ImageNet-C's loop, once
    for earlier, first in enumerate(loop):  # steps within 2 * reach rows and columns may share a pixel
        for second in loop[earlier + 1:earlier + 1 + (2 * reach) * width]:
            if abs(first // width - second // width) < 2 * reach and abs(first % width - second % width) < 2 * reach:
                assert wave_of[first] < wave_of[second], (first, second)
    assert not np.any(positions[~real])  # padding steps copy pixel 0, which no real step touches
    assert min(loop) // width - reach > 0 and min(p % width for p in loop) - reach > 0
