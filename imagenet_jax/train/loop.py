"""train_and_evaluate: the whole run, readable top to bottom."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from imagenet_jax import models
from imagenet_jax.config import validate_config
from imagenet_jax.config.validate import config_drift
from imagenet_jax.data import pipeline
from imagenet_jax.data import preprocessing
from imagenet_jax.errors import CheckpointError, ConfigError
from imagenet_jax.parallel import mesh as mesh_lib
from imagenet_jax.train import optimizer as optimizer_lib
from imagenet_jax.train.checkpointing import Checkpointer
from imagenet_jax.train.reporting import MetricsReporter
from imagenet_jax.train.state import TrainState, create_train_state
from imagenet_jax.train.steps import make_eval_step, make_train_step


class Preempted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint of the current step was written before raising."""

    def __init__(self, step: int):
        """Records the step that was saved."""
        super().__init__(f"preempted: saved a checkpoint at step {step}; rerun the same command to resume")
        self.step = step


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains `config` in `workdir` (resuming from its newest checkpoint) and returns the final eval metrics."""
    validate_config(config, jax.device_count())
    _check_workdir(workdir)
    process_index, process_count = jax.process_index(), jax.process_count()

    # Data.
    info = pipeline.load_dataset(config.dataset, config.data_dir, config.manual_dir, config.train_split,
                                 config.eval_split)
    num_classes = config.num_classes or info.num_classes
    local_batch_size = config.batch_size // process_count
    local_eval_batch_size = (config.eval_batch_size or config.batch_size) // process_count
    steps_per_epoch = pipeline.steps_per_epoch(info, local_batch_size, process_count)
    if steps_per_epoch == 0:
        raise ConfigError(f"config.batch_size={config.batch_size} is larger than the training split "
                          f"({info.num_examples(info.train_split)} examples): lower it.")
    total_steps = config.num_train_steps if config.num_train_steps > 0 else int(config.num_epochs * steps_per_epoch)
    if total_steps <= 0:
        raise ConfigError(f"config.num_epochs={config.num_epochs} gives zero steps at {steps_per_epoch} steps per "
                          "epoch: raise it or set config.num_train_steps.")
    eval_every = config.eval_every_steps or steps_per_epoch
    checkpoint_every = config.checkpoint_every_steps or steps_per_epoch
    context = preprocessing.PreprocessContext(config.image_size, config.crop_pct, info.channels)
    train_preprocess = preprocessing.build(config.train_preprocess, context, "train_preprocess")
    eval_preprocess = preprocessing.build(config.eval_preprocess, context, "eval_preprocess")

    # Model, optimizer, state.
    dtype = jnp.bfloat16 if config.half_precision else jnp.float32
    model = models.create(config.model, num_classes=num_classes, dtype=dtype, **config.model_options)
    schedule = optimizer_lib.learning_rate_schedule(config, total_steps, steps_per_epoch)
    optimizer = optimizer_lib.create_optimizer(config, schedule)
    mesh = mesh_lib.make_data_mesh()
    replicated = mesh_lib.replicated(mesh)
    input_shape = (config.image_size, config.image_size, info.channels)
    init = jax.jit(lambda key: create_train_state(model, optimizer, key, input_shape), out_shardings=replicated)
    abstract_state = jax.eval_shape(init, jax.random.key(config.seed))
    state_sharding = jax.tree.map(lambda _: replicated, abstract_state)
    abstract_state = jax.tree.map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract_state, state_sharding)

    # Resume from the newest intact checkpoint, or start fresh.
    checkpointer = Checkpointer(os.path.join(os.path.abspath(workdir), "checkpoints"), config.keep_checkpoints)
    restored = checkpointer.restore_newest(abstract_state)
    resolved_config = json.loads(config.to_json_best_effort())
    if restored is None:
        state = init(jax.random.key(config.seed))
        meta = {"best_top1": None, "best_step": None, "elapsed_seconds": 0.0}
        start_step = 0
    else:
        start_step, state, meta = restored
        drift = config_drift(meta["config"], resolved_config)
        if drift and not config.allow_config_change:
            changes = ", ".join(f"{key} ({meta['config'].get(key)!r} -> {resolved_config.get(key)!r})" for key in drift)
            raise ConfigError(
                f"the checkpoint at step {start_step} in {workdir} was trained with a different config: {changes}. "
                "Use a new workdir, or pass --config.allow_config_change=True to resume anyway."
            )
        logging.info("resumed from step %d of %d", start_step, total_steps)
    if process_index == 0:
        with open(os.path.join(workdir, "config.json"), "w") as stream:
            json.dump(resolved_config, stream, indent=2, sort_keys=True)
    logging.info("model %s, %d parameters; %d devices in %d processes; %d steps (%d per epoch), global batch %d",
                 config.model, sum(x.size for x in jax.tree.leaves(abstract_state.params)), jax.device_count(),
                 process_count, total_steps, steps_per_epoch, config.batch_size)

    # Compiled steps: params replicated, batch split over the "data" axis, state donated.
    batch_sharding = mesh_lib.batch_sharded(mesh)
    train_step = jax.jit(
        make_train_step(model, optimizer, schedule, num_classes=num_classes, mean=config.normalize_mean,
                        std=config.normalize_std, label_smoothing=config.label_smoothing,
                        aux_loss_weight=config.aux_loss_weight),
        in_shardings=(state_sharding, batch_sharding, replicated),
        out_shardings=(state_sharding, replicated),
        donate_argnums=(0,),
    )
    eval_step = jax.jit(
        make_eval_step(model, num_classes=num_classes, mean=config.normalize_mean, std=config.normalize_std),
        in_shardings=(state_sharding, batch_sharding),
        out_shardings=replicated,
    )
    eval_split_batches = pipeline.eval_batches(
        info, info.eval_split, local_batch_size=local_eval_batch_size, preprocess=eval_preprocess,
        cache=config.cache_dataset, process_index=process_index, process_count=process_count)
    expected_eval_examples = info.num_examples(info.eval_split)

    def evaluate(state: TrainState) -> dict:
        totals = None
        for local_batch in eval_split_batches():
            sums = eval_step(state, mesh_lib.global_batch(local_batch, mesh))
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        totals = jax.device_get(totals)
        count = int(totals["num_examples"])
        if count != expected_eval_examples:
            raise RuntimeError(f"eval scored {count} examples of {expected_eval_examples}")
        return {"loss": float(totals["loss"]) / count, "top1": float(totals["top1"]) / count,
                "top5": float(totals["top5"]) / count, "num_examples": count}

    train_batches = pipeline.train_batches(
        info, local_batch_size=local_batch_size, seed=config.seed, start_step=start_step, preprocess=train_preprocess,
        shuffle_buffer_size=config.shuffle_buffer_size, cache=config.cache_dataset, process_index=process_index,
        process_count=process_count)
    reporter = MetricsReporter(workdir, total_steps, config.batch_size, start_step, meta["elapsed_seconds"])
    base_key = jax.random.key(config.seed)
    stop = _PreemptionFlag()
    window: list[dict] = []
    final_metrics: dict = {}
    try:
        for step in range(start_step + 1, total_steps + 1):
            state, metrics = train_step(state, mesh_lib.global_batch(next(train_batches), mesh), base_key)
            window.append(metrics)
            if step % config.log_every_steps == 0 or step == total_steps:
                averaged = {key: float(np.mean([m[key] for m in jax.device_get(window)])) for key in window[0]}
                reporter.train(step, averaged)
                window = []
            eval_metrics = None
            if step % eval_every == 0 or step == total_steps:
                eval_metrics = evaluate(state)
                if meta["best_top1"] is None or eval_metrics["top1"] > meta["best_top1"]:
                    meta.update(best_top1=eval_metrics["top1"], best_step=step)
                eval_metrics.update(best_top1=meta["best_top1"], best_step=meta["best_step"])
                reporter.eval(step, info.eval_split, eval_metrics)
                final_metrics = eval_metrics
            preempted = stop.requested()
            if step % checkpoint_every == 0 or step == total_steps or eval_metrics is not None or preempted:
                meta.update(step=step, images_seen=step * config.batch_size, config=resolved_config,
                            elapsed_seconds=reporter.elapsed_seconds)
                checkpointer.save(step, state, dict(meta),
                                  metrics={"top1": eval_metrics["top1"]} if eval_metrics else None)
            if preempted:
                checkpointer.wait()
                raise Preempted(step)
    finally:
        stop.restore()
        checkpointer.close()
        reporter.close()
    return final_metrics


def _check_workdir(workdir: str) -> None:
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, ".write_probe")
        with open(probe, "w") as stream:
            stream.write("ok")
        os.remove(probe)
    except OSError as error:
        raise CheckpointError(f"workdir {workdir} is not writable ({error.strerror}): choose another --workdir") from None


class _PreemptionFlag:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step (finish the step, save, exit)."""

    def __init__(self):
        self._event = threading.Event()
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        logging.warning("received signal %d: finishing this step, saving a checkpoint, then exiting", signum)
        self._event.set()

    def requested(self) -> bool:
        """True once a termination signal arrived."""
        return self._event.is_set()

    def restore(self) -> None:
        """Reinstalls the signal handlers that were there before."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
