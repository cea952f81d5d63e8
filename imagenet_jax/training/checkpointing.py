"""Orbax checkpoints: async saves, newest-N plus best-top-1 retention, restore that never silently rolls back.

Restoring reads a checkpoint's meta (with the config it was trained with) first, so a changed config is named
before any array is read; then it compares the stored array shapes with this run's state. A checkpoint that
is provably damaged is moved aside to `checkpoints_unreadable/` and the previous one is used. Proof is a missing,
truncated or unparsable file (storage.faults), content that differs from its fingerprint or CRC
(checkpoint_integrity), or a read that fails for no known reason while an older checkpoint of the same run
reads, twice. Damage in the files Orbax's manager itself parses when it opens the directory (each step's
metrics) is found before the manager opens it. A read that fails for any other reason (permissions, network,
timeouts: retried first) stops the run with the checkpoint's path and leaves it in place. When no checkpoint is
intact, all are moved aside and the run starts from step 0, saying so.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from imagenet_jax.errors import CheckpointError, ConfigError
from imagenet_jax.storage import faults, is_remote, move_tree, run_path
from imagenet_jax.training import checkpoint_integrity as integrity

RETRY_DELAYS_SECONDS = (1.0, 4.0, 16.0)  # between attempts at a read that failed transiently
COMMIT_MARKER = "commit_success.txt"  # Orbax writes it last into a step saved to an object store


class Checkpointer:
    """Saves {state, meta} under DIR/checkpoints/<step>/ and restores the newest one that is intact."""

    def __init__(self, directory: str | os.PathLike, keep: int,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS, also_keep_best: str = ""):
        """Opens (or creates) the checkpoint directory: a local path or a URL such as gs://bucket/run/checkpoints.

        `also_keep_best` names a second saved metric (higher is better) whose best checkpoint is kept too: the
        early-stopping one (train/early_stopping.py); checkpoints saved without it never count as its best.
        """
        self.directory = run_path(directory)
        self.retry_delays = retry_delays
        self._metric_names = frozenset({"top1", also_keep_best} - {""})
        policy = checkpoint_managers.AnyPreservationPolicy(
            [
                checkpoint_managers.LatestN(keep),
                checkpoint_managers.BestN(
                    get_metric_fn=lambda metrics: metrics["top1"], n=1, keep_checkpoints_without_metrics=False
                ),
            ] + ([checkpoint_managers.BestN(
                get_metric_fn=lambda metrics: metrics.get(also_keep_best, -math.inf), n=1,
                keep_checkpoints_without_metrics=False)] if also_keep_best else [])
        )
        # best_fn only makes Orbax write each checkpoint's metrics to disk (the policy decides what is kept):
        # without them a resumed run sees no metrics on older checkpoints and the BestN policies drop them.
        options = ocp.CheckpointManagerOptions(preservation_policy=policy, best_fn=lambda metrics: metrics["top1"],
                                               enable_async_checkpointing=True, create=True)
        # Handlers named up front: a fresh process can then read one item's metadata before restoring anything.
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        # The manager parses every step's metrics file as it opens: damage there is set aside before it does.
        self.set_aside = self._set_aside_damaged_at_open()
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
        """Starts an async save of `state` (a pytree of arrays) and `meta` (JSON) at `step`."""
        meta = integrity.seal_meta(meta, state)  # fingerprints of the arrays: proof of damage when restoring
        with _storage_errors_explained(self.directory):
            self.manager.save(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                metrics=integrity.seal_metrics(metrics),
                force=True,
            )

    def steps(self) -> list[int]:
        """Finalized checkpoint steps, oldest first."""
        return sorted(self.manager.all_steps())

    def restore_newest(self, abstract_state: Any,
                       check_meta: Callable[[int, dict], None] | None = None) -> tuple[int, Any, dict] | None:
        """Restores the newest intact checkpoint as (step, state, meta); None if there is none.

        `check_meta(step, meta)` runs on each candidate's meta before its arrays are read (the config-drift
        guard: it raises to refuse). Provably damaged checkpoints are moved aside and named in one warning. A
        checkpoint that fails for no known reason counts as damaged only when an older one restores and it fails
        again; when none restores, its error stops the run and nothing is moved.
        """
        damaged: dict[int, str] = {}  # step -> why (those set aside when the directory was opened are reported)
        unexplained: list[tuple[int, _Unexplained]] = []
        for step in reversed(self.steps()):
            try:
                state, meta = self._restore(step, abstract_state, check_meta)
            except _Damaged as error:
                damaged[step] = str(error)
                continue
            except _Unexplained as error:
                unexplained.append((step, error))
                continue
            for newer, _ in unexplained:  # newest first: one that reads now (a passing fault) is used after all
                try:
                    newer_state, newer_meta = self._restore(newer, abstract_state, check_meta)
                except (_Damaged, _Unexplained) as again:
                    damaged[newer] = f"{again} (failed twice, while step {step} of the same run restores)"
                else:
                    step, state, meta = newer, newer_state, newer_meta
                    break
            self._report_and_set_aside(damaged, f"restored step {step} instead")
            return step, state, meta
        if unexplained:
            raise unexplained[0][1].error  # no proof of damage: stop, roll nothing back
        if damaged or self.set_aside:
            self._report_and_set_aside(damaged, "no checkpoint is intact")
            logging.warning("no intact checkpoint in %s: starting from step 0", self.directory)
        return None

    def _restore(self, step: int, abstract_state: Any,
                 check_meta: Callable[[int, dict], None] | None) -> tuple[Any, dict]:
        """(state, meta) of `step`, every file checked; _Damaged, _Unexplained, or CheckpointError (transient)."""
        where = f"{self.directory / str(step)}"
        stored_meta = self._read(step, "meta/metadata", lambda: self.manager.restore(
            step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        meta, fingerprints = _checked(lambda: integrity.open_meta(stored_meta, f"{where}/meta/metadata"))
        if check_meta is not None:
            check_meta(step, meta)  # a refused config change is the user's decision, not damage: it propagates
        stored = self._read(step, "state", lambda: self.manager.item_metadata(step)["state"])
        try:
            self._check_fits(step, stored, abstract_state)
        except ConfigError as error:  # shapes that differ from an older checkpoint's of the same run are damage
            raise _Unexplained(str(error), error) from error
        state = self._read(step, "state", lambda: self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))["state"])
        _checked(lambda: integrity.check_state(state, fingerprints, f"{where}/state"))
        return state, meta

    def _read(self, step: int, item: str, read: Callable[[], Any]) -> Any:
        """`read()` with retries on transient errors; _Damaged on proven damage, _Unexplained or CheckpointError."""
        path = self.directory / str(step)
        try:
            return faults.with_retries(read, self.retry_delays)
        except Exception as error:  # noqa: BLE001  (classified below; nothing is rolled back without proof)
            kind = faults.classify(error)
            summary = f"{item}: {type(error).__name__}: {_first_line(error)}"
            if kind == faults.CORRUPT:
                raise _Damaged(f"{path}/{summary}") from error
            if kind == faults.TRANSIENT:
                raise _transient_read_error(f"the checkpoint {path}", summary, self.retry_delays) from error
            raise _Unexplained(f"{path}/{summary}", CheckpointError(
                f"cannot restore the checkpoint {path} ({summary}); it was left in place. If it is damaged, "
                f"move it out of {self.directory} and rerun to resume from the previous one."
            )) from error

    def _set_aside_damaged_at_open(self) -> dict[int, str]:
        """Moves aside the steps damaged in what Orbax's manager reads as it opens the directory."""
        damaged = damaged_at_open(self.directory, self._metric_names, self.retry_delays)
        self._report_and_set_aside(damaged, "opening the checkpoints")  # now: a refused config may stop the run next
        return damaged

    def _report_and_set_aside(self, damaged: dict[int, str], outcome: str) -> None:
        if not damaged:
            return
        listed = "; ".join(f"step {step}: {why}" for step, why in sorted(damaged.items(), reverse=True))
        logging.warning("%s: damaged checkpoint(s) moved to %s (%s)", outcome, self._quarantine_dir, listed)
        self._move_aside(sorted(damaged))
        if hasattr(self, "manager"):  # not yet opened when set aside before Orbax's manager reads the directory
            self.manager.reload()

    def _check_fits(self, step: int, stored: Any, abstract_state: Any) -> None:
        """ConfigError naming the arrays whose shapes differ between the checkpoint and this run's state."""
        if stored is None:
            raise _Damaged(f"{self.directory / str(step)}/state: its metadata is missing")
        stored_shapes = _shapes(getattr(stored, "tree", stored))
        wanted_shapes = _shapes(ocp.tree.serialize_tree(abstract_state, keep_empty_nodes=True))
        differences = [f"{name}: checkpoint {stored_shapes[name]} vs this run {shape}"
                       for name, shape in wanted_shapes.items()
                       if name in stored_shapes and stored_shapes[name] != shape]
        differences += [f"{name}: not in the checkpoint" for name in wanted_shapes if name not in stored_shapes]
        differences += [f"{name}: only in the checkpoint" for name in stored_shapes if name not in wanted_shapes]
        if differences:
            listed = "; ".join(differences[:6]) + ("; ..." if len(differences) > 6 else "")
            raise ConfigError(
                f"the checkpoint at step {step} in {self.directory} does not fit this run's model and optimizer "
                f"({len(differences)} arrays differ: {listed}): config.model, config.model_options, "
                "config.num_classes or the optimizer changed. Use a new workdir, with "
                "--config.init_from=<this workdir> to start from its weights."
            )

    @property
    def _quarantine_dir(self):
        return self.directory.parent / f"{self.directory.name}_unreadable"

    def _move_aside(self, steps: list[int]) -> None:
        # Keep damaged checkpoints for inspection, but out of the way of the saves that will redo them.
        if steps and jax.process_index() == 0:
            for step in steps:
                move_tree(self.directory / str(step), self._quarantine_dir / str(step))
        if steps and jax.process_count() > 1:  # every process decided alike from the same files; wait for the move
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"checkpoints {steps} moved aside")

    def wait(self) -> None:
        """Blocks until pending async saves are written; raises their errors."""
        with _storage_errors_explained(self.directory):
            self.manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self.wait()
        self.manager.close()


