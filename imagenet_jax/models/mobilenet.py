"""MobileNetV2 (Sandler et al. 2018) and MobileNetV3 (Howard et al. 2019), exactly as torchvision builds them.

MobileNetV2: a 3x3 stride-2 convolution to 32 channels, BatchNorm and ReLU6; 17 inverted residual blocks (1x1
expansion by t, 3x3 depthwise convolution, 1x1 linear projection; each convolution followed by BatchNorm, the first
two by ReLU6; a residual connection where the stride is 1 and the width unchanged); a 1x1 convolution to 1280
channels, BatchNorm and ReLU6; global average pooling, dropout (0.2) and the classifier. BatchNorm eps 1e-5.
MobileNetV3 (large / small): a 3x3 stride-2 convolution to 16 channels, BatchNorm and hardswish; inverted residual
blocks with per-block kernel (3 or 5), activation (ReLU or hardswish) and optional squeeze-and-excitation
(avg-pool, 1x1 conv to _make_divisible(C // 4, 8), ReLU, 1x1 conv, hardsigmoid, scale); a 1x1 convolution to 6x
the last block's width, BatchNorm and hardswish; global average pooling, Linear to 1280 (large) / 1024 (small),
hardswish, dropout (0.2) and the classifier. BatchNorm eps 1e-3 and torch momentum 0.01 (flax's 0.99).
Convolutions have no bias (the squeeze-and-excitation ones do). Blocks are named `block{i}` after torchvision's
`features.{i}`, with `expand_conv/bn`, `depthwise_conv/bn`, `se/{fc1,fc2}` and `project_conv/bn` inside.
Variant options:
  dropout_rate: dropout before the (last) classifier layer in training; 0.2 by default, as torchvision.
  bn_momentum, bn_epsilon: BatchNorm's (flax's momentum is 1 - torch's), and `bn_group_size` (ghost BatchNorm,
            set from config.bn_group_size).
Width multipliers other than 1.0 and dilated (segmentation) variants are not offered.
Weights convert from torchvision with `imagenet_jax.convert.from_torchvision`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.models import conv_lowering, dropout, ghost_batch_norm
from imagenet_jax.models.registry import register

# torchvision: kaiming_normal_(mode="fan_out") for every convolution, N(0, 0.01) for Linear weights, zero biases.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
LINEAR_INIT = nn.initializers.normal(0.01)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's `_make_divisible`: the nearest multiple of `divisor` >= divisor, not below 90% of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """`torch.nn.Hardsigmoid`: relu6(x + 3) / 6."""
    return jnp.clip(x + 3.0, 0.0, 6.0) / 6.0


def hard_swish(x: jax.Array) -> jax.Array:
    """`torch.nn.Hardswish`: x * relu6(x + 3) / 6."""
    return x * hard_sigmoid(x)


def relu6(x: jax.Array) -> jax.Array:
    """`torch.nn.ReLU6`: min(max(x, 0), 6)."""
    return jnp.clip(x, 0.0, 6.0)


class BlockConfig(NamedTuple):
    """One inverted residual block: torchvision's InvertedResidualConfig (dilation 1, width_mult 1.0)."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    activation: str  # "RE" (ReLU), "HS" (hardswish) or "RE6" (ReLU6, MobileNetV2)
    stride: int


def _v2_blocks() -> tuple[BlockConfig, ...]:
    # torchvision's inverted_residual_setting: expansion t, channels c, repeats n, first stride s.
    blocks, in_channels = [], 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)):
        for index in range(n):
            blocks.append(BlockConfig(in_channels, 3, round(in_channels * t), c, False, "RE6", s if index == 0 else 1))
            in_channels = c
    return tuple(blocks)


def _v3_blocks(rows: Sequence[tuple[int, int, int, int, bool, str, int]]) -> tuple[BlockConfig, ...]:
    return tuple(BlockConfig(*row) for row in rows)


