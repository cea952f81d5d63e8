"""Transfer learning (train/transfer.py): frozen parameters stay bit-equal through real train steps (weight decay
included) while the others move, frozen BatchNorm layers keep their statistics, a linear probe trains only the
head, and config.freeze / config.linear_probe are validated; end to end, a probe from a pretrained workdir."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest
from flax import traverse_util

from imagenet_jax.errors import ConfigError
from imagenet_jax.training import transfer
from imagenet_jax.training.init_from import load_pretrained
from tests.conftest import read_metrics, run_main, tiny_run_overrides
from tests.training.fashion_mnist_arrays import batches, default_config, train_setup

FROZEN = ("stem_.*", "stage1_block1/.*")


def _flat(tree) -> dict[str, np.ndarray]:
    flat = traverse_util.flatten_dict(jax.device_get(tree), sep="/")
    return {path: np.asarray(value) for path, value in flat.items()}


def _bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _train(config, steps: int = 3):
    _, state, step = train_setup(config)
    before = state
    for batch in batches(steps):
        state, metrics = step(state, batch, jax.random.key(0))
    assert np.isfinite(float(metrics["loss"]))
    return before, state


def test_frozen_parameters_and_their_batch_norm_statistics_are_bit_equal_after_training():
    config = default_config({"freeze": FROZEN, "weight_decay": 5e-3, "weight_decay_multipliers": ()})
    before, after = _train(config)
    params_before, params_after = _flat(before.params), _flat(after.params)
    frozen = {path for path in params_before if any(re.fullmatch(pattern, path) for pattern in FROZEN)}
    assert {"stem_conv/kernel", "stem_bn/scale", "stage1_block1/Conv_0/kernel", "stage1_block1/BatchNorm_1/bias"} \
        <= frozen
    for path in params_before:
        if path in frozen:  # weight decay 5e-3 on every parameter would move them: it does not reach them
            assert _bit_equal(params_before[path], params_after[path]), path
        else:
            assert not np.array_equal(params_before[path], params_after[path]), path
    stats_before, stats_after = _flat(before.batch_stats), _flat(after.batch_stats)
    for path in stats_before:  # running mean/var: frozen layers run in inference mode and keep them
        layer_frozen = path.startswith(("stem_bn/", "stage1_block1/"))
        assert _bit_equal(stats_before[path], stats_after[path]) == layer_frozen, path


def test_frozen_batch_norm_normalizes_with_running_statistics():
    # Same frozen model and batch: the train-mode loss equals the eval-mode loss only if BN uses running stats.
    config = default_config({"linear_probe": True, "init_from": "unused-by-this-test", "label_smoothing": 0.0})
    model, state, step = train_setup(config)
    batch = batches(1)[0]
    _, metrics = step(state, batch, jax.random.key(0))
    images = (batch["image"].astype(np.float32) - np.asarray(config.normalize_mean)) / np.asarray(config.normalize_std)
    logits = model.apply({"params": state.params, "batch_stats": state.batch_stats}, images, train=False)
    log_p = jax.nn.log_softmax(logits)
    eval_loss = -float(np.mean(np.asarray(log_p)[np.arange(len(batch["label"])), batch["label"]]))
    assert float(metrics["loss"]) == pytest.approx(eval_loss, rel=1e-5)


def test_linear_probe_trains_only_the_classifier():
    config = default_config({"linear_probe": True, "init_from": "unused-by-this-test"})
    before, after = _train(config)
    params_before, params_after = _flat(before.params), _flat(after.params)
    changed = sorted(path for path in params_before if not _bit_equal(params_before[path], params_after[path]))
    assert changed == ["head/bias", "head/kernel"]
    stats_before, stats_after = _flat(before.batch_stats), _flat(after.batch_stats)
    assert all(_bit_equal(stats_before[path], stats_after[path]) for path in stats_before)
    assert transfer.classifier_modules(before.params, 10) == {"head"}


@pytest.mark.parametrize("overrides, message", [
    ({"freeze": (3,)}, "config.freeze: 3 must be a regex string"),
    ({"freeze": ("stem_(",)}, "config.freeze: 'stem_(' is not a regular expression"),
    ({"linear_probe": True}, "config.linear_probe=True trains only the classifier"),
])
def test_bad_transfer_keys_are_named(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        default_config(overrides)


def test_finetune_config_is_the_fine_tuning_recipe():
    import imagenet_jax.config

    config = imagenet_jax.config.get("configs/finetune.py", {"init_from": "runs/pretrained"})
    assert (config.learning_rate, config.num_epochs, config.schedule.warmup_epochs) == (0.01, 2.0, 0.0)
    assert config.schedule.name == "cosine" and config.init_from == "runs/pretrained"
    resnet50 = imagenet_jax.config.get("configs/finetune.py:resnet50")
    assert (resnet50.model, resnet50.image_size, dict(resnet50.model_options)) == ("resnet50", 224, {})


@pytest.mark.slow
def test_linear_probe_run_from_a_pretrained_workdir_keeps_the_backbone_and_resumes(tmp_path, fashion_mnist_dir):
    pretrained, probe = str(tmp_path / "pretrained"), str(tmp_path / "probe")
    result = run_main(pretrained, *tiny_run_overrides(fashion_mnist_dir, steps=10))
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_main(probe, *tiny_run_overrides(fashion_mnist_dir, steps=10), f"--config.init_from={pretrained}",
                      "--config.linear_probe=True", "--config.learning_rate=0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    start, end = load_pretrained(pretrained), load_pretrained(probe)
    start_params, end_params = _flat(start["params"]), _flat(end["params"])
    assert sorted(path for path in start_params if not _bit_equal(start_params[path], end_params[path])) == \
        ["head/bias", "head/kernel"]
    start_stats, end_stats = _flat(start["batch_stats"]), _flat(end["batch_stats"])
    assert all(_bit_equal(start_stats[path], end_stats[path]) for path in start_stats)
    train = [line for line in read_metrics(probe) if line["split"] == "train"]
    assert train[-1]["loss"] < train[0]["loss"]
    # The optimizer state of a frozen model (optax.multi_transform, masked leaves) checkpoints and resumes.
    result = run_main(probe, *tiny_run_overrides(fashion_mnist_dir, steps=14), f"--config.init_from={pretrained}",
                      "--config.linear_probe=True", "--config.learning_rate=0.5", "--config.allow_config_change=True")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 10" in result.stderr
    resumed = _flat(load_pretrained(probe)["params"])
    assert all(_bit_equal(start_params[path], resumed[path]) for path in start_params if not path.startswith("head/"))
