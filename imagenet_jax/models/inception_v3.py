"""Inception-v3 (Szegedy et al. 2015) at 299 px, in torchvision's layout and naming (`Mixed_5b`, `branch1x1`, ...).

Outputs: logits, float32. With `aux_logits=True` (the default, as torchvision's weights include the head) and
`train=True` the model returns `(logits, aux_logits)`; the train step weights the auxiliary loss by the
`aux_loss_weight` option, 0.4 by default as in torchvision's reference recipe. In eval mode only logits are
returned. The auxiliary head needs a 17x17 Mixed_6e map, i.e. 299 px input; auxiliary parameters are created
at `init` even when `train=False` (so init at 299 px, or pass `aux_logits=False`).
Keras' InceptionV3 averages pooled borders over in-bounds pixels only: `avg_pool_count_include_pad=False`.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_jax.models import dropout
from imagenet_jax.models.layers import ConvBNReLU, torchvision_input_transform, truncated_normal
from imagenet_jax.models.outputs import check_auxiliary_loss_weight
from imagenet_jax.models.pool_lowering import max_pool
from imagenet_jax.models.registry import register

AUX_LOSS_WEIGHT = 0.4  # torchvision's reference recipe (references/classification/train.py)
_SAME_1 = ((1, 1), (1, 1))
_ROW_7 = ((0, 0), (3, 3))  # padding of a 1x7 kernel
_COLUMN_7 = ((3, 3), (0, 0))  # padding of a 7x1 kernel
_ROW_3 = ((0, 0), (1, 1))
_COLUMN_3 = ((1, 1), (0, 0))


class _Block(nn.Module):
    """Base of the Mixed blocks: holds the conv factory and the pooling convention."""

    conv: Any
    avg_pool_count_include_pad: bool = True

    def pool_branch(self, x: jax.Array) -> jax.Array:
        return nn.avg_pool(x, (3, 3), (1, 1), padding=_SAME_1, count_include_pad=self.avg_pool_count_include_pad)


class InceptionA(_Block):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg-pool-1x1."""

    pool_features: int = 32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = self.conv
        branch1x1 = conv(64, (1, 1), name="branch1x1")(x, train)
        branch5x5 = conv(48, (1, 1), name="branch5x5_1")(x, train)
        branch5x5 = conv(64, (5, 5), padding=((2, 2), (2, 2)), name="branch5x5_2")(branch5x5, train)
        double3x3 = conv(64, (1, 1), name="branch3x3dbl_1")(x, train)
        double3x3 = conv(96, (3, 3), padding=_SAME_1, name="branch3x3dbl_2")(double3x3, train)
        double3x3 = conv(96, (3, 3), padding=_SAME_1, name="branch3x3dbl_3")(double3x3, train)
        pool = conv(self.pool_features, (1, 1), name="branch_pool")(self.pool_branch(x), train)
        return jnp.concatenate([branch1x1, branch5x5, double3x3, pool], axis=-1)


class InceptionB(_Block):
    """35 -> 17 reduction: 3x3/2 | 1x1-3x3-3x3/2 | max-pool/2."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = self.conv
        branch3x3 = conv(384, (3, 3), strides=2, name="branch3x3")(x, train)
        double3x3 = conv(64, (1, 1), name="branch3x3dbl_1")(x, train)
        double3x3 = conv(96, (3, 3), padding=_SAME_1, name="branch3x3dbl_2")(double3x3, train)
        double3x3 = conv(96, (3, 3), strides=2, name="branch3x3dbl_3")(double3x3, train)
        pool = max_pool(x, (3, 3), (2, 2))
        return jnp.concatenate([branch3x3, double3x3, pool], axis=-1)


class InceptionC(_Block):
    """17x17 block with factorised 7x7 convolutions (1x7 and 7x1)."""

    channels_7x7: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv, width = self.conv, self.channels_7x7
        branch1x1 = conv(192, (1, 1), name="branch1x1")(x, train)
        branch7x7 = conv(width, (1, 1), name="branch7x7_1")(x, train)
        branch7x7 = conv(width, (1, 7), padding=_ROW_7, name="branch7x7_2")(branch7x7, train)
        branch7x7 = conv(192, (7, 1), padding=_COLUMN_7, name="branch7x7_3")(branch7x7, train)
        double7x7 = conv(width, (1, 1), name="branch7x7dbl_1")(x, train)
        double7x7 = conv(width, (7, 1), padding=_COLUMN_7, name="branch7x7dbl_2")(double7x7, train)
        double7x7 = conv(width, (1, 7), padding=_ROW_7, name="branch7x7dbl_3")(double7x7, train)
        double7x7 = conv(width, (7, 1), padding=_COLUMN_7, name="branch7x7dbl_4")(double7x7, train)
        double7x7 = conv(192, (1, 7), padding=_ROW_7, name="branch7x7dbl_5")(double7x7, train)
        pool = conv(192, (1, 1), name="branch_pool")(self.pool_branch(x), train)
        return jnp.concatenate([branch1x1, branch7x7, double7x7, pool], axis=-1)


class InceptionD(_Block):
    """17 -> 8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max-pool/2."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = self.conv
        branch3x3 = conv(192, (1, 1), name="branch3x3_1")(x, train)
        branch3x3 = conv(320, (3, 3), strides=2, name="branch3x3_2")(branch3x3, train)
        branch7x7 = conv(192, (1, 1), name="branch7x7x3_1")(x, train)
        branch7x7 = conv(192, (1, 7), padding=_ROW_7, name="branch7x7x3_2")(branch7x7, train)
        branch7x7 = conv(192, (7, 1), padding=_COLUMN_7, name="branch7x7x3_3")(branch7x7, train)
        branch7x7 = conv(192, (3, 3), strides=2, name="branch7x7x3_4")(branch7x7, train)
        pool = max_pool(x, (3, 3), (2, 2))
        return jnp.concatenate([branch3x3, branch7x7, pool], axis=-1)


