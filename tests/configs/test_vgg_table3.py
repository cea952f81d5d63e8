"""configs/papers/vgg_table3.py is the paper's protocol: dense evaluation at test scale Q is the reported eval,
training adds AlexNet's colour shift, and the deeper nets start from exactly net A's first four convolutions and
three FC layers (config.init_from_layers), the rest at their fresh initialization."""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from imagenet_jax import models
from imagenet_jax.config.files import load_config_file, load_config_module
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import resolve_batch_size, validate_config
from imagenet_jax.training.init_from import merge_pretrained
from tests.conftest import REPO, read_metrics

PATH = os.path.join(REPO, "configs", "papers", "vgg_table3.py")
MODULE = load_config_module(PATH)
TEST_SCALE = {"a": 256, "a_lrn": 256, "b": 256, "c_256": 256, "c_384": 384, "c_jitter": 384, "d_256": 256,
              "d_384": 384, "d_jitter": 384, "e_256": 256, "e_384": 384, "e_jitter": 384}
NET_A_LAYERS = {"block1_conv1", "block2_conv1", "block3_conv1", "block3_conv2", "fc1", "fc2", "head"}


def _config(variant: str):
    return load_config_file(f"{PATH}:{variant}")


def test_every_variant_reports_the_dense_evaluation_at_its_test_scale():
    assert set(TEST_SCALE) == set(MODULE.VARIANTS)
    for variant, scale in TEST_SCALE.items():
        config = _config(variant)
        assert dict(config.main_eval) == {"type": "multicrop", "mode": "dense", "resize": scale}, variant
        assert config.image_size == 224 and round(224 / config.crop_pct) == scale
        validate_config(resolve_batch_size(config, 1), 1)
    assert "dense evaluation" in MODULE.PAPER.protocol and "mirror" in MODULE.PAPER.protocol


def test_training_adds_alexnets_colour_shift():
    assert _config("a").train_preprocess == "scale_jitter_crop(256, 256)|flip_lr|pca_lighting(0.1)"
    assert _config("d_jitter").train_preprocess == "scale_jitter_crop(256, 512)|flip_lr|pca_lighting(0.1)"


def test_only_the_nets_started_from_a_load_a_selection_of_layers():
    for variant in TEST_SCALE:
        config = _config(variant)
        from_a = config.init_from == "sweep:a"
        assert from_a == (variant in ("b", "c_256", "d_256", "e_256")), variant
        layers = {pattern.removesuffix("/.*") for pattern in config.init_from_layers}
        assert layers == (NET_A_LAYERS if from_a else set()), variant


@functools.cache
def _variables(name: str, seed: int) -> dict:
    # The paper's conv stacks at 32 px, with small FC layers (fc1 over a 1x1 map) so the test stays light.
    model = models.create(name, num_classes=10, classifier_width=64, pooled_size=1)
    return jax.device_get(model.init(jax.random.key(seed), jnp.zeros((1, 32, 32, 3)), train=False))


def _flat(variables: dict) -> dict[str, np.ndarray]:
    return {path: np.asarray(value) for path, value in traverse_util.flatten_dict(variables["params"], sep="/").items()}


@pytest.mark.slow  # three VGG conv stacks initialized on the CPU: ~40 s
@pytest.mark.parametrize("deeper", ["vgg_b", "vgg_d"])
def test_the_deeper_net_takes_net_a_first_four_convs_and_fc_layers_bit_equal_and_keeps_the_rest(deeper):
    net_a, fresh = _flat(_variables("vgg_a", seed=1)), _variables(deeper, seed=2)
    merged = _flat(merge_pretrained(fresh, {"params": _variables("vgg_a", seed=1)["params"]}, 10,
                                    _config("b").init_from_layers))
    fresh = _flat(fresh)
    loaded = {path for path in merged if path.split("/")[0] in NET_A_LAYERS}
    assert len(loaded) == 14  # kernel and bias of 4 convolutions and 3 FC layers
    for path in loaded:
        assert merged[path].shape == net_a[path].shape and merged[path].tobytes() == net_a[path].tobytes(), path
        if path.endswith("kernel"):  # biases start at zero in both
            assert not np.array_equal(merged[path], fresh[path]), path
    for path in set(merged) - loaded:  # conv1_2, conv2_2, conv4_*, conv5_* (and D's conv3_3): random
        assert merged[path].tobytes() == fresh[path].tobytes(), path
        if path in net_a and path.endswith("kernel"):  # block4_conv1, ...: same name and shape in A, not loaded
            assert net_a[path].shape == merged[path].shape and not np.array_equal(merged[path], net_a[path]), path
    assert merged["block2_conv1/kernel"].shape == (3, 3, 64, 128)  # A's conv2_1 fed by conv1_1, B's by conv1_2
    assert merged["block3_conv2/kernel"].shape == (3, 3, 256, 256)


