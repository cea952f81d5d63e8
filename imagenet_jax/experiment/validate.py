"""Checks a whole config before anything runs, through the config section of every component the loop and the
task use; every problem is one ConfigError line naming the key and the fix. Also: may a checkpoint resume?"""

from __future__ import annotations

import difflib
import functools
import json
import math

import ml_collections

from imagenet_jax.config.base import get_base_config
from imagenet_jax.config.moved_keys import MOVED_KEYS as MOVED_AUGMENTATION_KEYS
from imagenet_jax.config.moved_keys import fold_moved_keys, moved_key_message
from imagenet_jax.config.sections import ConfigSection, moved_keys, resume_safe_keys
from imagenet_jax.errors import ConfigError

# The loop's own keys that may differ between a checkpoint's config and the resuming run's: bookkeeping, where
# and how often things are written. Every component declares its own (RESUME_SAFE_KEYS beside its validator).
RESUME_SAFE_KEYS = frozenset({
    "eval_every_steps", "checkpoint_every_steps", "log_every_steps", "keep_checkpoints", "allow_config_change",
    "compilation_cache_dir", "min_free_disk_gb", "nonfinite_policy",
    "write_report",  # where results are shown, not what they are
})


def config_sections(config: ml_collections.ConfigDict | dict) -> list[ConfigSection]:
    """The sections of the loop (its own keys, sharding, profiling, logging, early stopping) and of the task."""
    from imagenet_jax import tasks
    from imagenet_jax.parallel import cpu_devices, mesh
    from imagenet_jax.training import early_stopping, profiling, trial_pruning, wandb_logger

    own = ConfigSection("loop", _validate_loop_keys, RESUME_SAFE_KEYS)
    components = [ConfigSection.from_module(module)
                  for module in (mesh, cpu_devices, profiling, wandb_logger, early_stopping, trial_pruning)]
    return [own, *components, *tasks.get(config.get("task", "classification")).config_sections()]


def validate_config(config: ml_collections.ConfigDict, device_count: int | None = None) -> None:
    """Raises ConfigError for unknown keys, a bad value of any section's key and indivisible batches."""
    _check_known_keys(config, get_base_config())
    for key in config.keys():
        if isinstance(config[key], float) and not math.isfinite(config[key]):
            raise ConfigError(f"config.{key}={config[key]} must be a finite number.")
    for section in config_sections(config):  # config.task first: an unknown task has no sections
        section.validate(config)
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


def _validate_loop_keys(config: ml_collections.ConfigDict) -> None:
    """The loop's own keys: steps, batch, checkpoints, logging, the non-finite policy, free disk."""
    _positive(config, "batch_size")
    _positive(config, "keep_checkpoints")
    _positive(config, "log_every_steps")
    _choice(config, "nonfinite_policy", ("stop", "skip"))
    if config.min_free_disk_gb < 0:
        raise ConfigError(f"config.min_free_disk_gb={config.min_free_disk_gb} must be >= 0.")
    for key in ("eval_batch_size", "eval_every_steps", "checkpoint_every_steps"):
        if config[key] < 0:
            raise ConfigError(f"config.{key}={config[key]} must be >= 0 (0 means the default).")
    if config.num_train_steps == 0 or (config.num_train_steps < 0 and config.num_epochs <= 0):
        raise ConfigError(f"zero training steps: set config.num_train_steps > 0 or config.num_epochs > 0 "
                          f"(now num_train_steps={config.num_train_steps}, num_epochs={config.num_epochs}).")


def resolve_batch_size(config: ml_collections.ConfigDict, device_count: int) -> ml_collections.ConfigDict:
    """A copy of `config` whose global batch_size is per_device_batch_size x devices when that key is set."""
    if config.per_device_batch_size < 0:
        raise ConfigError(f"config.per_device_batch_size={config.per_device_batch_size} must be >= 0.")
    if not config.per_device_batch_size:
        return config
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.batch_size = config.per_device_batch_size * device_count
    return resolved


def config_drift(stored: dict, current: dict) -> list[str]:
    """Keys whose values differ between a checkpoint's config and this run's, ignoring resume-safe keys."""
    stored, current = fold_moved_keys(stored), fold_moved_keys(current)  # a run from before the keys moved
    stored, current = _with_holdout(stored), _with_holdout(current)
    stored, current = _comparable_model_options(stored, current)
    safe = resume_safe_keys(config_sections(current))
    keys = (set(stored) | set(current)) - safe - _newer_at_default(stored, current, _base_defaults())
    return sorted(key for key in keys if _normalized(stored.get(key)) != _normalized(current.get(key)))


