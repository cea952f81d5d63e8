"""A drop-in for `lax.conv_general_dilated` that lowers small-spatial convolutions to patches + matmul on CPU.

XLA's CPU convolution is pathologically slow when the feature map is tiny and the channels many (a 3x3 conv on
2x2 maps at 512 channels runs ~40x slower than the same arithmetic as one matmul; ../shared/guide/CPU_NOTES.md),
which is where ImageNet architectures spend their time at 32-128 px. Models pass `conv_general_dilated` to
`nn.Conv(conv_general_dilated=...)`, so parameter names, shapes and checkpoints stay exactly those of `nn.Conv`.
The choice is made at trace time from the shapes and `jax.default_backend()`: GPUs and TPUs always get XLA's own
convolution. `set_cpu_conv_lowering` ("auto" | "xla" | "patches") is set by the train loop from
`config.cpu_conv_lowering`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

LOWERINGS = ("auto", "xla", "patches")
# "auto" rule, from fwd+bwd timings of one convolution on the 2-core dev VM (benchmarks/conv_lowering.py, batch 32;
# BENCHMARKS.md): XLA's CPU convolution, its backward pass above all, loses to patches + matmul for 1x1 kernels at
# every size, for >= 64 input channels at every map size tried (2-28 px, up to 9x at 28 px) and for 2x2 outputs;
# with 32 channels on 4-16 px maps the two are within noise, so XLA keeps those.
AUTO_MIN_IN_CHANNELS = 64
AUTO_MAX_SMALL_OUTPUT_PIXELS = 4  # outputs this small take patches whatever the channel count
# Stems on 1-3 input channels (grey or RGB) with kernels up to 3x3 take patches too: the weight gradient of XLA's
# convolution with so few input channels is slow (quiet VM, fwd+weight-grad, 2026-12-07: 1->32 at 28 px 4.5x faster
# as patches, 3->16 at 32 px 1.5x, 3->64 at 64 px 1.9x); 7x7 and 11x11 RGB stems were mixed (0.65-1.3x): XLA's.
AUTO_MAX_FEW_IN_CHANNELS = 3
AUTO_MAX_FEW_CHANNEL_KERNEL_TAPS = 9
# The patches tensor (kh*kw copies of the input) may not exceed this many elements; larger ones stay XLA convs.
AUTO_MAX_PATCH_ELEMENTS = 2**27

_mode = "auto"


def set_cpu_conv_lowering(mode: str) -> None:
    """Chooses how CPU convolutions are lowered from the next trace on: "auto" (by shape), "xla" or "patches"."""
    global _mode
    if mode not in LOWERINGS:
        raise ValueError(f"cpu_conv_lowering={mode!r} is not one of {', '.join(LOWERINGS)}")
    _mode = mode


def cpu_conv_lowering() -> str:
    """The lowering mode in effect."""
    return _mode


@contextlib.contextmanager
def conv_lowering_mode(mode: str) -> Iterator[None]:
    """Traces inside use `mode`; exports use "xla" so an artifact never carries a CPU-only lowering."""
    previous = _mode
    set_cpu_conv_lowering(mode)
    try:
        yield
    finally:
        set_cpu_conv_lowering(previous)


# The same convolution, lowered differently (tests/models/test_conv_lowering.py).
RESUME_SAFE_KEYS = frozenset({"cpu_conv_lowering"})


def validate_config(config: Any) -> None:
    """ConfigError naming config.cpu_conv_lowering when it is not a known mode."""
    from imagenet_jax.errors import ConfigError

    if config.cpu_conv_lowering not in LOWERINGS:
        raise ConfigError(f"config.cpu_conv_lowering={config.cpu_conv_lowering!r} is not one of: "
                          f"{', '.join(LOWERINGS)} (\"xla\" turns the CPU patches lowering off).")


def uses_patches(input_shape: Sequence[int], kernel_shape: Sequence[int], output_pixels: int,
                 mode: str | None = None, backend: str | None = None) -> bool:
    """Whether a NHWC x HWIO convolution with this many output pixels per image is lowered to patches + matmul."""
    mode = mode or _mode
    backend = backend or jax.default_backend()
    if backend != "cpu" or mode == "xla":
        return False
    if mode == "patches":
        return True
    kernel_h, kernel_w, in_channels = kernel_shape[0], kernel_shape[1], input_shape[-1]
    if kernel_h == kernel_w == 1:
        return True  # a reshape and one matmul: no copies of the input at all
    if input_shape[0] * output_pixels * kernel_h * kernel_w * in_channels > AUTO_MAX_PATCH_ELEMENTS:
        return False
    if in_channels <= AUTO_MAX_FEW_IN_CHANNELS and kernel_h * kernel_w <= AUTO_MAX_FEW_CHANNEL_KERNEL_TAPS:
        return True
    return in_channels >= AUTO_MIN_IN_CHANNELS or output_pixels <= AUTO_MAX_SMALL_OUTPUT_PIXELS


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                         lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         precision: Any = None, **kwargs: Any) -> jax.Array:
    """`lax.conv_general_dilated`, as patches + one matmul for small NHWC/HWIO 2-D maps on CPU."""

    def xla():
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                        feature_group_count=feature_group_count, precision=precision, **kwargs)

    simple = (lhs.ndim == 4 and feature_group_count == 1 and not kwargs and _is_nhwc_hwio(dimension_numbers, lhs.ndim)
              and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1))))
    if not simple or not all(isinstance(dim, int) for dim in (*lhs.shape, *rhs.shape)):
        return xla()  # symbolic shapes (jax.export with a polymorphic batch) are never worth a guess
    kernel_h, kernel_w = rhs.shape[:2]
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], (kernel_h, kernel_w), window_strides, padding)
    pads = [tuple(pad) for pad in padding]
    out_h = (lhs.shape[1] + sum(pads[0]) - kernel_h) // window_strides[0] + 1
    out_w = (lhs.shape[2] + sum(pads[1]) - kernel_w) // window_strides[1] + 1
    if any(low < 0 or high < 0 for low, high in pads) or not uses_patches(lhs.shape, rhs.shape, out_h * out_w):
        return xla()  # negative padding (cropping) is rare: XLA handles it
    return _patches_matmul(lhs, rhs, tuple(window_strides), pads, (out_h, out_w), precision)


def _is_nhwc_hwio(dimension_numbers: Any, ndim: int) -> bool:
    # flax's nn.Conv passes ConvDimensionNumbers for NHWC inputs and HWIO kernels; anything else goes to XLA.
    if dimension_numbers is None:
        return False
    numbers = lax.conv_dimension_numbers((1,) * ndim, (1,) * ndim, dimension_numbers)
    return numbers.lhs_spec == (0, 3, 1, 2) and numbers.rhs_spec == (3, 2, 0, 1) and numbers.out_spec == (0, 3, 1, 2)


def tap_slice(x: jax.Array, offset: tuple[int, int], output_size: tuple[int, int],
              strides: tuple[int, int]) -> jax.Array:
    """The NHWC input pixels that kernel tap `offset` (or pooling-window position) meets at every output pixel."""
    (i, j), (out_h, out_w), (stride_h, stride_w) = offset, output_size, strides
    return lax.slice(x, (0, i, j, 0), (x.shape[0], i + (out_h - 1) * stride_h + 1, j + (out_w - 1) * stride_w + 1,
                                       x.shape[3]), (1, stride_h, stride_w, 1))


def _patches_matmul(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads: list[tuple[int, int]],
                    output_size: tuple[int, int], precision: Any) -> jax.Array:
    # Shifted strided slices stacked in (kh, kw, C) order match the HWIO kernel reshaped to (kh*kw*C, O); their
    # gradients are pads and adds, which XLA's CPU backend runs at memory speed.
    kernel_h, kernel_w, in_features, out_features = kernel.shape
    out_h, out_w = output_size
    x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    slices = [tap_slice(x, (i, j), (out_h, out_w), strides) for i in range(kernel_h) for j in range(kernel_w)]
    patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
    y = jnp.dot(patches.reshape(-1, kernel_h * kernel_w * in_features),
                kernel.reshape(kernel_h * kernel_w * in_features, out_features), precision=precision)
    return y.reshape(x.shape[0], out_h, out_w, out_features)
