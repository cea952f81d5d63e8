"""The ResNet paper's option-A shortcut (identity, subsampled, new channels zero) on real images: it has no
parameters, so a plain and a residual net of one depth carry the same weights, and a block whose branch starts at
zero passes exactly the subsampled, zero-padded input through."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data, transform

from imagenet_jax.models.resnet import ResNet, ResNetBlock, resnet_small


def _photo_features(channels: int = 8) -> np.ndarray:
    """[2, 16, 16, channels] non-negative features cut from a real photo (so relu leaves them unchanged)."""
    image = transform.resize(data.astronaut(), (16, 16 * channels // 3 + 16), anti_aliasing=True)
    planes = [image[:, index:index + 16, index % 3] for index in range(channels)]
    features = np.stack(planes, axis=-1).astype(np.float32)
    return np.stack([features, features[::-1]])


def _parameter_count(model: ResNet) -> int:
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1))))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(variables["params"]))


def test_zero_pad_shortcut_adds_no_parameters_so_plain_and_residual_nets_weigh_the_same():
    options = {"stage_sizes": (3, 3, 3), "stage_widths": (16, 32, 64), "stem_width": 16}
    plain = _parameter_count(resnet_small(residual=False, **options))
    option_a = _parameter_count(resnet_small(residual=True, shortcut="zero_pad", **options))
    option_b = _parameter_count(resnet_small(residual=True, shortcut="projection", **options))
    # Table 6's ResNet-20 on 3-channel CIFAR has 269,722 parameters ("0.27M"); one input channel saves 288.
    assert option_a == plain == 269_722 - 288
    assert option_b - option_a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # two 1x1 projections with their BN


def test_zero_pad_block_passes_the_subsampled_input_with_zero_channels_when_its_branch_is_zero():
    features = jnp.asarray(_photo_features(8))
    block = ResNetBlock(filters=16, strides=2, conv=nn.Conv,
                        norm=functools.partial(nn.BatchNorm, use_running_average=True),
                        project=True, shortcut="zero_pad", zero_init_last_bn=True)
    variables = block.init(jax.random.key(0), features)
    output = np.asarray(block.apply(variables, features))
    assert output.shape == (2, 8, 8, 16)
    np.testing.assert_array_equal(output[..., :8], np.asarray(features)[:, ::2, ::2, :])
    np.testing.assert_array_equal(output[..., 8:], 0.0)
    assert "shortcut_conv" not in variables["params"]


def test_zero_pad_shortcut_refuses_to_shrink_channels():
    block = ResNetBlock(filters=4, strides=1, conv=nn.Conv,
                        norm=functools.partial(nn.BatchNorm, use_running_average=True),
                        project=True, shortcut="zero_pad")
    with pytest.raises(ValueError, match="cannot shrink 8 channels to 4"):
        block.init(jax.random.key(0), jnp.asarray(_photo_features(8)))
