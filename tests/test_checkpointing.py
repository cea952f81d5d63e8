"""Checkpoint storage faults become one clear CheckpointError; earlier checkpoints stay intact."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from imagenet_jax.errors import CheckpointError
from imagenet_jax.train.checkpointing import Checkpointer, _storage_errors_explained


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
