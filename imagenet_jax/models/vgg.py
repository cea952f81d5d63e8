"""VGG (Simonyan & Zisserman 2014): torchvision's vgg11..vgg19(_bn) and the paper's configurations A-E.

A stage is a list of convolution kernel sizes (3, or 1 for configuration C's 1x1 layers) followed by a 2x2
max-pool. Parameters are named like Keras' VGG16/19 (`block1_conv1`, `fc1`, `fc2`) so both port by name;
the classifier is `head`. Layout follows torchvision: AdaptiveAvgPool(7x7), Linear-ReLU-Dropout twice.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.models import conv_lowering, dropout
from imagenet_jax.models.layers import adaptive_avg_pool, local_response_norm, symmetric_padding
from imagenet_jax.models.pool_lowering import max_pool
from imagenet_jax.models.registry import register

Stage = tuple[int, tuple[int, ...]]  # (features, kernel size of each convolution)

# Table 1 of the paper. "A" is torchvision's vgg11, "B" vgg13, "D" vgg16, "E" vgg19.
CONFIGURATIONS: dict[str, tuple[Stage, ...]] = {
    "A": ((64, (3,)), (128, (3,)), (256, (3, 3)), (512, (3, 3)), (512, (3, 3))),
    "B": ((64, (3, 3)), (128, (3, 3)), (256, (3, 3)), (512, (3, 3)), (512, (3, 3))),
    "C": ((64, (3, 3)), (128, (3, 3)), (256, (3, 3, 1)), (512, (3, 3, 1)), (512, (3, 3, 1))),
    "D": ((64, (3, 3)), (128, (3, 3)), (256, (3, 3, 3)), (512, (3, 3, 3)), (512, (3, 3, 3))),
    "E": ((64, (3, 3)), (128, (3, 3)), (256, (3, 3, 3, 3)), (512, (3, 3, 3, 3)), (512, (3, 3, 3, 3))),
}


class VGG(nn.Module):
    """VGG over NHWC images; returns float32 logits. Dropout needs `rngs={'dropout': key}` when training."""

    stages: Sequence[Stage]
    num_classes: int = 1000
    batch_norm: bool = False
    lrn: bool = False  # configuration A-LRN: LRN after the first convolution
    dropout_rate: float = 0.5  # after fc1 and fc2, as the paper and torchvision
    classifier_width: int = 4096  # units of fc1 and fc2
    pooled_size: int = 7  # the adaptive average pool's output side before the classifier
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32

    def __post_init__(self):
        dropout.check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    supports_dense_eval = True  # __call__(..., dense=True): the paper's fully-convolutional test (evaluators)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, dense: bool = False) -> jax.Array:
        """Logits of NHWC images. dense=True is the paper's dense evaluation: the FC layers slide over the feature
        map as convolutions (fc1 a pooled_size x pooled_size conv, fc2 and head 1x1) and the class-score map is
        averaged spatially, so a larger image gives the scores of every window; at the training size it equals
        the plain call."""
        # torchvision's initialisation: He-normal (fan-out) convolutions, N(0, 0.01) linear layers.
        conv = functools.partial(
            nn.Conv, kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"), dtype=self.dtype,
            conv_general_dilated=conv_lowering.conv_general_dilated,  # small maps as patches + matmul on CPU
        )
        linear = functools.partial(nn.Dense, kernel_init=nn.initializers.normal(0.01), dtype=self.dtype)
        x = x.astype(self.dtype)
        for stage, (features, kernels) in enumerate(self.stages, start=1):
            for index, kernel in enumerate(kernels, start=1):
                name = f"block{stage}_conv{index}"
                x = conv(features, (kernel, kernel), padding=symmetric_padding(kernel), name=name)(x)
                if self.batch_norm:
                    x = nn.BatchNorm(
                        use_running_average=not train,
                        momentum=self.bn_momentum,
                        epsilon=self.bn_epsilon,
                        dtype=self.dtype,
                        name=f"block{stage}_bn{index}",
                    )(x)
                x = nn.relu(x)
                if self.lrn and stage == 1 and index == 1:
                    x = local_response_norm(x)
            x = max_pool(x, (2, 2), (2, 2))
        size = self.pooled_size
        if dense and min(x.shape[1:3]) > size:
            x = sliding_windows(x, size)  # [N, h, w, size*size*C]: fc1 over each window is fc1 as a conv
        else:
            x = adaptive_avg_pool(x, (size, size))
            x = x.reshape(x.shape[0], -1)
        x = nn.relu(linear(self.classifier_width, name="fc1")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.relu(linear(self.classifier_width, name="fc2")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = linear(self.num_classes, name="head")(x)
        if x.ndim == 4:
            x = jnp.mean(x, axis=(1, 2))  # the class-score map, sum-pooled (averaged) as in the paper
        return x.astype(jnp.float32)


def sliding_windows(x: jax.Array, size: int) -> jax.Array:
    """Every size x size window of NHWC `x` (stride 1), flattened in (row, column, channel) order like the
    classifier's reshape, so a Dense layer over the last axis is the convolution with its kernel."""
    height, width = x.shape[1] - size + 1, x.shape[2] - size + 1
    windows = [x[:, i:i + height, j:j + width] for i in range(size) for j in range(size)]
    return jnp.concatenate(windows, axis=-1)


def _vgg_factory(configuration: str, **defaults: Any):
    def factory(num_classes: int = 1000, **options: Any) -> VGG:
        return VGG(stages=CONFIGURATIONS[configuration], num_classes=num_classes, **{**defaults, **options})

    factory.__doc__ = f"VGG configuration {configuration}; options: batch_norm, lrn, dropout_rate, dtype."
    return factory


for _letter, _depth in (("A", 11), ("B", 13), ("D", 16), ("E", 19)):
    register(f"vgg{_depth}")(_vgg_factory(_letter))
    register(f"vgg{_depth}_bn")(_vgg_factory(_letter, batch_norm=True))
for _letter in "ABCDE":
    register(f"vgg_{_letter.lower()}")(_vgg_factory(_letter))
register("vgg_a_lrn")(_vgg_factory("A", lrn=True))


@register("vgg_small", image_size=28)
def vgg_small(num_classes: int = 10, **options: Any) -> VGG:
    """A VGG-style net for 28-32 px inputs (ablations on this CPU): 3 stages of two 3x3 convs (32/64/128), a 3x3
    pool and two 256-unit FC layers; options as the other VGGs (batch_norm, dropout_rate, ...)."""
    stages = ((32, (3, 3)), (64, (3, 3)), (128, (3, 3)))
    return VGG(stages=stages, num_classes=num_classes, **{"classifier_width": 256, "pooled_size": 3, **options})
