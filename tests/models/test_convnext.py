"""ConvNeXt's options: torchvision's stochastic depth rates, dropped branches in training only, layer scale init,
and configs naming a ConvNeXt validate (torchvision is the oracle for the rates; parity is in tests/convert)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.config import get_base_config
from imagenet_jax.config.files import load_config_file
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import config_drift, validate_config
from imagenet_jax.models.convnext import ConvNeXtBlock
from tests.conftest import REPO

CONVNEXTS = ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large")
# torchvision's builders' stochastic_depth_prob, the paper's ImageNet-1K drop path rates.
PUBLISHED_RATES = {"convnext_tiny": 0.1, "convnext_small": 0.4, "convnext_base": 0.5, "convnext_large": 0.5}
# A ConvNeXt small enough to run in milliseconds; every block's branch at full weight (layer scale 1).
SMALL = {"stage_depths": (1, 1, 1, 2), "stage_widths": (8, 16, 24, 32), "layer_scale_init": 1.0}


def _blocks(model, size: int = 32) -> list[ConvNeXtBlock]:
    """Every ConvNeXtBlock a training forward pass of `model` calls, in order, traced without computing."""
    blocks = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, ConvNeXtBlock) and context.method_name == "__call__":
            blocks.append(context.module)
        return next_fun(*args, **kwargs)

    def train_apply(images):
        variables = model.init(jax.random.key(0), images, train=False)
        with nn.intercept_methods(record):
            return model.apply(variables, images, train=True, rngs={"dropout": jax.random.key(1)})

    jax.eval_shape(train_apply, jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    return blocks


def _random_variables(model, size: int, seed: int = 0) -> dict:
    """Random variables of `model`'s shapes: normal weights, small biases, LayerNorm and layer scales around 1."""
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                            jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        if path[-1].key in ("scale", "layer_scale"):
            return (rng.random(leaf.shape) + 0.5).astype(np.float32)
        if path[-1].key == "bias":
            return (rng.standard_normal(leaf.shape) * 0.1).astype(np.float32)
        return (rng.standard_normal(leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize("name", CONVNEXTS)
def test_each_blocks_stochastic_depth_rate_is_torchvisions(name):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):  # the architecture only: no weights allocated or drawn
        reference = getattr(torchvision.models, name)()
    expected = [module.p for module in reference.modules() if isinstance(module, torchvision.ops.StochasticDepth)]

    model = models.create(name)
    assert model.stochastic_depth_rate == PUBLISHED_RATES[name]
    rates = [block.drop_path_rate for block in _blocks(model)]
    assert len(rates) == len(expected) == sum(model.stage_depths)
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=0)
    assert rates[-1] == pytest.approx(PUBLISHED_RATES[name])


def test_default_options_are_the_published_ones():
    for name in CONVNEXTS:
        options = models.default_options(name)
        assert options == {"stochastic_depth_rate": PUBLISHED_RATES[name], "layer_scale_init": 1e-6,
                           "dropout_rate": 0.0}


def test_layer_scale_is_a_per_channel_parameter_starting_at_layer_scale_init():
    model = models.create("convnext_tiny", num_classes=10, **{**SMALL, "layer_scale_init": 0.25})
    assert [block.layer_scale_init for block in _blocks(model)] == [0.25] * 5
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                            jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))["params"]
    widths = [shapes[f"stage{stage}_block1"]["layer_scale"].shape for stage in (1, 2, 3, 4)]
    assert widths == [(8,), (16,), (24,), (32,)]
    for init in (1e-6, 0.25):
        variables = ConvNeXtBlock(8, layer_scale_init=init).init(jax.random.key(0), jnp.zeros((1, 8, 8, 8)))
        np.testing.assert_array_equal(variables["params"]["layer_scale"], np.full(8, init, np.float32))


