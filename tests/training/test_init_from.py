"""init_from: pretrained weights are loaded, a classifier of another class count is re-initialized, misfits named."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_jax import models
from imagenet_jax.convert import save_converted
from imagenet_jax.errors import ConfigError
from imagenet_jax.training.checkpoint_integrity import META_CRC, STATE_FINGERPRINTS
from imagenet_jax.training.checkpointing import Checkpointer
from imagenet_jax.training.init_from import load_pretrained, merge_pretrained
from tests.conftest import REPO, read_metrics, run_main, tiny_run_overrides


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


_SAVE_SHARDED_OVER_TWO_DEVICES = """
import sys
import jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from imagenet_jax.training.checkpoint_integrity import META_CRC, STATE_FINGERPRINTS
from imagenet_jax.training.checkpointing import Checkpointer
mesh = Mesh(np.array(jax.devices()), ("data",))
assert len(jax.devices()) == 2
kernel = jax.device_put(np.arange(24, dtype=np.float32).reshape(4, 6), NamedSharding(mesh, P("data")))
mean = jax.device_put(np.ones(6, np.float32), NamedSharding(mesh, P()))
checkpointer = Checkpointer(sys.argv[1], keep=1)
checkpointer.save(3, {"params": {"head": {"kernel": kernel}}, "batch_stats": {"bn": {"mean": mean}}}, {"step": 3})
checkpointer.close()
"""


def test_a_checkpoint_saved_on_two_devices_loads_in_a_one_device_process(tmp_path):
    # A command-line run on this CPU saves from one device per core; distillation, fine-tuning and tests then
    # load it in processes with another device count (Orbax refuses the saved topology without a target).
    workdir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    subprocess.run([sys.executable, "-c", _SAVE_SHARDED_OVER_TWO_DEVICES, str(workdir / "checkpoints")],
                   check=True, env=env, cwd=REPO, timeout=300)
    assert jax.device_count() != 2
    loaded = load_pretrained(str(workdir))
    np.testing.assert_array_equal(loaded["params"]["head"]["kernel"], np.arange(24).reshape(4, 6))
    np.testing.assert_array_equal(loaded["batch_stats"]["bn"]["mean"], np.ones(6))


def test_a_checkpoint_whose_arrays_differ_from_their_fingerprints_is_refused(tmp_path):
    variables = _variables(10, seed=4)
    checkpointer = Checkpointer(tmp_path / "run" / "checkpoints", keep=1)
    checkpointer.save(2, {"params": variables["params"], "batch_stats": variables["batch_stats"]}, {"step": 2})
    checkpointer.close()
    meta_file = tmp_path / "run" / "checkpoints" / "2" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta.pop(META_CRC)  # an older, unsealed meta: only the fingerprints speak
    fingerprints = meta[STATE_FINGERPRINTS]
    name = next(path for path in fingerprints if "head" in path and "kernel" in path)
    fingerprints[name] = "0" * len(fingerprints[name])
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"config.init_from: the checkpoint .*2 is damaged .*head"):
        load_pretrained(str(tmp_path / "run"))
