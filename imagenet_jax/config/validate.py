"""Checks a config before anything runs; every problem is one ConfigError line naming the key and the fix."""

from __future__ import annotations

import difflib
import functools
import json
import math
import re

import ml_collections

from imagenet_jax.config.base import get_base_config
from imagenet_jax.errors import ConfigError

# Keys that may differ between a checkpoint's config and the resuming run's without changing the
# trajectory: bookkeeping, where files live, and how evaluation is done (eval-only keys).
RESUME_SAFE_KEYS = frozenset({
    "data_dir", "manual_dir", "eval_every_steps", "checkpoint_every_steps", "log_every_steps",
    "keep_checkpoints", "allow_config_change", "eval_batch_size", "compilation_cache_dir", "min_free_disk_gb",
    "fsdp_devices", "fsdp_min_size", "fsdp_rules", "nonfinite_policy",
    "crop_pct", "eval_image_size", "eval_preprocess", "evals", "best_metric",
    "extra_eval_splits", "minival_examples",  # replaced by config.evals (compared as its holdout); in older runs
    "early_stopping",  # when to stop, not what a step computes: a stopped run may go on with more patience
    "peak_flops_per_device", "profile_steps",  # reporting only
    "cpu_conv_lowering",  # the same convolution, lowered differently (tests/models/test_conv_lowering.py)
    "write_report", "wandb_project", "wandb_entity", "wandb_mode",  # where results are shown, not what they are
})

# Keys that became model options (with each model's own default), named in "unknown key" errors.
_MOVED_MODEL_KEYS = {"aux_loss_weight": "config.model_options.aux_loss_weight (each model's own default)"}


