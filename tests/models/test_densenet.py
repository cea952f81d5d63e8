"""DenseNet's options and modes: the smallest input, dense-layer dropout in training only, BatchNorm statistics in
training and running averages in eval, and configs naming a DenseNet validate (parity is in tests/convert)."""

from __future__ import annotations

import functools

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
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.models.densenet import DenseLayer
from tests.conftest import REPO

DENSENETS = ("densenet121", "densenet169", "densenet201")
# A DenseNet small enough to run in milliseconds, with DenseNet-121's stem, transitions and head.
SMALL = {"block_config": (2, 2, 2, 2), "growth_rate": 8, "num_init_features": 16}


def _logits_shape(name: str, size: int, **options) -> tuple[int, ...]:
    model = models.create(name, num_classes=10, **options)
    images = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0], images).shape


def _random_variables(model, size: int, seed: int = 0) -> dict:
    """Random variables of `model`'s shapes: normal weights, BN scales around 1, random running statistics."""
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                            jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        if path[-1].key in ("scale", "var"):
            return (rng.random(leaf.shape) + 0.5).astype(np.float32)
        if path[-1].key in ("bias", "mean"):
            return (rng.standard_normal(leaf.shape) * 0.1).astype(np.float32)
        return (rng.standard_normal(leaf.shape) * np.sqrt(2 / np.prod(leaf.shape[:-1]))).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def test_min_image_size_is_the_smallest_input_torchvision_accepts():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.densenet121().eval()
    with torch.no_grad():
        assert reference(torch.zeros(1, 3, 29, 29)).shape == (1, 1000)
        with pytest.raises(RuntimeError):  # the last transition's AvgPool2d(2, 2) of a 1x1 map
            reference(torch.zeros(1, 3, 28, 28))
    for name in DENSENETS:
        assert (models.default_image_size(name), models.min_image_size(name)) == (224, 29)
        assert _logits_shape(name, 29) == (2, 10)
        with pytest.raises(ValueError, match="28x28 px is too small"):
            _logits_shape(name, 28)


def test_default_options_are_torchvisions():
    for name in DENSENETS:
        assert models.default_options(name) == {"growth_rate": 32, "bn_size": 4, "num_init_features": 64,
                                                "drop_rate": 0.0, "dropout_rate": 0.0, "bn_momentum": 0.9,
                                                "bn_epsilon": 1e-5}
    assert [models.create(name).block_config for name in DENSENETS] == [(6, 12, 24, 16), (6, 12, 32, 32),
                                                                       (6, 12, 48, 32)]


