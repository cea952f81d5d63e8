"""Preprocessing ops chained by name ("random_resized_crop|flip_lr"), run inside tf.data on the host; arguments are
Python literals, positional or by keyword ("random_resized_crop(0.25, max_upscale=0)"), checked against the op.

Each op maps an image to an image and draws its randomness from a stateless seed, so an example's
augmentation depends only on (run seed, example position): resumed runs see exactly the same pixels.
An image enters the chain as encoded bytes; ops that can fuse decoding with cropping (JPEG) take the bytes,
every other op decodes first. Outputs are uint8 HxWxC; normalization happens on the accelerator.
The op registry (ops.py) finds the ops of every module of imagenet_jax.data (augment.py's too) itself.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable

import tensorflow as tf

from imagenet_jax.data import jpeg
from imagenet_jax.data.ops import (  # noqa: F401  (PreprocessContext, op_names: re-exported, as before)
    OPS,
    Op,
    PreprocessContext,
    check_box_sampling,
    check_number,
    check_order,
    decode,
    op_names,
    register_op,
)
from imagenet_jax.errors import ConfigError

# random_resized_crop's default: a JPEG crop decodes at 1/2-1/8 scale when each side then still has at least
# image_size / MAX_UPSCALE pixels. 1.0 never upscales more than the full decode would: same speed on ImageNet-like
# JPEGs (Huffman decoding dominates), closer to an antialiased resize, and no 224 px crop of an ImageNet-sized
# image changes (BENCHMARKS.md, "Input pipeline"); 0 turns it off.
MAX_UPSCALE = 1.0
INTERPOLATIONS = ("bilinear", "bicubic", "area", "nearest", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


def parse_chain(chain: str, key: str = "preprocess") -> list[tuple[str, tuple, dict]]:
    """Parses "op|op(1, 2)|op(name=3)" into [(name, args, kwargs)], checked against each op's signature and by the
    op's own argument check; a ConfigError names `key` and the op on any mistake."""
    ops = []
    for part in filter(None, (p.strip() for p in chain.split("|"))):
        name, _, rest = part.partition("(")
        name = name.strip()
        if name not in OPS:
            raise OPS.unknown(name, subject=f"config.{key}: op {name!r}")
        args: tuple = ()
        kwargs: dict = {}
        if rest:
            if not rest.endswith(")"):
                raise ConfigError(f"config.{key}: op {part!r} is missing its closing parenthesis.")
            try:
                call = ast.parse(f"op({rest[:-1]})", mode="eval").body
                if (not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name)
                        or any(keyword.arg is None for keyword in call.keywords)):
                    raise ValueError("expected op(value, ..., name=value, ...)")
                args = tuple(ast.literal_eval(arg) for arg in call.args)
                kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
            except (ValueError, SyntaxError) as error:
                raise ConfigError(
                    f"config.{key}: arguments of op {part!r} are not Python literals ({error}).") from None
        op = OPS.get(name)
        try:  # op(image, seed, context, *args, **kwargs)
            bound = inspect.signature(op).bind(None, None, None, *args, **kwargs)
        except TypeError as error:
            raise ConfigError(f"config.{key}: op {part!r}: {error}; signature: {name}"
                              f"{_op_arguments(op)}.") from None
        bound.apply_defaults()
        options = dict(list(bound.arguments.items())[3:])  # after image, seed, context
        OPS.check(name, options, where=f"config.{key}: op {part!r}")
        ops.append((name, args, kwargs))
    return ops


def _op_arguments(op: Op) -> str:
    parameters = list(inspect.signature(op).parameters.values())[3:]  # after image, seed, context
    return f"({', '.join(str(parameter) for parameter in parameters)})"


