"""The CPU max-pool as a max of strided slices equals nn.max_pool forward, and its gradient where maxima are unique."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.models import conv_lowering, layers, pool_lowering


@pytest.fixture(autouse=True)
def restore_mode():
    yield
    conv_lowering.set_cpu_conv_lowering("auto")


CASES = [  # (input shape, window, strides, padding)
    ((2, 28, 28, 3), (2, 2), (2, 2), "VALID"),  # the default job's stem pool
    ((2, 9, 9, 4), (2, 2), (2, 2), "VALID"),  # odd size: the last row and column dropped
    ((2, 15, 15, 4), (3, 3), (2, 2), "VALID"),  # AlexNet / Inception
    ((2, 16, 16, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),  # ResNet's ImageNet stem
    ((2, 7, 6, 4), (3, 3), (1, 1), "SAME"),
    ((2, 11, 11, 4), (3, 2), (2, 1), ((0, 1), (2, 0))),
]


def _both(x, window, strides, padding):
    with conv_lowering.conv_lowering_mode("auto"):
        ours = jax.jit(lambda x: pool_lowering.max_pool(x, window, strides, padding))
        ours_grad = jax.jit(jax.grad(lambda x: jnp.sum(pool_lowering.max_pool(x, window, strides, padding) ** 3)))
        ours_out, ours_dx = ours(x), ours_grad(x)
    reference_out = nn.max_pool(x, window, strides, padding=padding)
    reference_dx = jax.grad(lambda x: jnp.sum(nn.max_pool(x, window, strides, padding=padding) ** 3))(x)
    return (ours_out, ours_dx), (reference_out, reference_dx)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]}-{case[1]}-{case[2]}-{case[3]}")
def test_slices_equal_reduce_window_forward_and_gradient_without_ties(case):
    shape, window, strides, padding = case
    x = jax.random.normal(jax.random.key(0), shape)  # continuous values: every window has one maximum
    (out, dx), (reference_out, reference_dx) = _both(x, window, strides, padding)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(reference_out))
    np.testing.assert_allclose(np.asarray(dx), np.asarray(reference_dx), rtol=1e-6, atol=1e-6)


def test_tied_maxima_share_the_gradient_that_reduce_window_gives_the_first():
    x = jnp.ones((1, 4, 4, 1))  # every window is all ties
    (out, dx), (reference_out, reference_dx) = _both(x, (2, 2), (2, 2), "VALID")
    np.testing.assert_array_equal(np.asarray(out), np.asarray(reference_out))
    assert np.count_nonzero(np.asarray(reference_dx)) == 4  # one position per window
    assert np.count_nonzero(np.asarray(dx)) == 16  # spread over the window
    np.testing.assert_allclose(np.asarray(dx).reshape(2, 2, 2, 2).sum(axis=(1, 3)),
                               np.asarray(reference_dx).reshape(2, 2, 2, 2).sum(axis=(1, 3)))  # same total


def test_cpu_auto_has_no_reduce_window_and_xla_mode_or_other_backends_keep_it(monkeypatch):
    def hlo(mode):
        with conv_lowering.conv_lowering_mode(mode):
            fn = jax.grad(lambda x: jnp.sum(pool_lowering.max_pool(x, (2, 2), (2, 2))))
            return jax.jit(fn).lower(jnp.ones((2, 8, 8, 4))).as_text()

    assert "reduce_window" not in hlo("auto") and "select_and_scatter" not in hlo("auto")
    assert "select_and_scatter" in hlo("xla")  # exports: XLA's own pooling, as for convolutions
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert "select_and_scatter" in hlo("auto")


def test_integer_inputs_pad_with_the_lowest_value():
    x = jnp.arange(2 * 5 * 5 * 1, dtype=jnp.int32).reshape(2, 5, 5, 1) - 100  # all negative near the corner
    out = pool_lowering.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))))


def test_ceil_mode_pool_of_googlenet_matches_reduce_window():
    x = jax.random.normal(jax.random.key(1), (2, 14, 14, 4))
    with conv_lowering.conv_lowering_mode("auto"):
        ours = layers.max_pool_ceil(x, 3, 2)
    with conv_lowering.conv_lowering_mode("xla"):
        reference = layers.max_pool_ceil(x, 3, 2)
    assert ours.shape == reference.shape == (2, 7, 7, 4)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))