class Architecture(NamedTuple):
    """A MobileNet's layout: its blocks, stem and last-conv widths, classifier hidden width (0: none)."""

    blocks: tuple[BlockConfig, ...]
    stem_channels: int
    last_channels: int
    hidden_channels: int

    @property
    def v2(self) -> bool:
        """MobileNetV2 (ReLU6 everywhere, a bare projection conv and BN in torchvision)."""
        return self.blocks[0].activation == "RE6"


ARCHITECTURES: dict[str, Architecture] = {
    "mobilenet_v2": Architecture(_v2_blocks(), 32, 1280, 0),
    "mobilenet_v3_large": Architecture(_v3_blocks([
        (16, 3, 16, 16, False, "RE", 1),
        (16, 3, 64, 24, False, "RE", 2),
        (24, 3, 72, 24, False, "RE", 1),
        (24, 5, 72, 40, True, "RE", 2),
        (40, 5, 120, 40, True, "RE", 1),
        (40, 5, 120, 40, True, "RE", 1),
        (40, 3, 240, 80, False, "HS", 2),
        (80, 3, 200, 80, False, "HS", 1),
        (80, 3, 184, 80, False, "HS", 1),
        (80, 3, 184, 80, False, "HS", 1),
        (80, 3, 480, 112, True, "HS", 1),
        (112, 3, 672, 112, True, "HS", 1),
        (112, 5, 672, 160, True, "HS", 2),
        (160, 5, 960, 160, True, "HS", 1),
        (160, 5, 960, 160, True, "HS", 1),
    ]), 16, 960, 1280),
    "mobilenet_v3_small": Architecture(_v3_blocks([
        (16, 3, 16, 16, True, "RE", 2),
        (16, 3, 72, 24, False, "RE", 2),
        (24, 3, 88, 24, False, "RE", 1),
        (24, 5, 96, 40, True, "HS", 2),
        (40, 5, 240, 40, True, "HS", 1),
        (40, 5, 240, 40, True, "HS", 1),
        (40, 5, 120, 48, True, "HS", 1),
        (48, 5, 144, 48, True, "HS", 1),
        (48, 5, 288, 96, True, "HS", 2),
        (96, 5, 576, 96, True, "HS", 1),
        (96, 5, 576, 96, True, "HS", 1),
    ]), 16, 576, 1024),
}
# torchvision's MobileNetV3 BatchNorm: eps 0.001, momentum 0.01 (flax's 0.99).
V3_BATCH_NORM = {"bn_momentum": 0.99, "bn_epsilon": 1e-3}
_ACTIVATIONS = {"RE": nn.relu, "HS": hard_swish, "RE6": relu6}


def torchvision_block_layers(block: BlockConfig, v2: bool) -> list[str]:
    """Our layer names for the entries of torchvision's block Sequential (`conv` in V2, `block` in V3), in order.

    A conv-norm-activation entry is named by its prefix (`expand`, `depthwise`, `project`: its `.0` is `_conv`,
    its `.1` `_bn`); V2's projection is a bare conv and BatchNorm, two entries.
    """
    layers = ["expand"] if block.expanded != block.in_channels else []
    layers.append("depthwise")
    if block.use_se:
        layers.append("se")
    layers += ["project_conv", "project_bn"] if v2 else ["project"]
    return layers


class SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation: x * hardsigmoid(fc2(relu(fc1(mean(x))))), fc1/fc2 1x1 convs with bias."""

    squeeze_channels: int
    conv: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = jnp.mean(x, axis=(1, 2), keepdims=True)
        scale = nn.relu(self.conv(self.squeeze_channels, (1, 1), use_bias=True, name="fc1")(scale))
        scale = self.conv(x.shape[-1], (1, 1), use_bias=True, name="fc2")(scale)
        return x * hard_sigmoid(scale)


class InvertedResidual(nn.Module):
    """Expansion 1x1 (if widened), depthwise kxk, optional squeeze-excitation, linear 1x1 projection (+ input)."""

    block: BlockConfig
    conv: Any
    norm: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        block, activation = self.block, _ACTIVATIONS[self.block.activation]
        y = x
        if block.expanded != block.in_channels:
            y = activation(self.norm(name="expand_bn")(self.conv(block.expanded, (1, 1), name="expand_conv")(y)))
        pad = (block.kernel - 1) // 2
        y = self.conv(block.expanded, (block.kernel, block.kernel), (block.stride, block.stride),
                      padding=((pad, pad), (pad, pad)), feature_group_count=block.expanded, name="depthwise_conv")(y)
        y = activation(self.norm(name="depthwise_bn")(y))
        if block.use_se:
            y = SqueezeExcitation(make_divisible(block.expanded // 4, 8), self.conv, name="se")(y)
        y = self.norm(name="project_bn")(self.conv(block.out_channels, (1, 1), name="project_conv")(y))
        return x + y if block.stride == 1 and block.in_channels == block.out_channels else y


class MobileNet(nn.Module):
    """MobileNetV2/V3 over NHWC images; returns float32 logits. Dropout needs `rngs={'dropout': key}` in training."""

    architecture: Architecture  # ARCHITECTURES[name]; a tuple, so not a scalar model option
    num_classes: int = 1000
    dropout_rate: float = 0.2
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_group_size: int = 0  # > 0: "ghost" BN, statistics over groups of this many examples in training.
    dtype: Any = jnp.float32

    def __post_init__(self):
        # Checked at construction, so config validation (which builds the model) names a bad option up front.
        if self.bn_group_size < 0:
            raise ValueError(f"MobileNet option bn_group_size={self.bn_group_size} must be >= 0 (0: batch statistics)")
        dropout.check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        blocks, stem_channels, last_channels, hidden = self.architecture
        activation = relu6 if self.architecture.v2 else hard_swish
        conv = functools.partial(nn.Conv, use_bias=False, padding="VALID", kernel_init=CONV_INIT, dtype=self.dtype,
                                 conv_general_dilated=conv_lowering.conv_general_dilated)  # fast small maps on CPU
        norm = ghost_batch_norm.batch_norm(train, self.bn_momentum, self.bn_epsilon, self.dtype, self.bn_group_size)
        x = x.astype(self.dtype)
        x = conv(stem_channels, (3, 3), (2, 2), padding=((1, 1), (1, 1)), name="stem_conv")(x)
        x = activation(norm(name="stem_bn")(x))
        for index, block in enumerate(blocks, start=1):
            x = InvertedResidual(block, conv, norm, name=f"block{index}")(x)
        x = activation(norm(name="last_bn")(conv(last_channels, (1, 1), name="last_conv")(x)))
        x = jnp.mean(x, axis=(1, 2))
        dense = functools.partial(nn.Dense, kernel_init=LINEAR_INIT, dtype=self.dtype)
        if hidden:
            x = hard_swish(dense(hidden, name="pre_head")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = dense(self.num_classes, name="head")(x)
        return x.astype(jnp.float32)


@register("mobilenet_v2", image_size=224)
def mobilenet_v2(num_classes: int = 1000, **options: Any) -> MobileNet:
    """MobileNetV2, width 1.0 (torchvision's mobilenet_v2): BatchNorm eps 1e-5, momentum 0.1 (flax 0.9)."""
    return MobileNet(ARCHITECTURES["mobilenet_v2"], num_classes=num_classes, **options)


@register("mobilenet_v3_large", image_size=224)
def mobilenet_v3_large(num_classes: int = 1000, **options: Any) -> MobileNet:
    """MobileNetV3-Large (torchvision's mobilenet_v3_large): BatchNorm eps 1e-3, momentum 0.01 (flax 0.99)."""
    return MobileNet(ARCHITECTURES["mobilenet_v3_large"], num_classes=num_classes, **{**V3_BATCH_NORM, **options})


@register("mobilenet_v3_small", image_size=224)
def mobilenet_v3_small(num_classes: int = 1000, **options: Any) -> MobileNet:
    """MobileNetV3-Small (torchvision's mobilenet_v3_small): BatchNorm eps 1e-3, momentum 0.01 (flax 0.99)."""
    return MobileNet(ARCHITECTURES["mobilenet_v3_small"], num_classes=num_classes, **{**V3_BATCH_NORM, **options})
