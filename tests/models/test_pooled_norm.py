"""BatchNorm -> ReLU -> max-pool computed pool-first equals the layers in their order: values, statistics, gradients."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax.models import conv_lowering, pooled_norm, registry


@pytest.fixture(autouse=True)
def restore_mode():
    yield
    conv_lowering.set_cpu_conv_lowering("auto")


class _Unfused(nn.Module):
    window: tuple
    strides: tuple
    padding: object
    train: bool

    @nn.compact
    def __call__(self, x):
        x = nn.BatchNorm(use_running_average=not self.train, momentum=0.9, epsilon=1e-5, name="bn")(x)
        return nn.max_pool(nn.relu(x), self.window, self.strides, padding=self.padding)


class _Fused(_Unfused):
    @nn.compact
    def __call__(self, x):
        return pooled_norm.BatchNormReLUMaxPool(self.window, self.strides, self.padding, not self.train,
                                                momentum=0.9, epsilon=1e-5, name="bn")(x)


CASES = [((4, 28, 28, 8), (2, 2), (2, 2), "VALID"),  # the default job's stem
         ((2, 16, 16, 8), (3, 3), (2, 2), ((1, 1), (1, 1)))]  # ResNet's ImageNet stem


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", CASES, ids=["2x2_valid", "3x3_pad1"])
def test_pool_first_gives_identical_values_statistics_and_gradients_with_negative_scales(case, train):
    shape, window, strides, padding = case
    x = jax.random.normal(jax.random.key(0), shape) * 3 + 1  # continuous: every window has one maximum
    fused, unfused = _Fused(window, strides, padding, train), _Unfused(window, strides, padding, train)
    variables = unfused.init(jax.random.key(1), x)
    assert jax.tree.structure(fused.init(jax.random.key(1), x)) == jax.tree.structure(variables)
    features = shape[-1]
    # Half the channels with a negative scale (the min-pool path), and non-trivial running statistics for eval.
    variables = {"params": {"bn": {"scale": jnp.linspace(-1.5, 1.5, features),
                                   "bias": jnp.linspace(-0.3, 0.4, features)}},
                 "batch_stats": {"bn": {"mean": jnp.linspace(-1, 2, features), "var": jnp.linspace(0.5, 4, features)}}}
    cotangent = jax.random.normal(jax.random.key(2), unfused.apply(variables, x, mutable=["batch_stats"])[0].shape)

    def run(module):
        def loss(params, x):
            out, state = module.apply({**variables, "params": params}, x, mutable=["batch_stats"])
            return jnp.sum(out * cotangent), (out, state)
        with conv_lowering.conv_lowering_mode("auto"):
            (_, (out, state)), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
                variables["params"], x)
        return out, state, grads

    out, state, (grad_params, grad_x) = run(fused)
    reference_out, reference_state, (reference_grad_params, reference_grad_x) = run(unfused)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(reference_out))
    assert float(jnp.mean(out > 0)) > 0.2  # the comparison is not all zeros
    for key in ("mean", "var"):
        np.testing.assert_allclose(state["batch_stats"]["bn"][key], reference_state["batch_stats"]["bn"][key],
                                   rtol=1e-6, atol=1e-7)
    for key in ("scale", "bias"):
        np.testing.assert_allclose(grad_params["bn"][key], reference_grad_params["bn"][key], rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(grad_x, reference_grad_x, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("stem", ["small_pool", "imagenet"])
def test_resnet_stem_uses_the_fused_layer_on_cpu_with_the_layered_ones_values(stem, monkeypatch):
    model = registry.create("resnet18", num_classes=5, stem=stem, stem_width=16, stage_widths=(16, 32, 64, 128))
    x = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
    variables = model.init(jax.random.key(1), x)

    def forward(variables):
        return jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables)

    assert pooled_norm.applies()
    out, state = forward(variables)
    monkeypatch.setattr(pooled_norm, "applies", lambda bn_group_size=0: False)  # nn.BatchNorm, ReLU, then the pool
    assert jax.tree.map(jnp.shape, model.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, variables)
    reference, reference_state = forward(variables)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["batch_stats"]["stem_bn"]["var"], reference_state["batch_stats"]["stem_bn"]["var"],
                               rtol=1e-6)
