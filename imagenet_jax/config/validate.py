"""Checks a config before anything runs; every problem is one ConfigError line naming the key and the fix."""

from __future__ import annotations

import difflib

import ml_collections

from imagenet_jax.config.base import get_base_config
from imagenet_jax.errors import ConfigError

# Keys that may differ between a checkpoint's config and the resuming run's without changing the
# trajectory: bookkeeping and where files live.
RESUME_SAFE_KEYS = frozenset({
    "data_dir", "manual_dir", "eval_every_steps", "checkpoint_every_steps", "log_every_steps",
    "keep_checkpoints", "allow_config_change", "eval_batch_size", "compilation_cache_dir", "min_free_disk_gb",
    "fsdp_devices", "fsdp_min_size", "nonfinite_policy",
})


def validate_config(config: ml_collections.ConfigDict, device_count: int | None = None) -> None:
    """Raises ConfigError for unknown keys, models, datasets, ops, bad ranges and indivisible batches."""
    from imagenet_jax import models
    from imagenet_jax.data import datasets
    from imagenet_jax.data.preprocessing import parse_chain
    from imagenet_jax.train.optimizer import OPTIMIZERS, SCHEDULES

    _check_known_keys(config, get_base_config())
    if config.model not in models.names():
        close = difflib.get_close_matches(config.model, models.names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"config.model={config.model!r} is not a registered model.{hint} "
                          "List them with: python -m imagenet_jax.models")
    if "dtype" in config.model_options or "num_classes" in config.model_options:
        raise ConfigError("config.model_options must not set dtype or num_classes: use config.half_precision "
                          "and config.num_classes")
    datasets.get(config.dataset)
    _choice(config, "optimizer", OPTIMIZERS)
    _choice(config, "schedule", SCHEDULES)
    _positive(config, "batch_size")
    _positive(config, "image_size")
    _positive(config, "shuffle_buffer_size")
    _positive(config, "keep_checkpoints")
    _positive(config, "log_every_steps")
    _positive(config, "fsdp_devices")
    _choice(config, "nonfinite_policy", ("stop", "skip"))
    if config.min_free_disk_gb < 0:
        raise ConfigError(f"config.min_free_disk_gb={config.min_free_disk_gb} must be >= 0.")
    for key in ("eval_batch_size", "eval_every_steps", "checkpoint_every_steps", "num_classes"):
        if config[key] < 0:
            raise ConfigError(f"config.{key}={config[key]} must be >= 0 (0 means the default).")
    if config.num_train_steps == 0 or (config.num_train_steps < 0 and config.num_epochs <= 0):
        raise ConfigError(f"zero training steps: set config.num_train_steps > 0 or config.num_epochs > 0 "
                          f"(now num_train_steps={config.num_train_steps}, num_epochs={config.num_epochs}).")
    if config.learning_rate <= 0:
        raise ConfigError(f"config.learning_rate={config.learning_rate} must be > 0.")
    if not 0 <= config.label_smoothing < 1:
        raise ConfigError(f"config.label_smoothing={config.label_smoothing} must be in [0, 1).")
    if not 0 < config.crop_pct <= 1:
        raise ConfigError(f"config.crop_pct={config.crop_pct} must be in (0, 1].")
    if config.weight_decay < 0 or config.warmup_epochs < 0:
        raise ConfigError("config.weight_decay and config.warmup_epochs must be >= 0.")
    for key in ("normalize_mean", "normalize_std"):
        if len(config[key]) not in (1, 3) or (key == "normalize_std" and min(config[key]) <= 0):
            raise ConfigError(f"config.{key}={tuple(config[key])} needs 1 or 3 values (stds > 0).")
    parse_chain(config.train_preprocess, "train_preprocess")
    parse_chain(config.eval_preprocess, "eval_preprocess")
    if device_count is not None:
        if device_count % config.fsdp_devices:
            raise ConfigError(f"config.fsdp_devices={config.fsdp_devices} does not divide the {device_count} devices: "
                              "use a divisor of the device count.")
        for key in ("batch_size", "eval_batch_size"):
            value = config[key]
            if value and value % device_count:
                lower = max(device_count, value // device_count * device_count)
                raise ConfigError(
                    f"config.{key}={value} does not divide over {device_count} devices: use a multiple of "
                    f"{device_count}, e.g. --config.{key}={lower}."
                )


def config_drift(stored: dict, current: dict) -> list[str]:
    """Keys whose values differ between a checkpoint's config and this run's, ignoring resume-safe keys."""
    keys = (set(stored) | set(current)) - RESUME_SAFE_KEYS
    return sorted(key for key in keys if _normalized(stored.get(key)) != _normalized(current.get(key)))


def _normalized(value):
    if isinstance(value, (list, tuple)):
        return [_normalized(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalized(item) for key, item in value.items()}
    return value


def _check_known_keys(config: ml_collections.ConfigDict, schema: ml_collections.ConfigDict) -> None:
    for key in config.keys():
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema.keys()), n=1)
            hint = f" Did you mean config.{close[0]}?" if close else ""
            raise ConfigError(f"unknown config key config.{key}.{hint} Every key is listed in "
                              "imagenet_jax/config/base.py.")


def _choice(config: ml_collections.ConfigDict, key: str, choices) -> None:
    if config[key] not in choices:
        raise ConfigError(f"config.{key}={config[key]!r} is not one of: {', '.join(choices)}.")


def _positive(config: ml_collections.ConfigDict, key: str) -> None:
    if config[key] <= 0:
        raise ConfigError(f"config.{key}={config[key]} must be > 0.")
