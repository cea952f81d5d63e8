"""A drop-in for `nn.max_pool` that, on CPU, takes the max of the window's shifted strided slices.

XLA differentiates `reduce_window(max)` into `select_and_scatter`, which XLA:CPU lowers to a variadic
reduce-window over four int32 index maps plus a scatter: on the default job's 2x2 pool of a 256x28x28x32
activation that backward pass took 113 ms of a 390 ms train step, against 5 ms for the same pool written as the
elementwise max of its 4 strided slices (whose gradient is a few selects; BENCHMARKS.md, issue 28). The forward
values are identical. Gradients differ only where a window holds several equal maxima: XLA routes the whole
gradient to the first of them, the slices split it between them (the total is the same), which after a ReLU only
happens at zeros, whose ReLU gradient is zero anyway. GPUs and TPUs, and `cpu_conv_lowering="xla"` (exports), keep
XLA's own reduce-window, like the convolutions of conv_lowering.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from imagenet_jax.models import conv_lowering


def uses_slices(mode: str | None = None, backend: str | None = None) -> bool:
    """Whether max-pools are lowered to strided slices: on CPU unless the lowering mode is "xla"."""
    mode = mode or conv_lowering.cpu_conv_lowering()
    return (backend or jax.default_backend()) == "cpu" and mode != "xla"


def max_pool(x: jax.Array, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "VALID") -> jax.Array:
    """`nn.max_pool` over the spatial axes of NHWC `x`, as a max of strided slices on CPU."""
    strides = tuple(strides or (1,) * len(window_shape))
    if x.ndim != 4 or len(window_shape) != 2 or not uses_slices():
        return nn.max_pool(x, tuple(window_shape), strides, padding=padding)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], tuple(window_shape), strides, padding)
    pads = [tuple(pad) for pad in padding]
    if any(low < 0 or high < 0 for low, high in pads):
        return nn.max_pool(x, tuple(window_shape), strides, padding=padding)
    return _max_of_slices(x, tuple(window_shape), strides, pads)


def _max_of_slices(x: jax.Array, window: tuple[int, int], strides: tuple[int, int],
                   pads: list[tuple[int, int]]) -> jax.Array:
    # Padding takes -inf (the dtype's lowest finite value for integers), as reduce_window's max identity does.
    fill: Any = -jnp.inf if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.iinfo(x.dtype).min
    if any(pads[0]) or any(pads[1]):
        x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    (window_h, window_w), (stride_h, stride_w) = window, strides
    out_h = (x.shape[1] - window_h) // stride_h + 1
    out_w = (x.shape[2] - window_w) // stride_w + 1
    result = None
    for i in range(window_h):
        for j in range(window_w):
            part = conv_lowering.tap_slice(x, (i, j), (out_h, out_w), strides)
            result = part if result is None else jnp.maximum(result, part)
    return result