def build(chain: str, context: PreprocessContext,
          key: str = "preprocess") -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Returns fn(encoded_or_decoded_image, seed[2]) -> uint8 image of size context.image_size."""
    ops = [(OPS.get(name), args, kwargs) for name, args, kwargs in parse_chain(chain, key)]

    def apply(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        seeds = tf.random.experimental.stateless_split(seed, num=max(len(ops), 1))
        for index, (op, args, kwargs) in enumerate(ops):
            image = op(image, seeds[index], context, *args, **kwargs)
        image = decode(image, context.channels)
        # Every chain ends at the configured size, so batches always stack.
        image = _resize_if_needed(image, context)
        return tf.ensure_shape(image, (context.image_size, context.image_size, context.channels))

    return apply


def _is_jpeg(image: tf.Tensor) -> tf.Tensor:
    return tf.equal(tf.strings.substr(image, 0, 3), b"\xff\xd8\xff")


def _image_shape(image: tf.Tensor) -> tf.Tensor:
    if image.dtype == tf.string:
        return tf.cond(
            _is_jpeg(image),
            lambda: tf.image.extract_jpeg_shape(image),
            lambda: tf.shape(tf.io.decode_image(image, expand_animations=False)),
        )
    return tf.shape(image)


def _crop(image: tf.Tensor, window: tf.Tensor, channels: int, ratio: tf.Tensor | None = None,
          shape: tf.Tensor | None = None) -> tf.Tensor:
    """Crops window [y, x, h, w]; decodes only the window when the bytes are a JPEG, at 1/ratio scale if given
    (`shape`: the image's shape, when known)."""
    if image.dtype == tf.string:
        return tf.cond(
            _is_jpeg(image),
            lambda: tf.image.decode_and_crop_jpeg(image, window, channels=channels) if ratio is None
            else jpeg.decode_and_crop(image, window, channels, ratio, shape),
            lambda: _crop(decode(image, channels), window, channels),
        )
    return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]


def _resize(image: tf.Tensor, size: tuple, context: PreprocessContext) -> tf.Tensor:
    """Resizes to `size` with the context's interpolation and antialiasing; uint8 in and out."""
    resized = tf.image.resize(image, size, method=context.interpolation, antialias=context.antialias)
    resized = tf.cast(resized, tf.float32)  # "nearest" keeps uint8; every other method returns float32
    if context.interpolation in ("bilinear", "area", "nearest"):  # convex combinations: no overshoot to clip
        return tf.cast(resized + 0.5, tf.uint8)
    return tf.cast(tf.clip_by_value(resized + 0.5, 0, 255), tf.uint8)


def _resize_if_needed(image: tf.Tensor, context: PreprocessContext) -> tf.Tensor:
    shape = tf.shape(image)
    size = context.image_size
    return tf.cond(
        tf.logical_and(tf.equal(shape[0], size), tf.equal(shape[1], size)),
        lambda: image,
        lambda: _resize(image, (size, size), context),
    )


@register_op("decode")
def decode_op(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext) -> tf.Tensor:
    """Decodes the image (no resizing)."""
    return decode(image, context.channels)


def inception_crop_window(
    shape: tf.Tensor,
    seed: tf.Tensor,
    area_min: float = 0.08,
    area_max: float = 1.0,
    ratio_min: float = 3 / 4,
    ratio_max: float = 4 / 3,
    attempts: int = 10,
) -> tf.Tensor:
    """[y, x, h, w] of an Inception crop of an image of `shape`: random area share and log-uniform aspect ratio,
    first of `attempts` draws that fits, else the largest center crop with the ratio clamped (torchvision)."""
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    area = height * width
    draws = tf.random.stateless_uniform((attempts, 2), seed=seed)
    target_area = area * (area_min + (area_max - area_min) * draws[:, 0])
    log_ratio = math.log(ratio_min) + (math.log(ratio_max) - math.log(ratio_min)) * draws[:, 1]
    ratio = tf.exp(log_ratio)
    crop_w = tf.round(tf.sqrt(target_area * ratio))
    crop_h = tf.round(tf.sqrt(target_area / ratio))
    fits = tf.logical_and(crop_w <= width, crop_h <= height)
    first = tf.argmax(tf.cast(fits, tf.int32))
    any_fits = tf.reduce_any(fits)
    in_ratio = width / height
    fallback_w = tf.where(in_ratio > ratio_max, tf.round(height * ratio_max), width)
    fallback_h = tf.where(in_ratio < ratio_min, tf.round(width / ratio_min), height)
    crop_w = tf.where(any_fits, crop_w[first], fallback_w)
    crop_h = tf.where(any_fits, crop_h[first], fallback_h)
    offset_draws = tf.random.stateless_uniform((2,), seed=tf.random.experimental.stateless_fold_in(seed, 1))
    offset_y = tf.where(any_fits, tf.floor(offset_draws[0] * (height - crop_h + 1)), tf.floor((height - crop_h) / 2))
    offset_x = tf.where(any_fits, tf.floor(offset_draws[1] * (width - crop_w + 1)), tf.floor((width - crop_w) / 2))
    return tf.cast(tf.stack([offset_y, offset_x, crop_h, crop_w]), tf.int32)


def _check_random_resized_crop(options: dict, where: str = "") -> None:
    check_box_sampling(options, where)
    check_number(options, where, "max_upscale", 0)