def test_training_updates_every_batch_statistic_and_eval_uses_the_running_ones():
    model = models.create("densenet121", num_classes=10, **SMALL)
    variables = _random_variables(model, 32)
    images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3)) * 2 + 1
    train = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
    evaluate = jax.jit(lambda v, x: model.apply(v, x, train=False))

    logits, updates = train(variables, images)
    old, new = variables["batch_stats"], updates["batch_stats"]
    assert jax.tree.structure(new) == jax.tree.structure(old)
    assert len(jax.tree.leaves(new)) == 2 * (2 + 4 * 2 * 2 + 3)  # mean and var of every BatchNorm
    for before, after in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True):
        assert not np.allclose(before, after)
    # The stem's BatchNorm: momentum 0.9 towards the batch mean of the first convolution's output.
    conv0 = jax.lax.conv_general_dilated(images, variables["params"]["conv0"]["kernel"], (2, 2), ((3, 3), (3, 3)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(new["norm0"]["mean"], 0.9 * old["norm0"]["mean"] + 0.1 * conv0.mean(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-5)

    # Train mode normalizes each batch with its own statistics: an image's logits depend on its batch mates.
    alone, _ = train(variables, images[:2])
    assert np.abs(np.asarray(alone) - np.asarray(logits[:2])).max() > 1e-3
    # Eval mode normalizes with the running statistics: the batch does not matter, the statistics do.
    eval_logits = evaluate(variables, images)
    np.testing.assert_allclose(evaluate(variables, images[:2]), eval_logits[:2], rtol=1e-5, atol=1e-5)
    moved = evaluate({"params": variables["params"], "batch_stats": new}, images)
    assert np.abs(np.asarray(moved) - np.asarray(eval_logits)).max() > 1e-3


def test_drop_rate_reaches_every_dense_layer_and_draws_from_the_dropout_key():
    model = models.create("densenet121", num_classes=10, drop_rate=0.5, dropout_rate=0.25, **SMALL)
    images = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    rates = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.Dropout) and context.method_name == "__call__":
            rates.append((type(context.module.parent).__name__, context.module.rate))
        return next_fun(*args, **kwargs)

    def train_apply(images):
        variables = model.init(jax.random.key(0), images, train=False)
        with nn.intercept_methods(record):
            return model.apply(variables, images, train=True, rngs={"dropout": jax.random.key(1)},
                               mutable=["batch_stats"])

    jax.eval_shape(train_apply, images)
    assert rates == [("DenseLayer", 0.5)] * 8 + [("DenseNet", 0.25)]


def test_two_dropout_keys_differ_in_training_and_drop_rate_zero_trains_without_a_key():
    variables = _random_variables(models.create("densenet121", num_classes=10, **SMALL), 32)
    images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))

    compiled = {}

    def apply(drop_rate, train, key=None):
        if (drop_rate, train, key is None) not in compiled:  # one compilation per model, mode and key use
            model = models.create("densenet121", num_classes=10, drop_rate=drop_rate, **SMALL)
            mutable = ["batch_stats"] if train else False

            def run(key):
                rngs = {} if key is None else {"dropout": key}
                outputs = model.apply(variables, images, train=train, rngs=rngs, mutable=mutable)
                return outputs[0] if train else outputs

            compiled[drop_rate, train, key is None] = jax.jit(run)
        return np.asarray(compiled[drop_rate, train, key is None](None if key is None else jax.random.key(key)))

    first, second = apply(0.2, True, 1), apply(0.2, True, 2)
    assert np.abs(first - second).max() > 1e-2 * np.abs(first).max()
    np.testing.assert_array_equal(first, apply(0.2, True, 1))  # a pure function of the variables and the key
    # Evaluation ignores the key and drop_rate.
    np.testing.assert_array_equal(apply(0.2, False, 1), apply(0.2, False, 2))
    np.testing.assert_array_equal(apply(0.2, False, 1), apply(0.0, False))
    # Without dropout, training needs no key and computes the same whatever key it gets.
    deterministic = apply(0.0, True)
    np.testing.assert_array_equal(apply(0.0, True, 1), deterministic)
    np.testing.assert_array_equal(apply(0.0, True, 2), deterministic)
    assert np.abs(first - deterministic).max() > 1e-2 * np.abs(deterministic).max()


def test_dense_layer_dropout_zeroes_that_share_of_new_features():
    norm = functools.partial(nn.BatchNorm, use_running_average=False)
    layer = DenseLayer(16, 4, nn.Conv, norm, drop_rate=0.3, deterministic=False)
    x = jax.random.normal(jax.random.key(0), (8, 8, 8, 24))
    variables = layer.init(jax.random.key(1), x)
    out, _ = layer.apply(variables, x, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])
    assert out.shape == (8, 8, 8, 16)
    assert float(jnp.mean(out == 0)) == pytest.approx(0.3, abs=0.03)


@pytest.mark.parametrize(("options", "message"), [
    ({"drop_rate": 1.0}, "drop_rate=1.0"),
    ({"dropout_rate": -0.1}, "dropout_rate=-0.1"),
    ({"growth_rate": 0}, "growth_rate=0"),
    ({"memory_efficient": True}, "memory_efficient"),  # torchvision's checkpointing switch is not an option here
])
def test_config_validation_names_a_bad_densenet_option(options, message):
    config = get_base_config()
    config.model = "densenet121"
    config.model_options = ml_collections.ConfigDict(options)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_configs_naming_a_densenet_validate_with_ghost_batch_norm():
    for name in DENSENETS:
        config = load_config_file(f"{REPO}/configs/imagenet.py:{name}")
        assert (config.model, config.image_size) == (name, 224)
        assert config.model_options.to_dict() == models.default_options(name)
        validate_config(config, device_count=8)
    config = get_base_config()
    config.model, config.bn_group_size = "densenet121", 32
    config.model_options = ml_collections.ConfigDict({"drop_rate": 0.2})
    validate_config(config)
    plain, ghost = (models.create("densenet121", num_classes=10, bn_group_size=size, **SMALL) for size in (0, 2))
    trees = [jax.eval_shape(m.init, jax.random.key(0), jnp.zeros((4, 32, 32, 3))) for m in (plain, ghost)]
    assert jax.tree.structure(trees[0]) == jax.tree.structure(trees[1])