class InceptionE(_Block):
    """8x8 block with expanded filter banks (parallel 1x3 and 3x1)."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = self.conv
        branch1x1 = conv(320, (1, 1), name="branch1x1")(x, train)
        branch3x3 = conv(384, (1, 1), name="branch3x3_1")(x, train)
        branch3x3 = jnp.concatenate(
            [
                conv(384, (1, 3), padding=_ROW_3, name="branch3x3_2a")(branch3x3, train),
                conv(384, (3, 1), padding=_COLUMN_3, name="branch3x3_2b")(branch3x3, train),
            ],
            axis=-1,
        )
        double3x3 = conv(448, (1, 1), name="branch3x3dbl_1")(x, train)
        double3x3 = conv(384, (3, 3), padding=_SAME_1, name="branch3x3dbl_2")(double3x3, train)
        double3x3 = jnp.concatenate(
            [
                conv(384, (1, 3), padding=_ROW_3, name="branch3x3dbl_3a")(double3x3, train),
                conv(384, (3, 1), padding=_COLUMN_3, name="branch3x3dbl_3b")(double3x3, train),
            ],
            axis=-1,
        )
        pool = conv(192, (1, 1), name="branch_pool")(self.pool_branch(x), train)
        return jnp.concatenate([branch1x1, branch3x3, double3x3, pool], axis=-1)


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier on the 17x17 map: 5x5/3 avg-pool, 1x1 conv 128, 5x5 conv 768, FC."""

    num_classes: int
    conv: Any
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.avg_pool(x, (5, 5), (3, 3))
        x = self.conv(128, (1, 1), name="conv0")(x, train)
        x = self.conv(768, (5, 5), kernel_init=truncated_normal(0.01), name="conv1")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, kernel_init=truncated_normal(0.001), dtype=self.dtype, name="head")(x)


class InceptionV3(nn.Module):
    """Inception-v3 over NHWC images (see the module docstring for what is returned)."""

    num_classes: int = 1000
    aux_logits: bool = True
    transform_input: bool = False  # True for torchvision's ported weights (they expect [-1, 1] inputs)
    avg_pool_count_include_pad: bool = True  # False reproduces Keras' border averaging
    dropout_rate: float = 0.5  # torchvision's (TF-slim's reference: 0.2)
    aux_loss_weight: float = AUX_LOSS_WEIGHT  # read by the train step; used only with aux_logits=True
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32

    def __post_init__(self):
        check_auxiliary_loss_weight(self.aux_loss_weight)
        dropout.check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
        conv = functools.partial(
            ConvBNReLU,
            kernel_init=truncated_normal(0.1),
            bn_epsilon=1e-3,
            bn_momentum=self.bn_momentum,
            dtype=self.dtype,
        )
        block = {"conv": conv, "avg_pool_count_include_pad": self.avg_pool_count_include_pad}
        x = x.astype(self.dtype)
        if self.transform_input:
            x = torchvision_input_transform(x)
        x = conv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x, train)
        x = conv(32, (3, 3), name="Conv2d_2a_3x3")(x, train)
        x = conv(64, (3, 3), padding=_SAME_1, name="Conv2d_2b_3x3")(x, train)
        x = max_pool(x, (3, 3), (2, 2))
        x = conv(80, (1, 1), name="Conv2d_3b_1x1")(x, train)
        x = conv(192, (3, 3), name="Conv2d_4a_3x3")(x, train)
        x = max_pool(x, (3, 3), (2, 2))
        x = InceptionA(**block, pool_features=32, name="Mixed_5b")(x, train)
        x = InceptionA(**block, pool_features=64, name="Mixed_5c")(x, train)
        x = InceptionA(**block, pool_features=64, name="Mixed_5d")(x, train)
        x = InceptionB(**block, name="Mixed_6a")(x, train)
        x = InceptionC(**block, channels_7x7=128, name="Mixed_6b")(x, train)
        x = InceptionC(**block, channels_7x7=160, name="Mixed_6c")(x, train)
        x = InceptionC(**block, channels_7x7=160, name="Mixed_6d")(x, train)
        x = InceptionC(**block, channels_7x7=192, name="Mixed_6e")(x, train)
        aux = None
        # Build the auxiliary head during init too, so `init(..., train=False)` yields trainable variables.
        if self.aux_logits and (train or self.is_initializing()):
            aux = AuxiliaryHead(self.num_classes, conv, self.dtype, name="AuxLogits")(x, train).astype(jnp.float32)
        x = InceptionD(**block, name="Mixed_7a")(x, train)
        x = InceptionE(**block, name="Mixed_7b")(x, train)
        x = InceptionE(**block, name="Mixed_7c")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        logits = nn.Dense(self.num_classes, kernel_init=truncated_normal(0.1), dtype=self.dtype, name="head")(x)
        logits = logits.astype(jnp.float32)
        if self.aux_logits and train:
            return logits, aux
        return logits


@register("inception_v3", image_size=299, min_image_size=75)
def inception_v3(num_classes: int = 1000, **options: Any) -> InceptionV3:
    """Inception-v3; options: aux_logits, aux_loss_weight, transform_input, avg_pool_count_include_pad, dropout_rate."""
    return InceptionV3(num_classes=num_classes, **options)
