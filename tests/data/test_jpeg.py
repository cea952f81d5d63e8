"""Reduced-resolution JPEG decoding keeps the crop window's area and aspect, and gives images close to the full
decode (real photographs), with the same shapes and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from imagenet_jax.data import jpeg
from imagenet_jax.data import preprocessing as pp
from imagenet_jax.data.fake_imagenet import encode

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def _photo_jpeg(name: str, quality: int = 95) -> bytes:
    return encode(np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]), "JPEG", quality)


@pytest.mark.parametrize("ratio", jpeg.RATIOS)
def test_scaled_crop_decode_is_the_window_of_the_scaled_full_decode(ratio):
    data = _photo_jpeg("coffee")  # 400x600
    full_scale = tf.io.decode_jpeg(data, channels=3, ratio=ratio).numpy()
    for window in ([37, 51, 301, 402], [0, 0, 400, 600], [99, 200, 300, 400], [5, 3, 17, 9]):
        window = tf.constant(window, tf.int32)
        crop = jpeg.decode_and_crop(tf.constant(data), window, 3, tf.constant(ratio)).numpy()
        y, x, h, w = jpeg.scaled_window(window, tf.constant([400, 600, 3]), ratio).numpy()
        np.testing.assert_array_equal(crop, full_scale[y : y + h, x : x + w])
        # The same part of the photo: every edge within half a scaled pixel (ratio / 2 source pixels) of the window.
        source_edges = np.array([y, x, y + h, x + w]) * ratio
        wanted = np.array([window[0], window[1], window[0] + window[2], window[1] + window[3]])
        assert np.abs(source_edges - wanted).max() <= ratio / 2


def test_decode_ratio_is_the_largest_scale_within_the_upscale_limit():
    ratio = lambda h, w, size, limit: int(jpeg.decode_ratio(tf.constant(h), tf.constant(w), size, limit))  # noqa: E731
    assert ratio(375, 500, 224, 1.0) == 1  # 375 / 2 < 224: halving would need upscaling
    assert ratio(375, 500, 224, 1.25) == 2  # 187.5 px upscaled 1.19x: allowed
    assert ratio(375, 500, 128, 1.0) == 2
    assert ratio(375, 500, 64, 1.0) == 4
    assert ratio(375, 500, 32, 1.0) == 8
    assert ratio(375, 500, 16, 1.0) == 8  # 1/8 is libjpeg's smallest scale
    assert ratio(375, 500, 64, 0.0) == 1  # 0 turns it off


def _crops(chain: str, data: bytes, size: int, seeds: int) -> np.ndarray:
    op = tf.function(pp.build(chain, pp.PreprocessContext(image_size=size, crop_pct=0.875, channels=3)))
    return np.stack([op(tf.constant(data), tf.constant([3, k], tf.int64)).numpy() for k in range(seeds)])


def _antialiased_crops(data: bytes, size: int, seeds: int) -> np.ndarray:
    """The same windows as _crops' random_resized_crop, cut from the full decode and resized with antialiasing."""
    decoded = tf.io.decode_jpeg(data, channels=3)
    out = []
    for k in range(seeds):
        op_seed = tf.random.experimental.stateless_split(tf.constant([3, k], tf.int64), 1)[0]  # as pp.build splits
        y, x, h, w = pp.inception_crop_window(tf.shape(decoded), op_seed).numpy()
        out.append(tf.image.resize(decoded[y : y + h, x : x + w], (size, size), antialias=True).numpy())
    return np.stack(out)


def test_reduced_resolution_crops_are_close_to_full_decode_crops_and_no_further_from_an_antialiased_resize():
    size, seeds = 112, 24
    errors = []
    for photo in PHOTOS:
        data = _photo_jpeg(photo)
        full = _crops("random_resized_crop(max_upscale=0)", data, size, seeds)
        reduced = _crops("random_resized_crop(max_upscale=1.0)", data, size, seeds)
        assert full.shape == reduced.shape == (seeds, size, size, 3) and reduced.dtype == full.dtype == np.uint8
        differs = [k for k in range(seeds) if not np.array_equal(full[k], reduced[k])]
        assert len(differs) >= seeds // 3, "many crops of a 300-640 px photo hold >= 4x the pixels of a 112 px output"
        difference = np.abs(full.astype(float) - reduced.astype(float)).mean(axis=(1, 2, 3))
        # Measured (2026-12-01): 1.4-3.7 of 255 on average per photo, 8.3 at most for one crop.
        assert difference.mean() < 5.0 and difference.max() < 10.0, (photo, difference)
        assert abs(full.mean() - reduced.mean()) < 1.0, photo  # no brightness or color shift
        # Against the ideal (antialiased) resize of the same window of the full decode: DCT scaling low-passes
        # before the bilinear resize, where plain bilinear downscaling of the full decode aliases.
        reference = _antialiased_crops(data, size, seeds)
        errors.append([np.abs(out.astype(float) - reference).mean() for out in (full, reduced)])
    full_error, reduced_error = np.array(errors).T
    assert (reduced_error <= 1.15 * full_error).all(), errors  # measured: within -13%..+11% per photo
    assert reduced_error.mean() <= full_error.mean(), errors  # and closer over the four photos


def test_non_jpeg_images_take_the_plain_path():
    png = encode(np.ascontiguousarray(skimage.data.chelsea()), "PNG")
    np.testing.assert_array_equal(_crops("random_resized_crop(max_upscale=0)", png, 64, 4),
                                  _crops("random_resized_crop(max_upscale=1.0)", png, 64, 4))


def test_decode_reduced_keeps_the_short_side_at_least_min_side():
    data = tf.constant(_photo_jpeg("coffee"))  # 400x600
    assert [tuple(jpeg.decode_reduced(data, 3, side).shape) for side in (400, 199, 100, 50, 10)] == [
        (400, 600, 3), (200, 300, 3), (100, 150, 3), (50, 75, 3), (50, 75, 3)]
    full = tf.io.decode_jpeg(data, channels=3)
    half = jpeg.decode_reduced(data, 3, 200).numpy().astype(float)
    area = tf.image.resize(full, (200, 300), method="area").numpy()
    assert np.abs(half - area).mean() < 2.0



def test_the_default_changes_no_pixel_of_224_px_crops_of_imagenet_sized_jpegs():
    # A 500x375 image has no crop with both sides >= 448 px, so at 224 px every crop decodes at full scale.
    photo = tf.image.resize(skimage.data.coffee(), (375, 500)).numpy().astype(np.uint8)
    data = encode(photo, "JPEG", 95)
    np.testing.assert_array_equal(_crops("random_resized_crop", data, 224, 8),
                                  _crops("random_resized_crop(max_upscale=0)", data, 224, 8))
