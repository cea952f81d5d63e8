"""The registry of preprocessing ops and what every op shares (its context, decoding, argument checks).

An op is `op(image, seed, context, *args)`, registered with `@register_op("name", check=...)` in any module of
imagenet_jax.data (preprocessing.py: crops and resizes; augment.py: augmentations); the registry imports every
module of the package on its first lookup, so neither module imports the other. `check(options, where=...)`
range-checks the op's own arguments (defaults filled in) when a chain is parsed, raising one ConfigError line
that starts with `where` ("config.train_preprocess: op 'random_affine(500)'").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

import tensorflow as tf

from imagenet_jax.errors import ConfigError
from imagenet_jax.registry import Check, Registry


@dataclasses.dataclass(frozen=True)
class PreprocessContext:
    """What every op may need besides the image."""

    image_size: int
    crop_pct: float
    channels: int
    interpolation: str = "bilinear"  # any tf.image.resize method
    # Antialiasing when downscaling: torchvision/PIL do it; the TF references (MLPerf, big_vision) do not, and
    # it roughly halves train preprocessing throughput on CPU (BENCHMARKS.md, "Input pipeline").
    antialias: bool = False


Op = Callable[..., tf.Tensor]  # op(image, seed, context, *args) -> image
OPS: Registry[Op] = Registry("preprocessing op", discover="imagenet_jax.data")


def register_op(name: str, *, check: Check | None = None) -> Callable[[Op], Op]:
    """Decorator adding an op to the registry under `name`; `check(options, where=...)` validates its arguments."""
    return OPS.register(name, check=check)


def op_names() -> list[str]:
    """All registered op names."""
    return OPS.names()


def decode(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Decodes encoded bytes (JPEG, PNG, ...) to uint8 HxWxC; passes decoded images through."""
    if image.dtype != tf.string:
        return image
    decoded = tf.io.decode_image(image, channels=channels, expand_animations=False)
    return tf.ensure_shape(decoded, (None, None, channels))


# ------------------------------------------------------------------------------------- argument checks of ops


def check_number(options: Mapping[str, Any], where: str, name: str, low: float | None = None,
                 high: float | None = None, *, integer: bool = False, above: bool = False) -> None:
    """ConfigError "<where>: <name>=<value> must be ..." unless options[name] is a finite number (an integer if
    `integer`) in [low, high] (`above`: strictly greater than `low`); None leaves a side open."""
    value = options[name]
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise ConfigError(f"{where}: {name}={value!r} must be {'an integer' if integer else 'a number'}.")
    too_low = low is not None and (value <= low if above else value < low)
    if too_low or (high is not None and value > high):
        if high is None:
            bound = f"> {low:g}" if above else f">= {low:g}"
        else:
            bound = f"in ({low:g}, {high:g}]" if above else f"in [{low:g}, {high:g}]"
        raise ConfigError(f"{where}: {name}={value!r} must be {bound}.")


def check_choice(options: Mapping[str, Any], where: str, name: str, choices: Collection[str]) -> None:
    """ConfigError "<where>: <name>=<value> is not one of: ..." unless options[name] is one of `choices`."""
    if options[name] not in choices:
        raise ConfigError(f"{where}: {name}={options[name]!r} is not one of: {', '.join(map(repr, choices))}.")


def check_order(options: Mapping[str, Any], where: str, low: str, high: str) -> None:
    """ConfigError unless options[low] <= options[high] (a range's two ends)."""
    if options[low] > options[high]:
        raise ConfigError(f"{where}: {low}={options[low]!r} must be <= {high}={options[high]!r}.")


def check_box_sampling(options: Mapping[str, Any], where: str) -> None:
    """The area range (0, 1], aspect-ratio range (> 0) and attempts (>= 1) of ops that sample a box."""
    check_number(options, where, "area_min", 0, 1, above=True)
    check_number(options, where, "area_max", 0, 1, above=True)
    check_order(options, where, "area_min", "area_max")
    check_number(options, where, "ratio_min", 0, above=True)
    check_number(options, where, "ratio_max", 0, above=True)
    check_order(options, where, "ratio_min", "ratio_max")
    check_number(options, where, "attempts", 1, integer=True)
