"""ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s"), exactly as torchvision builds it.

A 4x4 stride-4 "patchify" stem and LayerNorm, four stages of ConvNeXt blocks with LayerNorm + 2x2 stride-2
convolutions between them, then global average pooling, LayerNorm and the classifier. A block is a 7x7 depthwise
convolution, LayerNorm, a 4x inverted bottleneck of two linear layers around an exact (erf) GELU, a learned
per-channel layer scale, stochastic depth and the residual sum. All LayerNorms have epsilon 1e-6.
Variant options:
  stochastic_depth_rate: drop each block's branch per example in training with a probability rising linearly
            from 0 at the first block to this at the last (torchvision's `stochastic_depth_prob`, timm's
            `drop_path_rate`; models/dropout.py). Defaults are torchvision's and the paper's: 0.1 (tiny),
            0.4 (small), 0.5 (base, large).
  layer_scale_init: the initial value of every block's layer scale (1e-6: each block starts near the identity).
  dropout_rate: dropout before the classifier in training (timm's drop_rate); 0 by default, as published.
Weights convert from torchvision with `imagenet_jax.convert.from_torchvision`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.models import conv_lowering, dropout
from imagenet_jax.models.layers import truncated_normal
from imagenet_jax.models.registry import register

LAYER_NORM_EPSILON = 1e-6
# torchvision draws every convolution and linear weight from trunc_normal(std=0.02) and zeroes their biases.
WEIGHT_INIT = truncated_normal(0.02)


def _layer_norm(dtype: Any, name: str) -> nn.LayerNorm:
    # The two-pass variance (not E[x^2] - E[x]^2) as torch computes it: the residual stream's mean can be large.
    return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, use_fast_variance=False, dtype=dtype, name=name)


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv, LayerNorm, Linear 4x, GELU, Linear back, layer scale, stochastic depth, residual."""

    features: int
    layer_scale_init: float = 1e-6
    drop_path_rate: float = 0.0  # stochastic depth: probability of dropping this block's branch in training
    deterministic: bool = True  # False in training, when the branch may be dropped
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dense = functools.partial(nn.Dense, kernel_init=WEIGHT_INIT, dtype=self.dtype)
        y = nn.Conv(self.features, (7, 7), padding=((3, 3), (3, 3)), feature_group_count=self.features,
                    kernel_init=WEIGHT_INIT, dtype=self.dtype, name="depthwise_conv")(x)
        y = _layer_norm(self.dtype, "norm")(y)
        y = nn.gelu(dense(4 * self.features, name="expand")(y), approximate=False)  # torch's GELU is the exact one
        y = dense(self.features, name="project")(y)
        layer_scale = self.param("layer_scale", nn.initializers.constant(self.layer_scale_init), (self.features,))
        y = y * layer_scale.astype(y.dtype)
        return x + dropout.drop_path(y, self.drop_path_rate, self.deterministic)


class ConvNeXt(nn.Module):
    """ConvNeXt over NHWC images; returns float32 logits. Stochastic depth needs `rngs={'dropout': key}` in training."""

    stage_depths: Sequence[int]
    stage_widths: Sequence[int]
    num_classes: int = 1000
    stochastic_depth_rate: float = 0.0
    layer_scale_init: float = 1e-6
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    def __post_init__(self):
        # Checked at construction, so config validation (which builds the model) names a bad option up front.
        if len(self.stage_depths) != len(self.stage_widths) or not self.stage_depths:
            raise ValueError(f"ConvNeXt stage_depths {tuple(self.stage_depths)} and stage_widths "
                             f"{tuple(self.stage_widths)} must be non-empty and of one length")
        dropout.check_rate("stochastic_depth_rate", self.stochastic_depth_rate)
        dropout.check_rate("dropout_rate", self.dropout_rate)
        scale = self.layer_scale_init
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise ValueError(f"model option layer_scale_init={scale!r} must be a finite number")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = functools.partial(nn.Conv, padding="VALID", kernel_init=WEIGHT_INIT, dtype=self.dtype,
                                 conv_general_dilated=conv_lowering.conv_general_dilated)  # fast small maps on CPU
        x = x.astype(self.dtype)
        x = conv(self.stage_widths[0], (4, 4), (4, 4), name="stem_conv")(x)
        x = _layer_norm(self.dtype, "stem_norm")(x)
        # torchvision's rule: rate x block / (blocks - 1), the same as the ResNets' (dropout.stochastic_depth_rates).
        drop_path_rates = iter(dropout.stochastic_depth_rates(self.stochastic_depth_rate, sum(self.stage_depths)))
        for stage, (depth, width) in enumerate(zip(self.stage_depths, self.stage_widths, strict=True), start=1):
            if stage > 1:
                x = _layer_norm(self.dtype, f"stage{stage}_downsample_norm")(x)
                x = conv(width, (2, 2), (2, 2), name=f"stage{stage}_downsample_conv")(x)
            for index in range(1, depth + 1):
                x = ConvNeXtBlock(width, layer_scale_init=self.layer_scale_init, drop_path_rate=next(drop_path_rates),
                                  deterministic=not train, dtype=self.dtype, name=f"stage{stage}_block{index}")(x)
        x = jnp.mean(x, axis=(1, 2))
        x = _layer_norm(self.dtype, "head_norm")(x)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, kernel_init=WEIGHT_INIT, dtype=self.dtype, name="head")(x)
        return x.astype(jnp.float32)


def _convnext(depths: tuple[int, ...], widths: tuple[int, ...], stochastic_depth_rate: float, num_classes: int,
              options: dict[str, Any]) -> ConvNeXt:
    defaults = {"stage_depths": depths, "stage_widths": widths, "stochastic_depth_rate": stochastic_depth_rate}
    return ConvNeXt(num_classes=num_classes, **{**defaults, **options})


@register("convnext_tiny", image_size=224, min_image_size=32)
def convnext_tiny(num_classes: int = 1000, **options: Any) -> ConvNeXt:
    """ConvNeXt-T: depths (3, 3, 9, 3), widths 96-768, stochastic depth 0.1 (torchvision's convnext_tiny)."""
    return _convnext((3, 3, 9, 3), (96, 192, 384, 768), 0.1, num_classes, options)


@register("convnext_small", image_size=224, min_image_size=32)
def convnext_small(num_classes: int = 1000, **options: Any) -> ConvNeXt:
    """ConvNeXt-S: depths (3, 3, 27, 3), widths 96-768, stochastic depth 0.4 (torchvision's convnext_small)."""
    return _convnext((3, 3, 27, 3), (96, 192, 384, 768), 0.4, num_classes, options)


@register("convnext_base", image_size=224, min_image_size=32)
def convnext_base(num_classes: int = 1000, **options: Any) -> ConvNeXt:
    """ConvNeXt-B: depths (3, 3, 27, 3), widths 128-1024, stochastic depth 0.5 (torchvision's convnext_base)."""
    return _convnext((3, 3, 27, 3), (128, 256, 512, 1024), 0.5, num_classes, options)


@register("convnext_large", image_size=224, min_image_size=32)
def convnext_large(num_classes: int = 1000, **options: Any) -> ConvNeXt:
    """ConvNeXt-L: depths (3, 3, 27, 3), widths 192-1536, stochastic depth 0.5 (torchvision's convnext_large)."""
    return _convnext((3, 3, 27, 3), (192, 384, 768, 1536), 0.5, num_classes, options)
