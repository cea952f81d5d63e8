"""A training run read back from its workdir: config, metrics, checkpoints, model, class names and inputs.

    run = imagenet_jax.load_run("runs/default")
    run.metrics()                      # metrics.jsonl as a list of dicts (run.metrics_frame() with pandas)
    variables = run.variables("best")  # {"params", "batch_stats"} of the best-top-1 checkpoint, as numpy
    logits = run.logits(images_uint8)  # the run's model with the eval normalization, in float32

Nothing here writes to the workdir, so a run may be inspected while it trains (from another process), and
nothing waits for other processes: in a multi-process job any one process may read a run alone.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from imagenet_jax.errors import CheckpointError, ConfigError
from imagenet_jax.storage import run_path
from imagenet_jax.storage.files import read_json_lines, read_run_config
from imagenet_jax.storage.layout import RunLayout
from imagenet_jax.training import checkpoint_integrity as integrity

if TYPE_CHECKING:
    import orbax.checkpoint as ocp

CHECKPOINT_CHOICES = "best, latest or a step number"


@dataclasses.dataclass(frozen=True)
class RestoredState:
    """One checkpoint of a run: its step, the arrays of the training state (nested dicts) and its meta."""

    step: int
    state: dict  # {"params", "batch_stats", "opt_state", "ema", "step"} as stored
    meta: dict  # best_top1, best_step, elapsed_seconds, the run's config, ...

    def variables(self, use_ema: bool = False) -> dict:
        """{"params", "batch_stats"} for `model.apply` (the EMA weights with use_ema, when the run kept them)."""
        if use_ema:
            if not self.state.get("ema"):
                raise ConfigError("this run kept no EMA weights (config.ema_decay was 0).")
            return {"params": self.state["ema"]["params"], "batch_stats": self.state["ema"].get("batch_stats") or {}}
        return {"params": self.state["params"], "batch_stats": self.state.get("batch_stats") or {}}


class Run:
    """The workdir of a run (local or gs://): read-only access to everything it wrote."""

    def __init__(self, workdir: str | os.PathLike):
        """Reads DIR/config.json (written when the run started); raises if DIR holds no run."""
        self.workdir = os.fspath(workdir)
        config_file = RunLayout.of(workdir).config
        if not config_file.exists():
            raise CheckpointError(f"{self.workdir} holds no run (no config.json); train into it first.")
        self.config = ml_collections.ConfigDict(read_run_config(config_file))

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, workdir: str | os.PathLike = "") -> Run:
        """A run that exists only as a config (weights from elsewhere, e.g. converted): its model, classes, image
        size and inputs, with `workdir` as where to write; it has no checkpoints."""
        run = cls.__new__(cls)
        run.workdir, run.config = os.fspath(workdir), ml_collections.ConfigDict(config.to_dict())
        return run

    def __repr__(self) -> str:
        return f"Run({self.workdir!r}: {self.config.model} on {self.config.dataset}, checkpoints {self.steps()})"

    # Metrics.
    def metrics(self, split: str | None = None) -> list[dict]:
        """The lines of metrics.jsonl as dicts (only those of `split`, e.g. "train" or "test", when given)."""
        rows = read_json_lines(RunLayout.of(self.workdir).metrics)
        return [row for row in rows if split is None or row.get("split") == split]

    def metrics_frame(self, split: str | None = None):
        """metrics() as a pandas DataFrame (needs pandas)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("metrics_frame() needs pandas (pip install pandas); metrics() needs nothing.") from None
        return pandas.DataFrame(self.metrics(split))

    to_dataframe = metrics_frame

    # Checkpoints.
    @functools.cached_property
    def _manager(self):
        import orbax.checkpoint as ocp

        from imagenet_jax.training.checkpointing import damaged_at_open

        directory = RunLayout.of(self.workdir).checkpoints
        if damaged := damaged_at_open(directory):  # Orbax's manager would stop on them with a traceback
            listed = "; ".join(f"step {step}: {why}" for step, why in sorted(damaged.items()))
            raise CheckpointError(f"damaged checkpoint(s) in {directory} ({listed}). Resume the training run on this "
                                  "workdir (the same command) to move them to checkpoints_unreadable/, or move them "
                                  "out yourself.")
        local = process_local_options()
        handlers = {"state": ocp.StandardCheckpointHandler(multiprocessing_options=local),
                    "meta": ocp.JsonCheckpointHandler(multiprocessing_options=local)}
        absl_logger = logging.getLogger("absl")
        level = absl_logger.level
        absl_logger.setLevel(logging.ERROR)  # read_only's own warnings ("setting save_interval_steps=0")
        try:
            options = ocp.CheckpointManagerOptions(read_only=True, create=False,  # never touches a live run's files
                                                   multiprocessing_options=local)
            return ocp.CheckpointManager(directory, options=options, item_handlers=handlers)
        finally:
            absl_logger.setLevel(level)

    def steps(self) -> list[int]:
        """Steps of the checkpoints on disk, oldest first."""
        if not RunLayout.of(self.workdir).checkpoints.exists():
            return []
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def resolve_checkpoint(self, checkpoint: str | int = "best") -> int:
        """The step that "best" (highest eval top-1 kept), "latest" or a step number names."""
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"{self.workdir} has no checkpoint yet.")
        if str(checkpoint).isdigit():
            if int(checkpoint) not in steps:
                raise CheckpointError(f"{self.workdir} has no checkpoint at step {checkpoint}; it has {steps}.")
            return int(checkpoint)
        if checkpoint == "latest":
            return steps[-1]
        if checkpoint == "best":
            best = self._read_meta(steps[-1]).get("best_step")
            return best if best in steps else steps[-1]  # no evaluation yet: the newest is all there is
        raise ConfigError(f"checkpoint={checkpoint!r} is not one of {CHECKPOINT_CHOICES}.")

    def _read_meta(self, step: int) -> dict:
        import orbax.checkpoint as ocp

        return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, checkpoint: str | int = "best") -> RestoredState:
        """The checkpoint `checkpoint` names, as host (numpy) arrays: loads on any device count."""
        import orbax.checkpoint as ocp

        from imagenet_jax.training.checkpointing import host_target

        step = self.resolve_checkpoint(checkpoint)
        target = host_target(self._manager.item_metadata(step)["state"])
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
        where = f"{run_path(self.workdir) / 'checkpoints' / str(step)}"
        try:  # the fingerprints saved with it (computed on this process's CPU, where the arrays are): silently
            # different numbers are refused, not evaluated
            meta, fingerprints = integrity.open_meta(restored["meta"], f"{where}/meta/metadata")
            integrity.check_state(dict(restored["state"]), fingerprints, f"{where}/state")
        except integrity.DamageFound as error:
            raise CheckpointError(f"the checkpoint {where} is damaged ({error}); choose another checkpoint, or "
                                  "resume the training run to set it aside.") from None
        return RestoredState(step=step, state=jax.device_get(dict(restored["state"])), meta=meta)

    def variables(self, checkpoint: str | int = "best", use_ema: bool = False) -> dict:
        """{"params", "batch_stats"} of a checkpoint, ready for `run.model.apply(variables, x, train=False)`."""
        return self.restore(checkpoint).variables(use_ema)

    # Model and classes.
    @functools.cached_property
    def class_names(self) -> tuple[str, ...]:
        """The dataset's class names (TFDS metadata or the folder's class directories), one per model class."""
        names = self._dataset_metadata[0]
        count = self.config.num_classes or len(names)
        return tuple(names[:count]) + tuple(f"class_{index}" for index in range(len(names), count))

    @functools.cached_property
    def _dataset_metadata(self) -> tuple[tuple[str, ...], int]:
        return dataset_metadata(self.config)

    @property
    def num_classes(self) -> int:
        """Number of model outputs."""
        return self.config.num_classes or len(self.class_names)

    @functools.cached_property
    def model(self):
        """The run's Flax module (eval: `apply(variables, normalized_images, train=False)`)."""
        from imagenet_jax.models import model_from_config

        return model_from_config(self.config, self.num_classes)

    @property
    def image_size(self) -> int:
        """Resolution the run evaluates at (after its eval preprocessing)."""
        from imagenet_jax.data.inputs import eval_image_size

        return eval_image_size(self.config)

    @property
    def channels(self) -> int:
        """Image channels the model takes (1 for Fashion-MNIST, 3 for photographs)."""
        return self._dataset_metadata[1]

    def inference_function(self) -> Callable[[dict, jax.Array], jax.Array]:
        """fn(variables, uint8 NHWC images at image_size) -> float32 logits: the eval normalization, then the model."""
        from imagenet_jax.models.outputs import split_outputs

        model, mean, std = self.model, tuple(self.config.normalize_mean), tuple(self.config.normalize_std)

        def logits_of(variables: dict, images: jax.Array) -> jax.Array:
            normalized = (images.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
            logits, _ = split_outputs(model.apply(variables, normalized, train=False))
            return logits.astype(jnp.float32)

        return logits_of

    def logits(self, images: np.ndarray, checkpoint: str | int = "best", variables: dict | None = None) -> np.ndarray:
        """float32 logits of uint8 NHWC images (already at image_size, as the eval preprocessing leaves them)."""
        variables = variables if variables is not None else self.variables(checkpoint)
        return np.asarray(self._jitted_logits(variables, jnp.asarray(images)))

    @functools.cached_property
    def _jitted_logits(self) -> Callable:
        return jax.jit(self.inference_function())

    # Inputs.
    def dataset(self):
        """The run's dataset as the loop loads it (TFDS or folder info; prepares Fashion-MNIST offline)."""
        from imagenet_jax.data import inputs

        return inputs.load_dataset(self.config)

    def eval_batches(self, num_batches: int | None = 1, batch_size: int = 64) -> Iterator[dict[str, np.ndarray]]:
        """Batches of the main eval split after the run's eval preprocessing: {"image" uint8, "label", "mask"}."""
        from imagenet_jax.data import inputs

        # One pass: tf.data's cache would only cost memory (and warn when the pass stops early).
        config = ml_collections.ConfigDict({**self.config.to_dict(), "cache_dataset": False})
        eval_set = inputs.main_eval_set(self.dataset())
        stream = inputs.eval_stream(config, eval_set, local_batch_size=batch_size)
        for index, batch in enumerate(stream()):
            if num_batches is not None and index >= num_batches:
                return
            yield batch

    def evaluate(self, checkpoint: str | int = "best", batch_size: int = 256, use_ema: bool = False) -> dict:
        """Top-1/top-5 of a checkpoint on the whole main eval split (every example once), and its step."""
        from imagenet_jax.core.metrics import topk_correct  # the one top-k of training and the evaluators

        restored = self.restore(checkpoint)
        variables = restored.variables(use_ema)
        logits_of = self._jitted_logits
        correct1 = correct5 = count = 0
        for batch in self.eval_batches(None, batch_size):
            logits = logits_of(variables, jnp.asarray(batch["image"]))
            keep = batch["mask"] & (batch["label"] >= 0)
            correct1 += int(np.sum(np.asarray(topk_correct(logits, batch["label"], 1)) * keep))
            correct5 += int(np.sum(np.asarray(topk_correct(logits, batch["label"], 5)) * keep))
            count += int(np.sum(keep))
        return {"step": restored.step, "top1": correct1 / max(count, 1), "top5": correct5 / max(count, 1),
                "num_examples": count}


def dataset_metadata(config: ml_collections.ConfigDict) -> tuple[tuple[str, ...], int]:
    """(class names, image channels) of config.dataset from metadata alone: TFDS builder info (no download, no
    prepared data needed) or a folder's class directories."""
    from imagenet_jax.data import datasets, folders

    if folders.is_folder_name(config.dataset):
        info = folders.load_folder(config.dataset, config.train_split, config.eval_split)
        return tuple(info.class_names), info.channels
    import tensorflow_datasets as tfds

    spec = datasets.get(config.dataset)
    info = tfds.builder(spec.tfds_name, data_dir=datasets.resolve_data_dir(config.data_dir)).info
    channels = info.features["image"].shape[-1] or 3
    return tuple(info.features[spec.label_key].names), int(channels)


def process_local_options() -> ocp.options.MultiprocessingOptions:
    """Orbax multiprocessing options under which this process reads checkpoints alone: no barrier waits for others.

    In a multi-process job a Run may be read by one process only (the end-of-run report, on process 0) or by each
    at its own pace; Orbax's default would make every read a collective that the other processes never enter.
    """
    import orbax.checkpoint as ocp

    return ocp.options.MultiprocessingOptions(primary_host=jax.process_index(),
                                              active_processes={jax.process_index()})


def load_run(workdir: str | os.PathLike) -> Run:
    """The run in `workdir` (see Run)."""
    return Run(workdir)
