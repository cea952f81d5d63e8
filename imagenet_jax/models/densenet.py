"""DenseNet (Huang et al. 2017, "Densely Connected Convolutional Networks"), exactly as torchvision builds it.

A 7x7 stride-2 convolution, BatchNorm, ReLU and a 3x3 stride-2 max-pool (padding 1); four dense blocks, each layer
of which sees the concatenation of every earlier feature map of its block (BN-ReLU-1x1 conv to bn_size x growth_rate
channels, BN-ReLU-3x3 conv to growth_rate channels, optional dropout) and appends its growth_rate channels; between
blocks a transition (BN-ReLU-1x1 conv halving the channels, 2x2 stride-2 average pooling); then BatchNorm, ReLU,
global average pooling and the classifier. Convolutions have no bias.
Variant options:
  growth_rate, bn_size, num_init_features: torchvision's (32, 4, 64 for DenseNet-121/169/201).
  drop_rate: dropout after every dense layer's 3x3 convolution in training (torchvision's `drop_rate`); 0 by default.
  dropout_rate: dropout before the classifier in training (the zoo's option; torchvision has none); 0 by default.
  bn_momentum, bn_epsilon: BatchNorm's (flax's momentum 0.9 is torch's 0.1), and `bn_group_size` (ghost BatchNorm,
            set from config.bn_group_size).
Inputs from 29 px: the stem and three transitions quarter, then halve three times, and torchvision's
AvgPool2d(2, 2) floors, so 29 px reaches the classifier as 1x1 and 28 px as 0x0.
Weights convert from torchvision with `imagenet_jax.convert.from_torchvision`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.models import conv_lowering, dropout, ghost_batch_norm
from imagenet_jax.models.layers import symmetric_padding, torch_linear_init
from imagenet_jax.models.pool_lowering import max_pool
from imagenet_jax.models.registry import register

MIN_IMAGE_SIZE = 29
# torchvision: kaiming_normal_ (fan-in, gain sqrt(2), not truncated) for every convolution; the classifier keeps
# torch's default Linear weight init and a zero bias.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bn_size x growth_rate), BN-ReLU-3x3 conv (growth_rate), dropout; returns the new features."""

    growth_rate: int
    bn_size: int
    conv: Any
    norm: Any
    drop_rate: float = 0.0
    deterministic: bool = True  # False in training, when drop_rate > 0 drops features

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.relu(self.norm(name="norm1")(x))
        y = self.conv(self.bn_size * self.growth_rate, (1, 1), name="conv1")(y)
        y = nn.relu(self.norm(name="norm2")(y))
        y = self.conv(self.growth_rate, (3, 3), padding=symmetric_padding(3), name="conv2")(y)
        return nn.Dropout(self.drop_rate, deterministic=self.deterministic)(y)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv to `features` channels, then 2x2 stride-2 average pooling (flooring odd sizes)."""

    features: int
    conv: Any
    norm: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.relu(self.norm(name="norm")(x))
        y = self.conv(self.features, (1, 1), name="conv")(y)
        return nn.avg_pool(y, (2, 2), (2, 2))


class DenseNet(nn.Module):
    """DenseNet over NHWC images; returns float32 logits. Dropout needs `rngs={'dropout': key}` in training."""

    block_config: Sequence[int]
    num_classes: int = 1000
    growth_rate: int = 32
    bn_size: int = 4
    num_init_features: int = 64
    drop_rate: float = 0.0
    dropout_rate: float = 0.0
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_group_size: int = 0  # > 0: "ghost" BN, statistics over groups of this many examples in training.
    dtype: Any = jnp.float32

    def __post_init__(self):
        # Checked at construction, so config validation (which builds the model) names a bad option up front.
        if not self.block_config or any(int(n) != n or n < 1 for n in self.block_config):
            raise ValueError(f"DenseNet block_config {tuple(self.block_config)} must be positive layer counts")
        for key in ("growth_rate", "bn_size", "num_init_features"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DenseNet option {key}={value!r} must be a positive integer")
        if self.bn_group_size < 0:
            raise ValueError(f"DenseNet option bn_group_size={self.bn_group_size} must be >= 0 (0: batch statistics)")
        dropout.check_rate("drop_rate", self.drop_rate)
        dropout.check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = functools.partial(nn.Conv, use_bias=False, padding="VALID", kernel_init=CONV_INIT, dtype=self.dtype,
                                 conv_general_dilated=conv_lowering.conv_general_dilated)  # fast small maps on CPU
        norm = ghost_batch_norm.batch_norm(train, self.bn_momentum, self.bn_epsilon, self.dtype, self.bn_group_size)
        height, width = x.shape[1:3]
        x = x.astype(self.dtype)
        x = conv(self.num_init_features, (7, 7), (2, 2), padding=symmetric_padding(7), name="conv0")(x)
        x = nn.relu(norm(name="norm0")(x))
        x = max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        features = self.num_init_features
        for block, num_layers in enumerate(self.block_config, start=1):
            for index in range(1, num_layers + 1):
                new = DenseLayer(self.growth_rate, self.bn_size, conv, norm, self.drop_rate, deterministic=not train,
                                 name=f"denseblock{block}_denselayer{index}")(x)
                x = jnp.concatenate([x, new], axis=-1)
            features += num_layers * self.growth_rate
            if block < len(self.block_config):
                features //= 2
                x = Transition(features, conv, norm, name=f"transition{block}")(x)
        if 0 in x.shape[1:3]:
            raise ValueError(f"DenseNet input of {height}x{width} px is too small: its last dense block gets "
                             f"{x.shape[1]}x{x.shape[2]} features (DenseNet-121/169/201 need >= {MIN_IMAGE_SIZE} px)")
        x = nn.relu(norm(name="norm5")(x))
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, kernel_init=torch_linear_init(), dtype=self.dtype, name="head")(x)
        return x.astype(jnp.float32)


def _densenet(block_config: tuple[int, ...], num_classes: int, options: dict[str, Any]) -> DenseNet:
    return DenseNet(num_classes=num_classes, **{"block_config": block_config, **options})


@register("densenet121", image_size=224, min_image_size=MIN_IMAGE_SIZE)
def densenet121(num_classes: int = 1000, **options: Any) -> DenseNet:
    """DenseNet-121: blocks of (6, 12, 24, 16) layers, growth rate 32 (torchvision's densenet121)."""
    return _densenet((6, 12, 24, 16), num_classes, options)


@register("densenet169", image_size=224, min_image_size=MIN_IMAGE_SIZE)
def densenet169(num_classes: int = 1000, **options: Any) -> DenseNet:
    """DenseNet-169: blocks of (6, 12, 32, 32) layers, growth rate 32 (torchvision's densenet169)."""
    return _densenet((6, 12, 32, 32), num_classes, options)


@register("densenet201", image_size=224, min_image_size=MIN_IMAGE_SIZE)
def densenet201(num_classes: int = 1000, **options: Any) -> DenseNet:
    """DenseNet-201: blocks of (6, 12, 48, 32) layers, growth rate 32 (torchvision's densenet201)."""
    return _densenet((6, 12, 48, 32), num_classes, options)
