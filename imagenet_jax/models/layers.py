"""Building blocks shared by the classic architectures: PyTorch-compatible pooling, LRN, conv-BN-ReLU."""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_jax.models import conv_lowering
from imagenet_jax.models.pool_lowering import max_pool

Padding = tuple[tuple[int, int], tuple[int, int]]


def symmetric_padding(kernel: int | tuple[int, int]) -> Padding:
    """PyTorch-style padding of `k // 2` on both sides; flax "SAME" is asymmetric for strided convs."""
    kernel_h, kernel_w = (kernel, kernel) if isinstance(kernel, int) else kernel
    return ((kernel_h // 2, kernel_h // 2), (kernel_w // 2, kernel_w // 2))


@functools.cache
def _adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
    # PyTorch's bins: [floor(i * in / out), ceil((i + 1) * in / out)); they may overlap or repeat.
    matrix = np.zeros((out_size, in_size), np.float32)
    for index in range(out_size):
        start = (index * in_size) // out_size
        end = -(-((index + 1) * in_size) // out_size)
        matrix[index, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """`torch.nn.AdaptiveAvgPool2d` over NHWC input (identity when the map already has the target size)."""
    height, width = x.shape[1:3]
    out_height, out_width = output_size
    if (height, width) == (out_height, out_width):
        return x
    if (out_height, out_width) == (1, 1):
        return jnp.mean(x, axis=(1, 2), keepdims=True)
    rows = jnp.asarray(_adaptive_pool_matrix(height, out_height), x.dtype)
    cols = jnp.asarray(_adaptive_pool_matrix(width, out_width), x.dtype)
    x = jnp.einsum("oh,nhwc->nowc", rows, x, precision=jax.lax.Precision.HIGHEST)
    return jnp.einsum("pw,nowc->nopc", cols, x, precision=jax.lax.Precision.HIGHEST)


def max_pool_ceil(x: jax.Array, window: int, stride: int, padding: int = 0) -> jax.Array:
    """`torch.nn.MaxPool2d(..., ceil_mode=True)`: extra right/bottom padding so the last partial window counts."""

    def extra(size: int) -> int:
        out = math.ceil((size + 2 * padding - window) / stride) + 1
        if (out - 1) * stride >= size + padding:  # PyTorch drops a window that starts in the padding
            out -= 1
        return max(0, (out - 1) * stride + window - size - 2 * padding)

    height, width = x.shape[1:3]
    pads = ((padding, padding + extra(height)), (padding, padding + extra(width)))
    return max_pool(x, (window, window), (stride, stride), padding=pads)


def local_response_norm(
    x: jax.Array, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, bias: float = 2.0
) -> jax.Array:
    """Krizhevsky et al.'s LRN across channels: x / (bias + alpha * sum of squares over `size` channels)^beta.

    The paper's alpha multiplies the plain sum (PyTorch's LocalResponseNorm divides it by `size` first).
    """
    squares = jnp.square(x.astype(jnp.float32))
    window = (1, 1, 1, size)
    pads = ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2))
    summed = jax.lax.reduce_window(squares, 0.0, jax.lax.add, window, (1, 1, 1, 1), pads)
    return (x.astype(jnp.float32) / (bias + alpha * summed) ** beta).astype(x.dtype)


def torchvision_input_transform(x: jax.Array) -> jax.Array:
    """Maps ImageNet-mean/std-normalised input to the [-1, 1] scaling torchvision's ported Inception weights expect."""
    scale = jnp.asarray([0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5], x.dtype)
    shift = jnp.asarray([(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5], x.dtype)
    return x * scale + shift


class ConvBNReLU(nn.Module):
    """Convolution without bias, BatchNorm, ReLU: torchvision's `BasicConv2d` of the Inception networks."""

    features: int
    kernel: tuple[int, int]
    strides: int = 1
    padding: Padding | str = "VALID"
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.9
    kernel_init: Any = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Conv(
            self.features,
            self.kernel,
            (self.strides, self.strides),
            padding=self.padding,
            use_bias=False,
            kernel_init=self.kernel_init,
            dtype=self.dtype,
            conv_general_dilated=conv_lowering.conv_general_dilated,  # small maps as patches + matmul on CPU
            name="conv",
        )(x)
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=self.bn_epsilon,
            dtype=self.dtype,
            name="bn",
        )(x)
        return nn.relu(x)


def torch_linear_init() -> Any:
    """PyTorch's default Linear/Conv weight init (kaiming-uniform with a=sqrt(5)): U(+-1/sqrt(fan_in))."""
    return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def truncated_normal(stddev: float) -> Any:
    """`torch.nn.init.trunc_normal_(std=stddev, a=-2, b=2)` as torchvision's Inception models use it."""
    # The cut is at +-2 absolute; for stddev <= 1 that is at least 2 standard deviations.
    return nn.initializers.truncated_normal(stddev, lower=-2.0 / stddev, upper=2.0 / stddev)
