"""Augmentation ops on decoded uint8 HxWxC images: color jitter, RandAugment, AutoAugment, random erasing and the
Keras ImageDataGenerator affine (rotation/shift/zoom/shear).

Every op is registered in the preprocessing op registry (ops.py; usable in a chain as "randaugment(2, 9)"), checks
its own arguments' ranges when the chain is parsed, and draws all its randomness from the stateless seed it is
given, so augmentation stays a pure function of (run seed, position).

The published policies, tested entry by entry against timm 1.0's tables and its PIL ops (timm is a test dependency;
tests/data/test_augment_policies_vs_timm.py):
- AutoAugment is the paper's ImageNet policy (Cubuk et al. 2019, "AutoAugment", appendix) with the paper's level
  ranges: timm's "original" policy, not the TF TPU EfficientNet "v0" policy (a different set of sub-policies).
- RandAugment is the paper's (Cubuk et al. 2020): its 14 ops, each of the `num_ops` drawn ops applied, at a level m in
  [0, 10] that scales each op's maximum linearly (timm's M/10), every op stronger as m grows: timm's "increasing"
  ops (`rand-mM-inc1`). The differences from timm, each named in the tests: Identity where timm has Invert and
  SolarizeAdd (the paper's list); Posterize keeps 8 down to 4 bits, not 4 down to 0; timm applies each drawn op with
  probability 0.5 and may add noise to M (its `mstd`), the paper and we do not.
In both, the signed ops (rotate, shear, translate and RandAugment's enhancement factors) take either sign with
probability 1/2, as in timm and TF; the geometric ops fill uncovered pixels with gray 128 and interpolate bilinearly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from imagenet_jax.data.ops import (
    PreprocessContext,
    check_box_sampling,
    check_choice,
    check_number,
    decode,
    register_op,
)

MAX_LEVEL = 10.0
FILL_GRAY = 128  # geometric ops of RandAugment/AutoAugment fill uncovered pixels with mid-gray.


# ----------------------------------------------------------------------------------------------- pixel ops


def _uniform(seed: tf.Tensor, shape=(), minval: float = 0.0, maxval: float = 1.0) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval)


def _seeds(seed: tf.Tensor, count: int) -> tf.Tensor:
    return tf.random.experimental.stateless_split(seed, num=count)


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def blend(degenerate: tf.Tensor, image: tf.Tensor, factor) -> tf.Tensor:
    """degenerate + factor * (image - degenerate), clipped to uint8 (PIL ImageEnhance semantics)."""
    degenerate = tf.cast(degenerate, tf.float32)
    return _to_uint8(degenerate + tf.cast(factor, tf.float32) * (tf.cast(image, tf.float32) - degenerate))


def grayscale(image: tf.Tensor) -> tf.Tensor:
    """Luma (ITU-R 601, as PIL's "L" mode) as float32 HxWx1; a 1-channel image is returned as float."""
    image = tf.cast(image, tf.float32)
    if image.shape[-1] == 1:
        return image
    return tf.reduce_sum(image * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)


def brightness(image: tf.Tensor, factor) -> tf.Tensor:
    """Blends with black: factor 0 gives black, 1 the original."""
    return blend(tf.zeros_like(image), image, factor)


def contrast(image: tf.Tensor, factor) -> tf.Tensor:
    """Blends with the image's mean gray level."""
    mean = tf.round(tf.reduce_mean(tf.round(grayscale(image))))
    return blend(tf.fill(tf.shape(image), mean), image, factor)


def saturation(image: tf.Tensor, factor) -> tf.Tensor:
    """Blends with the grayscale image (PIL's ImageEnhance.Color); identity for 1-channel images."""
    return blend(tf.broadcast_to(tf.round(grayscale(image)), tf.shape(image)), image, factor)


def sharpness(image: tf.Tensor, factor) -> tf.Tensor:
    """Blends with a 3x3 smoothed image (PIL's SMOOTH kernel); the one-pixel border keeps its values."""
    channels = image.shape[-1]
    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    smooth = tf.nn.depthwise_conv2d(tf.cast(image, tf.float32)[None], kernel, [1, 1, 1, 1], "VALID")[0]
    smooth = tf.pad(tf.round(smooth), [[1, 1], [1, 1], [0, 0]])
    shape = tf.shape(image)
    rows = tf.range(shape[0])[:, None, None]
    cols = tf.range(shape[1])[None, :, None]
    interior = (rows > 0) & (rows < shape[0] - 1) & (cols > 0) & (cols < shape[1] - 1)
    degenerate = tf.where(interior, smooth, tf.cast(image, tf.float32))
    return blend(degenerate, image, factor)


def solarize(image: tf.Tensor, threshold) -> tf.Tensor:
    """Inverts every pixel value >= threshold."""
    threshold = tf.cast(threshold, tf.int32)
    return tf.where(tf.cast(image, tf.int32) >= threshold, 255 - image, image)


def posterize(image: tf.Tensor, bits) -> tf.Tensor:
    """Keeps the `bits` most significant bits of each value."""
    shift = tf.cast(8 - tf.cast(bits, tf.int32), tf.uint8)
    return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def invert(image: tf.Tensor) -> tf.Tensor:
    """255 - value."""
    return 255 - image


def autocontrast(image: tf.Tensor) -> tf.Tensor:
    """Stretches each channel to the full 0..255 range (channels that are constant stay as they are)."""
    values = tf.cast(image, tf.float64)  # float64 and v * scale - low * scale: PIL's exact lookup table
    low = tf.reduce_min(values, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(values, axis=[0, 1], keepdims=True)
    scale = tf.where(high > low, 255.0 / tf.maximum(high - low, 1.0), 1.0)
    offset = tf.where(high > low, -low * scale, 0.0)
    return tf.cast(tf.clip_by_value(tf.floor(values * scale + offset), 0.0, 255.0), tf.uint8)


def equalize(image: tf.Tensor) -> tf.Tensor:
    """Histogram equalization of each channel, with PIL's ImageOps.equalize lookup table."""
    channels = []
    for index in range(image.shape[-1]):
        channel = tf.cast(image[:, :, index], tf.int32)
        histogram = tf.math.bincount(tf.reshape(channel, [-1]), minlength=256, maxlength=256)
        last = tf.gather(histogram, tf.reduce_max(tf.where(histogram > 0)[:, 0]))
        step = (tf.reduce_sum(histogram) - last) // 255
        lut = (tf.cumsum(histogram) - histogram + step // 2) // tf.maximum(step, 1)
        lut = tf.clip_by_value(lut, 0, 255)
        channels.append(tf.where(step > 0, tf.gather(lut, channel), channel))
    return tf.cast(tf.stack(channels, axis=-1), tf.uint8)


# ------------------------------------------------------------------------------------------- geometric ops


def transform(image: tf.Tensor, matrix: tf.Tensor, fill_mode: str = "CONSTANT", fill_value: float = FILL_GRAY,
              interpolation: str = "BILINEAR") -> tf.Tensor:
    """Resamples `image` at input = matrix @ (x, y, 1) for every output pixel (x: column, y: row); matrix 2x3."""
    flat = tf.concat([tf.reshape(tf.cast(matrix, tf.float32), [6]), tf.zeros([2])], axis=0)[None]
    shape = tf.shape(image)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=flat, output_shape=shape[:2], fill_value=float(fill_value),
        interpolation=interpolation, fill_mode=fill_mode)[0]


def _centered(image: tf.Tensor, linear: tf.Tensor, shift=(0.0, 0.0)) -> tf.Tensor:
    """The 2x3 matrix applying `linear` (2x2, input from output) about the image center, then `shift` (x, y)."""
    shape = tf.cast(tf.shape(image), tf.float32)
    center = tf.stack([(shape[1] - 1) / 2, (shape[0] - 1) / 2])
    offset = center - tf.linalg.matvec(linear, center) + tf.cast(tf.stack(shift), tf.float32)
    return tf.concat([linear, offset[:, None]], axis=1)


def rotate(image: tf.Tensor, degrees, **kwargs) -> tf.Tensor:
    """Rotates the content by `degrees` about the center."""
    angle = tf.cast(degrees, tf.float32) * (math.pi / 180)
    cos, sin = tf.cos(angle), tf.sin(angle)
    return transform(image, _centered(image, tf.stack([[cos, -sin], [sin, cos]])), **kwargs)


def shear_x(image: tf.Tensor, amount, **kwargs) -> tf.Tensor:
    """Output pixel (x, y) reads input (x + amount * y, y), y measured from the top edge (PIL's and TF's shear)."""
    amount = tf.cast(amount, tf.float32)
    # Index coordinates put pixel centers at integers, so the top edge is y = -0.5.
    return transform(image, tf.stack([[1.0, amount, 0.5 * amount], [0.0, 1.0, 0.0]]), **kwargs)


def shear_y(image: tf.Tensor, amount, **kwargs) -> tf.Tensor:
    """Output pixel (x, y) reads input (x, y + amount * x), x measured from the left edge (PIL's and TF's shear)."""
    amount = tf.cast(amount, tf.float32)
    return transform(image, tf.stack([[1.0, 0.0, 0.0], [amount, 1.0, 0.5 * amount]]), **kwargs)


def translate(image: tf.Tensor, dx, dy, **kwargs) -> tf.Tensor:
    """Moves the content by (dx, dy) pixels."""
    return transform(image, _centered(image, tf.eye(2), (-tf.cast(dx, tf.float32), -tf.cast(dy, tf.float32))),
                     **kwargs)


# ------------------------------------------------------------------------ RandAugment / AutoAugment op set

ENHANCE_OPS = {"Color": saturation, "Contrast": contrast, "Brightness": brightness, "Sharpness": sharpness}


def apply_named(name: str, image: tf.Tensor, argument=None) -> tf.Tensor:
    """Applies op `name` with `argument` as timm's PIL op of that name takes it (see the level tables below)."""
    if name == "Identity":
        return image
    if name == "AutoContrast":
        return autocontrast(image)
    if name == "Equalize":
        return equalize(image)
    if name == "Invert":
        return invert(image)
    if name == "Rotate":  # degrees, counter-clockwise
        return rotate(image, argument)
    if name == "Posterize":  # bits kept
        return posterize(image, argument)
    if name == "Solarize":  # values >= threshold are inverted
        return solarize(image, argument)
    if name in ENHANCE_OPS:  # factor: 1 is the identity
        return ENHANCE_OPS[name](image, argument)
    if name == "ShearX":
        return shear_x(image, argument)
    if name == "ShearY":
        return shear_y(image, argument)
    size = tf.cast(tf.shape(image), tf.float32)
    if name == "TranslateX":  # a fraction of the width; positive moves the content left (PIL's affine offset)
        return translate(image, -tf.cast(argument, tf.float32) * size[1], 0.0)
    if name == "TranslateY":  # a fraction of the height; positive moves the content up
        return translate(image, 0.0, -tf.cast(argument, tf.float32) * size[0])
    raise ValueError(f"unknown augmentation op {name!r}")


def _by_sign(sign, positive: float, negative: float):
    # Both values are computed in Python (float64) and only then become float32: the same argument whether the
    # sign is a Python number or a drawn tensor.
    if isinstance(sign, (int, float)):
        return positive if sign > 0 else negative
    return tf.where(sign > 0, positive, negative)


def _signed(maximum: float) -> Callable:
    return lambda level, sign: _by_sign(sign, maximum * level / MAX_LEVEL, -maximum * level / MAX_LEVEL)


# The argument of each op that takes one, at level m in [0, MAX_LEVEL] with sign +1 or -1 (drawn 50/50 per use);
# entry by entry equal to timm's level-to-argument functions (tests/data/test_augment_policies_vs_timm.py).
_GEOMETRY_LEVELS = {
    "Rotate": _signed(30.0),  # degrees
    "ShearX": _signed(0.3),
    "ShearY": _signed(0.3),
    "TranslateX": _signed(0.45),  # fraction of the width
    "TranslateY": _signed(0.45),
}
# RandAugment: every op grows stronger with the magnitude (timm's "increasing" ops, its `rand-m9-inc1`).
RANDAUGMENT_LEVELS = {
    **_GEOMETRY_LEVELS,
    # Bits kept, 8 (identity) down to 4: the AutoAugment paper's range, as torchvision's RandAugment; timm's
    # PosterizeIncreasing keeps 4 bits fewer (TF research's range 4 down to 0, where 0 bits is a black image).
    "Posterize": lambda level, sign: 8 - int(4 * level / MAX_LEVEL),
    "Solarize": lambda level, sign: 256 - int(256 * level / MAX_LEVEL),  # threshold 256 (identity) down to 0
    **dict.fromkeys(ENHANCE_OPS, lambda level, sign: _by_sign(  # factor 1 +- 0.9
        sign, 1.0 + 0.9 * level / MAX_LEVEL, 1.0 - 0.9 * level / MAX_LEVEL)),
}
# AutoAugment: the paper's ranges, in which a higher level is not always stronger (timm's "original" policy).
AUTOAUGMENT_LEVELS = {
    **_GEOMETRY_LEVELS,
    "Posterize": lambda level, sign: 4 + int(4 * level / MAX_LEVEL),  # bits kept, 4 up to 8
    "Solarize": lambda level, sign: int(256 * level / MAX_LEVEL),  # threshold 0 (invert all) up to 256 (identity)
    **dict.fromkeys(ENHANCE_OPS, lambda level, sign: 0.1 + 1.8 * level / MAX_LEVEL),  # factor 0.1 up to 1.9
}


def level_argument(levels: dict, name: str, level: float, sign=1.0):
    """The argument op `name` takes at `level` and `sign` under the table `levels`; None for ops without one."""
    return levels[name](level, sign) if name in levels else None


# The 14 ops of the RandAugment paper (Cubuk et al. 2020, section 3).
RANDAUGMENT_OPS = ("Identity", "AutoContrast", "Equalize", "Rotate", "Solarize", "Color", "Posterize", "Contrast",
                   "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY")

# AutoAugment's ImageNet policy (Cubuk et al. 2019, "AutoAugment", appendix): 25 sub-policies of two
# (op, probability, level) steps; one sub-policy is drawn per image.
AUTOAUGMENT_IMAGENET = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
    (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),
    (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
    (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
    (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
    (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),
    (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
)


def _random_sign(seed: tf.Tensor) -> tf.Tensor:
    return tf.where(_uniform(seed) < 0.5, -1.0, 1.0)


# -------------------------------------------------------------------------------------------- registered ops


def _check_randaugment(options: dict, where: str = "") -> None:
    check_number(options, where, "num_ops", 0, integer=True)
    check_number(options, where, "magnitude", 0, MAX_LEVEL)


@register_op("randaugment", check=_check_randaugment)
def randaugment(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, num_ops: int = 2,
                magnitude: float = 9.0) -> tf.Tensor:
    """RandAugment (Cubuk et al. 2020): `num_ops` ops drawn uniformly from 14, each applied at level `magnitude`."""
    image = decode(image, context.channels)
    for layer_seed in tf.unstack(_seeds(seed, max(int(num_ops), 1))[: int(num_ops)]):
        choice_seed, sign_seed = tf.unstack(_seeds(layer_seed, 2))
        index = tf.cast(tf.floor(_uniform(choice_seed) * len(RANDAUGMENT_OPS)), tf.int32)
        sign = _random_sign(sign_seed)
        branches = [lambda name=name, image=image, sign=sign: apply_named(
            name, image, level_argument(RANDAUGMENT_LEVELS, name, magnitude, sign)) for name in RANDAUGMENT_OPS]
        image = tf.ensure_shape(tf.switch_case(tf.minimum(index, len(RANDAUGMENT_OPS) - 1), branches), image.shape)
    return image


AUTOAUGMENT_POLICIES = ("imagenet",)


def _check_autoaugment(options: dict, where: str = "") -> None:
    check_choice(options, where, "policy", AUTOAUGMENT_POLICIES)


@register_op("autoaugment", check=_check_autoaugment)
def autoaugment(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, policy: str = "imagenet") -> tf.Tensor:
    """AutoAugment with the ImageNet policy: one of 25 sub-policies, each step applied with its probability."""
    if policy not in AUTOAUGMENT_POLICIES:
        raise ValueError(f"autoaugment: unknown policy {policy!r} (only 'imagenet')")
    image = decode(image, context.channels)
    choice_seed, step_seed = tf.unstack(_seeds(seed, 2))
    index = tf.cast(tf.floor(_uniform(choice_seed) * len(AUTOAUGMENT_IMAGENET)), tf.int32)
    draws = _uniform(step_seed, (2, 2))  # [step, (apply?, sign)]

    def sub_policy(steps, image=image):
        for step, (name, probability, level) in enumerate(steps):
            sign = tf.where(draws[step, 1] < 0.5, -1.0, 1.0)
            def apply(name=name, level=level, image=image, sign=sign):
                return apply_named(name, image, level_argument(AUTOAUGMENT_LEVELS, name, level, sign))

            image = tf.cond(draws[step, 0] < probability, apply, lambda image=image: image)
        return image

    branches = [lambda steps=steps: sub_policy(steps) for steps in AUTOAUGMENT_IMAGENET]
    return tf.ensure_shape(tf.switch_case(tf.minimum(index, len(branches) - 1), branches), image.shape)


def _check_color_jitter(options: dict, where: str = "") -> None:
    check_number(options, where, "strength", 0, 1)


@register_op("color_jitter", check=_check_color_jitter)
def color_jitter(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, strength: float = 0.4) -> tf.Tensor:
    """Brightness, contrast and saturation factors each uniform in [1 - s, 1 + s], applied in a random order."""
    image = decode(image, context.channels)
    factors = _uniform(_seeds(seed, 2)[0], (3,), max(0.0, 1.0 - strength), 1.0 + strength)
    order = tf.argsort(_uniform(_seeds(seed, 2)[1], (3,)))
    adjust = (brightness, contrast, saturation)
    for position in range(3):
        op = order[position]
        image = tf.switch_case(op, [lambda k=k, image=image: adjust[k](image, factors[k]) for k in range(3)])
        image = tf.ensure_shape(image, (None, None, context.channels))
    return image


def _check_random_erasing(options: dict, where: str = "") -> None:
    check_number(options, where, "probability", 0, 1)
    check_box_sampling(options, where)


@register_op("random_erasing", check=_check_random_erasing)
def random_erasing(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, probability: float = 0.25,
                   area_min: float = 0.02, area_max: float = 1 / 3, ratio_min: float = 0.3, ratio_max: float = 3.3,
                   attempts: int = 10) -> tf.Tensor:
    """Random erasing (Zhong et al. 2020): with `probability`, one rectangle is replaced by uniform noise."""
    image = decode(image, context.channels)
    apply_seed, box_seed, noise_seed = tf.unstack(_seeds(seed, 3))
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    draws = _uniform(box_seed, (attempts, 4))
    area = height * width * (area_min + (area_max - area_min) * draws[:, 0])
    ratio = tf.exp(math.log(ratio_min) + (math.log(ratio_max) - math.log(ratio_min)) * draws[:, 1])
    box_h = tf.round(tf.sqrt(area * ratio))
    box_w = tf.round(tf.sqrt(area / ratio))
    fits = (box_h < height) & (box_w < width) & (box_h > 0) & (box_w > 0)
    first = tf.argmax(tf.cast(fits, tf.int32))
    top = tf.floor(draws[first, 2] * (height - box_h[first] + 1))
    left = tf.floor(draws[first, 3] * (width - box_w[first] + 1))

    def erase():
        rows = tf.cast(tf.range(shape[0]), tf.float32)[:, None, None]
        cols = tf.cast(tf.range(shape[1]), tf.float32)[None, :, None]
        inside = (rows >= top) & (rows < top + box_h[first]) & (cols >= left) & (cols < left + box_w[first])
        noise = tf.random.stateless_uniform(shape, seed=noise_seed, minval=0, maxval=256, dtype=tf.int32)
        return tf.where(inside, tf.cast(noise, tf.uint8), image)

    apply = (_uniform(apply_seed) < probability) & tf.reduce_any(fits)
    return tf.cond(apply, erase, lambda: image)


# Keras ImageDataGenerator's ranges; config.rotation_range etc. (data/inputs.py's train_chain) have the same bounds.
FILL_MODES = ("nearest", "constant", "reflect", "wrap")
AFFINE_RANGES = {"rotation": 180.0, "width_shift": 1.0, "height_shift": 1.0, "zoom": 0.99, "shear": 89.0}


def _check_random_affine(options: dict, where: str = "") -> None:
    for name, high in AFFINE_RANGES.items():
        check_number(options, where, name, 0, high)
    check_choice(options, where, "fill_mode", FILL_MODES)


@register_op("random_affine", check=_check_random_affine)
def random_affine(image: tf.Tensor, seed: tf.Tensor, context: PreprocessContext, rotation: float = 0.0,
                  width_shift: float = 0.0, height_shift: float = 0.0, zoom: float = 0.0, shear: float = 0.0,
                  fill_mode: str = "nearest") -> tf.Tensor:
    """Keras ImageDataGenerator's random transform: rotation and shear in degrees, shifts as fractions of the
    size, zoom factors in [1 - zoom, 1 + zoom] per axis, uncovered pixels filled per `fill_mode`."""
    image = decode(image, context.channels)
    draws = _uniform(seed, (6,), -1.0, 1.0)
    shape = tf.cast(tf.shape(image), tf.float32)
    theta = rotation * draws[0] * (math.pi / 180)
    shear_angle = shear * draws[1] * (math.pi / 180)
    zoom_x, zoom_y = 1.0 + zoom * draws[2], 1.0 + zoom * draws[3]
    shift_x, shift_y = width_shift * draws[4] * shape[1], height_shift * draws[5] * shape[0]
    rotation_matrix = tf.stack([[tf.cos(theta), -tf.sin(theta)], [tf.sin(theta), tf.cos(theta)]])
    shear_matrix = tf.stack([[1.0, -tf.sin(shear_angle)], [0.0, tf.cos(shear_angle)]])
    zoom_matrix = tf.stack([[zoom_x, 0.0], [0.0, zoom_y]])
    linear = rotation_matrix @ shear_matrix @ zoom_matrix
    return transform(image, _centered(image, linear, (shift_x, shift_y)), fill_mode=fill_mode.upper(), fill_value=0.0)