@register_op("random_resized_crop", check=_check_random_resized_crop)
def random_resized_crop(
    image: tf.Tensor,
    seed: tf.Tensor,
    context: PreprocessContext,
    area_min: float = 0.08,
    area_max: float = 1.0,
    ratio_min: float = 3 / 4,
    ratio_max: float = 4 / 3,
    attempts: int = 10,
    max_upscale: float = MAX_UPSCALE,
) -> tf.Tensor:
    """Inception-style crop (random area and aspect ratio, center-crop fallback), resized to image_size.

    A JPEG decodes only the window, at 1/2, 1/4 or 1/8 scale when that still leaves each side at least
    image_size / max_upscale pixels (0: always full scale); see imagenet_jax/data/jpeg.py.
    """
    shape = _image_shape(image)
    window = inception_crop_window(shape, seed, area_min, area_max, ratio_min, ratio_max, attempts)
    ratio = None
    if image.dtype == tf.string and max_upscale > 0:
        ratio = jpeg.decode_ratio(window[2], window[3], context.image_size, max_upscale)
    cropped = _crop(image, window, context.channels, ratio, shape)
    return _resize(cropped, (context.image_size, context.image_size), context)


def _check_scale_jitter_crop(options: dict, where: str = "") -> None:
    # Against image_size too when the chain is built (the context is not known when it is parsed).
    check_number(options, where, "min_side", 0, integer=True, above=True)
    check_number(options, where, "max_side", 0, integer=True, above=True)
    check_order(options, where, "min_side", "max_side")


@register_op("scale_jitter_crop", check=_check_scale_jitter_crop)
def scale_jitter_crop(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, min_side: int = 256,
                      max_side: int = 480) -> tf.Tensor:
    """VGG/ResNet scale augmentation: short side resized to S ~ U[min_side, max_side] (S fixed when equal), then a
    random image_size square crop; cropped first in source pixels, so a JPEG decodes only the window."""
    if not 0 < min_side <= max_side or min_side < context.image_size:
        raise ConfigError(f"scale_jitter_crop({min_side}, {max_side}) needs image_size ({context.image_size}) <= "
                          "min_side <= max_side.")
    shape = _image_shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    draws = tf.random.stateless_uniform((3,), seed=seed)
    side = min_side + (max_side - min_side) * draws[0]  # the training scale S of this example
    crop = tf.minimum(tf.round(context.image_size * tf.minimum(height, width) / side), tf.minimum(height, width))
    offset_y = tf.floor(draws[1] * (height - crop + 1))
    offset_x = tf.floor(draws[2] * (width - crop + 1))
    window = tf.cast(tf.stack([offset_y, offset_x, crop, crop]), tf.int32)
    cropped = _crop(image, window, context.channels)
    return _resize(cropped, (context.image_size, context.image_size), context)


@register_op("resize_center_crop")
def resize_center_crop(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext) -> tf.Tensor:
    """Eval crop: the center image_size/crop_pct square of the image, resized to image_size (decode-fused)."""
    shape = _image_shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    # Same pixels as "resize short side to size/crop_pct, then center crop size", with one resize.
    side = tf.minimum(height, width) * context.crop_pct
    crop_h = tf.minimum(tf.round(side), height)
    crop_w = tf.minimum(tf.round(side), width)
    window = tf.stack([tf.floor((height - crop_h) / 2), tf.floor((width - crop_w) / 2), crop_h, crop_w])
    window = tf.cast(window, tf.int32)
    cropped = _crop(image, window, context.channels)
    return _resize(cropped, (context.image_size, context.image_size), context)


def _check_resize(options: dict, where: str = "") -> None:
    check_number(options, where, "size", 0, integer=True)


@register_op("resize", check=_check_resize)
def resize(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, size: int = 0) -> tf.Tensor:
    """Resizes the whole image to size x size (default image_size), ignoring aspect ratio."""
    size = size or context.image_size
    return _resize(decode(image, context.channels), (size, size), context)


@register_op("flip_lr")
def flip_lr(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext) -> tf.Tensor:
    """Mirrors the image left-right with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(decode(image, context.channels), seed=seed)


def _check_random_crop_pad(options: dict, where: str = "") -> None:
    check_number(options, where, "padding", 0, integer=True)


@register_op("random_crop_pad", check=_check_random_crop_pad)
def random_crop_pad(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, padding: int = 4) -> tf.Tensor:
    """Pads each side by `padding` pixels (zeros) and takes a random crop of the original size (CIFAR-style)."""
    image = decode(image, context.channels)
    shape = tf.shape(image)
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.stateless_random_crop(padded, shape, seed=seed)