def test_two_dropout_keys_differ_in_training_and_agree_in_eval():
    model = models.create("convnext_tiny", num_classes=10, layer_scale_init=1.0)  # its own rates: 0 ... 0.1
    variables = _random_variables(model, 32)
    images = jax.random.normal(jax.random.key(0), (8, 32, 32, 3))
    apply = jax.jit(lambda images, key, train: model.apply(variables, images, train=train, rngs={"dropout": key}),
                    static_argnums=2)
    first, second = (np.asarray(apply(images, jax.random.key(seed), True)) for seed in (1, 2))
    assert np.abs(first - second).max() > 1e-2 * np.abs(first).max()
    np.testing.assert_array_equal(first, apply(images, jax.random.key(1), True))  # a pure function of the key

    eval_first, eval_second = (np.asarray(apply(images, jax.random.key(seed), False)) for seed in (1, 2))
    np.testing.assert_array_equal(eval_first, eval_second)
    without_key = jax.jit(lambda images: model.apply(variables, images, train=False))(images)  # needs no key at all
    np.testing.assert_array_equal(eval_first, without_key)

    # Without stochastic depth, training computes what evaluation does: the drop is the only difference.
    plain = models.create("convnext_tiny", num_classes=10, layer_scale_init=1.0, stochastic_depth_rate=0.0)
    train_plain = jax.jit(lambda images: plain.apply(variables, images, train=True,
                                                     rngs={"dropout": jax.random.key(1)}))(images)
    np.testing.assert_array_equal(train_plain, eval_first)


def test_last_block_branch_is_dropped_for_its_share_of_examples():
    rate = 0.9  # the last block's; the four before it get 0, 0.225, 0.45, 0.675
    model = models.create("convnext_tiny", num_classes=10, stochastic_depth_rate=rate, **SMALL)
    variables = _random_variables(model, 32)
    images = jax.random.normal(jax.random.key(0), (256, 32, 32, 3))
    blocks = []

    def apply(images):
        arrays = []

        def record(next_fun, args, kwargs, context):
            output = next_fun(*args, **kwargs)
            if isinstance(context.module, ConvNeXtBlock) and context.method_name == "__call__":
                blocks.append(context.module)
                arrays.append((args[0], output))
            return output

        with nn.intercept_methods(record):
            model.apply(variables, images, train=True, rngs={"dropout": jax.random.key(3)})
        return arrays

    inputs, outputs = (np.asarray(array) for array in jax.jit(apply)(images)[-1])
    assert blocks[-1].name == "stage4_block2" and blocks[-1].drop_path_rate == pytest.approx(rate)
    # A dropped branch leaves the residual input itself; a kept one (scaled by 1 / (1 - rate)) changes it.
    identity = np.all(outputs == inputs, axis=(1, 2, 3))
    assert identity.mean() == pytest.approx(rate, abs=0.06)
    assert np.all(np.abs(outputs - inputs).max(axis=(1, 2, 3))[~identity] > 1e-3)


@pytest.mark.parametrize(("options", "message"), [
    ({"stochastic_depth_rate": 1.0}, "stochastic_depth_rate=1.0"),
    ({"stochastic_depth_rate": -0.1}, "stochastic_depth_rate=-0.1"),
    ({"dropout_rate": 1.5}, "dropout_rate=1.5"),
    ({"layer_scale_init": float("nan")}, "layer_scale_init=nan"),
    ({"layer_scale": 1e-6}, "layer_scale"),  # torchvision's argument name is not ours: an unknown option
])
def test_config_validation_names_a_bad_convnext_option(options, message):
    config = get_base_config()
    config.model = "convnext_tiny"
    config.model_options = ml_collections.ConfigDict(options)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_configs_naming_a_convnext_validate():
    for name in CONVNEXTS:
        config = load_config_file(f"{REPO}/configs/imagenet.py:{name}")
        assert (config.model, config.image_size) == (name, 224)
        assert config.model_options.to_dict() == models.default_options(name)
        validate_config(config, device_count=8)
    config = get_base_config()
    config.model = "convnext_tiny"
    config.model_options = ml_collections.ConfigDict({"stochastic_depth_rate": 0.2, "layer_scale_init": 0.1,
                                                      "dropout_rate": 0.1})
    validate_config(config)


def test_resuming_may_change_layer_scale_init_but_not_the_stochastic_depth_rate():
    stored = {"model": "convnext_tiny", "model_options": models.default_options("convnext_tiny")}
    changed_init = {**stored, "model_options": {**stored["model_options"], "layer_scale_init": 1.0}}
    changed_rate = {**stored, "model_options": {**stored["model_options"], "stochastic_depth_rate": 0.3}}
    assert config_drift(stored, changed_init) == []  # it only draws the initial weights, which resuming restores
    assert config_drift(stored, changed_rate) == ["model_options"]
