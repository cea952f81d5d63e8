"""train_and_evaluate: the whole run, readable top to bottom, for any task (imagenet_jax/tasks).

The loop knows steps, epochs, devices, checkpoints, resume, preemption, logging and when to evaluate; what is
learned (data, model, loss, metrics, evaluators) is the task's, picked by config.task.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import signal
import threading

import jax
import ml_collections
import numpy as np

from imagenet_jax import evaluators, tasks
from imagenet_jax.core import ema as ema_lib
from imagenet_jax.core.state import create_train_state
from imagenet_jax.errors import ConfigError
from imagenet_jax.experiment.validate import refuse_config_drift, resolve_batch_size, validate_config
from imagenet_jax.parallel import mesh as mesh_lib
from imagenet_jax.storage import preflight, run_path, write_text_atomically
from imagenet_jax.storage.layout import RunLayout
from imagenet_jax.training import optim
from imagenet_jax.training.checkpointing import Checkpointer
from imagenet_jax.training.early_stopping import EarlyStopping
from imagenet_jax.training.nonfinite import average_train_metrics, check_finite
from imagenet_jax.training.profiling import ProfileWindow
from imagenet_jax.training.reporting import MetricsReporter
from imagenet_jax.training.throughput import ThroughputMeter
from imagenet_jax.training.trial_pruning import SPLIT as PRUNED_SPLIT
from imagenet_jax.training.trial_pruning import TrialReporter

EARLY_STOPPING_BEST = "early_stopping_best_step"  # checkpoint metric marking early stopping's best evaluation


class Preempted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint of the current step was written before raising."""

    def __init__(self, step: int):
        """Records the step that was saved."""
        super().__init__(f"preempted: saved a checkpoint at step {step}; rerun the same command to resume")
        self.step = step


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains `config` in `workdir` (resuming from its newest checkpoint) and returns the final eval metrics."""
    config = resolve_batch_size(config, jax.device_count())
    validate_config(config, jax.device_count())
    preflight.check_workdir_writable(workdir)  # a local path or a bucket (gs://...)
    _enable_compilation_cache(config.compilation_cache_dir)
    process_index, process_count = jax.process_index(), jax.process_count()

    task = tasks.get(config.task)

    # Data.
    data = task.load_data(config, process_index, process_count)
    if data.note:  # once per run, however often the dataset is loaded (the evaluators load it again)
        logging.info("%s: %s", config.dataset, data.note)
    steps_per_epoch = data.steps_per_epoch(config.batch_size)
    if steps_per_epoch == 0:
        raise ConfigError(f"config.batch_size={config.batch_size} is larger than the training split "
                          f"({data.train_examples()} examples): lower it.")
    total_steps = config.num_train_steps if config.num_train_steps > 0 else int(config.num_epochs * steps_per_epoch)
    if total_steps <= 0:
        raise ConfigError(f"config.num_epochs={config.num_epochs} gives zero steps at {steps_per_epoch} steps per "
                          "epoch: raise it or set config.num_train_steps.")
    eval_every = config.eval_every_steps or steps_per_epoch
    checkpoint_every = config.checkpoint_every_steps or steps_per_epoch

    # Model, optimizer, state.
    model = task.model(config, data)
    # `schedule` is the learning rate per train step (per micro-batch when accumulating gradients), for the logs.
    optimizer, schedule = task.optimizer(config, data, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    mesh = mesh_lib.make_mesh(config.fsdp_devices)
    replicated = mesh_lib.replicated(mesh)
    input_shape = task.input_shape(config, data)

    def initial_state(key):
        return create_train_state(model, optimizer, key, input_shape, with_ema=config.ema_decay > 0)

    abstract_state = jax.eval_shape(initial_state, jax.random.key(config.seed))
    state_sharding = mesh_lib.state_shardings(abstract_state, mesh, config.fsdp_min_size, config.fsdp_rules)
    init = jax.jit(initial_state, out_shardings=state_sharding)
    # The restore target carries this run's shardings, so a checkpoint from another mesh is resharded.
    abstract_state = jax.tree.map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract_state, state_sharding)
    state_bytes = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(abstract_state))
    preflight.check_free_disk(workdir, state_bytes, config.min_free_disk_gb)

    # Resume from the newest intact checkpoint, or start fresh.
    layout = RunLayout.of(workdir)
    checkpointer = Checkpointer(layout.checkpoints, config.keep_checkpoints,
                                also_keep_best=EARLY_STOPPING_BEST if config.early_stopping.metric else "")
    resolved_config = json.loads(config.to_json_best_effort())
    restored = checkpointer.restore_newest(  # the drift guard reads each checkpoint's config before its arrays
        abstract_state, check_meta=lambda step, meta: refuse_config_drift(
            meta["config"], resolved_config, f"the checkpoint at step {step} in {workdir}",
            config.allow_config_change))
    start_step = 0 if restored is None else restored[0]
    # The input stream is built (a cached dataset is decoded into memory: seconds) while the initial state compiles
    # and runs: TensorFlow's decoding and XLA's compiler each keep a core busy.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="train_input") as pool:
        pending_batches = pool.submit(task.train_batches, config, data, start_step=start_step,
                                      steps_per_epoch=steps_per_epoch, process_index=process_index,
                                      process_count=process_count)
        if restored is None:
            state = task.initialize(config, data, init(jax.random.key(config.seed)), optimizer, state_sharding)
            meta = {"best_top1": None, "best_step": None, "elapsed_seconds": 0.0}
        else:
            _, state, meta = restored
            logging.info("resumed from step %d of %d", start_step, total_steps)
        train_batches = pending_batches.result()
    eval_runner = task.evaluation(config, data, model, mesh=mesh, state_sharding=state_sharding, workdir=workdir,
                                  process_index=process_index, process_count=process_count)  # main set first
    logged_splits = eval_runner.names
    if state.ema is not None:
        logged_splits += [name + ema_lib.SPLIT_SUFFIX for name in logged_splits]
    best = evaluators.BestTracker(config.best_metric, eval_runner.main)
    best.check_sets(logged_splits)
    lr_plateau = optim.LrPlateau.from_config(config, eval_runner.main)  # its state lives in state.opt_state
    if lr_plateau is not None:
        lr_plateau.check_splits(logged_splits)
    stopper = EarlyStopping.from_config(config, meta.get("early_stopping"))  # counters resume with the run
    if stopper is not None:
        stopper.check_splits(logged_splits)
        if stopper.should_stop:
            logging.warning("%s; nothing left to do (raise config.early_stopping.patience to go on)",
                            stopper.reason(start_step))
            checkpointer.close()
            return {}
    trial = TrialReporter.from_config(config, eval_runner.main) if process_index == 0 else None  # a tune trial
    if process_index == 0:
        write_text_atomically(layout.config, json.dumps(resolved_config, indent=2, sort_keys=True))
    logging.info("model %s, %d parameters; %d devices in %d processes; %d steps (%d per epoch), global batch %d",
                 config.model, sum(x.size for x in jax.tree.leaves(abstract_state.params)), jax.device_count(),
                 process_count, total_steps, steps_per_epoch, config.batch_size)

    # Compiled steps: state replicated or FSDP-split per state_sharding, batch split over all devices, state donated.
    batch_sharding = mesh_lib.batch_sharded(mesh)
    # Extra step arguments (a distillation teacher, read once, sharded like the student) are the task's.
    step_fn = task.train_step(config, data, model, optimizer, schedule, mesh)
    extra = step_fn.extra
    train_step = jax.jit(
        step_fn.step,
        in_shardings=(state_sharding, batch_sharding, replicated, *step_fn.extra_shardings),
        out_shardings=(state_sharding, replicated),
        donate_argnums=(0,),
    )
    throughput = ThroughputMeter(config.batch_size, config.half_precision, config.peak_flops_per_device)
    reporter = MetricsReporter(workdir, total_steps, config.batch_size, start_step, meta["elapsed_seconds"],
                               steps_per_epoch=steps_per_epoch, throughput=throughput, config=config)
    profile = ProfileWindow(config.profile_steps, str(run_path(workdir)))
    base_key = jax.random.key(config.seed)
    stop = _PreemptionFlag()
    window: list[dict] = []  # device metrics of steps not yet fetched
    # Host metrics since the last train log line; checkpointed, so a resumed run logs the same averages.
    log_window: list[dict] = meta.get("unlogged_train_metrics", [])
    final_metrics: dict = {}
    pruned = False
    try:
        for step in range(start_step + 1, total_steps + 1):
            with throughput.input_wait():  # the host fetching and copying input, while the device may idle
                batch = mesh_lib.global_batch(next(train_batches), mesh)
            if step == start_step + 1:
                throughput.analyze(train_step, state, batch, base_key, *extra)  # FLOPs, peak memory; reused
            profile.before_step(step)
            state, metrics = train_step(state, batch, base_key, *extra)
            profile.after_step(step, metrics)
            window.append(metrics)
            is_eval_step = step % eval_every == 0 or step == total_steps
            is_checkpoint_step = step % checkpoint_every == 0 or step == total_steps or is_eval_step
            preempted = stop.requested(step)
            is_log_step = step % config.log_every_steps == 0 or step == total_steps
            if is_log_step or is_checkpoint_step or preempted:
                # Fetching syncs with the device; it also vets every step before anything is saved.
                fetched = jax.device_get(window)
                check_finite(fetched, step - len(fetched) + 1, config.nonfinite_policy)
                log_window.extend({key: float(value) for key, value in metrics.items()} for metrics in fetched)
                window = []
            if is_log_step:
                reporter.train(step, average_train_metrics(log_window))  # skipped (non-finite) steps left out
                log_window = []
            eval_metrics = None
            if is_eval_step:
                logged = eval_runner.evaluate(state, step)
                if state.ema is not None:  # every eval set again with the averaged weights, as "<name>_ema"
                    ema_logged = eval_runner.evaluate(
                        jax.device_put(ema_lib.with_ema_weights(state), state_sharding), step)
                    logged.update({name + ema_lib.SPLIT_SUFFIX: metrics for name, metrics in ema_logged.items()})
                best.update(step, logged, meta)
                eval_metrics = logged[eval_runner.main]  # the main set's line carries the best-so-far
                eval_metrics.update(best_top1=meta["best_top1"], best_step=meta["best_step"])
                if config.best_metric and meta.get("best_value") is not None:  # its name: in the checkpoint meta
                    eval_metrics.update(best_value=meta["best_value"])
                for name, metrics in logged.items():
                    reporter.eval(step, name, metrics)
                final_metrics = eval_metrics
                if stopper is not None:
                    stopper.update(step, logged)
                if config.tune.trial >= 0 and _pruned(trial, step, logged, final=step == total_steps):
                    reporter.eval(step, PRUNED_SPLIT, {"pruned": 1, "trial": config.tune.trial})
                    pruned = True
                if lr_plateau is not None:
                    state = state.replace(opt_state=lr_plateau.update(state.opt_state, logged))
            if is_checkpoint_step or preempted:
                meta.update(step=step, images_seen=step * config.batch_size, config=resolved_config,
                            unlogged_train_metrics=log_window,
                            elapsed_seconds=reporter.elapsed_seconds)
                if stopper is not None:
                    meta.update(early_stopping=stopper.state())
                # "top1" is the Checkpointer's best-keeping score: config.best_metric, higher is better.
                checkpoint_metrics = {"top1": best.score(logged)} if eval_metrics else None
                if eval_metrics and stopper is not None and stopper.improved:
                    checkpoint_metrics[EARLY_STOPPING_BEST] = step  # the newest improvement is the one kept
                checkpointer.save(step, state, dict(meta), metrics=checkpoint_metrics)
            if preempted:
                checkpointer.wait()
                raise Preempted(step)
            if is_eval_step and stopper is not None and stopper.should_stop:
                logging.warning("%s", stopper.reason(step))
                break
            if pruned:
                break
        if config.write_report and process_index == 0:  # DIR/report/index.html; a failure only warns
            from imagenet_jax.report import figure_paths, report_at_end

            # Process 0 alone: the report reads the workdir through runs.Run, which enters no collective, so the
            # other processes go on to exit (they wait for process 0 only at the runtime's shutdown).
            checkpointer.wait()  # its sample images restore the final checkpoint
            index = report_at_end(workdir)
            reporter.log_figures(figure_paths(index) if index else [])
    finally:
        stop.restore()
        profile.close()
        checkpointer.close()
        reporter.close()
    return final_metrics


def _pruned(trial: TrialReporter | None, step: int, logged: dict[str, dict], final: bool) -> bool:
    # Process 0 asks the study; every process must stop at the same step, so the others hear its answer.
    decision = trial.update(step, logged, final) if trial is not None else False
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        decision = bool(multihost_utils.broadcast_one_to_all(np.asarray(decision)))
    return decision


def _enable_compilation_cache(directory: str) -> None:
    # A requeued job reloads compiled executables instead of recompiling from scratch.
    if directory:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


_PREEMPTION_SYNC_EVERY = 10  # steps between agreements on a stop in multi-process runs


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

    def requested(self, step: int) -> bool:
        """True once a termination signal arrived (in any process: all processes must stop at the same step)."""
        if jax.process_count() == 1:
            return self._event.is_set()
        if step % _PREEMPTION_SYNC_EVERY:
            return False
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.array(self._event.is_set()))
        return bool(np.any(flags))

    def restore(self) -> None:
        """Reinstalls the signal handlers that were there before."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
