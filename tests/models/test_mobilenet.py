"""MobileNetV2/V3's layout against torchvision's, its options and modes: BatchNorm statistics in training and
running averages in eval, classifier dropout from the dropout key, configs naming a MobileNet validate (parity is in
tests/convert)."""

from __future__ import annotations

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
from imagenet_jax.models.mobilenet import ARCHITECTURES, hard_sigmoid, hard_swish, make_divisible
from tests.conftest import REPO

MOBILENETS = ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")


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


def test_blocks_are_torchvisions():
    pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from torchvision.models import mobilenetv3

    for name in ("mobilenet_v3_large", "mobilenet_v3_small"):
        settings, last_channel = mobilenetv3._mobilenet_v3_conf(name)
        expected = [(s.input_channels, s.kernel, s.expanded_channels, s.out_channels, s.use_se,
                     "HS" if s.use_hs else "RE", s.stride) for s in settings]
        assert [tuple(block) for block in ARCHITECTURES[name].blocks] == expected
        assert all(s.dilation == 1 for s in settings)
        assert ARCHITECTURES[name].hidden_channels == last_channel
        assert ARCHITECTURES[name].last_channels == 6 * settings[-1].out_channels
    reference = torchvision.models.mobilenet_v2()
    blocks = ARCHITECTURES["mobilenet_v2"].blocks
    assert len(blocks) == len(reference.features) - 2
    for block, layer in zip(blocks, list(reference.features)[1:-1], strict=True):
        depthwise = [m for m in layer.modules() if getattr(m, "groups", 1) > 1]
        assert (block.expanded, block.stride, layer.use_res_connect) == (
            depthwise[0].in_channels, depthwise[0].stride[0], block.stride == 1 and block.in_channels ==
            block.out_channels)
        assert layer.out_channels == block.out_channels


def test_make_divisible_and_hard_activations_are_torchvisions():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models._utils import _make_divisible

    for value in (3, 8, 12, 16.5, 22, 60, 120, 240, 1000, 1280 * 0.35):
        assert make_divisible(value, 8) == _make_divisible(value, 8)
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    np.testing.assert_allclose(hard_swish(jnp.asarray(x)), torch.nn.functional.hardswish(torch.from_numpy(x)),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hard_sigmoid(jnp.asarray(x)), torch.nn.functional.hardsigmoid(torch.from_numpy(x)),
                               rtol=1e-6, atol=1e-7)


def test_default_options_are_torchvisions():
    assert models.default_options("mobilenet_v2") == {"dropout_rate": 0.2, "bn_momentum": 0.9, "bn_epsilon": 1e-5}
    for name in ("mobilenet_v3_large", "mobilenet_v3_small"):
        assert models.default_options(name) == {"dropout_rate": 0.2, "bn_momentum": 0.99, "bn_epsilon": 1e-3}
    for name in MOBILENETS:
        assert models.default_image_size(name) == 224


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small"])
def test_training_updates_every_batch_statistic_and_eval_uses_the_running_ones(name):
    model = models.create(name, num_classes=10, dropout_rate=0.0)
    variables = _random_variables(model, 64)
    images = jax.random.normal(jax.random.key(0), (4, 64, 64, 3)) * 2 + 1
    train = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
    evaluate = jax.jit(lambda v, x: model.apply(v, x, train=False))

    logits, updates = train(variables, images)
    old, new = variables["batch_stats"], updates["batch_stats"]
    assert jax.tree.structure(new) == jax.tree.structure(old)
    for before, after in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True):
        assert not np.allclose(before, after)
    # The stem's BatchNorm moves towards the batch mean of the first convolution's output at torch's momentum.
    momentum = model.bn_momentum
    stem = jax.lax.conv_general_dilated(images, variables["params"]["stem_conv"]["kernel"], (2, 2),
                                        ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(new["stem_bn"]["mean"],
                               momentum * old["stem_bn"]["mean"] + (1 - momentum) * stem.mean(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-5)

    alone, _ = train(variables, images[:2])  # train mode: an image's logits depend on its batch mates
    assert np.abs(np.asarray(alone) - np.asarray(logits[:2])).max() > 1e-3
    eval_logits = evaluate(variables, images)  # eval mode: the running statistics, whatever the batch
    np.testing.assert_allclose(evaluate(variables, images[:2]), eval_logits[:2], rtol=1e-5, atol=1e-5)
    moved = evaluate({"params": variables["params"], "batch_stats": new}, images)
    assert np.abs(np.asarray(moved) - np.asarray(eval_logits)).max() > 1e-3


def test_two_dropout_keys_differ_in_training_and_rate_zero_trains_without_a_key():
    variables = _random_variables(models.create("mobilenet_v3_small", num_classes=10), 32)
    images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))

    def apply(rate, train, key=None):
        model = models.create("mobilenet_v3_small", num_classes=10, dropout_rate=rate)
        rngs = {} if key is None else {"dropout": jax.random.key(key)}
        if train:
            return np.asarray(model.apply(variables, images, train=True, rngs=rngs, mutable=["batch_stats"])[0])
        return np.asarray(model.apply(variables, images, train=False, rngs=rngs))

    first, second = apply(0.2, True, 1), apply(0.2, True, 2)
    assert np.abs(first - second).max() > 1e-3 * np.abs(first).max()
    np.testing.assert_array_equal(first, apply(0.2, True, 1))  # a pure function of the variables and the key
    np.testing.assert_array_equal(apply(0.2, False, 1), apply(0.2, False, 2))  # eval ignores the key
    np.testing.assert_array_equal(apply(0.2, False, 1), apply(0.0, False))
    deterministic = apply(0.0, True)  # without dropout, training needs no key
    np.testing.assert_array_equal(apply(0.0, True, 1), deterministic)
    assert np.abs(first - deterministic).max() > 1e-3 * np.abs(deterministic).max()
    with pytest.raises(Exception, match="dropout"):
        apply(0.2, True)


@pytest.mark.parametrize(("options", "message"), [
    ({"dropout_rate": 1.0}, "dropout_rate=1.0"),
    ({"width_mult": 0.5}, "width_mult"),  # torchvision's width multiplier is not an option here
])
def test_config_validation_names_a_bad_mobilenet_option(options, message):
    config = get_base_config()
    config.model = "mobilenet_v2"
    config.model_options = ml_collections.ConfigDict(options)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_configs_naming_a_mobilenet_validate_with_ghost_batch_norm():
    for name in MOBILENETS:
        config = load_config_file(f"{REPO}/configs/imagenet.py:{name}")
        assert (config.model, config.image_size) == (name, 224)
        assert config.model_options.to_dict() == models.default_options(name)
        validate_config(config, device_count=8)
    config = get_base_config()
    config.model, config.bn_group_size = "mobilenet_v3_large", 32
    validate_config(config)
    plain, ghost = (models.create("mobilenet_v3_small", num_classes=10, bn_group_size=size) for size in (0, 2))
    trees = [jax.eval_shape(m.init, jax.random.key(0), jnp.zeros((4, 32, 32, 3))) for m in (plain, ghost)]
    assert jax.tree.structure(trees[0]) == jax.tree.structure(trees[1])
