"""Orbax checkpoints: async saves, newest-N plus best-top-1 retention, restore with fallback."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from imagenet_jax.errors import CheckpointError


class Checkpointer:
    """Saves {state, meta} under DIR/checkpoints/<step>/ and restores the newest one that is intact."""

    def __init__(self, directory: str, keep: int):
        """Opens (or creates) the checkpoint directory."""
        self.directory = directory
        policy = checkpoint_managers.AnyPreservationPolicy(
            [
                checkpoint_managers.LatestN(keep),
                checkpoint_managers.BestN(
                    get_metric_fn=lambda metrics: metrics["top1"], n=1, keep_checkpoints_without_metrics=False
                ),
            ]
        )
        options = ocp.CheckpointManagerOptions(preservation_policy=policy, enable_async_checkpointing=True, create=True)
        self.manager = ocp.CheckpointManager(directory, options=options)

    def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
        """Starts an async save of `state` (a pytree of arrays) and `meta` (JSON) at `step`."""
        with _storage_errors_explained(self.directory):
            self.manager.save(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                metrics=metrics,
                force=True,
            )

    def steps(self) -> list[int]:
        """Finalized checkpoint steps, oldest first."""
        return sorted(self.manager.all_steps())

    def restore_newest(self, abstract_state: Any) -> tuple[int, Any, dict] | None:
        """Restores the newest intact checkpoint as (step, state, meta); None if there is none at all.

        A checkpoint that fails to restore is reported and the previous one is tried; if every one fails,
        raise rather than silently starting over from step 0.
        """
        steps = self.steps()
        failures = []
        for step in reversed(steps):
            try:
                args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore())
                restored = self.manager.restore(step, args=args)
            except Exception as error:  # noqa: BLE001  (any corruption: report it and fall back)
                failures.append(step)
                logging.error("checkpoint at step %d cannot be restored (%s: %s); trying the previous one",
                              step, type(error).__name__, str(error)[:300])
                continue
            if failures:
                logging.warning("restored step %d instead of the newest, unreadable step(s) %s (moved to %s)",
                                step, failures, self._quarantine_dir)
                self._quarantine(failures)
            return step, restored["state"], restored["meta"]
        if failures:
            raise CheckpointError(
                f"none of the checkpoints {failures} in {self.manager.directory} can be restored; move them away "
                "to start from scratch, or fix the files"
            )
        return None

    @property
    def _quarantine_dir(self) -> str:
        return self.directory.rstrip("/") + "_unreadable"

    def _quarantine(self, steps: list[int]) -> None:
        # Keep unreadable checkpoints for inspection, but out of the way of the saves that will redo them.
        if jax.process_index() == 0:
            os.makedirs(self._quarantine_dir, exist_ok=True)
            for step in steps:
                target = os.path.join(self._quarantine_dir, str(step))
                shutil.rmtree(target, ignore_errors=True)
                shutil.move(os.path.join(self.directory, str(step)), target)
        self.manager.reload()

    def wait(self) -> None:
        """Blocks until pending async saves are written; raises their errors."""
        with _storage_errors_explained(self.directory):
            self.manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self.wait()
        self.manager.close()


@contextlib.contextmanager
def _storage_errors_explained(directory: str):
    """Turns a full disk or an unwritable directory, however deep in Orbax's threads, into one clear error."""
    try:
        yield
    except Exception as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise CheckpointError(
                f"cannot write a checkpoint to {directory} ({cause.strerror}); the previous checkpoints are intact "
                "(a half-written one never becomes the latest). Free space or fix permissions, then rerun the same "
                "command to resume."
            ) from error
        raise
