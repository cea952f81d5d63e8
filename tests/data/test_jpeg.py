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


@pytest.mark.parametrize("photo", PHOTOS)
def test_reduced_resolution_crops_are_close_to_full_decode_crops(photo):
    data = _photo_jpeg(photo)
    full = _crops("random_resized_crop(max_upscale=0)", data, 112, 24)
    reduced = _crops("random_resized_crop(max_upscale=1.0)", data, 112, 24)
    assert full.shape == reduced.shape == (24, 112, 112, 3) and reduced.dtype == full.dtype == np.uint8
    differs = [k for k in range(24) if not np.array_equal(full[k], reduced[k])]
    assert len(differs) >= 8, "most crops of a ~500 px photo hold >= 4x the pixels of a 112 px output"
    error = np.abs(full.astype(float) - reduced.astype(float)).mean(axis=(1, 2, 3))
    # Same window, same content: the reduced decode is a low-passed version of the same pixels. A one-pixel shift of
    # the window alone gives a mean difference of ~4-10 on these photos.
    assert error.max() < 6.0, error
    assert abs(full.mean() - reduced.mean()) < 1.0


def test_reduced_resolution_crop_is_at_least_as_close_to_an_antialiased_resize_as_the_full_decode():
    data = _photo_jpeg("astronaut")  # 512x512
    size, window = 112, tf.constant([40, 60, 400, 420], tf.int32)
    decoded = tf.io.decode_jpeg(data, channels=3)
    reference = tf.image.resize(decoded[40:440, 60:480], (size, size), antialias=True).numpy()
    context = pp.PreprocessContext(image_size=size, crop_pct=0.875, channels=3)
    outputs = {}
    for max_upscale in (0.0, 1.0):
        ratio = jpeg.decode_ratio(window[2], window[3], size, max_upscale) if max_upscale else None
        cropped = pp._crop(tf.constant(data), window, 3, ratio)
        outputs[max_upscale] = pp._resize(cropped, (size, size), context).numpy().astype(float)
    full_error, reduced_error = (np.abs(outputs[key] - reference).mean() for key in (0.0, 1.0))
    assert reduced_error < full_error, (reduced_error, full_error)  # DCT scaling low-passes; plain bilinear aliases


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

