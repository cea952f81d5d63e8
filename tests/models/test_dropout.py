"""Dropout rates and stochastic depth as model options: what they drop in training, and that eval ignores them."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.config import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.models.dropout import drop_path, stochastic_depth_rates
from imagenet_jax.models.resnet import ResNetBlock

# A ResNet small enough to build in milliseconds: 4 basic blocks, the last with an identity shortcut.
TINY_RESNET = {"stage_sizes": (1, 1, 2), "stage_widths": (8, 8, 8), "stem_width": 8}


def _recorded_calls(model, variables, images, *, train: bool, key=None, module_type=nn.Dropout):
    """[(module, input, output)] of every `module_type.__call__` in one jit-compiled apply."""
    modules = []

    def apply(variables, images, key):
        arrays = []

        def record(next_fun, args, kwargs, context):
            output = next_fun(*args, **kwargs)
            if isinstance(context.module, module_type) and context.method_name == "__call__":
                modules.append(context.module)
                arrays.append((args[0], output))
            return output

        with nn.intercept_methods(record):
            model.apply(variables, images, train=train, rngs={"dropout": key},
                        mutable=["batch_stats"] if train else False)
        return arrays

    arrays = jax.jit(apply)(variables, images, key if key is not None else jax.random.key(1))
    return [(module, np.asarray(inputs), np.asarray(outputs)) for module, (inputs, outputs) in zip(modules, arrays)]


def _classifier_dropout_rate(name: str, size: int, **options) -> float:
    """The rate of the last nn.Dropout a model applies in training (its classifier's), traced without computing."""
    model = models.create(name, num_classes=10, **options)
    images = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    rates = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.Dropout) and context.method_name == "__call__":
            rates.append(context.module.rate)
        return next_fun(*args, **kwargs)

    def train_apply(images):
        variables = model.init(jax.random.key(0), images[:2], train=False)
        with nn.intercept_methods(record):
            return model.apply(variables, images, train=True, rngs={"dropout": jax.random.key(1)},
                               mutable=["batch_stats"])

    jax.eval_shape(train_apply, images)
    return rates[-1]


@pytest.mark.parametrize("name, size", [("alexnet", 63), ("vgg_a", 32), ("googlenet", 64), ("inception_v3", 75),
                                        ("resnet18", 32)])
def test_dropout_rate_option_reaches_every_models_classifier_dropout(name, size):
    options = {"aux_logits": False} if name == "inception_v3" else {}
    assert _classifier_dropout_rate(name, size, dropout_rate=0.3, **options) == 0.3


def test_dropout_rate_zeroes_that_share_of_the_classifier_inputs_in_training_only():
    rate = 0.3
    model = models.create("resnet_small", num_classes=10, dropout_rate=rate, **TINY_RESNET)
    images = jax.random.normal(jax.random.key(0), (256, 28, 28, 1))
    variables = model.init(jax.random.key(0), images[:2], train=False)

    module, inputs, outputs = _recorded_calls(model, variables, images, train=True)[-1]  # the head's dropout
    assert module.rate == rate
    active = inputs != 0
    dropped = (outputs == 0) & active
    assert active.sum() >= 2000
    assert dropped.sum() / active.sum() == pytest.approx(rate, abs=0.03)
    kept = active & ~dropped
    np.testing.assert_allclose(outputs[kept], inputs[kept] / (1 - rate), rtol=1e-5)  # inverted dropout

    _, eval_inputs, eval_outputs = _recorded_calls(model, variables, images, train=False)[-1]
    np.testing.assert_array_equal(eval_outputs, eval_inputs)
    _, _, other_key_outputs = _recorded_calls(model, variables, images, train=False, key=jax.random.key(2))[-1]
    np.testing.assert_array_equal(other_key_outputs, eval_outputs)  # eval ignores the dropout key


def test_each_model_defaults_to_its_published_dropout_rate():
    expected = {"alexnet": 0.5, "vgg16": 0.5, "vgg_a": 0.5, "googlenet": 0.2, "inception_v3": 0.5, "resnet50": 0.0}
    assert {name: models.create(name).dropout_rate for name in expected} == expected
    assert models.create("googlenet").aux_dropout_rate == 0.7