def validate_config(config: ml_collections.ConfigDict, device_count: int | None = None) -> None:
    """Raises ConfigError for unknown keys, models, datasets, ops, bad ranges and indivisible batches."""
    from imagenet_jax import evaluators, models
    from imagenet_jax.data import datasets
    from imagenet_jax.data.preprocessing import parse_chain
    from imagenet_jax.train import (
        adversarial_training,
        distill,
        optim,
        profiling,
        regularization,
        transfer,
        wandb_logger,
    )

    _check_known_keys(config, get_base_config())
    for key in config.keys():
        if isinstance(config[key], float) and not math.isfinite(config[key]):
            raise ConfigError(f"config.{key}={config[key]} must be a finite number.")
    models.MODELS.get(config.model)  # config.model='resnt50' is not a registered model. Did you mean resnet50? ...
    if "dtype" in config.model_options or "num_classes" in config.model_options:
        raise ConfigError("config.model_options must not set dtype or num_classes: use config.half_precision "
                          "and config.num_classes")
    try:  # each model checks its own options when built (unknown names, bad values)
        models.create(config.model, **config.model_options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config.model_options of {config.model!r}: {error}.") from None
    datasets.get(config.dataset)
    if config.bn_group_size:
        if config.bn_group_size < 0 or config.batch_size % config.bn_group_size:
            raise ConfigError(f"config.bn_group_size={config.bn_group_size} must be > 0 and divide "
                              f"config.batch_size={config.batch_size}.")
        try:
            models.create(config.model, bn_group_size=config.bn_group_size, **config.model_options)
        except TypeError:
            raise ConfigError(f"config.bn_group_size: model {config.model!r} has no ghost-BatchNorm option "
                              "(the ResNet family has); set it to 0.") from None
    optim.validate_config(config)  # optimizer, schedule, learning rate, decay, clipping, accumulation
    regularization.validate_config(config)  # loss, EMA, early stopping
    transfer.validate_config(config)  # freeze, linear_probe, init_from
    distill.validate_config(config)  # distill
    adversarial_training.validate_config(config)  # adversarial_training
    profiling.validate_config(config)  # profile_steps, peak_flops_per_device
    models.conv_lowering.validate_config(config)  # cpu_conv_lowering
    evaluators.validate(config)  # config.evals, config.best_metric
    wandb_logger.validate_config(config)  # wandb_mode; wandb installed when wandb_project is set
    from imagenet_jax import compress

    compress.validate_config(config)  # config.pruning, config.quantization
    _positive(config, "batch_size")
    _positive(config, "image_size")
    _positive(config, "keep_checkpoints")
    _positive(config, "log_every_steps")
    _positive(config, "fsdp_devices")
    _choice(config, "nonfinite_policy", ("stop", "skip"))
    for rule in config.fsdp_rules:
        if len(rule) != 2 or rule[1] not in ("fsdp", "replicate"):
            raise ConfigError(f"config.fsdp_rules: {rule!r} must be a (regex, 'fsdp' | 'replicate') pair.")
        try:
            re.compile(rule[0])
        except re.error as error:
            raise ConfigError(f"config.fsdp_rules: {rule[0]!r} is not a regular expression ({error}).") from None
    if config.min_free_disk_gb < 0:
        raise ConfigError(f"config.min_free_disk_gb={config.min_free_disk_gb} must be >= 0.")
    for key in ("eval_batch_size", "eval_every_steps", "checkpoint_every_steps", "num_classes"):
        if config[key] < 0:
            raise ConfigError(f"config.{key}={config[key]} must be >= 0 (0 means the default).")
    if config.num_train_steps == 0 or (config.num_train_steps < 0 and config.num_epochs <= 0):
        raise ConfigError(f"zero training steps: set config.num_train_steps > 0 or config.num_epochs > 0 "
                          f"(now num_train_steps={config.num_train_steps}, num_epochs={config.num_epochs}).")
    if not 0 <= config.label_smoothing < 1:
        raise ConfigError(f"config.label_smoothing={config.label_smoothing} must be in [0, 1).")
    if not 0 < config.crop_pct <= 1:
        raise ConfigError(f"config.crop_pct={config.crop_pct} must be in (0, 1].")
    for key in ("normalize_mean", "normalize_std"):
        if len(config[key]) not in (1, 3) or (key == "normalize_std" and min(config[key]) <= 0):
            raise ConfigError(f"config.{key}={tuple(config[key])} needs 1 or 3 values (stds > 0).")
    parse_chain(config.train_preprocess, "train_preprocess")
    parse_chain(config.eval_preprocess, "eval_preprocess")
    _check_input_pipeline(config)
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
    stored, current = _with_holdout(stored), _with_holdout(current)
    stored, current = _comparable_model_options(stored, current)
    keys = (set(stored) | set(current)) - RESUME_SAFE_KEYS - _newer_at_default(stored, current, _base_defaults())
    return sorted(key for key in keys if _normalized(stored.get(key)) != _normalized(current.get(key)))


def _newer_at_default(stored: dict, current: dict, defaults: dict) -> set[str]:
    # A key newer than the checkpoint, left at its default, is what the older code did: not a change.
    return {key for key, value in current.items()
            if key not in stored and key in defaults and _normalized(value) == _normalized(defaults[key])}


# Model options that only decide the initial weights, which a resumed run restores from its checkpoint.
INIT_ONLY_MODEL_OPTIONS = frozenset({"conv_init"})


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
    from imagenet_jax.evaluators import holdout_examples

    return {**config, HOLDOUT_KEY: config.get("minival_examples") or holdout_examples(config)}


HOLDOUT_KEY = "evals.*.holdout"


def refuse_config_drift(stored: dict, current: dict, checkpoint: str, allow_change: bool) -> None:
    """ConfigError naming each trajectory-changing key of `current` that differs from the checkpoint's config."""
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
            from imagenet_jax.evaluators import MOVED_KEYS as MOVED_EVAL_KEYS
            from imagenet_jax.train.optim import MOVED_KEYS

            close = difflib.get_close_matches(key, list(schema.keys()), n=1)
            hint = f" Did you mean config.{close[0]}?" if close else ""
            moved = {**MOVED_KEYS, **_MOVED_MODEL_KEYS, **MOVED_EVAL_KEYS}
            hint = f" It moved to {moved[key]}." if key in moved else hint
            raise ConfigError(f"unknown config key config.{key}.{hint} Every key is listed in "
                              "imagenet_jax/config/base.py.")


def _choice(config: ml_collections.ConfigDict, key: str, choices) -> None:
    if config[key] not in choices:
        raise ConfigError(f"config.{key}={config[key]!r} is not one of: {', '.join(choices)}.")


def _positive(config: ml_collections.ConfigDict, key: str) -> None:
    if config[key] <= 0:
        raise ConfigError(f"config.{key}={config[key]} must be > 0.")


def _check_input_pipeline(config: ml_collections.ConfigDict) -> None:
    """Sources, resolutions, interpolation and every augmentation key (imagenet_jax/data/)."""
    from imagenet_jax.data import folders, inputs
    from imagenet_jax.data.preprocessing import INTERPOLATIONS, parse_chain

    if folders.is_folder_name(config.dataset) and not folders.list_splits(folders.folder_root(config.dataset)):
        raise ConfigError(f"config.dataset={config.dataset!r}: {folders.folder_root(config.dataset)} holds no "
                          "ROOT/<split>/<class>/ image folders.")
    for key in ("eval_image_size", "randaugment_num_ops", "lowres_cache_max_size"):
        if not isinstance(config[key], int) or config[key] < 0:
            raise ConfigError(f"config.{key}={config[key]!r} must be an integer >= 0.")
    if not isinstance(config.aug_repeats, int) or isinstance(config.aug_repeats, bool) or config.aug_repeats < 1:
        raise ConfigError(f"config.aug_repeats={config.aug_repeats!r} must be an integer >= 1 (1: no repeated "
                          "augmentation; ResNet strikes back and DeiT use 3).")
    sizes = [size for _, size in inputs.parse_size_schedule(config.image_size_schedule)] or [config.image_size]
    if config.lowres_cache_max_size and config.lowres_cache_max_size < min(sizes):
        raise ConfigError(f"config.lowres_cache_max_size={config.lowres_cache_max_size} is below every training "
                          f"image size ({', '.join(map(str, sizes))}), so no phase would read the cache: set it to "
                          "the size of the small phases of config.image_size_schedule, or 0.")
    _choice(config, "interpolation", INTERPOLATIONS)
    if not isinstance(config.antialias, bool):
        raise ConfigError(f"config.antialias={config.antialias!r} must be True or False.")
    _choice(config, "fill_mode", ("nearest", "constant", "reflect", "wrap"))
    _choice(config, "autoaugment", ("", "imagenet"))
    if config.autoaugment and config.randaugment_num_ops:
        raise ConfigError("config.autoaugment and config.randaugment_num_ops are both set: choose one policy.")
    if not 0 <= config.randaugment_magnitude <= 10:
        raise ConfigError(f"config.randaugment_magnitude={config.randaugment_magnitude} must be in [0, 10].")
    for key, high in (("rotation_range", 180.0), ("shear_range", 89.0), ("width_shift_range", 1.0),
                      ("height_shift_range", 1.0), ("zoom_range", 0.99), ("color_jitter", 1.0),
                      ("random_erasing", 1.0), ("mix_prob", 1.0), ("mix_switch_prob", 1.0)):
        if not 0 <= config[key] <= high:
            raise ConfigError(f"config.{key}={config[key]} must be in [0, {high:g}].")
    for key in ("mixup_alpha", "cutmix_alpha"):
        if config[key] < 0:
            raise ConfigError(f"config.{key}={config[key]} must be >= 0 (0 disables it).")
    parse_chain(inputs.train_chain(config), "train_preprocess")
