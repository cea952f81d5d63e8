"""init_from: pretrained weights are loaded, a classifier of another class count is re-initialized, misfits named."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.convert import save_converted
from imagenet_jax.errors import ConfigError
from imagenet_jax.training.checkpointing import Checkpointer
from imagenet_jax.training.init_from import load_pretrained, merge_pretrained
from tests.conftest import read_metrics, run_main, tiny_run_overrides


def _variables(num_classes: int, seed: int, **options):
    model = models.create("resnet_small", num_classes=num_classes, **options)
    return jax.device_get(model.init(jax.random.key(seed), jnp.zeros((1, 28, 28, 1)), train=False))


def test_matching_arrays_load_and_a_new_head_is_reinitialized():
    pretrained = _variables(1000, seed=1)
    initial = _variables(10, seed=2)
    merged = merge_pretrained(initial, pretrained, num_classes=10)
    for collection, module, leaf in (("params", "stem_conv", "kernel"), ("batch_stats", "stem_bn", "mean")):
        np.testing.assert_array_equal(merged[collection][module][leaf], pretrained[collection][module][leaf])
    np.testing.assert_array_equal(merged["params"]["head"]["kernel"], initial["params"]["head"]["kernel"])
    assert merged["params"]["head"]["kernel"].shape == (128, 10)


def test_mismatched_shapes_are_listed():
    pretrained = _variables(10, seed=1, stage_widths=(32, 64, 256))
    expected = r"16 arrays do not fit this model: .*params/stage3_block1/Conv_0/kernel: checkpoint \(3, 3, 64, 256\)"
    with pytest.raises(ConfigError, match=expected):
        merge_pretrained(_variables(10, seed=2), pretrained, num_classes=10)


def test_fine_tuning_run_starts_from_a_converted_file(tmp_path, fashion_mnist_dir):
    # Pretrain briefly, export the weights as a converted file, then fine-tune from it.
    source = str(tmp_path / "pretrain")
    assert run_main(source, *tiny_run_overrides(fashion_mnist_dir, steps=30)).returncode == 0
    path = str(tmp_path / "weights.msgpack")
    save_converted(load_pretrained(source), path, "resnet_small")
    finetune = str(tmp_path / "finetune")
    result = run_main(finetune, *tiny_run_overrides(fashion_mnist_dir, steps=2), f"--config.init_from={path}",
                      "--config.learning_rate=1e-6")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "init_from: loaded" in result.stderr
    pretrained_top1 = read_metrics(source)[-1]["top1"]
    assert read_metrics(finetune)[-1]["top1"] == pytest.approx(pretrained_top1, abs=0.03)


def test_weights_and_checkpoints_in_a_bucket_load_like_local_ones(tmp_path, gcs_emulator):
    variables = _variables(10, seed=3)
    local_file = str(tmp_path / "weights.msgpack")
    save_converted(variables, local_file, "resnet_small")
    fs = gcs_emulator.filesystem()
    fs.put_file(local_file, "bucket/init/weights.msgpack")
    checkpointer = Checkpointer("gs://bucket/init/run/checkpoints", keep=1)
    checkpointer.save(5, {"params": variables["params"], "batch_stats": variables["batch_stats"]}, {"step": 5})
    checkpointer.close()
    for source in ("gs://bucket/init/weights.msgpack", "gs://bucket/init/run"):
        loaded = load_pretrained(source)
        for collection, module, leaf in (("params", "head", "kernel"), ("batch_stats", "stem_bn", "var")):
            np.testing.assert_array_equal(loaded[collection][module][leaf], variables[collection][module][leaf])