def host_target(stored: Any) -> Any:
    """Abstract arrays shaped like a checkpoint's stored metadata on this process's CPU: the restore target that
    loads a checkpoint saved on any device count or mesh (Orbax refuses the saved topology on another one)."""
    stored = getattr(stored, "tree", stored)
    # This process's own CPU: jax.devices("cpu")[0] is process 0's in a multi-process job.
    host = jax.sharding.SingleDeviceSharding(jax.local_devices(backend="cpu")[0])
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=host), stored)


def damaged_at_open(directory, metric_names: frozenset[str] = frozenset({"top1"}),
                    retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS) -> dict[int, str]:
    """{step: why} for the checkpoints under `directory` that are provably damaged in what Orbax's manager reads
    as it opens the directory: every step's metrics file (it would stop on the first unparsable one) and, in a
    bucket, the commit marker (without it the step is silently skipped, and saving that step again fails).
    Transient read errors raise CheckpointError."""
    directory = run_path(directory)
    damaged: dict[int, str] = {}
    if not directory.exists():
        return damaged
    for step_dir in directory.iterdir():
        if not step_dir.name.isdigit():
            continue
        if is_remote(directory) and not (step_dir / COMMIT_MARKER).exists():
            damaged[int(step_dir.name)] = f"{step_dir}/{COMMIT_MARKER}: missing (an unfinished save, or deleted)"
            continue
        metrics_file = step_dir / "metrics" / "metrics"
        try:
            text = faults.with_retries(metrics_file.read_bytes, retry_delays)
        except FileNotFoundError:
            continue  # saved without metrics (or deleted: Orbax then treats it so, and the step is usable)
        except Exception as error:  # noqa: BLE001  (transient: stop and roll nothing back; anything else propagates)
            if faults.classify(error) == faults.TRANSIENT:
                raise _transient_read_error(str(metrics_file), f"{type(error).__name__}: {_first_line(error)}",
                                            retry_delays) from error
            raise
        try:
            integrity.check_metrics_text(text, str(metrics_file), metric_names)
        except integrity.DamageFound as error:
            damaged[int(step_dir.name)] = str(error)
    return damaged


class _Damaged(Exception):
    """A checkpoint whose files are provably missing, truncated, unparsable or not what was saved."""


class _Unexplained(Exception):
    """A checkpoint that failed to restore for no known reason; `error` is what stops the run if none restores."""

    def __init__(self, message: str, error: Exception):
        """Keeps the error to raise."""
        super().__init__(message)
        self.error = error


def _checked(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except integrity.DamageFound as error:
        raise _Damaged(str(error)) from error


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat = ocp.tree.to_flat_dict(tree)
    return {"/".join(map(str, key)): tuple(leaf.shape) for key, leaf in flat.items() if hasattr(leaf, "shape")}


def _transient_read_error(what: str, summary: str, retry_delays: tuple[float, ...]) -> CheckpointError:
    # Nothing is proven damaged by a read that could not happen: stop, move nothing.
    return CheckpointError(f"cannot read {what} ({summary}), {len(retry_delays) + 1} attempts; it was left in place. "
                           "Fix access to the storage (permissions, network), then rerun to resume.")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else "")[:600]


@contextlib.contextmanager
def _storage_errors_explained(directory):
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
