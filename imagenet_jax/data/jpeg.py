"""Reduced-resolution JPEG decoding: decode only a crop window, at 1/2, 1/4 or 1/8 scale when the window holds
more pixels than the output needs.

libjpeg scales in the DCT domain (an NxN inverse DCT of each 8x8 block's low frequencies), so a 1/2-scale decode
does a quarter of the inverse-DCT, chroma-upsampling and color-conversion work and hands a quarter of the pixels
to the resize; entropy decoding (Huffman) costs the same, and on ImageNet-like JPEGs (~110 KB) it is ~80% of the
decode, so this is speed-neutral there (BENCHMARKS.md, "Input pipeline"): what it changes is fidelity (the DCT
scaling low-passes before the resize). TensorFlow's `decode_and_crop_jpeg` takes `ratio` too,
with the crop window in the coordinates of the scaled image: `scaled_window` maps a full-resolution window there,
keeping its area and aspect (each edge moves by at most half a scaled pixel).
"""

from __future__ import annotations

import tensorflow as tf

RATIOS = (1, 2, 4, 8)  # the scale denominators libjpeg accelerates (and TensorFlow accepts)


def decode_ratio(crop_height: tf.Tensor, crop_width: tf.Tensor, size: int, max_upscale: float) -> tf.Tensor:
    """Largest r in RATIOS whose 1/r-scale crop needs at most `max_upscale`x upscaling per side to reach `size`
    (1 when none does; max_upscale=0 always gives 1)."""
    short_side = tf.cast(tf.minimum(crop_height, crop_width), tf.float32)
    ratio = tf.constant(1, tf.int32)
    for candidate in RATIOS[1:]:  # increasing, so the last one that qualifies wins
        ratio = tf.where(short_side / candidate * max_upscale >= size, candidate, ratio)
    return ratio


def scaled_window(window: tf.Tensor, shape: tf.Tensor, ratio: int) -> tf.Tensor:
    """[y, x, h, w] of full-resolution `window` in the 1/ratio-scale decode of an image of `shape` (edges rounded)."""
    if ratio == 1:
        return window
    # libjpeg's scaled size is ceil(size / ratio).
    limits = (shape[:2] + ratio - 1) // ratio
    starts, ends = window[:2], window[:2] + window[2:]
    starts, ends = (starts + ratio // 2) // ratio, tf.minimum((ends + ratio // 2) // ratio, limits)
    lengths = tf.maximum(ends - starts, 1)
    starts = tf.minimum(starts, limits - lengths)
    return tf.concat([starts, lengths], axis=0)


def _branch_index(ratio: tf.Tensor) -> tf.Tensor:
    return tf.gather(tf.constant([0, 0, 1, 0, 2, 0, 0, 0, 3], tf.int32), ratio)  # position of ratio in RATIOS


def decode_and_crop(image: tf.Tensor, window: tf.Tensor, channels: int, ratio: tf.Tensor,
                    shape: tf.Tensor | None = None) -> tf.Tensor:
    """The crop `window` (full-resolution [y, x, h, w]) of JPEG bytes `image`, decoded at 1/ratio scale; `shape`:
    the image's full-resolution shape when the caller has it."""
    shape = tf.image.extract_jpeg_shape(image) if shape is None else shape

    def scaled(candidate: int):
        return lambda: tf.image.decode_and_crop_jpeg(
            image, scaled_window(window, shape, candidate), channels=channels, ratio=candidate)

    # Full scale, the common case at 224 px, takes a plain two-way branch; the multi-way switch only the rest.
    decoded = tf.cond(tf.equal(ratio, 1), scaled(1),
                      lambda: tf.switch_case(_branch_index(ratio) - 1, [scaled(r) for r in RATIOS[1:]]))
    return tf.ensure_shape(decoded, (None, None, channels))


def decode_reduced(image: tf.Tensor, channels: int, min_side: int) -> tf.Tensor:
    """The whole JPEG decoded at the smallest 1/r scale whose short side stays >= min_side (for caches of
    low-resolution images); other formats decode at full size."""

    def jpeg() -> tf.Tensor:
        shape = tf.image.extract_jpeg_shape(image)
        ratio = decode_ratio(shape[0], shape[1], min_side, 1.0)
        return tf.switch_case(_branch_index(ratio), [
            (lambda candidate=candidate: tf.io.decode_jpeg(image, channels=channels, ratio=candidate))
            for candidate in RATIOS])

    decoded = tf.cond(tf.equal(tf.strings.substr(image, 0, 3), b"\xff\xd8\xff"), jpeg,
                      lambda: tf.io.decode_image(image, channels=channels, expand_animations=False))
    return tf.ensure_shape(decoded, (None, None, channels))
