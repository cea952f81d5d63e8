"""The CPU patches + matmul lowering equals nn.Conv (forward and gradients), is chosen by shape, never off CPU."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.config.base import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.models import conv_lowering


@pytest.fixture(autouse=True)
def restore_mode():
    yield
    conv_lowering.set_cpu_conv_lowering("auto")


CASES = [  # (input shape, features, kernel, strides, padding, use_bias)
    ((2, 4, 4, 32), 16, (3, 3), (1, 1), ((1, 1), (1, 1)), False),
    ((2, 7, 7, 8), 12, (3, 3), (2, 2), ((1, 1), (1, 1)), True),
    ((2, 8, 8, 16), 8, (1, 1), (2, 2), "VALID", False),
    ((2, 9, 9, 3), 8, (7, 7), (2, 2), ((3, 3), (3, 3)), False),
    ((2, 5, 6, 4), 4, (3, 2), (1, 1), "SAME", True),
    ((2, 6, 6, 4), 4, (3, 3), (2, 2), "SAME", False),
]


def _forward_and_grads(mode: str, shape, features, kernel, strides, padding, use_bias):
    conv_lowering.set_cpu_conv_lowering(mode)
    conv = nn.Conv(features, kernel, strides, padding=padding, use_bias=use_bias,
                   conv_general_dilated=conv_lowering.conv_general_dilated)
    x = jax.random.normal(jax.random.key(0), shape)
    params = conv.init(jax.random.key(1), x)

    def loss(params, x):
        y = conv.apply(params, x)
        return jnp.sum(jnp.sin(y)), y

    (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, x)
    reference = nn.Conv(features, kernel, strides, padding=padding, use_bias=use_bias)
    (_, y_ref), grads_ref = jax.jit(jax.value_and_grad(
        lambda p, x: (jnp.sum(jnp.sin(reference.apply(p, x))), reference.apply(p, x)),
        argnums=(0, 1), has_aux=True))(params, x)
    return (y, grads), (y_ref, grads_ref)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0][1]}px_k{c[2][0]}x{c[2][1]}_s{c[3][0]}_{c[4]!s:.5}"
                                             for c in CASES])
def test_patches_lowering_equals_nn_conv_forward_and_gradients(case):
    (y, grads), (y_ref, grads_ref) = _forward_and_grads("patches", *case)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _hlo(mode: str, size: int, channels: int) -> str:
    conv_lowering.set_cpu_conv_lowering(mode)
    conv = nn.Conv(channels, (3, 3), padding=((1, 1), (1, 1)), conv_general_dilated=conv_lowering.conv_general_dilated)
    x = jnp.ones((1, size, size, channels))
    params = jax.eval_shape(conv.init, jax.random.key(0), x)
    return jax.jit(conv.apply).lower(params, x).as_text()


def test_auto_takes_patches_for_small_maps_and_xla_for_large_ones():
    assert "convolution" not in _hlo("auto", 2, 64)  # 2x2 maps, 64 channels: one dot
    assert "convolution" in _hlo("auto", 16, 32)  # 32 channels on 16x16 maps stay XLA convolutions
    assert "convolution" in _hlo("auto", 8, 4)  # too few channels for the matmul to win
    # ...except a grey or RGB stem with a kernel up to 3x3, whose XLA weight gradient is slow (issue 28)
    assert conv_lowering.uses_patches((256, 28, 28, 1), (3, 3, 1, 32), 28 * 28, mode="auto", backend="cpu")
    assert conv_lowering.uses_patches((128, 32, 32, 3), (3, 3, 3, 16), 32 * 32, mode="auto", backend="cpu")
    assert not conv_lowering.uses_patches((32, 128, 128, 3), (7, 7, 3, 64), 64 * 64, mode="auto", backend="cpu")
    assert "convolution" not in _hlo("auto", 16, 64)  # 64+ channels: patches at every map size
    # a patches tensor of 462M elements (batch 256, 56x56, 3x3x64) would cost more memory than it saves time
    assert not conv_lowering.uses_patches((256, 56, 56, 64), (3, 3, 64, 64), 56 * 56, mode="auto", backend="cpu")


def test_xla_mode_turns_the_lowering_off():
    assert "convolution" in _hlo("xla", 2, 64)
    assert "convolution" not in _hlo("patches", 32, 64)


def test_never_lowered_on_gpu_or_tpu(monkeypatch):
    for backend in ("gpu", "tpu"):
        monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
        assert "convolution" in _hlo("patches", 2, 64)
        assert not conv_lowering.uses_patches((1, 2, 2, 64), (3, 3, 64, 64), 4, mode="auto", backend=backend)


def test_resnet18_params_and_outputs_are_the_same_under_both_lowerings():
    model = models.create("resnet18", num_classes=10)
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    conv_lowering.set_cpu_conv_lowering("xla")
    variables = model.init(jax.random.key(1), x)
    logits_xla = jax.jit(model.apply)(variables, x)
    conv_lowering.set_cpu_conv_lowering("patches")
    variables_patches = model.init(jax.random.key(1), x)
    assert jax.tree.structure(variables_patches) == jax.tree.structure(variables)  # checkpoints/converters unchanged
    np.testing.assert_allclose(jax.jit(model.apply)(variables, x), logits_xla, rtol=1e-4, atol=1e-4)


def test_config_rejects_an_unknown_lowering_naming_the_key():
    config = get_base_config()
    config.cpu_conv_lowering = "fast"
    with pytest.raises(ConfigError, match="config.cpu_conv_lowering"):
        validate_config(config)