def test_a_layer_selection_names_unknown_and_missing_layers():
    fresh, net_a = _variables("vgg_b", seed=2), _variables("vgg_a", seed=1)
    with pytest.raises(ConfigError, match=r"config.init_from_layers: 'blok1_conv1/\.\*' selects no array of this "
                                          r"model; its layers: block1_conv1, block1_conv2, "):
        merge_pretrained(fresh, net_a, 10, ("blok1_conv1/.*", "fc1/.*"))
    with pytest.raises(ConfigError, match=r"config.init_from_layers selects 2 arrays the checkpoint lacks: "
                                          r"params/block1_conv2/bias, params/block1_conv2/kernel"):
        merge_pretrained(fresh, net_a, 10, ("block1_conv2/.*",))


@pytest.mark.parametrize("overrides, message", [
    ({"init_from_layers": ("fc1/.*",)}, "config.init_from_layers selects the arrays loaded from config.init_from, "
                                        "which is empty"),
    ({"init_from": "runs/a", "init_from_layers": (3,)}, "config.init_from_layers: 3 must be a regex string"),
    ({"init_from": "runs/a", "init_from_layers": ("fc1/(",)}, "config.init_from_layers: 'fc1/(' is not a regular"),
    ({"main_eval": {"type": "multicrop", "mode": "dens"}}, "config.main_eval.mode='dens' is not one of"),
    ({"main_eval": {"type": "multicrop", "split": "test"}}, "config.main_eval.split: the main set is the run's"),
    ({"main_eval": {"type": "multicrp"}}, "config.main_eval.type='multicrp' is not a registered"),
])
def test_the_new_keys_are_validated_up_front(overrides, message):
    config = resolve_batch_size(_config("a"), 1)
    config.update(overrides)
    with pytest.raises(ConfigError) as raised:
        validate_config(config, 1)
    assert message in str(raised.value)


@pytest.mark.slow
def test_a_tiny_run_reports_the_dense_evaluators_numbers(fashion_mnist_dir, tmp_path, monkeypatch):
    from imagenet_jax.evaluators import multicrop
    from imagenet_jax.experiment.loop import train_and_evaluate

    scored = []
    plain_run = multicrop.MultiCrop.run

    def spy(self, state, step):
        metrics = dict(plain_run(self, state, step))
        scored.append((self.name, self.options["mode"], self.square, step, metrics))
        yield from metrics.items()

    monkeypatch.setattr(multicrop.MultiCrop, "run", spy)
    config = _config("a")
    config.update({
        "dataset": "fashion_mnist", "data_dir": fashion_mnist_dir, "image_size": 32, "num_classes": 0,
        "normalize_mean": (72.94,), "normalize_std": (90.02,), "batch_size": 16, "num_train_steps": 2,
        "eval_split": "test[:32]", "log_every_steps": 1, "cache_dataset": False, "write_report": False,
        "train_preprocess": "scale_jitter_crop(32, 32)|flip_lr"})  # gray images: no RGB colour shift
    config.model_options.update({"classifier_width": 32, "pooled_size": 1})  # fc1 slides over a 2x2 map at 64 px
    config.main_eval.resize = 64
    workdir = str(tmp_path / "a")
    final = train_and_evaluate(config, workdir)
    assert [(name, mode, square, step) for name, mode, square, step, _ in scored] == [("test[:32]", "dense", 64, 2)]
    dense = scored[0][4]
    main_lines = [line for line in read_metrics(workdir) if line["split"] == "test[:32]"]
    assert len(main_lines) == 1 and "best_top1" in main_lines[0]
    for key in ("top1", "top5", "loss", "num_examples"):
        assert main_lines[0][key] == dense[key] == final[key], key
    assert dense["num_examples"] == 32 and math.isfinite(dense["loss"])
