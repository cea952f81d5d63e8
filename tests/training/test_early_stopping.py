"""Early stopping (train/early_stopping.py) and the regularization keys' validation; a tiny run that stops early."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import ml_collections
import pytest

from imagenet_jax.config import get_base_config
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import validate_config
from imagenet_jax.training.early_stopping import EarlyStopping
from tests.conftest import read_metrics, run_main, tiny_run_overrides


def _stopper(metric="test/top1", mode="auto", patience=2, min_delta=0.01, saved=None) -> EarlyStopping:
    config = get_base_config()
    config.early_stopping = ml_collections.ConfigDict(
        {"metric": metric, "mode": mode, "patience": patience, "min_delta": min_delta})
    return EarlyStopping.from_config(config, saved)


def test_early_stopping_counts_evaluations_without_an_improvement_beyond_min_delta():
    stopper = _stopper()
    assert stopper.mode == "max"
    decisions = []
    for step, top1 in zip((10, 20, 30, 40, 50), (0.5, 0.505, 0.52, 0.52, 0.525), strict=True):
        stopper.update(step, {"test": {"top1": top1, "loss": 1.0}})
        decisions.append((stopper.improved, stopper.evaluations_without_improvement, stopper.should_stop))
    # 0.505 is within min_delta of 0.5; 0.52 beats 0.51; 0.52 and 0.525 do not beat 0.53.
    assert decisions == [(True, 0, False), (False, 1, False), (True, 0, False), (False, 1, False), (False, 2, True)]
    assert (stopper.best, stopper.best_step) == (0.52, 30)
    reason = stopper.reason(50)
    assert "step 50" in reason and "test/top1" in reason and "best 0.52 at step 30" in reason


def test_early_stopping_resumes_its_counters_from_the_checkpoint_meta():
    stopper = _stopper(metric="minival/loss", patience=3)
    assert stopper.mode == "min"
    for step, loss in ((1, 2.0), (2, 1.0), (3, 1.5)):
        stopper.update(step, {"minival": {"loss": loss}})
    saved = json.loads(json.dumps(stopper.state()))  # as the checkpoint's JSON meta holds it
    resumed = _stopper(metric="minival/loss", patience=3, saved=saved)
    assert (resumed.best, resumed.best_step, resumed.evaluations_without_improvement) == (1.0, 2, 1)
    resumed.update(4, {"minival": {"loss": 1.2}})
    resumed.update(5, {"minival": {"loss": 1.1}})
    assert resumed.should_stop and resumed.evaluations_without_improvement == 3
    fresh = _stopper(metric="minival/top1", patience=3, saved=saved)  # another metric: counting starts over
    assert (fresh.best, fresh.evaluations_without_improvement) == (None, 0)


def test_early_stopping_mode_auto_minimizes_losses_and_errors():
    assert [_stopper(metric=m).mode for m in ("test/loss", "real/error_rate", "test_ema/top5")] == ["min", "min", "max"]
    assert _stopper(metric="test/loss", mode="max").mode == "max"


def test_early_stopping_names_the_available_metrics_for_an_unknown_one():
    with pytest.raises(ConfigError, match=r"eval splits are test, test_ema"):
        _stopper(metric="tset/top1").check_splits(["test", "test_ema"])
    with pytest.raises(ConfigError, match=r"test/top1, test/loss"):
        _stopper(metric="test/top_1").update(1, {"test": {"top1": 0.5, "loss": 1.0}})


def test_early_stopping_best_checkpoint_survives_newer_saves_and_a_restart(tmp_path):
    from imagenet_jax.experiment.loop import EARLY_STOPPING_BEST
    from imagenet_jax.training.checkpointing import Checkpointer

    state = {"weights": jnp.ones(3)}
    checkpointer = Checkpointer(tmp_path, keep=1, also_keep_best=EARLY_STOPPING_BEST)
    checkpointer.save(3, state, {}, metrics={"top1": 0.5, EARLY_STOPPING_BEST: 3})  # early stopping's best
    checkpointer.save(6, state, {}, metrics={"top1": 0.9})  # best top-1, no improvement of the stopping metric
    checkpointer.save(9, state, {}, metrics={"top1": 0.1})
    checkpointer.close()
    assert checkpointer.steps() == [3, 6, 9]
    resumed = Checkpointer(tmp_path, keep=1, also_keep_best=EARLY_STOPPING_BEST)  # metrics are read back from disk
    resumed.save(12, state, {}, metrics={"top1": 0.2})
    resumed.close()
    assert resumed.steps() == [3, 6, 12]


@pytest.mark.parametrize("key, value, message", [
    ("loss", "focal", "config.loss='focal'"),
    ("bce_target_threshold", 0.2, "only applies to"),
    ("ema_decay", 1.0, "config.ema_decay=1.0"),
    ("early_stopping.metric", "top1", "<split>/<key>"),
    ("early_stopping.mode", "maximize", "config.early_stopping.mode='maximize'"),
    ("early_stopping.patience", -1, "config.early_stopping.patience=-1"),
    ("early_stopping.min_delta", -0.1, "config.early_stopping.min_delta=-0.1"),
])
def test_config_validation_names_a_bad_regularization_key(key, value, message):
    config = get_base_config()
    config.unlock()
    parent, _, leaf = key.rpartition(".")
    (config[parent] if parent else config)[leaf] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate_config(config)


@pytest.mark.slow  # an end-to-end run: about 30 s on a quiet 2-core machine
def test_tiny_run_logs_ema_twins_and_stops_early_keeping_its_best_checkpoint(tmp_path, fashion_mnist_dir):
    workdir = str(tmp_path / "run")
    main_split = "test[:1000]"
    result = run_main(workdir, *tiny_run_overrides(fashion_mnist_dir, steps=12), "--config.eval_every_steps=3",
                      "--config.keep_checkpoints=1", "--config.ema_decay=0.9",
                      f"--config.early_stopping.metric={main_split}/top1", "--config.early_stopping.patience=2",
                      "--config.early_stopping.min_delta=1.0")  # top-1 can never improve by 1.0
    assert result.returncode == 0, result.stderr[-3000:]
    # Evaluations at steps 3 (the best), 6 and 9 (patience 2 without improvement): stopped before step 12.
    assert f"early stopping at step 9: {main_split}/top1 (max)" in result.stderr
    assert "at step 3, whose checkpoint is kept" in result.stderr
    lines = read_metrics(workdir)
    assert max(line["step"] for line in lines) == 9
    assert [line["step"] for line in lines if line["split"] == main_split] == [3, 6, 9]
    ema_lines = [line for line in lines if line["split"] == main_split + "_ema"]
    assert [line["step"] for line in ema_lines] == [3, 6, 9]
    assert all(line["num_examples"] == 1000 and 0 <= line["top1"] <= 1 for line in ema_lines)
    checkpoints = set(os.listdir(os.path.join(workdir, "checkpoints")))
    assert {"3", "9"} <= checkpoints  # early stopping's best and the newest (keep_checkpoints=1)
    with open(os.path.join(workdir, "checkpoints", "9", "meta", "metadata")) as stream:
        counters = json.load(stream)["early_stopping"]
    assert (counters["best_step"], counters["evaluations_without_improvement"]) == (3, 2)