@pytest.mark.parametrize("name", ["alexnet", "vgg_a", "googlenet", "inception_v3", "resnet50"])
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_zero_to_one_is_refused_by_every_model(name, rate):
    with pytest.raises(ValueError, match=f"dropout_rate={rate}"):
        models.create(name, dropout_rate=rate)


def test_config_validation_names_a_bad_dropout_or_stochastic_depth_option():
    config = get_base_config()
    config.model = "resnet18"
    config.model_options = ml_collections.ConfigDict({"stochastic_depth_rate": 1.0})
    with pytest.raises(ConfigError, match="stochastic_depth_rate=1.0"):
        validate_config(config)
    config.model_options = ml_collections.ConfigDict({"stochastic_depth_rate": 0.1, "residual": False})
    with pytest.raises(ConfigError, match="stochastic_depth_rate"):
        validate_config(config)
    config.model = "vgg_a"
    config.model_options = ml_collections.ConfigDict({"stochastic_depth_rate": 0.1})
    with pytest.raises(ConfigError, match="stochastic_depth_rate"):  # VGG has no residual branches
        validate_config(config)


def test_stochastic_depth_rates_rise_linearly_from_zero_to_the_rate_at_the_last_block():
    np.testing.assert_allclose(stochastic_depth_rates(0.05, 8), [0.0, 0.05 / 7, 0.1 / 7, 0.15 / 7, 0.2 / 7,
                                                                 0.25 / 7, 0.3 / 7, 0.05])
    assert stochastic_depth_rates(0.2, 1) == [0.2]

    model = models.create("resnet_small", num_classes=10, stochastic_depth_rate=0.2, **TINY_RESNET)
    images = jnp.zeros((2, 28, 28, 1))
    variables = model.init(jax.random.key(0), images[:2], train=False)
    blocks = _recorded_calls(model, variables, images, train=True, module_type=ResNetBlock)
    rates = {block.name: block.drop_path_rate for block, _, _ in blocks}
    assert rates == pytest.approx({"stage1_block1": 0.0, "stage2_block1": 0.2 / 3, "stage3_block1": 0.4 / 3,
                                   "stage3_block2": 0.2})


def test_drop_path_zeroes_whole_examples_with_the_rate_and_scales_the_rest():
    class Branch(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            return drop_path(x, 0.25, deterministic=not train)

    ones = jnp.ones((4000, 2, 2, 3))
    dropped = Branch().apply({}, ones, train=True, rngs={"dropout": jax.random.key(0)})
    per_example = np.asarray(dropped).reshape(4000, -1)
    # One decision per example: all its values are 0, or all 1 / (1 - 0.25).
    assert np.all((per_example == 0).all(axis=1) | np.isclose(per_example, 4 / 3).all(axis=1))
    assert (per_example[:, 0] == 0).mean() == pytest.approx(0.25, abs=0.025)
    np.testing.assert_array_equal(Branch().apply({}, ones, train=False), ones)


def test_last_block_branch_is_dropped_for_its_share_of_examples_and_eval_ignores_the_rate():
    rate = 0.9  # the last block's; the first three get 0, 0.3, 0.6
    model = models.create("resnet_small", num_classes=10, stochastic_depth_rate=rate, **TINY_RESNET)
    images = jax.random.normal(jax.random.key(0), (256, 28, 28, 1))
    variables = model.init(jax.random.key(0), images[:2], train=False)
    block, inputs, outputs = _recorded_calls(model, variables, images, train=True, module_type=ResNetBlock)[-1]
    assert block.name == "stage3_block2" and not block.project
    # A dropped branch leaves relu(identity shortcut) = the (non-negative) input itself.
    identity = np.all(np.isclose(outputs, inputs), axis=(1, 2, 3))
    assert identity.mean() == pytest.approx(rate, abs=0.06)

    without = models.create("resnet_small", num_classes=10, **TINY_RESNET)
    eval_with = model.apply(variables, images[:8], train=False, rngs={"dropout": jax.random.key(3)})
    np.testing.assert_array_equal(eval_with, without.apply(variables, images[:8], train=False))
    train_with, _ = model.apply(variables, images[:8], train=True, rngs={"dropout": jax.random.key(3)},
                                mutable=["batch_stats"])
    train_without, _ = without.apply(variables, images[:8], train=True, mutable=["batch_stats"])
    assert not np.allclose(train_with, train_without)
