"""ResNet family (He et al. 2015/2016) with the variants papers ablate.

Defaults follow torchvision ("v1.5": stride in the 3x3 conv of the bottleneck) so parameter counts and
weights line up with it. Variant options:
  version:  "v1.5" | "v1" (stride in the first 1x1, the paper's and Keras') | "v2" (pre-activation)
  stem:     "imagenet" (7x7/2 + maxpool) | "deep" (ResNet-C: three 3x3) | "small" (3x3/1, no pool)
            | "small_pool" (3x3/1 then 2x2 max-pool: halves a 28-32 px input cheaply)
  shortcut: where the shape changes: "projection" (1x1 conv stride s: the paper's option B) | "avgpool"
            (ResNet-D: 2x2 avg-pool then 1x1 conv) | "zero_pad" (the paper's option A, used for its CIFAR nets:
            the identity subsampled by the stride, the new channels zeros; no parameters)
  residual: False gives the "plain" network of the paper's Table 2 (no shortcuts at all).
  dropout_rate: dropout before the classifier in training (timm's drop_rate); 0 by default, as published.
  stochastic_depth_rate: drop each residual branch per example in training with a probability rising linearly
            from 0 at the first block to this at the last (timm's drop_path_rate; models/dropout.py).
  conv_init: how convolution kernels are drawn: "he_fan_out" (torchvision's and timm's kaiming-normal, fan-out),
            "he_fan_in" (He et al. 2015, the ResNet paper's own) or "lecun" (flax's default, variance 1/fan-in: half
            the variance, which behind a BatchNorm doubles the effective early learning rate).
  zero_init_last_bn: each residual block starts as the identity ("Bag of Tricks" zero-gamma): the last BatchNorm
            scale of the block is zero (v1/v1.5); v2 blocks end in a convolution, whose kernel is zeroed instead
            (timm's zero_init_last). Only where a shortcut exists: plain blocks (residual=False) ignore it, since
            a zeroed plain block would cut the signal and leave only the head to learn.
Keras parity options (keras.applications ResNet50/101/152 and ResNet50V2; see `KERAS_OPTIONS`):
  conv_bias:              convolutions carry a bias (Keras; in v2 the block convolutions feeding a
                          BatchNorm stay bias-free, as in Keras' ResNetV2)
  stride_in_last_block:   ResNetV2 (Keras) downsamples in the last block of stages 1-3, whose identity
                          shortcut is then subsampled (a 1x1 max-pool), instead of the first block of 2-4
  stem_pool_zero_padding: pad the stem max-pool with zeros (Keras' ZeroPadding2D) instead of -inf; only
                          differs in v2, where the pool sees the un-activated convolution output
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from imagenet_jax.models import conv_lowering, dropout, ghost_batch_norm
from imagenet_jax.models.pool_lowering import max_pool
from imagenet_jax.models.registry import register

VERSIONS = ("v1", "v1.5", "v2")
STEMS = ("imagenet", "deep", "small", "small_pool")
SHORTCUTS = ("projection", "avgpool", "zero_pad")
CONV_INITS = {
    "he_fan_out": nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
    "he_fan_in": nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
    "lecun": nn.initializers.lecun_normal(),
}
# create() options that reproduce keras.applications' ResNet50/101/152 ("v1") and ResNet50V2 ("v2").
KERAS_OPTIONS = {
    "v1": {"version": "v1", "conv_bias": True, "bn_epsilon": 1.001e-5},
    "v2": {
        "version": "v2",
        "conv_bias": True,
        "bn_epsilon": 1.001e-5,
        "stride_in_last_block": True,
        "stem_pool_zero_padding": True,
    },
}


def _padding(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    # Symmetric "same" padding as in PyTorch/Keras-with-ZeroPadding; flax's "SAME" pads stride-2
    # convolutions asymmetrically and would break weight parity.
    return ((kernel // 2, kernel // 2), (kernel // 2, kernel // 2))


class ResNetBlock(nn.Module):
    """Basic block: two 3x3 convolutions (ResNet-18/34)."""

    filters: int
    strides: int
    conv: Any
    norm: Any
    project: bool
    residual: bool = True
    preact: bool = False
    stride_in_first: bool = False  # unused by basic blocks; keeps one block signature
    shortcut: str = "projection"
    groups: int = 1
    width_per_group: int = 64
    zero_init_last_bn: bool = False
    drop_path_rate: float = 0.0  # stochastic depth: probability of dropping this block's branch in training
    deterministic: bool = True  # False in training, when the branch may be dropped

    expansion = 1

    @nn.compact
    def __call__(self, x):
        if self.preact:
            return self._preact(x)
        y = self.conv(self.filters, (3, 3), (self.strides, self.strides), padding=_padding(3))(x)
        y = nn.relu(self.norm()(y))
        y = self.conv(self.filters, (3, 3), padding=_padding(3))(y)
        y = self.norm(scale_init=self._last_scale_init())(y)
        y = self._drop_path(y)
        if self.residual:
            y = y + _shortcut(self, x, self.filters * self.expansion)
        return nn.relu(y)

    def _preact(self, x):
        pre = nn.relu(self.norm()(x))
        shortcut = _shortcut(self, pre if self.project else x, self.filters, normalize=False)
        y = self.conv(self.filters, (3, 3), (self.strides, self.strides), padding=_padding(3), use_bias=False)(pre)
        y = nn.relu(self.norm()(y))
        y = self.conv(self.filters, (3, 3), padding=_padding(3), **self._last_conv_init())(y)
        return self._drop_path(y) + shortcut if self.residual else y

    def _starts_as_identity(self) -> bool:
        # "Bag of Tricks": a residual block whose branch starts at zero is the identity, which eases very
        # large-batch training. Without a shortcut a zero branch would output zeros: never zero-init there.
        return self.zero_init_last_bn and self.residual

    def _last_scale_init(self):
        return nn.initializers.zeros if self._starts_as_identity() else nn.initializers.ones

    def _last_conv_init(self) -> dict:
        # Pre-activation (v2) branches end in a convolution rather than a BatchNorm: zero its kernel instead.
        return {"kernel_init": nn.initializers.zeros} if self._starts_as_identity() else {}

    def _drop_path(self, branch):
        return dropout.drop_path(branch, self.drop_path_rate, self.deterministic)


class BottleneckBlock(ResNetBlock):
    """Bottleneck block: 1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand (ResNet-50+)."""

    expansion = 4

    @nn.compact
    def __call__(self, x):
        width = int(self.filters * (self.width_per_group / 64.0)) * self.groups
        first_strides = (self.strides, self.strides) if self.stride_in_first else (1, 1)
        middle_strides = (1, 1) if self.stride_in_first else (self.strides, self.strides)
        if self.preact:
            pre = nn.relu(self.norm()(x))
            shortcut = _shortcut(self, pre if self.project else x, self.filters * self.expansion, normalize=False)
            # Convolutions feeding a BatchNorm never need a bias (Keras' ResNetV2 omits them too).
            y = self.conv(width, (1, 1), first_strides, use_bias=False)(pre)
            y = nn.relu(self.norm()(y))
            y = self.conv(
                width,
                (3, 3),
                middle_strides,
                padding=_padding(3),
                feature_group_count=self.groups,
                use_bias=False,
            )(y)
            y = nn.relu(self.norm()(y))
            y = self.conv(self.filters * self.expansion, (1, 1), **self._last_conv_init())(y)
            return self._drop_path(y) + shortcut if self.residual else y
        y = self.conv(width, (1, 1), first_strides)(x)
        y = nn.relu(self.norm()(y))
        y = self.conv(width, (3, 3), middle_strides, padding=_padding(3), feature_group_count=self.groups)(y)
        y = nn.relu(self.norm()(y))
        y = self.conv(self.filters * self.expansion, (1, 1))(y)
        y = self.norm(scale_init=self._last_scale_init())(y)
        y = self._drop_path(y)
        if self.residual:
            y = y + _shortcut(self, x, self.filters * self.expansion)
        return nn.relu(y)


def _shortcut(block: ResNetBlock, x, out_features: int, normalize: bool = True):
    """Identity, or where the shape changes a projection (1x1 strided conv, ResNet-D avg-pool + 1x1) or zero padding."""
    strides = block.strides
    if not block.project:
        # Only Keras' ResNetV2 layout strides without projecting: its shortcut is a 1x1 max-pool.
        return x[:, ::strides, ::strides] if strides > 1 else x
    if block.shortcut == "zero_pad":
        # He et al. option A: parameter-free, so a plain and a residual net of one depth have the same weights.
        x = x[:, ::strides, ::strides] if strides > 1 else x
        extra = out_features - x.shape[-1]
        if extra < 0:
            raise ValueError(f"ResNet option shortcut='zero_pad' cannot shrink {x.shape[-1]} channels to "
                             f"{out_features}; use shortcut='projection'")
        return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, extra)))
    if block.shortcut == "avgpool" and strides > 1:
        # ResNet-D: average over the 2x2 window instead of skipping 3/4 of the activations.
        x = nn.avg_pool(x, (strides, strides), (strides, strides), padding="SAME", count_include_pad=False)
        strides = 1
    y = block.conv(out_features, (1, 1), (strides, strides), name="shortcut_conv")(x)
    return block.norm(name="shortcut_bn")(y) if normalize else y


class ResNet(nn.Module):
    """ResNet over NHWC images; returns float32 logits."""

    stage_sizes: Sequence[int]
    block_cls: type[ResNetBlock]
    num_classes: int = 1000
    stage_widths: Sequence[int] = (64, 128, 256, 512)
    stem_width: int = 64
    version: str = "v1.5"
    stem: str = "imagenet"
    shortcut: str = "projection"
    residual: bool = True
    conv_init: str = "he_fan_out"
    zero_init_last_bn: bool = False
    groups: int = 1
    width_per_group: int = 64
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    conv_bias: bool = False
    stride_in_last_block: bool = False
    stem_pool_zero_padding: bool = False
    bn_group_size: int = 0  # > 0: "ghost" BN, statistics over groups of this many examples in training.
    dropout_rate: float = 0.0
    stochastic_depth_rate: float = 0.0
    dtype: Any = jnp.float32

    def __post_init__(self):
        # Checked at construction, so config validation (which builds the model) names a bad option up front.
        _check_choice("version", self.version, VERSIONS)
        _check_choice("stem", self.stem, STEMS)
        _check_choice("shortcut", self.shortcut, SHORTCUTS)
        _check_choice("conv_init", self.conv_init, CONV_INITS)
        if self.bn_group_size < 0:
            raise ValueError(f"ResNet option bn_group_size={self.bn_group_size} must be >= 0 (0: batch statistics)")
        dropout.check_rate("dropout_rate", self.dropout_rate)
        dropout.check_rate("stochastic_depth_rate", self.stochastic_depth_rate)
        if self.stochastic_depth_rate and not self.residual:
            raise ValueError("ResNet option stochastic_depth_rate drops residual branches, which a plain network "
                             "(residual=False) does not have; leave it at 0")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(nn.Conv, use_bias=self.conv_bias, dtype=self.dtype,
                                 kernel_init=CONV_INITS[self.conv_init],
                                 conv_general_dilated=conv_lowering.conv_general_dilated)  # fast small maps on CPU
        norm = ghost_batch_norm.batch_norm(train, self.bn_momentum, self.bn_epsilon, self.dtype, self.bn_group_size)
        preact = self.version == "v2"

        x = x.astype(self.dtype)
        x = self._stem(x, conv, norm, preact)
        in_features = self.stem_width
        drop_path_rates = iter(dropout.stochastic_depth_rates(self.stochastic_depth_rate, sum(self.stage_sizes)))
        for stage, (num_blocks, filters) in enumerate(zip(self.stage_sizes, self.stage_widths, strict=False)):
            for index in range(num_blocks):
                if self.stride_in_last_block:
                    strides = 2 if stage < len(self.stage_sizes) - 1 and index == num_blocks - 1 else 1
                else:
                    strides = 2 if stage > 0 and index == 0 else 1
                out_features = filters * self.block_cls.expansion
                project = in_features != out_features or (strides != 1 and not self.stride_in_last_block)
                x = self.block_cls(
                    filters=filters,
                    strides=strides,
                    conv=conv,
                    norm=norm,
                    project=project,
                    residual=self.residual,
                    preact=preact,
                    stride_in_first=self.version == "v1",
                    shortcut=self.shortcut,
                    groups=self.groups,
                    width_per_group=self.width_per_group,
                    zero_init_last_bn=self.zero_init_last_bn,
                    drop_path_rate=next(drop_path_rates),
                    deterministic=not train,
                    name=f"stage{stage + 1}_block{index + 1}",
                )(x)
                in_features = out_features
        if preact:
            x = nn.relu(norm(name="final_bn")(x))
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
        return x.astype(jnp.float32)

    def _stem(self, x, conv, norm, preact: bool):
        if self.stem == "small_pool":
            x = conv(self.stem_width, (3, 3), padding=_padding(3), name="stem_conv")(x)
            x = nn.relu(norm(name="stem_bn")(x))
            return max_pool(x, (2, 2), (2, 2))
        if self.stem == "small":
            x = conv(self.stem_width, (3, 3), padding=_padding(3), name="stem_conv")(x)
            return x if preact else nn.relu(norm(name="stem_bn")(x))
        if self.stem == "deep":
            half = self.stem_width // 2
            x = conv(half, (3, 3), (2, 2), padding=_padding(3), name="stem_conv1")(x)
            x = nn.relu(norm(name="stem_bn1")(x))
            x = conv(half, (3, 3), padding=_padding(3), name="stem_conv2")(x)
            x = nn.relu(norm(name="stem_bn2")(x))
            x = conv(self.stem_width, (3, 3), padding=_padding(3), name="stem_conv3")(x)
        else:
            x = conv(self.stem_width, (7, 7), (2, 2), padding=_padding(7), name="stem_conv")(x)
        if not preact:
            x = nn.relu(norm(name="stem_bn")(x))
        if self.stem_pool_zero_padding:
            x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            return max_pool(x, (3, 3), (2, 2))
        return max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))


def _check_choice(key: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"ResNet option {key}={value!r} is not one of {', '.join(choices)}")


def _imagenet_resnet(stage_sizes, block_cls, **defaults):
    def factory(num_classes: int = 1000, **options) -> ResNet:
        return ResNet(stage_sizes=stage_sizes, block_cls=block_cls, num_classes=num_classes, **{**defaults, **options})

    return factory


resnet18 = register("resnet18")(_imagenet_resnet((2, 2, 2, 2), ResNetBlock))
resnet34 = register("resnet34")(_imagenet_resnet((3, 4, 6, 3), ResNetBlock))
resnet50 = register("resnet50")(_imagenet_resnet((3, 4, 6, 3), BottleneckBlock))
resnet101 = register("resnet101")(_imagenet_resnet((3, 4, 23, 3), BottleneckBlock))
resnet152 = register("resnet152")(_imagenet_resnet((3, 8, 36, 3), BottleneckBlock))
wide_resnet50_2 = register("wide_resnet50_2")(_imagenet_resnet((3, 4, 6, 3), BottleneckBlock, width_per_group=128))
resnext50_32x4d = register("resnext50_32x4d")(
    _imagenet_resnet((3, 4, 6, 3), BottleneckBlock, groups=32, width_per_group=4)
)


@register("resnet_small", image_size=28)
def resnet_small(
    num_classes: int = 10,
    stage_sizes: Sequence[int] = (1, 1, 1),
    stage_widths: Sequence[int] = (32, 64, 128),
    stem_width: int = 32,
    **options,
) -> ResNet:
    """A ResNet for 28-32 px inputs (Fashion-MNIST, CIFAR): 3x3 stem, no pooling stem, basic blocks."""
    # flax's default init: the default Fashion-MNIST recipe was tuned and measured with it (BENCHMARKS.md).
    options.setdefault("conv_init", "lecun")
    return ResNet(
        stage_sizes=tuple(stage_sizes),
        block_cls=ResNetBlock,
        num_classes=num_classes,
        stage_widths=tuple(stage_widths),
        stem_width=stem_width,
        stem=options.pop("stem", "small"),
        **options,
    )


@register("resnet20", image_size=32)
def resnet20(num_classes: int = 10, **options) -> ResNet:
    """He et al.'s CIFAR ResNet-20 (3 stages of 3 basic blocks, widths 16/32/64), projection shortcuts."""
    return resnet_small(num_classes, **{"stage_sizes": (3, 3, 3), "stage_widths": (16, 32, 64), "stem_width": 16,
                                        "conv_init": "he_fan_in", **options})
