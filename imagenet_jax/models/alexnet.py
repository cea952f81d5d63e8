"""AlexNet in torchvision's single-tower layout ("One weird trick", Krizhevsky 2014).

Channels 64-192-384-256-256, AdaptiveAvgPool to 6x6, dropout before each hidden fully connected layer.
`lrn=True` adds the 2012 paper's local response normalisation after the first two convolutions.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.models import conv_lowering, dropout
from imagenet_jax.models.layers import adaptive_avg_pool, local_response_norm, symmetric_padding, torch_linear_init
from imagenet_jax.models.pool_lowering import max_pool
from imagenet_jax.models.registry import register

# (features, kernel, stride, max-pool after it)
_CONVOLUTIONS = ((64, 11, 4, True), (192, 5, 1, True), (384, 3, 1, False), (256, 3, 1, False), (256, 3, 1, True))


class AlexNet(nn.Module):
    """AlexNet over NHWC images; returns float32 logits. Dropout needs `rngs={'dropout': key}` when training."""

    num_classes: int = 1000
    lrn: bool = False
    dropout_rate: float = 0.5  # before fc6 and fc7, as the paper and torchvision
    dtype: Any = jnp.float32

    def __post_init__(self):
        dropout.check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = functools.partial(nn.Conv, kernel_init=torch_linear_init(), dtype=self.dtype,
                                 conv_general_dilated=conv_lowering.conv_general_dilated)  # fast small maps on CPU
        dense = functools.partial(nn.Dense, kernel_init=torch_linear_init(), dtype=self.dtype)
        x = x.astype(self.dtype)
        for index, (features, kernel, stride, pool) in enumerate(_CONVOLUTIONS):
            # torchvision pads the 11x11/4 convolution by 2, the others by kernel // 2.
            padding = ((2, 2), (2, 2)) if index == 0 else symmetric_padding(kernel)
            x = conv(features, (kernel, kernel), (stride, stride), padding=padding, name=f"conv{index + 1}")(x)
            x = nn.relu(x)
            if self.lrn and index < 2:
                x = local_response_norm(x)
            if pool:
                x = max_pool(x, (3, 3), (2, 2))
        x = adaptive_avg_pool(x, (6, 6))
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.relu(dense(4096, name="fc6")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.relu(dense(4096, name="fc7")(x))
        x = dense(self.num_classes, name="head")(x)
        return x.astype(jnp.float32)


@register("alexnet", min_image_size=63)
def alexnet(num_classes: int = 1000, **options: Any) -> AlexNet:
    """torchvision's AlexNet; options: lrn, dropout_rate, dtype."""
    return AlexNet(num_classes=num_classes, **options)
