"""Optimizer and learning-rate schedule of a run, built from the config by name; `validate_config` checks the keys.

The config keys (imagenet_jax/config/base.py): config.optimizer.{name, kwargs}, config.schedule.{name,
warmup_epochs, kwargs}, learning_rate (peak, linearly scaled by the batch), lr_reference_batch_size,
weight_decay, lr_multipliers, weight_decay_multipliers, grad_clip_norm, grad_accumulation_steps, lr_plateau.
`python -m imagenet_jax.training.optim` lists the names and their keyword arguments.
"""

from __future__ import annotations

import logging

import ml_collections
import optax

from imagenet_jax.config.checks import check_sub_dict, is_number
from imagenet_jax.errors import ConfigError
from imagenet_jax.training.optim import optimizers, param_rules, plateau, schedules, transforms
from imagenet_jax.training.optim.optimizers import OPTIMIZERS
from imagenet_jax.training.optim.plateau import LrPlateau, lr_multiplier
from imagenet_jax.training.optim.schedules import SCHEDULES, Timeline

__all__ = ["MOVED_KEYS", "OPTIMIZERS", "SCHEDULES", "LrPlateau", "create", "learning_rate_schedule", "lr_multiplier",
           "peak_learning_rate", "validate_config"]

# Keys of the flat schema this package replaced, and where each went (named in "unknown key" errors).
MOVED_KEYS = {
    "momentum": "config.optimizer.kwargs.momentum",
    "nesterov": "config.optimizer.kwargs.nesterov",
    "adam_b2": "config.optimizer.kwargs.b2",
    "warmup_epochs": "config.schedule.warmup_epochs",
    "lr_step_epochs": "config.schedule.kwargs.boundaries_epochs",
    "lr_step_factor": "config.schedule.kwargs.factor",
    "decay_bn_and_bias": "config.weight_decay_multipliers (() decays every parameter)",
}


def peak_learning_rate(config: ml_collections.ConfigDict) -> float:
    """config.learning_rate x (examples per update) / lr_reference_batch_size; unscaled when that is 0."""
    if config.lr_reference_batch_size > 0:
        examples_per_update = config.batch_size * config.grad_accumulation_steps
        return config.learning_rate * examples_per_update / config.lr_reference_batch_size
    return config.learning_rate