def _newer_at_default(stored: dict, current: dict, defaults: dict) -> set[str]:
    # A key newer than the checkpoint, left at its default, is what the older code did: not a change.
    return {key for key, value in current.items()
            if key not in stored and key in defaults and _normalized(value) == _normalized(defaults[key])}


# Model options that only decide the initial weights, which a resumed run restores from its checkpoint.
INIT_ONLY_MODEL_OPTIONS = frozenset({"conv_init", "layer_scale_init"})  # ResNets' and ConvNeXt's


def _comparable_model_options(stored: dict, current: dict) -> tuple[dict, dict]:
    # Model options follow the config keys' rule (_newer_at_default), against the model's own defaults.
    stored_options, current_options = stored.get("model_options"), current.get("model_options")
    if not isinstance(stored_options, dict) or not isinstance(current_options, dict):
        return stored, current
    from imagenet_jax import models

    try:
        defaults = models.default_options(current.get("model", ""))
    except (KeyError, ValueError):  # an unknown model is reported by validation, not here
        defaults = {}
    newer = _newer_at_default(stored_options, current_options, defaults)

    def keep(options: dict) -> dict:
        return {key: value for key, value in options.items() if key not in INIT_ONLY_MODEL_OPTIONS | newer}

    return {**stored, "model_options": keep(stored_options)}, {**current, "model_options": keep(current_options)}


@functools.lru_cache(maxsize=1)
def _base_defaults() -> dict:
    return json.loads(get_base_config().to_json_best_effort())


def _with_holdout(config: dict) -> dict:
    # config.evals may change on resume, except how many training examples its sets hold out: that changes what
    # training reads (older runs held them out with minival_examples).
    from imagenet_jax.data.holdout import holdout_examples

    return {**config, HOLDOUT_KEY: config.get("minival_examples") or holdout_examples(config)}


HOLDOUT_KEY = "evals.*.holdout"


def refuse_config_drift(stored: dict, current: dict, checkpoint: str, allow_change: bool) -> None:
    """ConfigError naming each trajectory-changing key of `current` that differs from the checkpoint's config."""
    stored, current = fold_moved_keys(stored), fold_moved_keys(current)  # a run from before the keys moved
    drift = config_drift(stored, current)
    stored, current = _with_holdout(stored), _with_holdout(current)
    if drift and not allow_change:
        changes = ", ".join(f"{key} ({stored.get(key)!r} -> {current.get(key)!r})" for key in drift)
        raise ConfigError(
            f"{checkpoint} was trained with a different config: {changes}. "
            "Use a new workdir, or pass --config.allow_config_change=True to resume anyway."
        )


def _normalized(value):
    if isinstance(value, (list, tuple)):
        return [_normalized(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalized(item) for key, item in value.items()}
    return value


def _check_known_keys(config: ml_collections.ConfigDict, schema: ml_collections.ConfigDict) -> None:
    for key in config.keys():
        if key not in schema:
            raise ConfigError(unknown_key_message(config, key))


def unknown_key_message(config: ml_collections.ConfigDict | dict, key: str) -> str:
    """One line for top-level config.<key>, which the schema lacks: where it moved, or the closest key."""
    if key in MOVED_AUGMENTATION_KEYS:  # e.g. config.color_jitter: the op to append to the chain
        return moved_key_message({name: value for name, value in config.items() if name in MOVED_AUGMENTATION_KEYS})
    schema = get_base_config()
    close = difflib.get_close_matches(key, list(schema.keys()), n=1)
    hint = f" Did you mean config.{close[0]}?" if close else ""
    moved = moved_keys(config_sections(config))
    hint = f" It moved to {moved[key]}." if key in moved else hint
    return f"unknown config key config.{key}.{hint} Every key is listed in imagenet_jax/config/base.py."


def _choice(config: ml_collections.ConfigDict, key: str, choices) -> None:
    if config[key] not in choices:
        raise ConfigError(f"config.{key}={config[key]!r} is not one of: {', '.join(choices)}.")


def _positive(config: ml_collections.ConfigDict, key: str) -> None:
    if config[key] <= 0:
        raise ConfigError(f"config.{key}={config[key]} must be > 0.")
