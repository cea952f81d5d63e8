"""Checkpoints: storage faults become one clear error; restore falls back only from a provably damaged checkpoint,
stops (retrying first) on anything else, and names a config change before any array is read."""

from __future__ import annotations

import errno
import json
import logging
import os

import jax
import numpy as np
import pytest

from imagenet_jax.errors import CheckpointError, ConfigError
from imagenet_jax.experiment.validate import config_drift
from imagenet_jax.storage import faults
from imagenet_jax.training.checkpointing import Checkpointer, _storage_errors_explained

FAST_RETRIES = (0.01, 0.01, 0.01)  # 4 attempts


def test_full_disk_deep_inside_a_save_is_explained():
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoints are intact"):
        with _storage_errors_explained("/ckpt"):
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError as inner:
                raise RuntimeError("async save failed") from inner


def test_other_errors_pass_through_unchanged():
    with pytest.raises(ValueError, match="not storage"):
        with _storage_errors_explained("/ckpt"):
            raise ValueError("not storage")


def test_keeps_newest_and_best(tmp_path):
    checkpointer = Checkpointer(str(tmp_path / "checkpoints"), keep=2)
    state = {"w": np.arange(3.0)}
    for step, top1 in ((1, 0.9), (2, 0.5), (3, None), (4, 0.6)):
        checkpointer.save(step, state, {"step": step}, metrics={"top1": top1} if top1 is not None else None)
    checkpointer.wait()
    assert checkpointer.steps() == [1, 3, 4]  # the newest two, plus step 1 with the best top-1
    checkpointer.close()


STATE = {"params": {"head": {"kernel": np.arange(40.0, dtype=np.float32).reshape(4, 10)}},
         "step": np.array(7, np.int32)}


def _abstract(state):
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)


def _two_checkpoints(directory: str) -> str:
    checkpointer = Checkpointer(directory, keep=3)
    for step in (1, 2):
        checkpointer.save(step, jax.tree.map(lambda x, s=step: x * s, STATE), {"step": step, "config": {"seed": 0}})
    checkpointer.close()
    return directory


def _files(directory: str) -> list[str]:
    return sorted(os.path.join(root, name) for root, _, names in os.walk(directory) for name in names)