def learning_rate_schedule(config: ml_collections.ConfigDict, total_steps: int,
                           steps_per_epoch: float) -> optax.Schedule:
    """The learning rate as a function of the optimizer's update count (train steps / grad_accumulation_steps)."""
    accumulation = config.grad_accumulation_steps
    updates_per_epoch = steps_per_epoch / accumulation
    total_updates = max(total_steps // accumulation, 1)
    warmup = min(round(config.schedule.warmup_epochs * updates_per_epoch), total_updates)
    timeline = Timeline(warmup_steps=warmup, total_steps=total_updates, steps_per_epoch=updates_per_epoch)
    return schedules.create(config.schedule.name, config.schedule.kwargs.to_dict(), peak_learning_rate(config),
                            timeline)


def create(config: ml_collections.ConfigDict, *, total_steps: int, steps_per_epoch: float,
           num_classes: int = 0) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optimizer, lr per train step) for a run of `total_steps` train steps of config.batch_size examples.

    Order: clip the global gradient norm, the named optimizer (with its weight decay), per-leaf learning-rate
    multipliers, the reduce-on-plateau multiplier (config.lr_plateau, plateau.py); all wrapped in optax.MultiSteps
    when accumulating, so clipping sees the accumulated gradient. Parameters frozen by config.freeze or
    config.linear_probe (the classifier has `num_classes` outputs; train/transfer.py) bypass all of it: zero updates.
    The returned schedule maps a train step to the rate the optimizer uses for the update it contributes to
    (times `lr_multiplier(opt_state)` with config.lr_plateau on).
    """
    schedule = learning_rate_schedule(config, total_steps, steps_per_epoch)
    parts = []
    if config.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
    parts.append(optimizers.create(config.optimizer.name, config.optimizer.kwargs.to_dict(), schedule,
                                   config.weight_decay, tuple(config.weight_decay_multipliers)))
    if config.lr_multipliers:
        parts.append(transforms.scale_per_leaf(param_rules.per_leaf(tuple(config.lr_multipliers))))
    if config.lr_plateau.metric:
        parts.append(plateau.scale_by_plateau())
    if config.pruning.method:  # last: masks the final update and zeroes pruned weights; frozen leaves are not pruned
        from imagenet_jax.compress import pruning

        parts.append(pruning.from_config(config.pruning, total_updates=total_steps // config.grad_accumulation_steps))
    # A lone optimizer stays unwrapped, so its state (and checkpoints) keep the optimizer's own layout.
    optimizer = parts[0] if len(parts) == 1 else optax.chain(*parts)
    from imagenet_jax.training import transfer  # imported here: transfer imports this package's param_rules

    optimizer = transfer.freeze_optimizer(optimizer, transfer.Freeze.from_config(config, num_classes))
    accumulation = config.grad_accumulation_steps
    if accumulation == 1:
        return optimizer, schedule
    if total_steps % accumulation:
        logging.warning("the last %d of %d train steps do not fill an update of config.grad_accumulation_steps=%d "
                        "batches and will not be applied", total_steps % accumulation, total_steps, accumulation)
    optimizer = optax.MultiSteps(optimizer, every_k_schedule=accumulation).gradient_transformation()
    return optimizer, lambda step: schedule(step // accumulation)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the key for any bad optimizer, schedule, decay, multiplier, clipping or accumulation key."""
    _check_sub_dict(config, "optimizer", ("name", "kwargs"))
    OPTIMIZERS.check(config.optimizer.name, config.optimizer.kwargs.to_dict())
    _check_sub_dict(config, "schedule", ("name", "warmup_epochs", "kwargs"))
    warmup = config.schedule.warmup_epochs
    if not _is_number(warmup) or warmup < 0:
        raise ConfigError(f"config.schedule.warmup_epochs={warmup!r} must be a number >= 0.")
    SCHEDULES.check(config.schedule.name, config.schedule.kwargs.to_dict(), warmup_epochs=warmup)
    if not _is_number(config.learning_rate) or config.learning_rate <= 0:
        raise ConfigError(f"config.learning_rate={config.learning_rate!r} must be > 0.")
    if not isinstance(config.lr_reference_batch_size, int) or config.lr_reference_batch_size < 0:
        raise ConfigError(f"config.lr_reference_batch_size={config.lr_reference_batch_size!r} must be an integer "
                          ">= 0 (0 disables linear scaling).")
    if not _is_number(config.weight_decay) or config.weight_decay < 0:
        raise ConfigError(f"config.weight_decay={config.weight_decay!r} must be >= 0.")
    for key in ("lr_multipliers", "weight_decay_multipliers"):
        param_rules.check_rules(key, config[key])
    optimizers.check_weight_decay(config.optimizer.name, config.weight_decay, config.weight_decay_multipliers)
    if not _is_number(config.grad_clip_norm) or config.grad_clip_norm < 0:
        raise ConfigError(f"config.grad_clip_norm={config.grad_clip_norm!r} must be >= 0 (0 turns clipping off).")
    plateau.validate_config(config)
    accumulation = config.grad_accumulation_steps
    if not isinstance(accumulation, int) or isinstance(accumulation, bool) or accumulation < 1:
        raise ConfigError(f"config.grad_accumulation_steps={accumulation!r} must be an integer >= 1 (1: off).")
    if accumulation > 1 and config.num_train_steps > 0 and config.num_train_steps % accumulation:
        raise ConfigError(f"config.num_train_steps={config.num_train_steps} is not a multiple of "
                          f"config.grad_accumulation_steps={accumulation}: the last batches would never be applied.")


def _check_sub_dict(config: ml_collections.ConfigDict, key: str, fields: tuple[str, ...]) -> None:
    value = check_sub_dict(config, key, fields)
    if not isinstance(value.name, str):
        raise ConfigError(f"config.{key}.name={value.name!r} must be a string.")
    if not isinstance(value.kwargs, ml_collections.ConfigDict):
        raise ConfigError(f"config.{key}.kwargs={value.kwargs!r} must be a ConfigDict of keyword arguments.")


_is_number = is_number
