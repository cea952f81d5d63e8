"""The PyTorch-compatible building blocks match straightforward reference computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.models import conv_lowering, layers


def reference_adaptive_avg_pool(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    _, height, width, _ = x.shape
    rows = []
    for i in range(out_h):
        top, bottom = (i * height) // out_h, -(-((i + 1) * height) // out_h)
        cols = []
        for j in range(out_w):
            left, right = (j * width) // out_w, -(-((j + 1) * width) // out_w)
            cols.append(x[:, top:bottom, left:right].mean(axis=(1, 2)))
        rows.append(np.stack(cols, axis=1))
    return np.stack(rows, axis=1)


@pytest.mark.parametrize(("size", "target"), [(13, 6), (2, 6), (1, 7), (14, 4), (7, 7), (9, 1)])
def test_adaptive_avg_pool_matches_pytorch_bins(size, target):
    x = np.random.default_rng(0).standard_normal((2, size, size + 1, 3)).astype(np.float32)
    expected = reference_adaptive_avg_pool(x, target, target)
    np.testing.assert_allclose(
        layers.adaptive_avg_pool(jnp.asarray(x), (target, target)), expected, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    ("size", "window", "stride", "padding", "expected"),
    [(112, 3, 2, 0, 56), (14, 2, 2, 0, 7), (7, 3, 2, 0, 3), (15, 3, 2, 0, 7), (8, 3, 1, 1, 8)],
)
def test_max_pool_ceil_output_size(size, window, stride, padding, expected):
    x = jnp.zeros((1, size, size, 1))
    assert layers.max_pool_ceil(x, window, stride, padding).shape == (1, expected, expected, 1)


def test_max_pool_ceil_keeps_the_partial_last_window():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)  # windows 3/2 ceil: rows {0..2}, {2..3}
    pooled = layers.max_pool_ceil(x, 3, 2)[0, :, :, 0]
    np.testing.assert_array_equal(pooled, [[10.0, 11.0], [14.0, 15.0]])


def test_local_response_norm_matches_the_paper_formula():
    x = np.random.default_rng(1).standard_normal((1, 2, 2, 7)).astype(np.float32)
    squares = np.pad(x**2, ((0, 0), (0, 0), (0, 0), (2, 2)))
    window_sums = np.stack([squares[..., c : c + 5].sum(-1) for c in range(7)], axis=-1)
    expected = x / (2.0 + 1e-4 * window_sums) ** 0.75
    np.testing.assert_allclose(layers.local_response_norm(jnp.asarray(x)), expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["alexnet", "vgg11_bn", "googlenet", "inception_v3", "resnet50"])
def test_bfloat16_compute_keeps_float32_params_stats_and_logits(name):
    model = models.create(name, dtype=jnp.bfloat16)
    size = models.default_image_size(name)
    images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    with conv_lowering.conv_lowering_mode("xla"):  # XLA's convolutions: the CPU patches lowering turns them to dots
        forward = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, images)
    assert forward.out_avals[0].dtype == jnp.float32
    convolutions = list(_equations(forward.jaxpr, "conv_general_dilated"))
    assert convolutions
    assert all(e.invars[0].aval.dtype == e.invars[1].aval.dtype == jnp.bfloat16 for e in convolutions)


def _equations(jaxpr, primitive: str):
    """Equations of `primitive` in a jaxpr and the jaxprs nested in it (jit, custom_jvp, ...)."""
    for equation in jaxpr.eqns:
        if equation.primitive.name == primitive:
            yield equation
        for value in equation.params.values():
            nested = getattr(value, "jaxpr", value)
            if hasattr(nested, "eqns"):
                yield from _equations(nested, primitive)


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError):
        models.create("vgg16", batchnorm=True)