def _truncate_array_data(step_dir):
    for path in _files(os.path.join(step_dir, "state", "d")):
        with open(path, "r+b") as stream:
            stream.truncate(os.path.getsize(path) // 2)


def _delete_array_data(step_dir):
    for path in _files(os.path.join(step_dir, "state", "d")):
        os.remove(path)


def _unparsable_array_metadata(step_dir):
    with open(os.path.join(step_dir, "state", "_METADATA"), "w") as stream:
        stream.write("{not json")


def _unparsable_meta(step_dir):
    with open(os.path.join(step_dir, "meta", "metadata"), "w") as stream:
        stream.write("{not json")


@pytest.mark.parametrize("damage", [_truncate_array_data, _delete_array_data, _unparsable_array_metadata,
                                    _unparsable_meta])
def test_a_provably_damaged_newest_checkpoint_falls_back_and_is_moved_aside(tmp_path, damage):
    directory = _two_checkpoints(str(tmp_path / "checkpoints"))
    damage(os.path.join(directory, "2"))
    step, state, meta = Checkpointer(directory, keep=3).restore_newest(_abstract(STATE))
    assert (step, meta["step"]) == (1, 1)
    np.testing.assert_array_equal(state["params"]["head"]["kernel"], STATE["params"]["head"]["kernel"])
    assert sorted(os.listdir(directory)) == ["1"]
    assert os.listdir(tmp_path / "checkpoints_unreadable") == ["2"]


def test_a_permission_denied_read_is_retried_then_stops_naming_the_path_and_rolls_nothing_back(gcs_emulator):
    directory = "gs://bucket/denied/checkpoints"
    _two_checkpoints(directory)
    gcs_emulator.denied_prefixes.add("denied/checkpoints/2/state/")
    try:
        checkpointer = Checkpointer(directory, keep=3, retry_delays=FAST_RETRIES)
        with pytest.raises(CheckpointError) as raised:
            checkpointer.restore_newest(_abstract(STATE))
    finally:
        gcs_emulator.denied_prefixes.clear()
    message = str(raised.value)
    assert f"cannot read the checkpoint {directory}/2 (" in message
    assert "4 attempts; it was left in place" in message
    fs = gcs_emulator.filesystem()
    fs.invalidate_cache()
    assert not fs.exists("bucket/denied/checkpoints_unreadable")
    # Access restored: the same checkpoint is intact and is the one resumed from.
    step, state, _ = Checkpointer(directory, keep=3).restore_newest(_abstract(STATE))
    assert step == 2
    np.testing.assert_array_equal(state["params"]["head"]["kernel"], 2 * STATE["params"]["head"]["kernel"])


def test_an_unexplained_restore_error_stops_without_rolling_back(tmp_path):
    directory = _two_checkpoints(str(tmp_path / "checkpoints"))
    checkpointer = Checkpointer(directory, keep=3, retry_delays=FAST_RETRIES)
    original = checkpointer.manager.restore

    def restore(step, args):
        if "state" in args.keys():
            raise RuntimeError("something nobody anticipated")
        return original(step, args=args)

    checkpointer.manager.restore = restore
    with pytest.raises(CheckpointError, match=r"checkpoints/2 \(state: RuntimeError: something nobody "
                                              r"anticipated\); it was left in place"):
        checkpointer.restore_newest(_abstract(STATE))
    assert sorted(os.listdir(directory)) == ["1", "2"]


def test_the_drift_guard_sees_the_config_before_any_array_is_read(tmp_path):
    directory = _two_checkpoints(str(tmp_path / "checkpoints"))
    _truncate_array_data(os.path.join(directory, "2"))  # reading the arrays would fall back to step 1
    seen = []

    def refuse(step, meta):
        seen.append(step)
        raise ConfigError(f"step {step} was trained with seed {meta['config']['seed']}")

    with pytest.raises(ConfigError, match="step 2 was trained with seed 0"):
        Checkpointer(directory, keep=3).restore_newest(_abstract(STATE), check_meta=refuse)
    assert seen == [2] and sorted(os.listdir(directory)) == ["1", "2"]


def test_a_checkpoint_of_another_model_is_named_as_a_config_change_not_damage(tmp_path):
    directory = _two_checkpoints(str(tmp_path / "checkpoints"))
    other = {"params": {"head": {"kernel": np.zeros((4, 5), np.float32), "bias": np.zeros(5, np.float32)}},
             "step": np.array(0, np.int32)}
    with pytest.raises(ConfigError) as raised:
        Checkpointer(directory, keep=3).restore_newest(_abstract(other))
    message = str(raised.value)
    assert "2 arrays differ: params/head/kernel: checkpoint (4, 10) vs this run (4, 5)" in message
    assert "params/head/bias: not in the checkpoint" in message and "config.num_classes" in message
    assert sorted(os.listdir(directory)) == ["1", "2"]


@pytest.mark.parametrize("error, kind", [
    (PermissionError(errno.EACCES, "Permission denied"), faults.TRANSIENT),
    (OSError(errno.ETIMEDOUT, "Connection timed out"), faults.TRANSIENT),
    (ConnectionResetError(), faults.TRANSIENT),
    (OSError("Forbidden: https://storage.googleapis.com/download/storage/v1/b/b/o/x"), faults.TRANSIENT),  # gcsfs
    (TimeoutError(), faults.TRANSIENT),
    (ValueError("UNAVAILABLE: gs://b/x: 503 Service Unavailable"), faults.TRANSIENT),
    (ValueError("PERMISSION_DENIED: gs://b/x: 403"), faults.TRANSIENT),
    (ValueError("DATA_LOSS: Error decoding manifest"), faults.CORRUPT),
    (ValueError("NOT_FOUND: Metadata at b/.zarray does not exist"), faults.CORRUPT),
    (ValueError("OUT_OF_RANGE: Error reading byte range [0, 953)"), faults.CORRUPT),
    (FileNotFoundError(errno.ENOENT, "No such file"), faults.CORRUPT),
    (json.JSONDecodeError("Expecting value", "", 0), faults.CORRUPT),
    (KeyError('Item "state" was not found in the checkpoint.'), faults.CORRUPT),
    (ValueError("INVALID_ARGUMENT: bad spec"), faults.UNKNOWN),
    (RuntimeError("boom"), faults.UNKNOWN),
])
def test_read_errors_are_classified_by_type_errno_and_status(error, kind):
    assert faults.classify(error) == kind


def test_a_transient_cause_inside_a_wrapper_is_transient_and_retried_until_it_succeeds():
    attempts = []

    def read():
        attempts.append(1)
        if len(attempts) < 3:
            try:
                raise OSError(errno.ECONNRESET, "Connection reset by peer")
            except OSError as cause:
                raise RuntimeError("restore failed") from cause
        return "restored"

    assert faults.with_retries(read, FAST_RETRIES) == "restored" and len(attempts) == 3


def test_eval_only_keys_may_change_on_resume_but_the_model_may_not():
    stored = {"crop_pct": 0.875, "eval_image_size": 0, "eval_preprocess": "resize_center_crop",
              "evals": {"minival": {"type": "classification", "holdout": 50}}, "log_every_steps": 100,
              "num_classes": 0, "model": "resnet50"}
    evaluated_differently = {**stored, "crop_pct": 0.95, "eval_image_size": 288, "eval_preprocess": "center_crop",
                             "evals": {"mv": {"type": "per_class", "holdout": 50},
                                       "v2": {"type": "classification", "dataset": "imagenet_v2"}},
                             "log_every_steps": 10}
    assert config_drift(stored, evaluated_differently) == []
    assert config_drift(stored, {**evaluated_differently, "num_classes": 100, "model": "resnet18"}) == [
        "model", "num_classes"]


def test_a_changed_holdout_changes_the_training_set_and_is_refused_on_resume():
    stored = {"evals": {"minival": {"type": "classification", "holdout": 50}}, "model": "resnet50"}
    assert config_drift(stored, {**stored, "evals": {}}) == ["evals.*.holdout"]
    assert config_drift(stored, {**stored, "evals": {"m": {"type": "classification", "holdout": 60}}}) == [
        "evals.*.holdout"]
    older_run = {"minival_examples": 50, "model": "resnet50"}  # before config.evals held it
    assert config_drift(older_run, stored) == []


def test_keys_newer_than_the_checkpoint_at_their_defaults_are_not_a_change():
    from imagenet_jax.config.base import get_base_config

    current = json.loads(get_base_config().to_json_best_effort())
    older = {key: value for key, value in current.items() if key not in ("pruning", "label_smoothing")}
    assert config_drift(older, current) == []
    assert config_drift(older, {**current, "label_smoothing": 0.2}) == ["label_smoothing"]


def test_model_options_newer_than_the_checkpoint_or_init_only_are_not_a_change():
    from imagenet_jax import models

    current = {"model": "resnet_small", "model_options": models.default_options("resnet_small")}
    older = {**current, "model_options": {key: value for key, value in current["model_options"].items()
                                          if key not in ("conv_init", "stochastic_depth_rate")}}
    assert config_drift(older, current) == []
    # conv_init only draws the initial weights, which a resumed run restores: any value resumes.
    assert config_drift(older, {**current, "model_options": {**current["model_options"],
                                                             "conv_init": "he_fan_in"}}) == []
    assert config_drift(older, {**current, "model_options": {**current["model_options"],
                                                             "stochastic_depth_rate": 0.1}}) == ["model_options"]


def test_when_no_checkpoint_is_intact_all_are_set_aside_and_the_run_starts_from_step_0(tmp_path, caplog):
    directory = _two_checkpoints(str(tmp_path / "checkpoints"))
    for step in ("1", "2"):
        _truncate_array_data(os.path.join(directory, step))
    with caplog.at_level(logging.WARNING):
        assert Checkpointer(directory, keep=3).restore_newest(_abstract(STATE)) is None
    assert "starting from step 0" in caplog.text
    assert sorted(os.listdir(tmp_path / "checkpoints_unreadable")) == ["1", "2"] and os.listdir(directory) == []


def _failing_state_reads(checkpointer: Checkpointer, step: int, times: int) -> list[int]:
    """Makes restoring `step`'s arrays fail for no known reason `times` times; returns the steps whose arrays
    were read (in order)."""
    original, reads = checkpointer.manager.restore, []

    def restore(at, args):
        if "state" in args.keys():
            reads.append(at)
            if at == step and reads.count(step) <= times:
                raise RuntimeError("something nobody anticipated")
        return original(at, args=args)

    checkpointer.manager.restore = restore
    return reads


def test_a_newest_checkpoint_that_fails_twice_while_an_older_one_restores_is_damaged(tmp_path, caplog):
    directory = _two_checkpoints(str(tmp_path / "checkpoints"))
    checkpointer = Checkpointer(directory, keep=3, retry_delays=())
    reads = _failing_state_reads(checkpointer, 2, times=2)
    with caplog.at_level(logging.WARNING):
        step, _, _ = checkpointer.restore_newest(_abstract(STATE))
    assert step == 1 and reads == [2, 1, 2]
    assert "restored step 1 instead" in caplog.text and "failed twice, while step 1 of the same run restores" in (
        caplog.text)
    assert os.listdir(tmp_path / "checkpoints_unreadable") == ["2"]


def test_a_newest_checkpoint_that_fails_once_for_no_known_reason_is_used_when_it_reads_again(tmp_path):
    directory = _two_checkpoints(str(tmp_path / "checkpoints"))
    checkpointer = Checkpointer(directory, keep=3, retry_delays=())
    reads = _failing_state_reads(checkpointer, 2, times=1)
    step, state, _ = checkpointer.restore_newest(_abstract(STATE))
    assert step == 2 and reads == [2, 1, 2]
    np.testing.assert_array_equal(state["params"]["head"]["kernel"], 2 * STATE["params"]["head"]["kernel"])
    assert sorted(os.listdir(directory)) == ["1", "2"] and not os.path.exists(tmp_path / "checkpoints_unreadable")
